"""One phase of a run: where it starts, its `fit()`, its end.

`fit_phase` runs the phase's `fit()` (first the rest of an epoch a stop
interrupted, under `resumed_epoch_bar.RestOfEpochBar`) with
`epoch_end.EpochEnd` as its last callback, which records each epoch and stops
a phase that diverged or stalled, or on SIGTERM or Ctrl-C: `fit_phase` then
raises `RunStopped`.
"""

import contextlib
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
from .distribute import fitting_in
from .epoch_end import EpochEnd, Stopped
from .errors import DivergedError, RunStopped
from .history import drop_epochs_from
from .platforms import tensorboard_folder
from .quiet import quiet_logger
from .resumed_epoch_bar import RestOfEpochBar
from .stops import stop_requests
from .trainable import trainable_summary

if TYPE_CHECKING:
    from .run import Run
    from .run_start import Phase

# run.py imports these from here.


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
            f"for {run.state.wait} epochs); the model goes back to the best "
            "epoch's weights."
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
