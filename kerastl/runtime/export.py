"""Export the shipped model, and check each artifact with its own runtime.

Every artifact takes raw 0-255 RGB pixels, as `model.keras` does: step 4's
normalization is inside the model. Each one is loaded back with the runtime a
user would deploy it with (a TensorFlow SavedModel, the TFLite interpreter,
onnxruntime), evaluated on the validation images and compared with the Keras
model, because exported and quantized models can silently differ
(tensorflow/tensorflow#55660, onnx/tensorflow-onnx#1428).
"""

import argparse
import importlib.util
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .errors import ScriptError
from .jsonfile import read_json, write_json
from .quiet import quiet_logger

EXPORT_FORMATS = ("saved-model", "tflite", "onnx")
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
# The least top-1 agreement with the Keras model each artifact must reach on the
# validation images: float32 formats compute the same function; quantized
# weights round it, int8 activations most.
MIN_AGREEMENT = {"none": 0.99, "float16": 0.99, "dynamic": 0.97, "int8": 0.95}
CALIBRATION_IMAGES = 200
# The packages each format needs besides TensorFlow (`pip install 'kerastl[onnx]'`).
_FORMAT_PACKAGES = {"onnx": ("tf2onnx", "onnx", "onnxruntime")}


class ExportError(ScriptError):
    """An exported artifact does not agree with the Keras model."""


def export_format(value: str) -> str:
    """An argparse `type` for `--export`: a format whose packages are installed."""
    if value not in EXPORT_FORMATS:
        raise argparse.ArgumentTypeError(
            f"unknown format {value!r} (choose from {', '.join(EXPORT_FORMATS)})"
        )
    missing = [
        package
        for package in _FORMAT_PACKAGES.get(value, ())
        if importlib.util.find_spec(package) is None
    ]
    if missing:
        raise argparse.ArgumentTypeError(
            f"{value} export needs {', '.join(missing)}: pip install 'kerastl[onnx]'"
        )
    return value


def export_model(
    model: keras.Model,
    output_dir: str | Path,
    formats: list[str],
    validation_data: tf.data.Dataset,
    *,
    quantize: str = "none",
    calibration_data: tf.data.Dataset | None = None,
) -> dict[str, dict]:
    """Exports `model` in each format, then checks each artifact against it.

    The artifacts go to `output_dir/export/`; their figures (accuracy, top-1
    agreement with the Keras model, the largest probability difference) are
    added to `output_dir/metrics.json` under `"exports"`.

    Args:
        model: The model to ship, holding its weights.
        output_dir: The run's output folder.
        formats: Any of `EXPORT_FORMATS`.
        validation_data: Batches of `(images, labels)` to compare on.
        quantize: The TFLite weights: one of `QUANTIZATIONS`.
        calibration_data: Training batches that calibrate int8 quantization.

    Returns:
        The figures of each artifact, by its path.

    Raises:
        ExportError: If an artifact agrees with the Keras model on fewer than
            `MIN_AGREEMENT` of the images; everything is written first.
    """
    folder = Path(output_dir) / "export"
    folder.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for name in formats:
        weights = quantize if name == "tflite" else "none"
        path, predict = _EXPORTERS[name](model, folder, weights, calibration_data)
        figures = _compare(model, predict, validation_data)
        figures.update(format=name, weights=weights, minimum=MIN_AGREEMENT[weights])
        results[str(path)] = figures
        print(
            f"Exported {path}: accuracy {figures['accuracy']:.4f}, top-1 agreement "
            f"with the Keras model {figures['agreement']:.2%}, largest probability "
            f"difference {figures['max_probability_difference']:.2g}"
        )
    metrics_path = Path(output_dir) / "metrics.json"
    write_json(metrics_path, {**(read_json(metrics_path) or {}), "exports": results})
    failed = [
        f"{path} agrees on {figures['agreement']:.2%} (needs {figures['minimum']:.0%})"
        for path, figures in results.items()
        if figures["agreement"] < figures["minimum"]
    ]
    if failed:
        raise ExportError(
            "an exported model differs from the Keras model: " + "; ".join(failed)
        )
    return results


Predict = Callable[[np.ndarray], np.ndarray]


def _compare(
    model: keras.Model, predict: Predict, validation_data: tf.data.Dataset
) -> dict:
    """Accuracy of the artifact, and how it agrees with `model`, batch by batch."""
    right = agree = total = 0
    difference = 0.0
    for images, labels in validation_data:
        images = np.asarray(images, dtype="float32")
        expected = np.asarray(model.predict_on_batch(images))
        actual = predict(images)
        labels = np.asarray(labels)
        right += int(np.sum(actual.argmax(axis=1) == labels))
        agree += int(np.sum(actual.argmax(axis=1) == expected.argmax(axis=1)))
        difference = max(difference, float(np.max(np.abs(actual - expected))))
        total += len(labels)
    return {
        "accuracy": right / max(total, 1),
        "agreement": agree / max(total, 1),
        "max_probability_difference": difference,
        "examples": total,
    }


def _saved_model(model, folder: Path, weights, calibration) -> tuple[Path, Predict]:
    path = folder / "saved_model"
    model.export(str(path), format="tf_saved_model", verbose=False)
    loaded = tf.saved_model.load(str(path))  # holds the variables `serve` reads
    return path, lambda images: np.asarray(loaded.serve(images))


def _tflite(model, folder: Path, weights: str, calibration) -> tuple[Path, Predict]:
    path = folder / ("model.tflite" if weights == "none" else f"model-{weights}.tflite")
    model.export(
        str(path), format="litert", verbose=False, **_quantization(weights, calibration)
    )
    interpreter = _tflite_interpreter(path)

    def predict(images: np.ndarray) -> np.ndarray:
        source, target = (
            interpreter.get_input_details()[0],
            interpreter.get_output_details()[0],
        )
        interpreter.resize_tensor_input(source["index"], images.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], images)
        interpreter.invoke()
        return np.array(interpreter.get_tensor(target["index"]))

    return path, predict


def _onnx(model, folder: Path, weights, calibration) -> tuple[Path, Predict]:
    import onnxruntime

    path = folder / "model.onnx"
    # tf2onnx's optimizer warns about what the user cannot act on.
    with quiet_logger("tf2onnx", below=logging.ERROR), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # numpy, inside tf2onnx
        model.export(str(path), format="onnx", verbose=False)
    session = onnxruntime.InferenceSession(str(path))
    name = session.get_inputs()[0].name
    return path, lambda images: np.asarray(session.run(None, {name: images})[0])


_EXPORTERS = {"saved-model": _saved_model, "tflite": _tflite, "onnx": _onnx}


def _quantization(weights: str, calibration: tf.data.Dataset | None) -> dict:
    """The TFLite converter settings of one `QUANTIZATIONS` choice."""
    if weights == "none":
        return {}
    settings: dict = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if weights == "float16":
        settings["target_spec"] = {"supported_types": [tf.float16]}
    if weights == "int8":
        if calibration is None:
            raise ScriptError("int8 quantization needs training images to calibrate")
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


def _tflite_interpreter(path: Path):
    """LiteRT's interpreter where it is installed, else TensorFlow's (deprecated)."""
    if importlib.util.find_spec("ai_edge_litert") is not None:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter(model_path=str(path))
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", UserWarning
        )  # "tf.lite.Interpreter is deprecated"
        return tf.lite.Interpreter(model_path=str(path))
