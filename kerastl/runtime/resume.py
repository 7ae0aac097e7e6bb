"""Training phases, and resuming a run that was killed in any phase.

A run is a list of phases (the head on the frozen base, then each fine-tuning
stage), each one `fit()` call continuing the epoch count of the last. Inside a
phase, `BackupAndRestore` saves every epoch. When a phase ends, `RunState`
records it and keeps the weights it ended with, so running the same command
again skips the finished phases, re-applies the next phase's trainability,
recompiles, reloads the weights and continues at the right epoch.
"""

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import keras

from kerastl.runtime.errors import ScriptError


@dataclass(frozen=True)
class Phase:
    """One `fit()` of a run.

    Attributes:
        name: Unique name, also used for its files.
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
    """The phases a run in `output_dir` has finished, kept in `output_dir/resume`.

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
        self._completed: list[dict] = []
        if self._state_path.exists():
            self._completed = json.loads(self._state_path.read_text())["completed"]
        done = [entry["phase"] for entry in self._completed]
        if done != names[: len(done)]:
            raise ScriptError(
                f"{output_dir} holds a run with the phases {done}, not {names}; "
                "choose another --output-dir or delete it to start over"
            )
        # A new process starts from fresh weights; those of the last finished
        # phase are loaded by `restore`.
        self._weights_current = not self._completed

    @property
    def next_epoch(self) -> int:
        """The epoch the next unfinished phase starts at."""
        return self._completed[-1]["end_epoch"] if self._completed else 0

    def is_complete(self, phase: Phase) -> bool:
        """Whether `phase` finished in this or an earlier run."""
        return self.phases.index(phase) < len(self._completed)

    def backup_dir(self, phase: Phase) -> Path:
        """Folder of `phase`'s per-epoch backups (for `BackupAndRestore`)."""
        return self.folder / f"backup-{self.phases.index(phase)}-{_slug(phase.name)}"

    def restore(self, model: keras.Model) -> None:
        """Loads the weights the run's last finished phase ended with.

        It loads them once per process, and nothing in a fresh run. Call it
        after compiling: the optimizer of the next phase starts afresh.
        """
        if self._weights_current:
            return
        weights = self.folder / self._completed[-1]["weights"]
        skip = [model.optimizer] if model.optimizer is not None else None
        model.load_weights(weights, objects_to_skip=skip)
        self._weights_current = True

    def complete(
        self, phase: Phase, model: keras.Model, history: keras.callbacks.History
    ) -> None:
        """Records that `phase` has ended, with the weights it ended with."""
        end_epoch = history.epoch[-1] + 1 if history.epoch else history.params["epochs"]
        self.folder.mkdir(parents=True, exist_ok=True)
        weights = f"after-{self.phases.index(phase)}-{_slug(phase.name)}.weights.h5"
        partial = self.folder / ("partial-" + weights)
        model.save_weights(partial)
        os.replace(partial, self.folder / weights)
        previous = [entry["weights"] for entry in self._completed]
        self._completed.append(
            {"phase": phase.name, "end_epoch": end_epoch, "weights": weights}
        )
        _write_json(self._state_path, {"completed": self._completed})
        shutil.rmtree(self.backup_dir(phase), ignore_errors=True)
        for name in previous:
            (self.folder / name).unlink(missing_ok=True)
        self._weights_current = True


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60]


def _write_json(path: Path, data: dict) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, path)
