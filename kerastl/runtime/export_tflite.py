"""The TFLite (LiteRT) export: LiteRT's builtin ops only, checked with LiteRT.

Keras's converter settings also allow TensorFlow's "Flex" ops, which convert
fine and then fail to load in the LiteRT runtime that pip installs
(google-ai-edge/LiteRT#6458), so the artifact is converted with builtin ops
only, and a model that needs others is refused in one line naming them.
"""

import importlib.util
import re
import warnings
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from . import files
from .export_types import ExportError, ExportFormat, Loaded
from .quiet import stderr_without

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
CALIBRATION_IMAGES = 200
#: What TensorFlow Lite prints to standard error, from C++, for each interpreter.
XNNPACK_LINE = "Created TensorFlow Lite XNNPACK delegate for CPU."
# The op sets the converter may use, by weights: LiteRT's builtins (with their
# int8 kernels for int8), never SELECT_TF_OPS.
_OP_SETS = {"int8": ("TFLITE_BUILTINS", "TFLITE_BUILTINS_INT8")}
_BUILTINS = ("TFLITE_BUILTINS",)
# How the converter names an op that has no builtin, in its error.
_MISSING_OP = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")
_CUSTOM_OPS_LINE = re.compile(r"^Custom ops: (.+)$", re.MULTILINE)
# What the int8 converter prints, from C++, of its settings.
_QUANTIZER_LINE = "fully_quantize: "


def export_tflite(
    model: keras.Model, path: str, weights: str, calibration: tf.data.Dataset | None
) -> dict:
    """Writes `model` to the `.tflite` file `path`, with builtin ops only.

    Raises:
        ExportError: If an op of the model has no LiteRT builtin (named).
    """
    settings = converter_settings(weights, calibration)
    # The converter prints its MLIR on failure, and a line on int8 settings.
    quiet = stderr_without(_QUANTIZER_LINE, dropped_on=(ExportError,))
    with quiet, files.written_locally(path) as local:
        try:
            model.export(local, format="litert", verbose=False, **settings)
        except Exception as error:
            ops = ops_without_builtin(str(error))
            if not ops:
                raise
            raise ExportError(
                f"tflite export: the model uses TensorFlow ops that LiteRT has no "
                f"builtin for ({', '.join(ops)}), which the LiteRT runtime cannot "
                "load; export it as saved-model, onnx or openvino instead"
            ) from None
    return {"op_sets": list(_OP_SETS.get(weights, _BUILTINS))}


def ops_without_builtin(message: str) -> list[str]:
    """The TensorFlow ops the converter's error `message` names as having no
    LiteRT builtin, in order, once each (none for any other error)."""
    names = _MISSING_OP.findall(message)
    for line in _CUSTOM_OPS_LINE.findall(message):
        names += [name.strip() for name in line.split(",")]
    return list(dict.fromkeys(names))


def converter_settings(weights: str, calibration: tf.data.Dataset | None) -> dict:
    """The converter settings of one `QUANTIZATIONS` choice, builtin ops only."""
    op_sets = [
        getattr(tf.lite.OpsSet, name) for name in _OP_SETS.get(weights, _BUILTINS)
    ]
    target_spec: dict = {"supported_ops": op_sets}
    settings: dict = {"target_spec": target_spec}
    if weights == "none":
        return settings
    settings["optimizations"] = [tf.lite.Optimize.DEFAULT]
    if weights == "float16":
        target_spec["supported_types"] = [tf.float16]
    if weights == "int8":
        if calibration is None:
            raise ExportError("int8 quantization needs training images to calibrate")
        settings["representative_dataset"] = lambda: _calibration_images(calibration)
    return settings


def _calibration_images(dataset: tf.data.Dataset) -> Iterator[list[np.ndarray]]:
    """Up to `CALIBRATION_IMAGES` training images, one at a time."""
    count = 0
    for images, _ in dataset:
        for image in np.asarray(images, dtype="float32"):
            if count == CALIBRATION_IMAGES:
                return
            count += 1
            yield [image[np.newaxis]]


def tflite_interpreter(content: bytes) -> tuple[Any, str]:
    """An interpreter of the TFLite model `content`, and which one it is.

    LiteRT's (`ai_edge_litert`, `pip install 'kerastl[litert]'`) where it is
    installed, else TensorFlow's copy, which is deprecated and also runs the
    Flex ops that LiteRT's cannot.
    """
    with stderr_without(XNNPACK_LINE):
        if importlib.util.find_spec("ai_edge_litert") is not None:
            from ai_edge_litert.interpreter import Interpreter

            name = f"ai_edge_litert {metadata.version('ai-edge-litert')}"
            return Interpreter(model_content=content), name
        with warnings.catch_warnings():
            # "tf.lite.Interpreter is deprecated": the name says so.
            warnings.simplefilter("ignore", UserWarning)
            interpreter = tf.lite.Interpreter(model_content=content)
    name = (
        f"tf.lite.Interpreter of tensorflow {tf.__version__} (deprecated; "
        "pip install 'kerastl[litert]' for LiteRT's)"
    )
    return interpreter, name


def load_tflite(path: str) -> Loaded:
    """The `.tflite` file `path`, run by `tflite_interpreter`."""
    interpreter, name = tflite_interpreter(files.read_bytes(path))
    source = interpreter.get_input_details()[0]
    target = interpreter.get_output_details()[0]

    def predict(images: np.ndarray) -> np.ndarray:
        # Where the interpreter applies its CPU delegate, which announces itself.
        with stderr_without(XNNPACK_LINE):
            interpreter.resize_tensor_input(source["index"], images.shape)
            interpreter.allocate_tensors()
            interpreter.set_tensor(source["index"], images)
            interpreter.invoke()
        return np.array(interpreter.get_tensor(target["index"]))

    shape = tuple(int(n) for n in source["shape"])
    return Loaded(predict, (None, *shape[1:]), name)


TFLITE = ExportFormat(
    files=("model.tflite",),
    export=export_tflite,
    load=load_tflite,
    quantized=True,
)
