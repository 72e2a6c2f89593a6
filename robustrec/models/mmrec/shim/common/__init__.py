"""Stand-in for MMRec's ``common`` package."""
