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


class RunStopped(Exception):
    """SIGTERM or Ctrl-C stopped training, which saved where it was.

    Not a `ScriptError`: the run is intact, and the same command goes on. A
    script prints the message and exits with `exit_code` (128 + the signal's
    number: 143 for SIGTERM, 130 for Ctrl-C); in a notebook it is raised.
    """

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class RangeTestDone(Exception):
    """The learning-rate range test ran (`--find-lr`): nothing trains after it.

    A script's `main()` catches it and returns: the range test is a whole run.
    """


class TableError(DataError):
    """A table of labels (`--labels`) that cannot be used as it is: every
    problem found, with counts, in one line."""
