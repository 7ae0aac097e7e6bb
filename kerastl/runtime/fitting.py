"""One phase of a run: where it starts, its `fit()`, each epoch's end, its end.

`fit_phase` runs the phase's `fit()` (first the rest of an epoch a stop
interrupted) with `EpochEnd` as its last callback, which sets the epoch the
training batches draw (`epochs.training_epoch`), records each finished, finite
epoch (history, best epoch, checkpoint), stops a phase that diverged or
stalled, and on SIGTERM or Ctrl-C saves a checkpoint after the batch in
progress: `fit_phase` then raises `RunStopped`. `RestOfEpochBar` is Keras's
progress bar for an epoch resumed from inside.
"""

import contextlib
import math
import time
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from . import files
from .averaging import (
    AveragedValidation,
    averaged_variables,
    averages_kept,
    uses_averages,
)
from .checkpoints import Best, Checkpoint
from .distribute import fitting_in
from .epochs import training_epoch
from .errors import DivergedError, RunStopped, ScriptError
from .history import drop_epochs_from, record_epoch
from .models import has_finite_weights
from .platforms import tensorboard_folder
from .quiet import quiet_logger
from .stops import StopRequest, stop_requests
from .trainable import trainable_summary

if TYPE_CHECKING:
    from .run import Phase, Run


def start_epoch(run: "Run", phase: "Phase") -> int | None:
    """The epoch (0-based) `phase` trains from, said in a line; or None, with
    the reason, if it has none left (it is then ended)."""
    if run.is_complete(phase):
        print(f"Phase {phase.name!r} finished in an earlier run.")
        return None
    initial_epoch, epochs = run.epoch_range(phase)
    if initial_epoch >= epochs:
        print(f"Phase {phase.name!r} has no epochs to train.")
        run.complete(phase, initial_epoch)
        return None
    first_epoch = run.end_epoch(run.phases.index(phase) - 1) + 1
    is_resumed = initial_epoch >= first_epoch
    if is_resumed and run.state.wait >= run.patience:
        # Killed after the phase stopped early and before it ended: end it now.
        print(
            f"Phase {phase.name!r} stopped early after epoch {initial_epoch} "
            f"in an earlier run ({run.monitor} had not beaten the run's best "
            f"for {run.state.wait} epochs); on from the best epoch."
        )
        run.checkpoints.load_best()
        run.complete(phase, initial_epoch)
        return None
    resumed = f", resumed after epoch {initial_epoch}" * is_resumed
    print(f"\nPhase {phase.name!r}, epochs {initial_epoch + 1} to {epochs}{resumed}:")
    return initial_epoch


def fit_phase(
    run: "Run",
    phase: "Phase",
    train_data: tf.data.Dataset,
    initial_epoch: int,
    options: dict[str, Any],
    callbacks: list[keras.callbacks.Callback] | tuple = (),
) -> keras.callbacks.History | None:
    """Fits `phase` from `initial_epoch`, then ends it (`Run.fit`).

    Prints what trains, and drops the history's rows from `initial_epoch` on
    (those of an epoch a kill interrupted).

    Args:
        run: The run.
        phase: The phase, compiled.
        train_data: The training batches.
        initial_epoch: The epoch it starts from (`start_epoch`).
        options: Keyword arguments of `fit()`, but the callbacks.
        callbacks: The script's callbacks.

    Raises:
        RunStopped: If SIGTERM or Ctrl-C stopped it (saved).
        DivergedError: If the loss or the weights stopped being finite.
    """
    print(trainable_summary(run.model))
    drop_epochs_from(files.join(run.write_dir, "history.csv"), initial_epoch + 1)
    trained = run.trained_model
    with (
        without_retracing_warnings(),
        fitting_in(run.strategy, trained),
        averages_kept(trained),
        stop_requests(enabled=run.is_single_process) as stop,
    ):
        progress = EpochEnd(run, phase, stop)
        # NaN check first; the run's own bookkeeping last, once the epoch is over.
        options["callbacks"] = [
            keras.callbacks.TerminateOnNaN(),
            *([AveragedValidation()] if uses_averages(trained) else []),
            *_tensorboard(run.write_dir),
            *callbacks,
            progress,
        ]
        try:
            history = _fit_epochs(
                run, phase, train_data, initial_epoch, progress, options
            )
        except Stopped as stopped:
            raise RunStopped(str(stopped), stop.exit_code) from None
    _end_phase(run, phase, progress, initial_epoch)
    return history


def _fit_epochs(
    run: "Run",
    phase: "Phase",
    train_data: tf.data.Dataset,
    initial_epoch: int,
    progress: "EpochEnd",
    options: dict[str, Any],
) -> keras.callbacks.History | None:
    """Fits the rest of an epoch a stop interrupted, then the phase's epochs."""
    epochs = run.epoch_range(phase)[1]
    checkpoint = run.state.checkpoint
    if checkpoint and checkpoint["phase"] == phase.name and checkpoint.get("batch"):
        # A test step builds the metrics, whose state the checkpoint holds.
        batch = next(iter(train_data))
        run.trained_model.test_on_batch(batch[0], batch[1])
        progress.resume_inside(checkpoint)
        done = checkpoint["batch"]
        print(f"Epoch {initial_epoch + 1}/{epochs}, on from batch {done + 1}:")
        run.trained_model.fit(
            train_data.skip(done),
            initial_epoch=initial_epoch,
            epochs=initial_epoch + 1,
            **{**options, "callbacks": [*options["callbacks"], RestOfEpochBar(done)]},
        )
        initial_epoch += 1
    if not progress.goes_on or initial_epoch >= epochs:
        return None
    return run.trained_model.fit(
        train_data, initial_epoch=initial_epoch, epochs=epochs, **options
    )


def _end_phase(
    run: "Run", phase: "Phase", progress: "EpochEnd", initial_epoch: int
) -> None:
    """Ends a phase that trained: with its best weights if it stopped early,
    its averaged ones (with --ema) else; raises if it diverged."""
    if progress.diverged is not None:
        run.checkpoints.loaded = None  # the model holds the diverged weights
    run.checkpoints.save_best()
    if progress.diverged is not None:
        raise DivergedError(_diverged_message(run, phase, progress.diverged))
    if progress.stopped_early:
        run.checkpoints.load_best()
    else:  # the phase ends with the averaged weights (with --ema)
        for variable, average in averaged_variables(run.trained_model):
            variable.assign(average)
    run.complete(phase, progress.last_epoch or initial_epoch)


def _diverged_message(run: "Run", phase: "Phase", epoch: int) -> str:
    checkpoint = run.state.checkpoint
    kept = (
        f"the run resumes from epoch {checkpoint['epoch']}"
        if checkpoint
        else "the run starts again from epoch 1"
    )
    intact = " and best.keras is intact" if run.state.best else ""
    return (
        f"the loss or the weights became NaN or infinite in epoch {epoch + 1} "
        f"(phase {phase.name!r}, learning rate {phase.learning_rate:g}); "
        f"that epoch was not saved{intact}. "
        f"Rerun with a lower learning rate: {kept}"
    )


def improves(monitor: str, value: float, best: float) -> bool:
    """Whether `value` beats `best`: lower for losses and errors, else higher."""
    lower_is_better = "loss" in monitor or "error" in monitor
    return value < best if lower_is_better else value > best


def without_retracing_warnings() -> contextlib.AbstractContextManager:
    """Hides TensorFlow's warning that a train step was traced again.

    Each phase compiles anew (a change of `trainable` only takes effect then),
    so Keras traces its train step once per phase, and TensorFlow warns about
    retracing from the fifth on; here the retracing is by design.
    """
    return quiet_logger("tensorflow", containing="triggered tf.function retracing")


def _tensorboard(output_dir: str) -> list[keras.callbacks.Callback]:
    """TensorBoard's scalars in `output_dir/logs` (or where Vertex AI asks),
    when the package is installed; not the model's graph, which each `fit()`
    would write again (half a second each) and `model.summary()` shows better."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        return []
    folder = tensorboard_folder(output_dir)
    return [keras.callbacks.TensorBoard(log_dir=folder, write_graph=False)]


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
        if not finite or not has_finite_weights(self.model):
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
        new_best: Best | None = None
        if improved:  # its weights: the checkpoint's, once saved
            new_best = Best(
                value=float(value), epoch=epoch + 1, phase=self.phase.name, weights=""
            )
        if self._saves(epoch, improved):
            run.checkpoints.save(self.phase.name, epoch + 1, best=new_best)
        else:
            run.checkpoints.skip()

    def _saves(self, epoch: int, improved: bool) -> bool:
        """Whether this epoch's end saves a checkpoint: the best epoch, a phase's
        last, a stop, and the others while saving takes a small share of the
        time (`Checkpoints.due`); every epoch in a multi-worker run."""
        run = self.run
        return (
            improved
            or bool(self.stop)
            or epoch + 1 >= self.params.get("epochs", epoch + 1)
            or run.state.wait >= run.patience
            or not run.is_single_process
            or run.checkpoints.due
        )

    def _stop_early(self, epoch: int) -> None:
        best = self.run.state.best
        assert best is not None  # a phase only stalls behind a best epoch
        print(
            f"Phase {self.phase.name!r} stops early after epoch {epoch + 1} of "
            f"{self.params.get('epochs', epoch + 1)}: {self.run.monitor} has not "
            f"beaten the run's best ({best['value']:.4f}, epoch {best['epoch']}) "
            f"for {self.run.patience} epochs (--patience); on from that epoch."
        )
        self.stopped_early = True
        self.model.stop_training = True


class RestOfEpochBar(keras.callbacks.ProgbarLogger):
    """Keras's progress bar for the rest of an epoch that a stop interrupted.

    `fit()` over the batches left counts them from 1 under an `Epoch n/n`
    header; this bar leaves the header out (the run prints its own line) and
    counts on from the batches done, out of the whole epoch's.

    Args:
        done: The batches of the epoch trained before the stop.
    """

    def __init__(self, done: int) -> None:
        super().__init__()
        self.done = done

    def set_params(self, params):
        super().set_params(params)
        self.epochs = 1  # no "Epoch n/n" header
        if self.target is not None:
            self.target += self.done

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch + self.done, logs)
