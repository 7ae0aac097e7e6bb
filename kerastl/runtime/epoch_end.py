"""`EpochEnd`: the run's bookkeeping after each epoch of a phase's `fit()`.

It sets the epoch the training batches draw (`epochs.training_epoch`), records
each finished, finite epoch (history, best epoch, checkpoint), stops a phase
that diverged or stalled, and on SIGTERM or Ctrl-C saves a checkpoint after
the batch in progress, then raises `Stopped`.
"""

import math
import time
from typing import TYPE_CHECKING

import keras

from . import files
from .epochs import training_epoch
from .errors import ScriptError
from .history import record_epoch
from .models import has_finite_weights
from .run_state import Checkpoint
from .stops import StopRequest

if TYPE_CHECKING:
    from .run import Run
    from .run_start import Phase


def improves(monitor: str, value: float, best: float) -> bool:
    """Whether `value` beats `best`: lower for losses and errors, else higher."""
    lower_is_better = "loss" in monitor or "error" in monitor
    return value < best if lower_is_better else value > best


class Stopped(Exception):
    """Raised in `fit` once a stop request is saved; its message says so."""


class EpochEnd(keras.callbacks.Callback):
    """The run's bookkeeping after each epoch; stops a diverged or stalled phase.

    Args:
        run: The run training.
        phase: The phase `fit()` trains.
        stop: The stop request of SIGTERM or Ctrl-C (`stops.stop_requests`).
    """

    def __init__(self, run: "Run", phase: "Phase", stop: StopRequest) -> None:
        super().__init__()
        self.run = run
        self.phase = phase
        self.stop = stop
        self.diverged: int | None = None
        self.stopped_early = False
        self.last_epoch: int | None = None
        self._started = time.monotonic()
        self._epoch = 0  # the epoch in progress (0-based)
        self._batches = 0  # its batches trained
        self._inside: Checkpoint | None = None

    @property
    def goes_on(self) -> bool:
        """Whether the phase trains on (it did not diverge or stop early)."""
        return self.diverged is None and not self.stopped_early

    def resume_inside(self, checkpoint: Checkpoint) -> None:
        """The next epoch starts after the checkpoint's batches, with its metrics."""
        self._inside = checkpoint

    def on_epoch_begin(self, epoch, logs=None):
        training_epoch().assign(epoch)  # its batches follow from seed and epoch
        self._started = time.monotonic()
        self._epoch = epoch
        self._batches = 0
        if self._inside is not None:  # the running means, as they were at the stop
            self._batches = self._inside["batch"]
            for variable, value in zip(
                self.model.metrics_variables, self._inside["metrics"], strict=True
            ):
                variable.assign(value)
            self._inside = None

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        # After the epoch's last batch, the epoch ends first (on_epoch_end stops).
        if not self.stop or batch + 1 >= (self.params.get("steps") or math.inf):
            return
        self.run.checkpoints.save(self.phase.name, self._epoch, batch=self._batches)
        raise Stopped(
            f"Stopped by {self.stop.name} after batch {self._batches} of epoch "
            f"{self._epoch + 1}, saved in {self.run.output_dir}; run the same "
            "command to go on from there."
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        values = [logs.get("loss"), logs.get(self.run.monitor)]
        finite = all(value is None or math.isfinite(value) for value in values)
        if not finite or not has_finite_weights(self.model, trained_only=True):
            self.diverged = epoch
            self.model.stop_training = True
            return
        seconds = self.run.state.seconds
        seconds[self.phase.name] = round(
            seconds.get(self.phase.name, 0) + time.monotonic() - self._started, 3
        )
        self._record(epoch, logs)
        self.last_epoch = epoch + 1
        if self.run.state.wait >= self.run.patience:
            self._stop_early(epoch)
        if self.stop:  # during validation or the epoch's checkpoint
            if self.run.checkpoints.loaded is None:  # this epoch did not save
                self.run.checkpoints.save(self.phase.name, epoch + 1)
            raise Stopped(
                f"Stopped by {self.stop.name} after epoch {epoch + 1}, saved in "
                f"{self.run.output_dir}; run the same command to go on from there."
            )

    def _record(self, epoch: int, logs: dict) -> None:
        """Records a finished, finite epoch: history, best epoch, checkpoint."""
        run = self.run
        record_epoch(
            files.join(run.write_dir, "history.csv"), epoch + 1, self.phase.name, logs
        )
        value = logs.get(run.monitor)
        if value is None:
            raise ScriptError(
                f"the run monitors {run.monitor}, which fit() did not report "
                f"(it reported {', '.join(logs)})"
            )
        best = run.state.best
        improved = best is None or improves(run.monitor, value, best["value"])
        run.state.wait = 0 if improved else run.state.wait + 1
        if improved:  # its weights are kept, and saved with the next checkpoint
            run.checkpoints.hold_best(self.phase.name, epoch + 1, float(value))
        if self._saves(epoch):
            run.checkpoints.save(self.phase.name, epoch + 1)
        else:
            run.checkpoints.skip()

    def _saves(self, epoch: int) -> bool:
        """Whether this epoch's end saves a checkpoint: a phase's last, a stop,
        and the others while saving takes a small share of the time
        (`Checkpoints.due`); every epoch in a multi-worker run."""
        run = self.run
        return (
            bool(self.stop)
            or epoch + 1 >= self.params.get("epochs", epoch + 1)
            or run.state.wait >= run.patience
            or not run.is_single_process
            or run.checkpoints.due
        )

    def _stop_early(self, epoch: int) -> None:
        best = self.run.state.best
        assert best is not None  # a phase only stalls behind a best epoch
        epochs = self.params.get("epochs", epoch + 1)
        stops = "ends with its last epoch" if epoch + 1 >= epochs else "stops early"
        print(
            f"Phase {self.phase.name!r} {stops}, epoch {epoch + 1} of "
            f"{epochs}: {self.run.monitor} has not "
            f"beaten the run's best ({best['value']:.4f}, epoch {best['epoch']}) "
            f"for {self.run.patience} epochs (--patience); the model goes back to "
            "that epoch's weights."
        )
        self.stopped_early = True
        self.model.stop_training = True
