"""robustrec's own implementations of the modules MMRec model files import (written from MMRec's
documented interface, no MMRec code). ``robustrec.models.mmrec.imports`` maps them onto the top-level
names ``common`` and ``utils`` (and ``models.common``) while a model file loads."""
