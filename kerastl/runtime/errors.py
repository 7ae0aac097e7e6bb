"""Errors a training script reports to its user as one line."""


class ScriptError(Exception):
    """A problem the user can fix (data, weights, settings); shown without a traceback."""


class DataError(ScriptError):
    """The image folders cannot be used as they are."""


class WeightsError(ScriptError):
    """The requested weights cannot be loaded."""


class TrainabilityError(ScriptError):
    """The trainable weights after compiling are not the ones that were asked for."""


class UnfreezeError(ScriptError, ValueError):
    """A fine-tuning stage that does not fit the base model."""


class DivergedError(ScriptError):
    """Training produced a NaN or infinite loss or weights."""


class RunMismatchError(ScriptError):
    """The output folder holds a run that this one cannot continue."""
