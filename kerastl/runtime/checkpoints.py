"""A run's saved state and checkpoints: `resume/state.json`, its weights files.

`resume/state.json` records the run (`RunState`); beside it lie the
checkpoint of the latest epoch (weights and optimizer state) and, until
`best.keras` holds it, that of the best epoch of the run. Every file is
written under a temporary name, then renamed (`files.replacing`,
`write_json`), and a checkpoint is deleted only once the state no longer
names it: a kill at any moment leaves the previous checkpoint and state valid.
"""

import dataclasses
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, TypedDict

import keras
import numpy as np

from . import files
from .averaging import (
    averaged_variables,
    averaged_weights,
    swap_averages,
    uses_averages,
)
from .jsonfile import read_json, write_json
from .keras_internals import reuse_saving_skipsets
from .lora import lora_layers
from .lora_saving import ADAPTERS_FILE, save_adapters, unmerged_saving
from .models import save_model_atomic

STATE_FORMAT = 2  # the layout of state.json; another one is refused
# The share of a run's time its epochs' checkpoints may take, at most: an
# epoch's end that is not the best saves once the last save is this many
# times its own length ago (every epoch, unless epochs are shorter than that).
SAVING_SHARE = 0.05
BEST_FILE = "best.keras"


class CompletedPhase(TypedDict):
    """A phase that ended, and the epochs of the run after it."""

    phase: str
    end_epoch: int


class Best(TypedDict):
    """The best epoch of the run, and the file holding its weights."""

    value: float
    epoch: int
    phase: str
    weights: str  # a checkpoint under resume/, or best.keras


class Checkpoint(TypedDict, total=False):
    """The run's latest weights: after an epoch, inside one, or the final model."""

    phase: str
    epoch: int  # epochs the weights trained in all
    weights: str  # relative to the output folder
    random_state: list  # Dropout's seed generators: save_weights leaves them out
    batch: int  # stopped after this many batches of epoch `epoch + 1`
    metrics: list  # that epoch's running metrics


@dataclass
class RunState:
    """What `resume/state.json` holds (the same keys, written as they are).

    Attributes:
        format: `STATE_FORMAT` of the code that wrote it.
        model: The model's `fingerprint`.
        settings: The values resuming depends on (image size, classes...).
        phases: The run's phases, as dicts.
        training_settings: The settings the run trained with.
        completed: The phases that ended, in order.
        checkpoint: The latest weights, or None before the first epoch.
        best: The best epoch of the run, or None.
        wait: Epochs of the current phase without beating `best`.
        seconds: Wall time of each phase that trained.
    """

    format: int
    model: dict
    settings: dict
    phases: list[dict]
    training_settings: dict = field(default_factory=dict)
    completed: list[CompletedPhase] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    best: Best | None = None
    wait: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> "RunState":
        """The state of a `state.json` (keys it does not know are left out)."""
        names = {item.name for item in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in record.items() if key in names})

    def to_json(self) -> dict[str, Any]:
        """The contents of `state.json`."""
        return dataclasses.asdict(self)


def read_state(output_dir: str) -> dict | None:
    """The JSON of the state saved in `output_dir`, or None if there is none."""
    return read_json(files.join(output_dir, "resume", "state.json"))


class Checkpoints:
    """Writes and reads back a run's state, its checkpoints and `best.keras`.

    Args:
        output_dir: The run's output folder, which every process reads.
        write_dir: The folder this process writes: `output_dir`, or for the
            other workers of a multi-worker run a temporary folder.
        state: The run's state, saved with each checkpoint.
        model: The model `best.keras` saves.
        trained_model: The model whose weights and optimizer the checkpoints
            hold (`model` itself, or its head alone).

    Attributes:
        loaded: The checkpoint the trained model holds, and whether with its
            optimizer state; None if unknown.

    The best epoch's weights saved by this process are also kept in memory
    (as Keras's `EarlyStopping(restore_best_weights=True)` keeps them), so
    going back to them, or writing `best.keras`, reads no file.
    """

    def __init__(
        self,
        output_dir: str,
        write_dir: str,
        state: RunState,
        model: keras.Model,
        trained_model: keras.Model,
    ) -> None:
        self.output_dir = output_dir
        self.write_dir = write_dir
        self.state = state
        self.model = model
        self.trained_model = trained_model
        self.loaded: tuple[str, bool] | None = None
        self._best_weights: tuple[str, list[np.ndarray]] | None = None  # file, values
        self._saved_at = -math.inf  # time.monotonic() at the end of the last save
        self._save_seconds = 0.0  # how long it took
        reuse_saving_skipsets()

    @property
    def due(self) -> bool:
        """Whether an epoch's end should save, keeping saves under `SAVING_SHARE`
        of the time (the best epoch, a stop and a phase's end save regardless)."""
        return time.monotonic() - self._saved_at >= self._save_seconds / SAVING_SHARE

    def skip(self) -> None:
        """Records an epoch's end that did not save: the model moved on from
        the checkpoint it held (the state on disk still names that one)."""
        self.loaded = None

    def restore(self, with_optimizer_of: str | None) -> None:
        """Loads the run's latest weights into the model, unless it holds them.

        Args:
            with_optimizer_of: The phase about to train: if the checkpoint was
                saved during it, its optimizer state is loaded too.
        """
        checkpoint = self.state.checkpoint
        if checkpoint is None:
            return
        name = checkpoint["weights"]
        with_optimizer = checkpoint["phase"] == with_optimizer_of and name.endswith(
            ".weights.h5"
        )
        if self.loaded in ((name, True), (name, with_optimizer)):
            return
        path = self._path(name)
        if name.endswith(".keras"):  # a finished run: the final model
            load_weights_into(self.model, path)
        elif with_optimizer:
            trained = self.trained_model
            trained.optimizer.build(trained.trainable_variables)
            with unmerged_saving(trained):
                trained.load_weights(path)
            # A checkpoint holds the averaged weights in the model's place.
            swap_averages(averaged_variables(trained))
        else:
            self._load_trained_weights(path)
        saved_states = checkpoint.get("random_state", [])
        states = random_states(self.trained_model)
        if len(saved_states) == len(states):
            for variable, value in zip(states, saved_states):
                variable.assign(value)
        self.loaded = (name, with_optimizer)

    def save(
        self, phase: str, epoch: int, *, best: Best | None = None, batch: int = 0
    ) -> None:
        """Saves the trained model's weights and optimizer state, then the state.

        With `best`, this epoch is the best of the run: its checkpoint stays
        until `save_best` has written `best.keras` from it. With `batch`, the
        run stopped after that many batches of epoch `epoch + 1`: the
        checkpoint also holds the epoch's running metrics.
        """
        started = time.monotonic()
        reuse_saving_skipsets()  # again if a clear_session() dropped them
        folder = files.join(self.write_dir, "resume")
        name = f"checkpoint-{len(self.state.completed)}-{_slug(phase)}-{epoch:04d}"
        name += f"-batch-{batch}.weights.h5" if batch else ".weights.h5"
        with (
            files.replacing(files.join(folder, name)) as partial,
            averaged_weights(self.trained_model),  # with --ema: what ships
            unmerged_saving(self.trained_model),  # LoRA's adapters kept apart
        ):
            self.trained_model.save_weights(partial)
            if best is not None:
                self._best_weights = (
                    f"resume/{name}",
                    self.trained_model.get_weights(),
                )
        checkpoint: Checkpoint = {
            "phase": phase,
            "epoch": epoch,
            "weights": f"resume/{name}",
            "random_state": _values(random_states(self.trained_model)),
        }
        if batch:
            checkpoint["batch"] = batch
            checkpoint["metrics"] = _values(self.trained_model.metrics_variables)
        self.state.checkpoint = checkpoint
        self.loaded = (checkpoint["weights"], True)
        if best is not None:
            self.state.best = {**best, "weights": f"resume/{name}"}
        self.write_state()
        kept = {name}
        if self.state.best:
            kept.add(files.base_name(self.state.best["weights"]))
        _delete_checkpoints(folder, keep=kept)
        self._saved_at = time.monotonic()
        self._save_seconds = self._saved_at - started

    def save_best(self) -> None:
        """Writes `best.keras` from the best epoch's checkpoint, unless it holds it."""
        best = self.state.best
        if best is None or best.get("weights", BEST_FILE) == BEST_FILE:
            return
        # The model holds the trained weights, the checkpoint the averaged ones.
        holds_best = (
            self.loaded is not None
            and self.loaded[0] == best["weights"]
            and not uses_averages(self.trained_model)
        )
        current = None if holds_best else self.trained_model.get_weights()
        if not holds_best:
            self._put_best_weights(best["weights"])
        save_model_atomic(self.model, files.join(self.write_dir, BEST_FILE))
        if lora_layers(self.model):  # best.keras merges them: its adapters apart
            save_adapters(self.model, files.join(self.write_dir, ADAPTERS_FILE))
        if current is not None:
            self.trained_model.set_weights(current)
        kept = best["weights"]
        best["weights"] = BEST_FILE
        if self._best_weights is not None and self._best_weights[0] == kept:
            self._best_weights = (BEST_FILE, self._best_weights[1])
        self.write_state()
        checkpoint = self.state.checkpoint
        if checkpoint is None or checkpoint["weights"] != kept:
            files.delete(files.join(self.write_dir, kept))

    def load_best(self) -> None:
        """Puts the best epoch's weights of the run back into the model."""
        self.save_best()
        self._put_best_weights(BEST_FILE)
        self.loaded = None

    def finish(self, phase: str, epoch: int) -> None:
        """Records `model.keras` as the run's last weights; drops the checkpoints."""
        self.state.checkpoint = {
            "phase": phase,
            "epoch": epoch,
            "weights": "model.keras",
        }
        self.write_state()
        _delete_checkpoints(files.join(self.write_dir, "resume"), keep=set())

    def write_state(self) -> None:
        """Writes `resume/state.json` (a temporary name, then renamed)."""
        path = files.join(self.write_dir, "resume", "state.json")
        write_json(path, self.state.to_json())

    def _put_best_weights(self, name: str) -> None:
        """Puts the best epoch's weights, held in the run's file `name`, into
        the model: from memory if this process saved them, else from the file."""
        if self._best_weights is not None and self._best_weights[0] == name:
            self.trained_model.set_weights(self._best_weights[1])
        elif name == BEST_FILE:
            load_weights_into(self.model, self._path(name))
        else:
            self._load_trained_weights(self._path(name))

    def _load_trained_weights(self, path: str) -> None:
        """Loads a checkpoint's weights into the trained model, not its optimizer."""
        with unmerged_saving(self.trained_model):
            self.trained_model.load_weights(
                path, objects_to_skip=[self.trained_model.optimizer]
            )

    def _path(self, name: str) -> str:
        """A file of the run: this process's own copy, else the output folder's."""
        own = files.join(self.write_dir, name)
        return own if files.exists(own) else files.join(self.output_dir, name)


def load_weights_of(path: str) -> list[np.ndarray]:
    """The weights of a saved `.keras` model, without its optimizer."""
    reuse_saving_skipsets()
    return keras.saving.load_model(path, compile=False).get_weights()


def load_weights_into(model: keras.Model, path: str) -> None:
    """Puts the weights of the saved `.keras` model at `path` into `model`.

    A file of the same model holds the same weights, in order. One saved with
    LoRA adapters that its layers' configs do not record (a KerasHub
    backbone's) holds the merged kernels alone: they go in, in order, beside
    the adapters, which start over at zero, so the model computes what the
    file does. (Not by path: an unnamed weight, such as SigLIP's pooling
    probe, is named `variable_N` by the order of its creation in a process.)
    """
    reuse_saving_skipsets()
    saved = keras.saving.load_model(path, compile=False)
    if len(saved.weights) == len(model.weights):
        model.set_weights(saved.get_weights())
        return
    adapters = ("lora_kernel_a", "lora_kernel_b")
    kept = [weight for weight in model.weights if not weight.path.endswith(adapters)]
    if [w.shape for w in kept] != [w.shape for w in saved.weights]:
        raise ValueError(f"{path} holds other weights than the model's")
    for weight, value in zip(kept, saved.weights):
        weight.assign(value)
    for weight in model.weights:
        if weight.path.endswith("lora_kernel_b"):  # B = 0: the adapter adds 0
            weight.assign(keras.ops.zeros(weight.shape, weight.dtype))


def random_states(model: keras.Model) -> list:
    """The states of the model's random layers (Dropout's), not among its weights."""
    weights = {id(weight) for weight in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


def _values(variables: list) -> list:
    return [np.asarray(variable.numpy()).tolist() for variable in variables]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60]


def _delete_checkpoints(folder: str, *, keep: set[str]) -> None:
    """Deletes the checkpoint files in `folder` other than those named in `keep`."""
    if not files.is_dir(folder):
        return
    for name in files.list_dir(folder):
        if name.endswith(".weights.h5") and name not in keep:
            files.delete(files.join(folder, name))
