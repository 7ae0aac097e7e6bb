"""A resumable training run: its phases, the best model of the whole run, its state.

A run is a list of phases (the head on the frozen base, then each fine-tuning
stage), each one `fit()` continuing the epoch count of the last. After every
epoch the run writes, each file under a temporary name then renamed: the row of
`history.csv`, and a checkpoint (weights and optimizer state) with
`state.json`. The checkpoint of the best epoch of the whole run is kept until
`best.keras` holds it: `best.keras` is written when a phase ends (and before
a failed run stops), not after every epoch, which would cost a whole model's
serialization per improving epoch; the best weights are on disk all the same.
A kill at any point loses at most the epoch in progress, SIGTERM or Ctrl-C
not even that (the checkpoint is saved after the batch in progress): the same
command skips the finished phases, re-applies the current phase's
trainability, recompiles, restores the checkpoint and continues where it
stopped, with the same batches and random state as if it never had.

The best value and the early-stopping patience live in the run's state, not in
a callback, so they survive phases and resumes (Keras's `ModelCheckpoint` and
`EarlyStopping` forget them with each `fit()`). An epoch whose loss or weights
are not finite is never saved. The state also records what resuming depends
on: the model's layers, the settings, and the phases that have started; a rerun
that differs stops before training and names the difference.

Under a tf.distribute strategy (the one the model was created in) the run
restores and compiles in the strategy's scope. Under MultiWorkerMirroredStrategy
every worker runs the same epochs: all read the saved state and checkpoint from
the output folder (which all of them must see), only the chief writes there,
and the others write their copies into a temporary folder, deleted at the end.
"""

import contextlib
import dataclasses
import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from . import files
from .averaging import (
    AveragedValidation,
    averaged_variables,
    averaged_weights,
    averages_kept,
    swap_averages,
    uses_averages,
)
from .continuation import STATE_FORMAT, continue_run, fingerprint
from .distribute import (
    check_same_run,
    fitting_in,
    is_chief,
    is_default,
    worker_folder,
)
from .errors import DivergedError, ScriptError
from .export import EXPORT_FOLDER
from .history import drop_epochs_from, record_epoch
from .jsonfile import read_json, write_json
from .lr_finder import lr_range_test, plot_lr_find, suggested_rate
from .models import (
    has_finite_weights,
    save_model_atomic,
    save_model_checked,
)
from .platforms import tensorboard_folder
from .quiet import progress_verbosity, quiet_logger
from .report import REPORT_FILES
from .settings import settings_record, training_settings
from .stops import StopRequest, stop_requests
from .unfreeze import trainable_summary

# What a run writes into its output folder; --restart deletes exactly these
# (the image and feature caches stay: they are keyed by what they hold).
RUN_FILES = (
    ("resume", "history.csv", "best.keras", "model.keras", "logs", "lr_find.png")
    + REPORT_FILES
    + (EXPORT_FOLDER,)
)


@dataclass(frozen=True)
class Phase:
    """One `fit()` of a run.

    Attributes:
        name: Unique name of the phase.
        epochs: Epochs of this phase.
        learning_rate: Peak learning rate of this phase.
        unfreeze: What of the base trains: None (nothing), a number of top
            blocks, `"all"`, or the name of the first layer to train.
    """

    name: str
    epochs: int
    learning_rate: float
    unfreeze: int | str | None = None


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
            learning-rate range test from the weights it would start with,
            prints the suggested rate, draws `lr_find.png` and ends the
            process (status 0). The phases before it must have trained;
            nothing is trained, saved or deleted (not even with `restart`).

    Attributes:
        strategy: The tf.distribute strategy the model was created in.
        is_chief: Whether this process writes `output_dir`.
        write_dir: The folder this process writes: `output_dir`, or for the
            other workers of a multi-worker run a temporary folder.

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
        names = [phase.name for phase in phases]
        if len(set(names)) != len(names):
            raise ScriptError(f"phase names must be unique: {names}")
        if find_lr is not None and find_lr not in names:
            raise ScriptError(
                f"--find-lr {find_lr}: the run has no such phase; its phases are "
                + ", ".join(names)
            )
        self.find_lr = find_lr
        restart = restart and find_lr is None  # the range test changes nothing
        self.output_dir = os.fspath(output_dir)
        self.model = model
        self.trained_model = model if trained_model is None else trained_model
        self.phases = phases
        self.monitor = monitor
        self.patience = patience
        self.strategy = model.distribute_strategy
        self.is_chief = is_chief(self.strategy)
        self.write_dir = worker_folder(self.output_dir, self.strategy)
        self._state_path = files.join(self.write_dir, "resume", "state.json")
        if restart and self.is_chief:
            deleted = [
                name
                for name in RUN_FILES
                if files.delete(files.join(self.output_dir, name))
            ]
            if deleted:
                print(f"Restarting: deleted {', '.join(deleted)} in {self.output_dir}")
        self.settings = _as_record(settings)
        depends_on = dict(depends_on or {})
        if self.trained_model is not model:  # its checkpoints hold other weights
            depends_on["trained_model"] = self.trained_model.name
        new = {
            "format": STATE_FORMAT,
            "model": fingerprint(model),
            "settings": json.loads(json.dumps(depends_on)),
            "training_settings": _training_record(settings),
            "phases": [asdict(phase) for phase in phases],
            "completed": [],
            "checkpoint": None,
            "best": None,
            "wait": 0,
        }
        # Every worker reads the chief's state; with --restart, none does.
        saved = (
            None
            if restart
            else read_json(files.join(self.output_dir, "resume", "state.json"))
        )
        check_same_run(self.strategy, saved, self.output_dir)
        self.state = (
            new
            if saved is None
            else continue_run(saved, new, phases, where=self.output_dir)
        )
        # The checkpoint the model holds, and whether with its optimizer state.
        self._loaded: tuple[str, bool] | None = None
        self._trained = False  # whether this process trained (model.keras is stale)

    @property
    def best(self) -> dict | None:
        """The best epoch of the run: its `value`, `epoch` and `phase`, or None."""
        best = self.state["best"]
        return (
            None
            if best is None
            else {key: best[key] for key in ("value", "epoch", "phase")}
        )

    def fit(
        self,
        phase: Phase,
        train_data,
        *,
        validation_data=None,
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
        and goes back to the best weights of the run. SIGTERM or Ctrl-C stops
        it after the batch in progress, saved (`stops`): it exits with 143 or
        130.

        Returns:
            The `History` of this `fit()`, or None if the phase was done.

        Raises:
            DivergedError: If the loss or the weights stop being finite. That
                epoch reaches no file: the history, the checkpoint and the
                state stay at the last finite epoch, and `best.keras` is
                written (if it was not yet) from the best finite epoch's
                checkpoint before the error is raised.
        """
        if self.trained_model is not self.model:
            # Saved and evaluated like the model trained whole: compiled alike.
            _compile_like(self.model, self.trained_model)
        if self.find_lr is not None:
            self._find_lr(phase, train_data)  # ends the process at its phase
            return None
        with self.strategy.scope():
            self._restore(phase)
            if uses_averages(self.trained_model):  # its averages exist from now on
                self.trained_model.optimizer.build(
                    self.trained_model.trainable_variables
                )
        self._save_best()  # a kill may have left best.keras behind
        if self._is_complete(phase):
            print(f"Phase {phase.name!r} finished in an earlier run.")
            return None
        initial_epoch, epochs = self._epoch_range(phase)
        if initial_epoch >= epochs:
            print(f"Phase {phase.name!r} has no epochs to train.")
            self._complete(phase, initial_epoch)
            return None
        first_epoch = self._end_epoch(self.phases.index(phase) - 1) + 1
        is_resumed = initial_epoch >= first_epoch
        if is_resumed and self.state["wait"] >= self.patience:
            # Killed after the phase stopped early and before it ended: end it now.
            print(
                f"Phase {phase.name!r} stopped early after epoch {initial_epoch} "
                f"in an earlier run ({self.monitor} had not beaten the run's best "
                f"for {self.state['wait']} epochs); on from the best epoch."
            )
            self._load_best()
            self._complete(phase, initial_epoch)
            return None
        resumed = f", resumed after epoch {initial_epoch}" * is_resumed
        print(
            f"\nPhase {phase.name!r}, epochs {initial_epoch + 1} to {epochs}{resumed}:"
        )
        self._trained = True
        print(trainable_summary(self.model))
        drop_epochs_from(files.join(self.write_dir, "history.csv"), initial_epoch + 1)
        progress = _EpochEnd(self, phase, getattr(train_data, "epoch", None))
        options = {
            "validation_data": validation_data,
            # A tf.data dataset shuffles itself; Keras would ignore (and warn about) True.
            "shuffle": False,
            # NaN check first; the run's own bookkeeping last, once the epoch is over.
            "callbacks": [
                keras.callbacks.TerminateOnNaN(),
                *([AveragedValidation()] if uses_averages(self.trained_model) else []),
                *_tensorboard(self.write_dir),
                *callbacks,
                progress,
            ],
            "class_weight": class_weight,
            "verbose": progress_verbosity() if verbose is None else verbose,
        }
        history = None
        with (
            without_retracing_warnings(),
            fitting_in(self.strategy, self.trained_model),
            averages_kept(self.trained_model),
            stop_requests(enabled=self.is_single_process) as stop,
        ):
            progress.stop = stop
            try:
                initial_epoch = self._fit_rest_of_epoch(
                    phase, train_data, initial_epoch, progress, options
                )
                if progress.goes_on and initial_epoch < epochs:
                    history = self.trained_model.fit(
                        train_data,
                        initial_epoch=initial_epoch,
                        epochs=epochs,
                        **options,
                    )
            except _Stopped:
                print(f"\n{progress.stopped_line}", flush=True)
                raise SystemExit(stop.exit_code) from None
        if progress.diverged is not None:
            self._loaded = None  # the model holds the diverged weights
        self._save_best()
        if progress.diverged is not None:
            raise DivergedError(self._diverged_message(phase, progress.diverged))
        if progress.stopped_early:
            self._load_best()
        else:  # the phase ends with the averaged weights (with --ema)
            for variable, average in averaged_variables(self.trained_model):
                variable.assign(average)
        self._complete(phase, progress.last_epoch or initial_epoch)
        return history

    def _find_lr(self, phase: Phase, train_data) -> None:
        """Skips a phase before the one `find_lr` names; for that one, runs the
        range test and ends the process."""
        if phase.name != self.find_lr:
            if not self._is_complete(phase):
                raise ScriptError(
                    f"--find-lr {self.find_lr} starts from the weights the phases "
                    f"before it end with, and {phase.name!r} has not trained in "
                    f"{self.output_dir}: run it first, without --find-lr"
                )
            return
        with self.strategy.scope():
            self._restore(phase)
        print(f"Learning-rate range test of phase {phase.name!r}:")
        print(trainable_summary(self.model))
        rates, losses = lr_range_test(self.trained_model, train_data)
        suggested = suggested_rate(rates, losses)
        picture = plot_lr_find(
            files.join(self.write_dir, "lr_find.png"), rates, losses, suggested
        )
        print(
            f"{len(rates)} steps from {rates[0]:.1g} to {rates[-1]:.2g}"
            + (f"; drawn in {picture}" if picture else "")
        )
        print(f"suggested learning rate: {suggested:.2g}")
        raise SystemExit(0)

    def finish(self, validation_data) -> None:
        """Saves the final model as `model.keras` and ends the run.

        The final model is saved once its reloaded copy predicts the same on a
        batch of `validation_data` (unless this process trained nothing and
        `model.keras` holds it already); `best.keras` is written if a kill left
        it behind. The resume checkpoint is then dropped: `model.keras`
        replaces it. `choose_model` then picks the file to ship.

        Under a tf.distribute strategy, the model is first replaced by a copy
        outside the strategy (`self.model`), which evaluates, reports and
        exports on one device. The other workers of a multi-worker run stop
        after saving their `model.keras` and delete their temporary folder.
        """
        model_path = files.join(self.write_dir, "model.keras")
        self._save_best()  # with the trained model, before any local copy
        if not is_default(self.strategy):
            self.model = _local_copy(self.model, files.join(self.write_dir, "resume"))
        if self._trained or not files.exists(model_path):
            sample = next(iter(validation_data))[0]
            save_model_checked(self.model, model_path, sample)
        if not self.is_chief:
            files.delete(self.write_dir)
            return
        self.state["checkpoint"] = {
            "phase": self.phases[-1].name,
            "epoch": self._end_epoch(len(self.phases) - 1),
            "weights": "model.keras",
        }
        self._write_state()
        _delete_checkpoints(files.join(self.write_dir, "resume"), keep=set())

    def _diverged_message(self, phase: Phase, epoch: int) -> str:
        checkpoint = self.state["checkpoint"]
        kept = (
            f"the run resumes from epoch {checkpoint['epoch']}"
            if checkpoint
            else "the run starts again from epoch 1"
        )
        intact = " and best.keras is intact" if self.state["best"] else ""
        return (
            f"the loss or the weights became NaN or infinite in epoch {epoch + 1} "
            f"(phase {phase.name!r}, learning rate {phase.learning_rate:g}); "
            f"that epoch was not saved{intact}. "
            f"Rerun with a lower learning rate: {kept}"
        )

    # --- the saved state ---------------------------------------------------

    def _is_complete(self, phase: Phase) -> bool:
        return self.phases.index(phase) < len(self.state["completed"])

    def _end_epoch(self, index: int) -> int:
        """Epochs in all after the phase at `index` (or before any, for -1)."""
        completed = self.state["completed"]
        return completed[index]["end_epoch"] if 0 <= index < len(completed) else 0

    def _epoch_range(self, phase: Phase) -> tuple[int, int]:
        index = self.phases.index(phase)
        start = self._end_epoch(index - 1)
        checkpoint = self.state["checkpoint"]
        if checkpoint and checkpoint["phase"] == phase.name:
            start = max(start, checkpoint["epoch"])
        return start, max(start, self._end_epoch(index - 1) + phase.epochs)

    @property
    def is_single_process(self) -> bool:
        """Whether the run is one process (one device, or mirrored on one machine).

        Only such a run stops inside an epoch on SIGTERM or Ctrl-C: the workers
        of a multi-worker run would wait for each other; they resume from the
        last epoch.
        """
        return not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)

    def _fit_rest_of_epoch(
        self, phase: Phase, train_data, epoch: int, progress: "_EpochEnd", options
    ) -> int:
        """Trains the batches left of epoch `epoch + 1` if the run stopped inside it.

        Returns:
            The epoch (0-based) that the rest of the phase starts from.
        """
        checkpoint = self.state["checkpoint"]
        if (
            checkpoint is None
            or checkpoint["phase"] != phase.name
            or not checkpoint.get("batch")
        ):
            return epoch
        # A test step builds the metrics, whose state the checkpoint holds.
        batch = next(iter(train_data))
        self.trained_model.test_on_batch(batch[0], batch[1])
        progress.resume_inside(checkpoint)
        self.trained_model.fit(
            train_data.skip(checkpoint["batch"]),
            initial_epoch=epoch,
            epochs=epoch + 1,
            **options,
        )
        return epoch + 1

    def _restore(self, phase: Phase) -> None:
        """Loads the run's latest weights into the model, unless it holds them."""
        checkpoint = self.state["checkpoint"]
        if checkpoint is None:
            return
        name = checkpoint["weights"]
        with_optimizer = (
            checkpoint["phase"] == phase.name
            and not self._is_complete(phase)
            and name.endswith(".weights.h5")
        )
        if self._loaded in ((name, True), (name, with_optimizer)):
            return
        path = self._path(name)
        if name.endswith(".keras"):  # a finished run: the final model
            self.model.set_weights(load_weights_of(path))
        elif with_optimizer:
            trained = self.trained_model
            trained.optimizer.build(trained.trainable_variables)
            trained.load_weights(path)
            # A checkpoint holds the averaged weights in the model's place.
            swap_averages(averaged_variables(trained))
        else:
            self._load_trained_weights(path)
        saved_states = checkpoint.get("random_state", [])
        states = _random_states(self.trained_model)
        if len(saved_states) == len(states):
            for variable, value in zip(states, saved_states):
                variable.assign(value)
        self._loaded = (name, with_optimizer)

    def _load_best(self) -> None:
        self._save_best()
        self.model.set_weights(load_weights_of(self._path("best.keras")))
        self._loaded = None

    def _save_best(self) -> None:
        """Writes `best.keras` from the best epoch's checkpoint, unless it holds it."""
        best = self.state["best"]
        if best is None or best.get("weights", "best.keras") == "best.keras":
            return
        # The model holds the trained weights, the checkpoint the averaged ones.
        holds_best = (
            self._loaded is not None
            and self._loaded[0] == best["weights"]
            and not uses_averages(self.trained_model)
        )
        current = None if holds_best else self.trained_model.get_weights()
        if not holds_best:
            self._load_trained_weights(self._path(best["weights"]))
        save_model_atomic(self.model, files.join(self.write_dir, "best.keras"))
        if current is not None:
            self.trained_model.set_weights(current)
        kept = best["weights"]
        best["weights"] = "best.keras"
        self._write_state()
        checkpoint = self.state["checkpoint"]
        if checkpoint is None or checkpoint["weights"] != kept:
            files.delete(files.join(self.write_dir, kept))

    def _load_trained_weights(self, path: str) -> None:
        """Loads a checkpoint's weights into the trained model, not its optimizer."""
        self.trained_model.load_weights(
            path, objects_to_skip=[self.trained_model.optimizer]
        )

    def _path(self, name: str) -> str:
        """A file of the run: this process's own copy, else the output folder's."""
        own = files.join(self.write_dir, name)
        return own if files.exists(own) else files.join(self.output_dir, name)

    def end_of_epoch(self, phase: Phase, epoch: int, logs: dict) -> None:
        """Records a finished, finite epoch: history, best model, checkpoint."""
        record_epoch(
            files.join(self.write_dir, "history.csv"), epoch + 1, phase.name, logs
        )
        value = logs.get(self.monitor)
        if value is None:
            raise ScriptError(
                f"the run monitors {self.monitor}, which fit() did not report "
                f"(it reported {', '.join(logs)})"
            )
        best = self.state["best"]
        improved = best is None or improves(self.monitor, value, best["value"])
        if improved:
            self.state["wait"] = 0
        else:
            self.state["wait"] += 1
        self._save_checkpoint(
            phase,
            epoch + 1,
            best=(
                {"value": float(value), "epoch": epoch + 1, "phase": phase.name}
                if improved
                else None
            ),
        )

    def _complete(self, phase: Phase, end_epoch: int) -> None:
        self.state["completed"].append({"phase": phase.name, "end_epoch": end_epoch})
        self.state["wait"] = 0
        self._save_checkpoint(phase, end_epoch)

    def _save_checkpoint(
        self, phase: Phase, epoch: int, *, best: dict | None = None, batch: int = 0
    ) -> None:
        """Saves the trained model's weights and optimizer state, then the state.

        With `best`, this epoch is the best of the run: its checkpoint stays
        until `_save_best` has written `best.keras` from it. With `batch`, the
        run stopped after that many batches of epoch `epoch + 1`: the
        checkpoint also holds the epoch's running metrics.
        """
        folder = files.join(self.write_dir, "resume")
        index = len(self.state["completed"])
        name = f"checkpoint-{index}-{_slug(phase.name)}-{epoch:04d}"
        name += f"-batch-{batch}.weights.h5" if batch else ".weights.h5"
        with (
            files.replacing(files.join(folder, name)) as partial,
            averaged_weights(self.trained_model),  # with --ema: what ships
        ):
            self.trained_model.save_weights(partial)
        self.state["checkpoint"] = {
            "phase": phase.name,
            "epoch": epoch,
            "weights": f"resume/{name}",
            # Dropout's random state: save_weights leaves it out.
            "random_state": [
                np.asarray(variable.numpy()).tolist()
                for variable in _random_states(self.trained_model)
            ],
        }
        if batch:
            self.state["checkpoint"]["batch"] = batch
            self.state["checkpoint"]["metrics"] = [
                np.asarray(variable.numpy()).tolist()
                for variable in self.trained_model.metrics_variables
            ]
        self._loaded = (self.state["checkpoint"]["weights"], True)
        if best is not None:
            self.state["best"] = {**best, "weights": f"resume/{name}"}
        self._write_state()
        kept = {name}
        if self.state["best"]:
            kept.add(files.base_name(self.state["best"]["weights"]))
        _delete_checkpoints(folder, keep=kept)

    def _write_state(self) -> None:
        write_json(self._state_path, self.state)


class _EpochEnd(keras.callbacks.Callback):
    """The run's bookkeeping after each epoch; stops a diverged or stalled phase."""

    def __init__(self, run: Run, phase: Phase, data_epoch=None) -> None:
        super().__init__()
        self.run = run
        self.phase = phase
        self.data_epoch = data_epoch  # the training batches' `epoch` variable
        self.diverged: int | None = None
        self.stopped_early = False
        self.last_epoch: int | None = None
        self.stop = StopRequest()
        self.stopped_line = ""
        self._started = time.monotonic()
        self._epoch = 0  # the epoch in progress (0-based)
        self._batches = 0  # its batches trained
        self._inside: dict | None = None

    @property
    def goes_on(self) -> bool:
        """Whether the phase trains on (it did not diverge or stop early)."""
        return self.diverged is None and not self.stopped_early

    def resume_inside(self, checkpoint: dict) -> None:
        """The next epoch starts after the checkpoint's batches, with its metrics."""
        self._inside = checkpoint
        epoch = checkpoint["epoch"] + 1
        print(f"Epoch {epoch}: on from batch {checkpoint['batch'] + 1}.")

    def on_epoch_begin(self, epoch, logs=None):
        if self.data_epoch is not None:  # its batches follow from seed and epoch
            self.data_epoch.assign(epoch)
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
        self.run._save_checkpoint(self.phase, self._epoch, batch=self._batches)
        self.stopped_line = (
            f"Stopped by {self.stop.name} after batch {self._batches} of epoch "
            f"{self._epoch + 1}, saved in {self.run.output_dir}; run the same "
            "command to go on from there."
        )
        raise _Stopped

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        values = [logs.get("loss"), logs.get(self.run.monitor)]
        finite = all(value is None or math.isfinite(value) for value in values)
        if not finite or not has_finite_weights(self.model):
            self.diverged = epoch
            self.model.stop_training = True
            return
        seconds = self.run.state.setdefault("seconds", {})
        seconds[self.phase.name] = round(
            seconds.get(self.phase.name, 0) + time.monotonic() - self._started, 3
        )
        self.run.end_of_epoch(self.phase, epoch, logs)
        self.last_epoch = epoch + 1
        if self.run.state["wait"] >= self.run.patience:
            best = self.run.state["best"]
            print(
                f"Phase {self.phase.name!r} stops early after epoch {epoch + 1} of "
                f"{self.params.get('epochs', epoch + 1)}: {self.run.monitor} has not "
                f"beaten the run's best ({best['value']:.4f}, epoch {best['epoch']}) "
                f"for {self.run.patience} epochs (--patience); on from that epoch."
            )
            self.stopped_early = True
            self.model.stop_training = True
        if self.stop:  # during validation or the epoch's checkpoint
            self.stopped_line = (
                f"Stopped by {self.stop.name} after epoch {epoch + 1}, saved in "
                f"{self.run.output_dir}; run the same command to go on from there."
            )
            raise _Stopped


class _Stopped(Exception):
    """Raised in `fit` once a stop request is saved."""


def _as_record(settings: Any) -> dict:
    """The settings as JSON data, from a `Settings` dataclass or a dict."""
    if settings is None:
        return {}
    if dataclasses.is_dataclass(settings):
        return settings_record(settings)
    return json.loads(json.dumps(dict(settings), default=str))


def _training_record(settings: Any) -> dict:
    if dataclasses.is_dataclass(settings):
        return training_settings(settings)
    return _as_record(settings)


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


def load_weights_of(path: str) -> list[np.ndarray]:
    """The weights of a saved `.keras` model, without its optimizer."""
    return keras.saving.load_model(path, compile=False).get_weights()


def _random_states(model: keras.Model) -> list:
    """The states of the model's random layers (Dropout's), not among its weights."""
    weights = {id(weight) for weight in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


def _local_copy(model: keras.Model, folder: str) -> keras.Model:
    """`model` saved and loaded back outside its tf.distribute strategy.

    Keras runs `predict_on_batch` on every replica of a strategy (each one
    predicting the whole batch), so evaluating and reporting use this copy,
    compiled with the same loss and metrics.
    """
    path = save_model_atomic(model, files.join(folder, "local-copy.keras"))
    try:
        local = keras.saving.load_model(path, compile=False)
    finally:
        files.delete(path)
    _compile_like(local, model, optimizer=False)
    return local


def _compile_like(
    model: keras.Model, source: keras.Model, *, optimizer: bool = True
) -> None:
    """Compiles `model` with the loss and metrics (and optimizer) of `source`."""
    config = dict(source.get_compile_config() or {})
    if not optimizer:
        config.pop("optimizer", None)
    model.compile_from_config(config)


def _tensorboard(output_dir: str) -> list[keras.callbacks.Callback]:
    """TensorBoard logs in `output_dir/logs` (or where Vertex AI asks), when the
    package is installed."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        return []
    return [keras.callbacks.TensorBoard(log_dir=tensorboard_folder(output_dir))]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60]


def _delete_checkpoints(folder: str, *, keep: set[str]) -> None:
    """Deletes the checkpoint files in `folder` other than those named in `keep`."""
    if not files.is_dir(folder):
        return
    for name in files.list_dir(folder):
        if name.endswith(".weights.h5") and name not in keep:
            files.delete(files.join(folder, name))
