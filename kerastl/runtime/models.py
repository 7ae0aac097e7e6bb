"""The weights of a base model, and saving a model safely."""

import contextlib
import json
import os
import traceback
import warnings
from collections.abc import Iterator

import keras
import numpy as np

from .errors import ScriptError, WeightsError
from .files import replacing
from .keras_internals import reuse_saving_skipsets
from .lora import lora_layers


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


def has_finite_weights(model: keras.Model) -> bool:
    """Whether every weight of `model` is a finite number (no NaN, no infinity)."""
    return all(bool(np.isfinite(weight).all()) for weight in model.get_weights())


def save_model_atomic(model: keras.Model, path: str | os.PathLike) -> str:
    """Saves `model` as a `.keras` file through a temporary name and a rename.

    Raises:
        ScriptError: If a weight is NaN or infinite: such a model is never saved.
    """
    path = os.fspath(path)
    if not has_finite_weights(model):
        raise ScriptError(f"not saving {path}: the model has NaN or infinite weights")
    reuse_saving_skipsets()
    with replacing(path) as partial:
        model.save(partial)
    return path


def save_model_checked(
    model: keras.Model, path: str | os.PathLike, sample: np.ndarray
) -> keras.Model:
    """Saves `model` as a `.keras` file once its reloaded copy predicts the same.

    The model is written under a temporary name and reloaded; only then does
    it replace `path`, so a failed check or an interrupted save never leaves a
    bad model behind. A model made of Keras's own layers alone predicts as its
    configuration and weights say: the reloaded copy must have the same
    configuration and exactly the same weights (tracing or calling the model
    would cost more than the check). Any other model (a layer of your own) and
    its reloaded copy are called on the first 8 images of `sample` and must
    agree.

    Returns:
        The reloaded model.

    Raises:
        ScriptError: If the model has non-finite weights, or the reloaded
            model differs.
    """
    path = os.fspath(path)
    if not has_finite_weights(model):
        raise ScriptError(f"not saving {path}: the model has NaN or infinite weights")
    reuse_saving_skipsets()
    with replacing(path) as partial:
        model.save(partial)
        reloaded = keras.saving.load_model(partial, compile=False)
        if not _reloads_alike(model, reloaded, sample[:8]):
            raise ScriptError(
                f"{path} was not saved: the reloaded model predicts differently"
            )
    return reloaded


def _reloads_alike(model: keras.Model, reloaded: keras.Model, sample) -> bool:
    """Whether `reloaded` computes what `model` computes."""
    # Saving merges LoRA's adapters into the kernels: the same function, other weights.
    if not lora_layers(model) and all(
        _is_keras_own(layer) for layer in _every_layer(model)
    ):
        weights, reloaded_weights = model.get_weights(), reloaded.get_weights()
        return (
            len(weights) == len(reloaded_weights)
            and all(map(np.array_equal, weights, reloaded_weights))
            and _config_text(model) == _config_text(reloaded)
        )
    expected = keras.ops.convert_to_numpy(model(sample, training=False))
    actual = keras.ops.convert_to_numpy(reloaded(sample, training=False))
    return bool(np.allclose(expected, actual, atol=1e-5))


def _every_layer(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """`layer` and every layer inside it, at any depth."""
    yield layer
    for inner in getattr(layer, "layers", []):
        yield from _every_layer(inner)


def _is_keras_own(layer: keras.layers.Layer) -> bool:
    return type(layer).__module__.split(".")[0] == "keras"


def _config_text(model: keras.Model) -> str:
    """The model's configuration as `save()` writes it, without the compiling."""
    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)
    return json.dumps(config, sort_keys=True)


def _loading_problem(error: BaseException) -> str:
    """Keras's reason, without the per-layer example it appends after a colon."""
    return _first_line(error).split(" Example error message")[0].rstrip(":. ")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
