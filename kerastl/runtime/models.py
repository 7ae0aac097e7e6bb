"""The weights of a base model, and saving a model safely."""

import contextlib
import json
import os
import traceback
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .errors import ScriptError, WeightsError
from .files import exists, replacing, sizes_and_times
from .keras_internals import reuse_saving_skipsets
from .lora import lora_layers
from .trainable import flat_layers
from .weights_digest import arrays_hash


@contextlib.contextmanager
def loading_weights(name: str, weights: str | None) -> Iterator[None]:
    """Turns the ways a `keras.applications` constructor fails into one line.

    Wrap the constructor call in it:
    `with loading_weights("ResNet50", weights): base = keras.applications.ResNet50(...)`.

    Args:
        name: The constructor's name, for the messages.
        weights: The `weights` argument: `"imagenet"` (downloaded once into
            ~/.keras/models, then read from there), None (random
            initialization), or the path of a `.weights.h5` file saved with
            `save_weights()` from the same constructor with the same arguments.

    Raises:
        WeightsError: If the weights cannot be downloaded or do not fit.
        ScriptError: If Keras refuses the arguments (an input size too small).
    """
    # A file that does not fit makes Keras warn once per layer, then raise; the
    # traceback, unfiltered for a moment, tells a loading error from a bad argument.
    filtering = keras.config.is_traceback_filtering_enabled()
    keras.config.disable_traceback_filtering()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except Exception as error:
            frames = traceback.extract_tb(error.__traceback__)
            if any(frame.name == "load_weights" for frame in frames):
                raise WeightsError(
                    f"{weights} does not fit {name} with these settings "
                    f"({_loading_problem(error)}); give a file saved with "
                    f"save_weights() from {name} built the same way"
                ) from None
            if isinstance(error, ValueError):
                raise ScriptError(f"{name}: {_first_line(error)}") from None
            if "URL fetch failure" not in str(error):
                raise
            raise WeightsError(
                f"could not download the ImageNet weights of {name} "
                f"({_first_line(error)}); pass --weights PATH to a local "
                ".weights.h5 file, or --weights none"
            ) from None
        finally:
            if filtering:
                keras.config.enable_traceback_filtering()
    for warning in caught:
        warnings.warn_explicit(
            warning.message, warning.category, warning.filename, warning.lineno
        )


def has_finite_weights(model: keras.Model, *, trained_only: bool = False) -> bool:
    """Whether every weight of `model` is a finite number (no NaN, no infinity).

    With `trained_only`, only the weights training changes are read: the
    trainable ones, and the others of each innermost layer that trains
    (BatchNormalization's moving statistics). A frozen base stays as loaded,
    and reading it is most of the cost (0.1 s for EfficientNetV2B0).
    """
    weights = _trained_weights(model) if trained_only else model.weights
    return all(bool(np.isfinite(weight.numpy()).all()) for weight in weights)


def _trained_weights(model: keras.Model) -> list[keras.Variable]:
    return list(model.trainable_weights) + [
        weight
        for layer in flat_layers(model)
        if layer.trainable
        for weight in layer.non_trainable_weights
    ]


def save_model_atomic(model: keras.Model, path: str | os.PathLike) -> str:
    """Saves `model` as a `.keras` file through a temporary name and a rename.

    Raises:
        ScriptError: If a weight is NaN or infinite: such a model is never saved.
    """
    path = os.fspath(path)
    if not has_finite_weights(model):
        raise ScriptError(f"not saving {path}: the model has NaN or infinite weights")
    reuse_saving_skipsets()
    with _saving(model, path, keras.saving.serialize_keras_object(model)):
        pass
    return path


def save_model_checked(
    model: keras.Model, path: str | os.PathLike, sample: np.ndarray
) -> None:
    """Saves `model` as a `.keras` file, reloaded and checked unless Keras
    vouches for it.

    A model whose saved configuration names Keras's own objects alone (no
    `Lambda`, no function or layer of your own) and holds no LoRA adapters
    reloads as it was saved: Keras rebuilds it from that configuration and
    its weights. Any other model is reloaded from a temporary file and both
    are called on the first 8 images of `sample`; they must agree (a layer
    whose `get_config` forgets an argument, a `Lambda` that safe mode
    refuses). The file replaces `path` only then, so a failed check or an
    interrupted save never leaves a bad model behind.

    Raises:
        ScriptError: If the model has non-finite weights, or it does not
            reload or predicts differently once reloaded.
    """
    path = os.fspath(path)
    if not has_finite_weights(model):
        raise ScriptError(f"not saving {path}: the model has NaN or infinite weights")
    reuse_saving_skipsets()
    config = keras.saving.serialize_keras_object(model)
    with _saving(model, path, config) as partial:
        if not lora_layers(model) and _names_keras_objects_only(config):
            return
        try:
            reloaded = keras.saving.load_model(partial, compile=False)
        except Exception as error:  # Keras raises several kinds
            raise ScriptError(
                f"{path} was not saved: it does not reload ({_first_line(error)})"
            ) from error
        expected = keras.ops.convert_to_numpy(model(sample[:8], training=False))
        actual = keras.ops.convert_to_numpy(reloaded(sample[:8], training=False))
        if not np.allclose(expected, actual, atol=1e-5):
            raise ScriptError(
                f"{path} was not saved: the reloaded model predicts differently"
            )


#: The last `.keras` file each model was saved to: its path, its size and
#: time, and a hash of what it saved (`_saved_state`).
_LAST_SAVES: "weakref.WeakKeyDictionary[keras.Model, tuple[str, tuple[int, int], str]]"
_LAST_SAVES = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def _saving(model: keras.Model, path: str, config: dict) -> Iterator[str]:
    """`replacing(path)`, its temporary file holding `model` saved: a copy of
    the model's last `.keras` file if that saved the same configuration,
    weights and optimizer state (`best.keras`, when a run's last epoch was its
    best), else written by `model.save`."""
    state = _saved_state(model, config)
    last = _LAST_SAVES.get(model)
    with replacing(path) as partial:
        if last is not None and last[2] == state and _is_as_written(*last[:2]):
            tf.io.gfile.copy(last[0], partial, overwrite=True)
        else:
            model.save(partial)
        yield partial
    _LAST_SAVES[model] = (path, sizes_and_times([path])[0], state)


def _saved_state(model: keras.Model, config: dict) -> str:
    """A hash of what `model.save` writes: configuration, weights, optimizer state."""
    optimizer = getattr(model, "optimizer", None)
    variables = [*model.variables, *getattr(optimizer, "variables", [])]
    return arrays_hash(
        map(keras.ops.convert_to_numpy, variables),
        prefix=json.dumps(config, sort_keys=True, default=str).encode(),
    )


def _is_as_written(path: str, size_and_time: tuple[int, int]) -> bool:
    return exists(path) and sizes_and_times([path])[0] == size_and_time


#: Objects whose class is Keras's own but which run code of your own.
_USER_CODE = {"Lambda", "__lambda__", "function"}
#: Values Keras's saving writes without a module: tensors, arrays, slices...
_KERAS_VALUES = {
    "__bytes__",
    "__ellipsis__",
    "__keras_tensor__",
    "__numpy__",
    "__slice__",
    "__tensor__",
    "__typespec__",
}


def _names_keras_objects_only(config: dict) -> bool:
    """Whether a model's configuration, as `save()` writes it, names Keras's
    own objects alone."""
    stack: list[Any] = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            name = item.get("class_name")
            if (
                name is not None
                and name not in _KERAS_VALUES
                and (
                    str(item.get("module")).split(".")[0] != "keras"
                    or name in _USER_CODE
                )
            ):
                return False
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return True


def _loading_problem(error: BaseException) -> str:
    """Keras's reason, without the per-layer example it appends after a colon."""
    return _first_line(error).split(" Example error message")[0].rstrip(":. ")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
