"""Exceptions that carry a one-line message meant for the user.

The CLI prints ``error: <message>`` and exits with status 2 for any of them;
the Python API lets them propagate.
"""


class StnlibError(Exception):
    """Base class: something the user asked for cannot be done."""


class ConfigError(StnlibError, ValueError):
    """A configuration value or combination of values is invalid."""


class UnknownNameError(ConfigError, KeyError):
    """A dataset, model or localization name is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DataError(StnlibError, OSError):
    """A dataset is missing, unreadable or malformed."""


class RunFolderError(StnlibError, OSError):
    """A run folder or checkpoint is missing, corrupt, or would be overwritten."""


class TrainingDiverged(StnlibError, FloatingPointError):
    """The loss became NaN or infinite."""


class InputShapeError(StnlibError, ValueError):
    """Images of the wrong size or channel count for a model."""
