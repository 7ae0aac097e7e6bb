"""Weights files: read back from saved `.keras` files, named, deleted; and the
random states that weights files leave out."""

import re

import keras
import numpy as np

from . import files
from .averaging import averaged_variables, swap_averages
from .keras_internals import reuse_saving_skipsets
from .lora_saving import unmerged_saving
from .run_state import Checkpoint


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


def variable_values(variables: list) -> list:
    """The values of `variables` as JSON lists (for `state.json`)."""
    return [np.asarray(variable.numpy()).tolist() for variable in variables]


def checkpoint_name(phases_done: int, phase: str, epoch: int, batch: int = 0) -> str:
    """The file name of a checkpoint after `epoch` (and `batch` batches of the
    next one) of `phase`, the run's phase number `phases_done`."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", phase)[:60]
    name = f"checkpoint-{phases_done}-{slug}-{epoch:04d}"
    return name + (f"-batch-{batch}.weights.h5" if batch else ".weights.h5")


def checkpoint_record(
    phase: str, epoch: int, weights: str, model: keras.Model, batch: int = 0
) -> Checkpoint:
    """What `state.json` says of a checkpoint of `model` saved in `weights`:
    with `batch`, also the running metrics of the epoch it stopped inside."""
    checkpoint: Checkpoint = {
        "phase": phase,
        "epoch": epoch,
        "weights": weights,
        "random_state": variable_values(random_states(model)),
    }
    if batch:
        checkpoint["batch"] = batch
        checkpoint["metrics"] = variable_values(model.metrics_variables)
    return checkpoint


def delete_checkpoints(folder: str, *, keep: set[str]) -> None:
    """Deletes the checkpoint files in `folder` other than those named in `keep`."""
    if not files.is_dir(folder):
        return
    for name in files.list_dir(folder):
        if name.endswith(".weights.h5") and name not in keep:
            files.delete(files.join(folder, name))


def load_checkpoint(model: keras.Model, path: str) -> None:
    """Loads a checkpoint's weights and optimizer state into `model`."""
    model.optimizer.build(model.trainable_variables)
    with unmerged_saving(model):
        model.load_weights(path)
    # A checkpoint holds the averaged weights in the model's place.
    swap_averages(averaged_variables(model))


def load_weights_only(model: keras.Model, path: str) -> None:
    """Loads a checkpoint's weights into `model`, not its optimizer's state."""
    with unmerged_saving(model):
        model.load_weights(path, objects_to_skip=[model.optimizer])


def set_random_states(model: keras.Model, values: list) -> None:
    """Puts back the states of `random_states(model)` a checkpoint recorded
    (none if their number changed)."""
    states = random_states(model)
    if len(values) == len(states):
        for variable, value in zip(states, values):
            variable.assign(value)
