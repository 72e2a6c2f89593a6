"""Stand-in for MMRec's ``utils`` package (only ``utils.utils``)."""
