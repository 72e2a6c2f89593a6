"""User-facing errors: the CLI prints these as one line and exits non-zero."""


class RobustRecError(Exception):
    """An error caused by input the user can fix (bad data, bad flag, missing file)."""


class DataError(RobustRecError):
    """A dataset folder or file is missing or malformed."""


class ConfigError(RobustRecError):
    """A configuration value or flag is invalid."""


class CheckpointError(RobustRecError):
    """A checkpoint is missing, corrupt or incompatible with the data."""
