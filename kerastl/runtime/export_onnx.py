"""The ONNX export, at one pinned opset, checked with onnxruntime."""

import logging
import warnings

import keras
import numpy as np

from . import files
from .export_types import ExportFormat, Loaded
from .quiet import quiet_logger

#: The ONNX opset of every `.onnx` artifact: one that tf2onnx writes from its
#: floor (1.16) and that onnxruntime has run since 1.13, so a deployment knows
#: what it gets whatever versions exported it.
ONNX_OPSET = 17


def export_onnx(model: keras.Model, path: str, weights: str, calibration) -> dict:
    """Writes `model` to the `.onnx` file `path` (through tf2onnx), at `ONNX_OPSET`."""
    # tf2onnx's optimizer warns about what the user cannot act on.
    with quiet_logger("tf2onnx", below=logging.ERROR), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # numpy, inside tf2onnx
        with files.written_locally(path) as local:
            model.export(local, format="onnx", verbose=False, opset_version=ONNX_OPSET)
    return {"opset": opset_of(path)}


def opset_of(path: str) -> int:
    """The ONNX opset the artifact at `path` declares (its default domain's)."""
    import onnx

    model = onnx.load_model_from_string(files.read_bytes(path))
    return next(
        int(entry.version)
        for entry in model.opset_import
        if entry.domain in ("", "ai.onnx")
    )


def load_onnx(path: str) -> Loaded:
    """The `.onnx` file `path`, run by onnxruntime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(
        files.read_bytes(path), providers=["CPUExecutionProvider"]
    )
    source = session.get_inputs()[0]
    shape = tuple(n if isinstance(n, int) else None for n in source.shape)
    name = source.name

    def predict(images: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {name: images})[0])

    return Loaded(predict, shape, f"onnxruntime {onnxruntime.__version__}")


ONNX = ExportFormat(
    files=("model.onnx",),
    export=export_onnx,
    load=load_onnx,
    packages=("tf2onnx", "onnx", "onnxruntime"),
    extra="onnx",
)
