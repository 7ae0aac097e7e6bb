"""`kerastl predict`'s model: a .keras file or an exported artifact, checked to fit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kerastl.predict_request import PredictUsageError, Request, model_kind


def load_model(request: Request) -> tuple[Callable[[Any], Any], int, Any]:
    """The model as a function of a batch, its image size, checked to fit, and
    the Keras model (None for an exported artifact)."""
    import numpy as np

    param = request.model_param
    model = None
    try:
        if model_kind(request.model) == "keras":
            import keras

            model = keras.saving.load_model(request.model, compile=False)
            shape = tuple(model.input_shape)
            run_model = model.predict_on_batch
        else:
            from kerastl.runtime.export import load_artifact

            run_model, shape = load_artifact(request.model)
    except Exception as error:  # noqa: BLE001 - any loader's refusal is the answer
        raise PredictUsageError(
            param, f"{request.model} cannot be loaded: {_first_line(error)}"
        ) from None
    if len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2] or not shape[1]:
        raise PredictUsageError(
            param,
            f"{request.model} takes inputs of shape {shape}, not square RGB images",
        )
    size = int(shape[1])
    outputs = np.asarray(run_model(np.zeros((1, size, size, 3), "float32"))).shape
    if outputs != (1, len(request.class_names)):
        raise PredictUsageError(
            param,
            f"{request.model} gives outputs of shape {outputs}; the run has "
            f"{len(request.class_names)} classes (labels.json)",
        )
    if request.tta:
        from kerastl.runtime.tta import with_tta

        return with_tta(run_model), size, model
    return (lambda images: np.asarray(run_model(images))), size, model


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
