"""Training phases, and resuming a run that was killed at any point.

A run is a list of phases (the head on the frozen base, then each fine-tuning
stage), each one `fit()` continuing the epoch count of the last. After every
epoch, and when a phase ends, the run saves a checkpoint (weights and optimizer
state) in `output_dir/resume`, writing each file under a temporary name and
renaming it, so a kill never leaves a half-written checkpoint. Running the same
command again skips the finished phases, re-applies the current phase's
trainability, recompiles, restores the checkpoint and continues at the epoch
after the last one saved.

Keras's own `BackupAndRestore` is not used: a kill during its first save
leaves a corrupt file it cannot resume from, and the epoch it restores stays on
the model, so the next phase's `fit()` would start from it.
"""

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import keras

from kerastl.runtime.errors import ScriptError


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


class RunState:
    """What a run in `output_dir` has done, kept in `output_dir/resume/state.json`.

    Args:
        output_dir: The run's output folder.
        phases: All phases of the run, in order.

    Raises:
        ScriptError: If the folder holds a run with other phases.
    """

    def __init__(self, output_dir: str | os.PathLike, phases: list[Phase]) -> None:
        names = [phase.name for phase in phases]
        if len(set(names)) != len(names):
            raise ScriptError(f"phase names must be unique: {names}")
        self.phases = phases
        self.folder = Path(output_dir) / "resume"
        self._state_path = self.folder / "state.json"
        state: dict = {"completed": [], "checkpoint": None}
        if self._state_path.exists():
            state = json.loads(self._state_path.read_text())
        self._completed: list[dict] = state["completed"]
        self._checkpoint: dict | None = state["checkpoint"]
        done = [entry["phase"] for entry in self._completed]
        if done != names[: len(done)]:
            raise ScriptError(
                f"{output_dir} holds a run with the phases {done}, not {names}; "
                "choose another --output-dir or delete it to start over"
            )
        # The checkpoint the model holds, and whether with its optimizer state.
        self._loaded: tuple[str, bool] | None = None

    def is_complete(self, phase: Phase) -> bool:
        """Whether `phase` finished in this or an earlier run."""
        return self.phases.index(phase) < len(self._completed)

    def epoch_range(self, phase: Phase) -> tuple[int, int]:
        """`(initial_epoch, epochs)` for `phase`'s `fit()`, after any resumed epochs."""
        start = self._completed[-1]["end_epoch"] if self._completed else 0
        checkpoint = self._checkpoint
        if (
            checkpoint
            and checkpoint["phase"] == phase.name
            and not self.is_complete(phase)
        ):
            return checkpoint["epoch"], start + phase.epochs
        return start, start + phase.epochs

    def restore(self, model: keras.Model, phase: Phase) -> None:
        """Loads the run's latest checkpoint into `model`, unless it holds it already.

        Call it after compiling for `phase`. A checkpoint saved during `phase`
        brings back the optimizer state too; one from an earlier phase only the
        weights, since the new phase's optimizer starts afresh.
        """
        if self._checkpoint is None:
            return
        name = self._checkpoint["weights"]
        with_optimizer = self._checkpoint_of(phase) and not self.is_complete(phase)
        if self._loaded in ((name, True), (name, with_optimizer)):
            return  # the model holds these weights (and this optimizer state) already
        if with_optimizer:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(self.folder / name)
        else:
            model.load_weights(self.folder / name, objects_to_skip=[model.optimizer])
        self._loaded = (name, with_optimizer)

    def checkpoint(self, phase: Phase) -> keras.callbacks.Callback:
        """A callback that saves a checkpoint of `phase` after every epoch.

        Put it after the callbacks that write the epoch's history, so that an
        epoch counts as done only once everything about it is on disk.
        """
        return _EpochCheckpoint(self, phase)

    def complete(
        self, phase: Phase, model: keras.Model, history: keras.callbacks.History
    ) -> None:
        """Records that `phase` has ended, with the weights it ended with."""
        end_epoch = history.epoch[-1] + 1 if history.epoch else history.params["epochs"]
        self._completed.append({"phase": phase.name, "end_epoch": end_epoch})
        self.save(model, phase, end_epoch)

    def save(self, model: keras.Model, phase: Phase, epoch: int) -> None:
        """Saves `model` as the checkpoint of `phase` after `epoch` epochs in all."""
        self.folder.mkdir(parents=True, exist_ok=True)
        index = len(self._completed)
        name = f"checkpoint-{index}-{_slug(phase.name)}-{epoch:04d}.weights.h5"
        partial = self.folder / ("partial-" + name)
        model.save_weights(partial)
        os.replace(partial, self.folder / name)
        self._checkpoint = {"phase": phase.name, "epoch": epoch, "weights": name}
        self._loaded = (name, True)
        _write_json(
            self._state_path,
            {"completed": self._completed, "checkpoint": self._checkpoint},
        )
        for old in self.folder.glob("*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def _checkpoint_of(self, phase: Phase) -> bool:
        return self._checkpoint is not None and self._checkpoint["phase"] == phase.name


class _EpochCheckpoint(keras.callbacks.Callback):
    def __init__(self, run: RunState, phase: Phase) -> None:
        super().__init__()
        self.run = run
        self.phase = phase

    def on_epoch_end(self, epoch, logs=None):
        self.run.save(self.model, self.phase, epoch + 1)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60]


def _write_json(path: Path, data: dict) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, path)
