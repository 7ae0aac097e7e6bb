"""A run's saved state and checkpoints: `resume/state.json`, its weights files.

`resume/state.json` records the run (`RunState`); beside it lie the latest
checkpoint (weights and optimizer state) and, until `best.keras` holds them,
the best epoch's weights, written with the next checkpoint. Each file is
written under a temporary name, then renamed, and deleted only once the state
no longer names it: a kill at any moment leaves the last checkpoint valid.
"""

import math
import time

import keras

from . import files
from .averaging import averaged_weights, uses_averages
from .held_weights import HELD, HeldWeights
from .jsonfile import write_json
from .keras_internals import reuse_saving_skipsets
from .lora import lora_layers
from .lora_saving import ADAPTERS_FILE, save_adapters, unmerged_saving
from .models import save_model_atomic
from .run_state import Best, Checkpoint, RunState
from .weights_files import (
    checkpoint_name,
    checkpoint_record,
    delete_checkpoints,
    load_checkpoint,
    load_weights_into,
    load_weights_only,
    set_random_states,
)

# The share of a run's time its epochs' checkpoints may take, at most: an
# epoch's end saves once the last save is this many times its own length ago
# (every epoch, unless epochs are shorter than that).
SAVING_SHARE = 0.05
BEST_FILE = "best.keras"


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

    The best epoch's weights trained by this process stay in memory
    (`HeldWeights`): going back to them or writing `best.keras` reads no file.
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
        self._best = HeldWeights(trained_model)
        self._saved_at = -math.inf  # time.monotonic() at the end of the last save
        self._save_seconds = 0.0  # how long it took
        reuse_saving_skipsets()

    @property
    def due(self) -> bool:
        """Whether an epoch's end should save, keeping saves under `SAVING_SHARE`
        of the time (a stop and a phase's end save regardless)."""
        return time.monotonic() - self._saved_at >= self._save_seconds / SAVING_SHARE

    def skip(self) -> None:
        """Records an epoch's end that did not save: the model moved on from
        the checkpoint it held, which the state on disk still names."""
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
            load_checkpoint(self.trained_model, path)
        else:
            load_weights_only(self.trained_model, path)
        set_random_states(self.trained_model, checkpoint.get("random_state", []))
        self.loaded = (name, with_optimizer)

    def hold_best(self, phase: str, epoch: int, value: float) -> None:
        """Makes the epoch just trained the run's best, in memory until the
        next checkpoint or `best.keras`."""
        with averaged_weights(self.trained_model):  # with --ema: what ships
            self._best.hold()
        self.state.best = Best(value=value, epoch=epoch, phase=phase, weights=HELD)

    def save(self, phase: str, epoch: int, *, batch: int = 0) -> None:
        """Saves the trained model's weights and optimizer state, then the state.

        With `batch`, the run stopped after that many batches of epoch
        `epoch + 1`: the checkpoint also holds the epoch's running metrics.
        """
        started = time.monotonic()
        reuse_saving_skipsets()  # again if a clear_session() dropped them
        folder = files.join(self.write_dir, "resume")
        name = checkpoint_name(len(self.state.completed), phase, epoch, batch)
        weights = f"resume/{name}"
        with (
            files.replacing(files.join(folder, name)) as partial,
            averaged_weights(self.trained_model),  # with --ema: what ships
            unmerged_saving(self.trained_model),  # LoRA's adapters kept apart
        ):
            self.trained_model.save_weights(partial)
        checkpoint = checkpoint_record(phase, epoch, weights, self.trained_model, batch)
        self.state.checkpoint = checkpoint
        self.loaded = (checkpoint["weights"], True)
        best = self.state.best
        if best and best["weights"] == HELD and not batch and best["epoch"] == epoch:
            self._best_held_in(weights)  # the best epoch's checkpoint
        self.write_state()
        kept = {name}
        if self.state.best:
            kept.add(files.base_name(self.state.best["weights"]))
        delete_checkpoints(folder, keep=kept)
        self._saved_at = time.monotonic()
        self._save_seconds = self._saved_at - started

    def complete(self, phase: str, end_epoch: int) -> None:
        """Records that `phase` ended after `end_epoch` epochs of the run, with
        the checkpoint of its end (saved now unless the model holds it)."""
        self.state.completed.append({"phase": phase, "end_epoch": end_epoch})
        self.state.wait = 0
        if self._holds_latest(phase, end_epoch):
            self.write_state()  # its weights are saved already
        else:
            self.save(phase, end_epoch)

    def _holds_latest(self, phase: str, end_epoch: int) -> bool:
        """Whether the trained model holds the latest checkpoint, of the end of
        `end_epoch` of `phase` (not after an early stop went back to the best
        epoch, nor with --ema, whose averages replace the weights then)."""
        checkpoint = self.state.checkpoint
        return (
            checkpoint is not None
            and checkpoint["phase"] == phase
            and checkpoint["epoch"] == end_epoch
            and "batch" not in checkpoint
            and self.loaded == (checkpoint["weights"], True)
            and not uses_averages(self.trained_model)
        )

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
        self._best_held_in(BEST_FILE)
        self.write_state()
        checkpoint = self.state.checkpoint
        if kept != HELD and (checkpoint is None or checkpoint["weights"] != kept):
            files.delete(files.join(self.write_dir, kept))

    def load_best(self) -> None:
        """Puts the best epoch's weights of the run back into the model."""
        self.save_best()
        self._put_best_weights(BEST_FILE)
        self.loaded = None

    def finish(self, phase: str, epoch: int) -> None:
        """Records `model.keras` as the run's last weights; drops the checkpoints."""
        self.state.checkpoint = Checkpoint(
            phase=phase, epoch=epoch, weights="model.keras"
        )
        self.write_state()
        delete_checkpoints(files.join(self.write_dir, "resume"), keep=set())

    def write_state(self) -> None:
        """Writes `resume/state.json` (a temporary name, then renamed), after
        the best epoch's weights if only memory held them."""
        best = self.state.best
        if best is not None and best["weights"] == HELD:  # to a file of its own
            count = len(self.state.completed)
            name = f"resume/best-{checkpoint_name(count, best['phase'], best['epoch'])}"
            self._best.write(files.join(self.write_dir, name))
            self._best_held_in(name)
        path = files.join(self.write_dir, "resume", "state.json")
        write_json(path, self.state.to_json())

    def _best_held_in(self, name: str) -> None:
        """Records that the file `name` holds the best epoch's weights."""
        assert self.state.best is not None
        self._best.written_to(name)
        self.state.best["weights"] = name

    def _put_best_weights(self, name: str) -> None:
        """Puts the best epoch's weights, held in the run's file `name`, into
        the model: from memory if this process trained them, else from the file."""
        if self._best.put_back(name):
            return
        if name == BEST_FILE:
            load_weights_into(self.model, self._path(name))
        else:
            load_weights_only(self.trained_model, self._path(name))

    def _path(self, name: str) -> str:
        """A file of the run: this process's own copy, else the output folder's."""
        own = files.join(self.write_dir, name)
        return own if files.exists(own) else files.join(self.output_dir, name)
