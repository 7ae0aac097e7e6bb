"""Create a base model with the script's `--weights`, and save a model safely."""

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from kerastl.runtime.errors import ScriptError, WeightsError


def create_base_model(
    constructor: Callable[..., keras.Model], *, weights: str, **kwargs
) -> keras.Model:
    """Calls a `keras.applications` constructor with a script's `--weights` value.

    Args:
        constructor: For example `keras.applications.EfficientNetV2B0`.
        weights: `"imagenet"` (downloaded once into ~/.keras/models, then read
            from there), `"none"` (random initialization), or the path of a
            `.weights.h5` file saved with `save_weights()` from the same
            constructor with the same arguments.
        **kwargs: Passed to the constructor (`include_top`, `input_shape`...).

    Raises:
        WeightsError: If the weights cannot be downloaded, found or loaded.
        ScriptError: If Keras refuses the arguments (an input size too small).
    """
    name = getattr(constructor, "__name__", "the backbone")
    if weights not in ("imagenet", "none") and not Path(weights).is_file():
        raise WeightsError(
            f"weights file {weights} does not exist (--weights takes imagenet, none or a file)"
        )
    try:
        model = constructor(
            weights="imagenet" if weights == "imagenet" else None, **kwargs
        )
    except ValueError as error:
        raise ScriptError(f"{name}: {_first_line(error)}") from None
    except Exception as error:
        if "URL fetch failure" not in str(error):
            raise
        raise WeightsError(
            f"could not download the ImageNet weights of {name} ({_first_line(error)}); "
            "pass --weights PATH to a local .weights.h5 file, or --weights none"
        ) from None
    if weights not in ("imagenet", "none"):
        # A file that does not fit makes Keras warn once per layer, then raise.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                model.load_weights(weights)
            except (ValueError, OSError, KeyError) as error:
                raise WeightsError(
                    f"{weights} does not fit {name} with these settings: {_first_line(error)}"
                ) from None
        for warning in caught:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return model


def save_model_checked(
    model: keras.Model, path: str | os.PathLike, sample: np.ndarray
) -> keras.Model:
    """Saves `model` as a `.keras` file, reloads it and checks one prediction.

    The file is written under a temporary name first, so an interrupted save
    never leaves a half-written model at `path`.

    Returns:
        The reloaded model.

    Raises:
        ScriptError: If the reloaded model predicts differently.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".partial.keras")
    model.save(partial)
    os.replace(partial, path)
    reloaded = keras.saving.load_model(path)
    expected = model.predict(sample, verbose=0)
    actual = reloaded.predict(sample, verbose=0)
    if not np.allclose(expected, actual, atol=1e-5):
        raise ScriptError(
            f"{path} does not reproduce the model's predictions after reloading"
        )
    return reloaded


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
