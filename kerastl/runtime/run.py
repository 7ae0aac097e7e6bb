"""A resumable training run: its phases, the best model of the whole run, its state.

A run is a list of phases (the head on the frozen base, then each fine-tuning
stage), each one `fit()` continuing the epoch count of the last. Its state
(`run_state.RunState`) keeps what Keras's `ModelCheckpoint` and
`EarlyStopping` forget with each `fit()`: the phases completed, the run's best
epoch, the patience, and what resuming depends on. `checkpoints` reads and
writes it and the weights files, `fitting` trains one phase, `lr_finder` runs
the range test in a phase's place, `run_start` makes a new run's state.
docs/runs.md tells what a kill loses and what a rerun may change.
"""

import os
from typing import Any

import keras
import tensorflow as tf

from . import files
from .averaging import uses_averages
from .checkpoints import Checkpoints
from .continuation import continue_run
from .distribute import check_same_run, is_chief, is_default, worker_folder
from .fitting import fit_phase, start_epoch
from .local_copy import compile_like, local_copy
from .lr_finder import range_test_of
from .models import save_model_checked
from .quiet import progress_verbosity
from .run_start import (
    Phase,
    as_record,
    check_phases,
    delete_run,
    new_state,
)
from .run_state import read_state


class Run:
    """A training run in `output_dir` that survives kills, edits and reruns.

    Args:
        output_dir: The run's output folder.
        model: The model the run saves and evaluates (its layers are
            fingerprinted).
        phases: All phases of the run, in order.
        trained_model: The model `fit()` trains and checkpoints, when it is not
            `model` itself but shares the layers that train with it: the head
            alone, trained on cached features of the frozen base.
        settings: The script's settings (its `Settings`, or a dict): recorded
            for `run.json`, and named when a rerun of a finished run changes
            one that trains (`training_settings`).
        depends_on: Other values resuming depends on (image size, batch size,
            class names...), compared with the saved run's.
        monitor: The metric that picks the best epoch and stops a phase early.
        patience: Epochs of a phase without beating the run's best before the
            phase stops and the model goes back to the run's best weights.
        restart: Delete the run saved in `output_dir` and start over.
        find_lr: The name of a phase: instead of training it, `fit` runs the
            learning-rate range test from the weights it would start with
            (`lr_finder.range_test_of`) and raises `RangeTestDone`. Nothing
            is trained, saved or deleted (not even with `restart`).

    Attributes:
        strategy: The tf.distribute strategy the model was created in.
        is_chief: Whether this process writes `output_dir`.
        write_dir: The folder this process writes: `output_dir`, or for the
            other workers of a multi-worker run a temporary folder.
        state: The run's saved state (`run_state.RunState`).
        checkpoints: Reads and writes the state, checkpoints and `best.keras`.

    Raises:
        RunMismatchError: If `output_dir` holds a run that this one cannot
            continue; the message names the difference and the ways out.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        model: keras.Model,
        phases: list[Phase],
        *,
        trained_model: keras.Model | None = None,
        settings: Any = None,
        depends_on: dict | None = None,
        monitor: str = "val_loss",
        patience: int = 5,
        restart: bool = False,
        find_lr: str | None = None,
    ) -> None:
        check_phases(phases, find_lr)
        self.find_lr = find_lr
        self.output_dir = os.fspath(output_dir)
        self.model = model
        self.trained_model = model if trained_model is None else trained_model
        self.phases = phases
        self.monitor = monitor
        self.patience = patience
        self.strategy = model.distribute_strategy
        self.is_chief = is_chief(self.strategy)
        self.write_dir = worker_folder(self.output_dir, self.strategy)
        restart = restart and find_lr is None  # the range test changes nothing
        if restart and self.is_chief:
            delete_run(self.output_dir)
        self.settings = as_record(settings)
        new = new_state(model, self.trained_model, phases, settings, depends_on)
        # Every worker reads the chief's state; with --restart, none does.
        saved = None if restart else read_state(self.output_dir)
        check_same_run(self.strategy, saved, self.output_dir)
        self.state = (
            new
            if saved is None
            else continue_run(saved, new, phases, where=self.output_dir)
        )
        self.checkpoints = Checkpoints(
            self.output_dir, self.write_dir, self.state, model, self.trained_model
        )
        self._trained = False  # whether this process trained (model.keras is stale)

    @property
    def best(self) -> dict | None:
        """The best epoch of the run: its `value`, `epoch` and `phase`, or None."""
        best = self.state.best
        if best is None:
            return None
        return {key: best[key] for key in ("value", "epoch", "phase")}

    def fit(
        self,
        phase: Phase,
        train_data: tf.data.Dataset,
        *,
        validation_data: tf.data.Dataset | None = None,
        callbacks: list[keras.callbacks.Callback] | tuple = (),
        class_weight: dict[int, float] | None = None,
        verbose: str | int | None = None,
    ) -> keras.callbacks.History | None:
        """Trains `phase` unless it finished in an earlier run, saving every epoch.

        Compile the model for `phase` first: this restores the run's latest
        checkpoint (with the optimizer state if it was saved during `phase`),
        prints what will train, and fits from the epoch after the last saved
        one (from the batch after it, if the run stopped inside an epoch). A
        phase that goes `patience` epochs without beating the run's best stops
        and goes back to the best weights of the run.

        Returns:
            The `History` of this `fit()`, or None if the phase was done.

        Raises:
            RunStopped: SIGTERM or Ctrl-C stopped it after the batch in
                progress, saved (`stops`); its `exit_code` is 143 or 130.
            RangeTestDone: With `find_lr`, once its phase's range test ran.
            DivergedError: If the loss or the weights stop being finite. That
                epoch reaches no file: the history, the checkpoint and the
                state stay at the last finite epoch, and `best.keras` is
                written (if it was not yet) from the best finite epoch's
                checkpoint before the error is raised.
        """
        if self.trained_model is not self.model:
            # Saved and evaluated like the model trained whole: compiled alike.
            compile_like(self.model, self.trained_model)
        if self.find_lr is not None:
            range_test_of(self, phase, train_data)  # raises at its phase
            return None
        self.restore(phase)
        trained = self.trained_model
        if uses_averages(trained):  # its averages exist from now on
            with self.strategy.scope():
                trained.optimizer.build(trained.trainable_variables)
        self.checkpoints.save_best()  # a kill may have left best.keras behind
        initial_epoch = start_epoch(self, phase)
        if initial_epoch is None:
            return None
        self._trained = True
        options = {
            "validation_data": validation_data,
            # A tf.data dataset shuffles itself; Keras would ignore (and warn about) True.
            "shuffle": False,
            "class_weight": class_weight,
            "verbose": progress_verbosity() if verbose is None else verbose,
        }
        return fit_phase(self, phase, train_data, initial_epoch, options, callbacks)

    def restore(self, phase: Phase) -> None:
        """Loads the run's latest weights into the model (with the optimizer
        state if they were saved while `phase` trained), unless it holds them."""
        with self.strategy.scope():
            self.checkpoints.restore(None if self.is_complete(phase) else phase.name)

    def finish(self, validation_data: tf.data.Dataset) -> None:
        """Saves the final model as `model.keras` and ends the run.

        The final model is saved by `save_model_checked` (a model with layers
        of your own, once its reloaded copy predicts the same on a batch of
        `validation_data`), unless this process trained nothing and
        `model.keras` holds it already; `best.keras` is written if a kill left
        it behind. The resume checkpoint is then dropped: `model.keras`
        replaces it. `choose_model` then picks the file to ship.

        Under a tf.distribute strategy, the model is first replaced by a copy
        outside the strategy (`self.model`), which evaluates, reports and
        exports on one device. The other workers of a multi-worker run stop
        after saving their `model.keras` and delete their temporary folder.
        """
        model_path = files.join(self.write_dir, "model.keras")
        self.checkpoints.save_best()  # with the trained model, before any copy
        if not is_default(self.strategy):
            self.model = local_copy(self.model, files.join(self.write_dir, "resume"))
        if self._trained or not files.exists(model_path):
            sample = next(iter(validation_data))[0]
            save_model_checked(self.model, model_path, sample)
        if not self.is_chief:
            files.delete(self.write_dir)
            return
        last = len(self.phases) - 1
        self.checkpoints.finish(self.phases[last].name, self.end_epoch(last))

    def complete(self, phase: Phase, end_epoch: int) -> None:
        """Ends `phase` after `end_epoch` epochs of the run, saved."""
        self.checkpoints.complete(phase.name, end_epoch)

    def is_complete(self, phase: Phase) -> bool:
        """Whether `phase` ended, in this process or an earlier one."""
        return self.phases.index(phase) < len(self.state.completed)

    def end_epoch(self, index: int) -> int:
        """Epochs in all after the phase at `index` (or before any, for -1)."""
        completed = self.state.completed
        return completed[index]["end_epoch"] if 0 <= index < len(completed) else 0

    def epoch_range(self, phase: Phase) -> tuple[int, int]:
        """The epochs of the run before `phase` goes on, and after it ends."""
        index = self.phases.index(phase)
        start = self.end_epoch(index - 1)
        checkpoint = self.state.checkpoint
        if checkpoint and checkpoint["phase"] == phase.name:
            start = max(start, checkpoint["epoch"])
        return start, max(start, self.end_epoch(index - 1) + phase.epochs)

    @property
    def is_single_process(self) -> bool:
        """Whether the run is one process (one device, or mirrored on one machine).

        Only such a run stops inside an epoch on SIGTERM or Ctrl-C: the workers
        of a multi-worker run would wait for each other; they resume from the
        last epoch.
        """
        return not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
