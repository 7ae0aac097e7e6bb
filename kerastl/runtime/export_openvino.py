"""The OpenVINO export (IR: an `.xml` graph and its `.bin` weights), checked
with OpenVINO's runtime."""

import os
import tempfile

import keras
import numpy as np

from . import files
from .export_types import ExportFormat, Loaded

# The check computes in float32: OpenVINO's CPU plugin otherwise runs bfloat16
# on CPUs that have it, which differs from the model by rounding, not by export.
_CHECK_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


def export_openvino(model: keras.Model, path: str, weights: str, calibration) -> dict:
    """Writes `model` to the `.xml` file `path` and its weights beside it (`.bin`)."""
    with tempfile.TemporaryDirectory(prefix="kerastl-") as folder:
        local = os.path.join(folder, "model.xml")
        model.export(local, format="openvino", verbose=False)
        for source, target in (
            (local, path),
            (weights_path(local), weights_path(path)),
        ):
            with open(source, "rb") as file:
                files.write_bytes(target, file.read())  # gs:// as well
    return {}


def weights_path(xml_path: str) -> str:
    """The `.bin` file of the weights beside the IR graph `xml_path`."""
    return xml_path.removesuffix(".xml") + ".bin"


def load_openvino(path: str) -> Loaded:
    """The IR at `path` (`.xml`, with its `.bin`), run by OpenVINO on the CPU."""
    import openvino

    core = openvino.Core()
    graph = core.read_model(
        model=files.read_bytes(path), weights=files.read_bytes(weights_path(path))
    )
    compiled = core.compile_model(graph, "CPU", _CHECK_CONFIG)
    shape = tuple(
        dimension.get_length() if dimension.is_static else None
        for dimension in graph.inputs[0].partial_shape
    )

    def predict(images: np.ndarray) -> np.ndarray:
        return np.asarray(compiled(images)[0])

    version = openvino.__version__.split("-")[0]
    return Loaded(predict, shape, f"openvino {version} (CPU, float32)")


OPENVINO = ExportFormat(
    files=("model.xml", "model.bin"),
    export=export_openvino,
    load=load_openvino,
    packages=("openvino",),
    extra="openvino",
)
