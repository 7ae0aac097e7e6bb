"""Saving LoRA's adapters: merged into shipped models, apart in checkpoints.

Keras merges the adapters into the kernel whenever it saves a layer
(`save_own_variables`), and zeroes them when it loads one: `model.keras` and
`best.keras` load with plain `keras.models.load_model`. Checkpoints must keep
W, A and B apart, or a resumed run would go on from zeroed adapters:
`unmerged_saving` makes them. `save_adapters` writes what one task adds to a
shared base (the adapters and the new head), `load_adapters` reads it back, and
`merged_model` is the model without LoRA layers that exports carry.
"""

import contextlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator

import keras
import numpy as np

from . import files
from .lora import TRAINED_NAMES, lora_layers

ADAPTERS_FILE = "lora.weights.h5"  # in the output folder: the shipped model's


@contextlib.contextmanager
def unmerged_saving(model: keras.Model) -> Iterator[None]:
    """Within it, LoRA layers save and load W, A and B as they are (checkpoints).

    Keras's own `save_own_variables` merges A @ B into W and its
    `load_own_variables` zeroes A and B: right for a shipped model, wrong for
    a run that resumes, whose adapters and their optimizer state must go on.
    """
    layers = lora_layers(model)
    for layer in layers:
        object.__setattr__(layer, "save_own_variables", _raw_saver(layer))
        object.__setattr__(layer, "load_own_variables", _raw_loader(layer))
    try:
        yield
    finally:
        for layer in layers:
            object.__delattr__(layer, "save_own_variables")
            object.__delattr__(layer, "load_own_variables")


def _raw_saver(layer: keras.Layer):
    def save_own_variables(store) -> None:
        for index, weight in enumerate(layer.weights):
            store[str(index)] = weight

    return save_own_variables


def _raw_loader(layer: keras.Layer):
    def load_own_variables(store) -> None:
        for index, weight in enumerate(layer.weights):
            weight.assign(store[str(index)])

    return load_own_variables


def task_weights(model: keras.Model) -> dict:
    """What a task adds to a shared base: the adapters (with the biases of
    their layers, which train too) and the new head's weights.

    Keyed by each variable's path, unique in the model.
    """
    bases = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    head = [
        weight
        for layer in model.layers
        if not isinstance(layer, keras.Model)
        for weight in layer.weights
    ]
    adapters = [
        weight
        for base in bases
        for layer in lora_layers(base)
        for weight in layer.weights
        if weight.name in TRAINED_NAMES
    ]
    return {weight.path: weight for weight in [*adapters, *head]}


def holds_adapters(model: keras.Model) -> bool:
    """Whether the model's adapters are its own, not merged into the kernels.

    Weights loaded from a `.keras` file have their adapters merged and zeroed.
    """
    layers = lora_layers(model)
    return bool(layers) and any(np.any(layer.lora_kernel_a.numpy()) for layer in layers)


def save_adapters(model: keras.Model, path: str) -> str:
    """Writes `task_weights(model)` into the `.weights.h5` file `path`."""
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        for name, weight in task_weights(model).items():
            file[name] = np.asarray(weight.numpy())
    return files.write_bytes(path, buffer.getvalue())


def load_adapters(model: keras.Model, path: str) -> None:
    """Loads a task's adapters and head (`save_adapters`) into `model`.

    Build the model as its script does (its `build_model`, which adds the
    adapters), then load: the base's own weights stay those it was built with.

    Raises:
        ValueError: If the file lacks a weight of the model or shapes differ.
    """
    import h5py

    with h5py.File(io.BytesIO(files.read_bytes(path)), "r") as file:
        for name, weight in task_weights(model).items():
            if name not in file or file[name].shape != tuple(weight.shape):
                raise ValueError(f"{path} does not fit the model: {name}")
            weight.assign(file[name][()])


def merged_model(model: keras.Model) -> keras.Model:
    """`model` without LoRA layers, the adapters merged into the kernels.

    Keras's own saving merges them (`save_own_variables`); the copy's
    configuration leaves `lora_rank` out, so it loads as plain layers. A model
    without adapters is returned as it is.
    """
    if not lora_layers(model):
        return model
    with tempfile.TemporaryDirectory(prefix="kerastl-merge-") as folder:
        saved, merged = (os.path.join(folder, name) for name in ("a.keras", "b.keras"))
        model.save(saved)
        with zipfile.ZipFile(saved) as source, zipfile.ZipFile(merged, "w") as target:
            for item in source.infolist():
                data = source.read(item.filename)
                if item.filename == "config.json":
                    data = json.dumps(_without_lora(json.loads(data))).encode()
                target.writestr(item, data)
        return keras.saving.load_model(merged, compile=False)


def _without_lora(config):
    """A saved configuration with every layer's `lora_rank` and `lora_alpha` left out."""
    if isinstance(config, dict):
        return {
            key: _without_lora(value)
            for key, value in config.items()
            if key not in ("lora_rank", "lora_alpha")
        }
    if isinstance(config, list):
        return [_without_lora(value) for value in config]
    return config
