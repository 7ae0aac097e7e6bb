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
import os
import warnings
from collections.abc import Callable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from . import files
from .common.labels import LABELS_FILE, class_names_in
from .errors import ScriptError
from .jsonfile import read_json, write_json
from .lora_saving import merged_model
from .metrics import class_indices
from .quiet import quiet_logger, stderr_without
from .report import METRICS_FILE

EXPORT_FORMATS = ("saved-model", "tflite", "onnx")
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
# The least top-1 agreement with the Keras model each artifact must reach on the
# validation images: float32 formats compute the same function; quantized
# weights round it, int8 activations most.
MIN_AGREEMENT = {"none": 0.99, "float16": 0.99, "dynamic": 0.97, "int8": 0.95}
CALIBRATION_IMAGES = 200
#: What TensorFlow Lite prints to standard error, from C++, for each interpreter.
XNNPACK_LINE = "Created TensorFlow Lite XNNPACK delegate for CPU."
# The file each format writes into the export folder, whatever the quantization
# (metrics.json records the TFLite weights): deployed code names one file.
ARTIFACTS = {
    "saved-model": "saved_model",
    "tflite": "model.tflite",
    "onnx": "model.onnx",
}
# The packages each format needs besides TensorFlow (`pip install 'kerastl[onnx]'`).
_FORMAT_PACKAGES = {"onnx": ("tf2onnx", "onnx", "onnxruntime")}


# The exports' folder, in the run's output folder.
EXPORT_FOLDER = "export"


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
    output_dir: str | os.PathLike,
    formats: Sequence[str],
    validation_data: tf.data.Dataset,
    *,
    quantize: str = "none",
    calibration_data: tf.data.Dataset | None = None,
) -> dict[str, dict]:
    """Exports `model` in each format, then checks each artifact against it.

    The artifacts go to `output_dir/export/` (`ARTIFACTS` names them), with
    `labels.txt`, the class names of `output_dir/labels.json` one a line (the
    TFLite convention); an artifact of a format not asked for this time is
    deleted, so the folder holds what `metrics.json` lists. Their figures
    (accuracy, top-1 agreement with the Keras model, the largest probability
    difference) are added to `output_dir/metrics.json` under `"exports"`, by
    path relative to `output_dir`.

    Args:
        model: The model to ship, holding its weights.
        output_dir: The run's output folder; it holds `labels.json`.
        formats: Any of `EXPORT_FORMATS`.
        validation_data: Batches of `(images, labels)` to compare on.
        quantize: The TFLite weights: one of `QUANTIZATIONS`.
        calibration_data: Training batches that calibrate int8 quantization.

    Returns:
        The figures of each artifact, by its path relative to `output_dir`.

    Raises:
        ExportError: If an artifact agrees with the Keras model on fewer than
            `MIN_AGREEMENT` of the images; everything is written first.
    """
    output_dir = os.fspath(output_dir)
    folder = files.join(output_dir, EXPORT_FOLDER)
    files.make_dirs(folder)
    class_names = _class_names(output_dir)
    formats = list(dict.fromkeys(formats))  # `--export tflite --export tflite`: once
    _remove_stale(folder, formats)
    files.write_text(
        files.join(folder, "labels.txt"), "".join(f"{name}\n" for name in class_names)
    )
    results: dict[str, dict] = {}
    exported = merged_model(model)  # LoRA's adapters folded into the kernels
    for name in formats:
        weights = quantize if name == "tflite" else "none"
        path = _EXPORTERS[name](exported, folder, weights, calibration_data)
        predict, _ = load_artifact(path)
        figures = _compare(model, predict, validation_data)
        figures.update(format=name, weights=weights, minimum=MIN_AGREEMENT[weights])
        results[files.relative(path, output_dir)] = figures
        print(
            f"Exported {path}: accuracy {figures['accuracy']:.4f}, top-1 agreement "
            f"with the Keras model {figures['agreement']:.2%}, largest probability "
            f"difference {figures['max_probability_difference']:.2g}"
        )
    metrics_path = files.join(output_dir, METRICS_FILE)
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


def _class_names(output_dir: str) -> list[str]:
    """The class names of the run's `labels.json`."""
    path = files.join(output_dir, LABELS_FILE)
    labels = read_json(path)
    if labels is None:
        raise ScriptError(f"{path} is missing: no class names")
    try:
        return class_names_in(labels, path)
    except ValueError as error:
        raise ScriptError(str(error)) from None


def _remove_stale(folder: str, formats: list[str]) -> None:
    """Deletes the artifacts of `folder` whose format is not in `formats`.

    Also the names older releases gave quantized TFLite files
    (`model-dynamic.tflite`...), which no format writes any more.
    """
    stale = [
        files.join(folder, name)
        for format, name in ARTIFACTS.items()
        if format not in formats
    ]
    stale += [
        files.join(folder, f"model-{weights}.tflite") for weights in QUANTIZATIONS[1:]
    ]
    for path in stale:
        if files.delete(path):
            print(f"Removed {path}: not among the formats exported this time")


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
        labels = class_indices(labels)  # one-hot rows
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


def _saved_model(model, folder: str, weights, calibration) -> str:
    path = files.join(folder, ARTIFACTS["saved-model"])
    model.export(path, format="tf_saved_model", verbose=False)  # gs:// as well
    return path


def _tflite(model, folder: str, weights: str, calibration) -> str:
    path = files.join(folder, ARTIFACTS["tflite"])
    with files.written_locally(path) as local:
        model.export(
            local, format="litert", verbose=False, **_quantization(weights, calibration)
        )
    return path


def _onnx(model, folder: str, weights, calibration) -> str:
    path = files.join(folder, ARTIFACTS["onnx"])
    # tf2onnx's optimizer warns about what the user cannot act on.
    with quiet_logger("tf2onnx", below=logging.ERROR), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # numpy, inside tf2onnx
        with files.written_locally(path) as local:
            model.export(local, format="onnx", verbose=False)
    return path


def load_artifact(path: str | os.PathLike) -> tuple[Predict, tuple]:
    """An exported artifact, loaded with the runtime a user would deploy it with.

    Args:
        path: A SavedModel folder, a `.tflite` file or a `.onnx` file.

    Returns:
        A function from a float32 batch of raw 0-255 RGB pixels to the class
        probabilities (numpy arrays), and the artifact's input shape, e.g.
        `(None, 224, 224, 3)`.

    Raises:
        ValueError: If `path` is none of these.
    """
    path = os.fspath(path)
    if files.is_file(files.join(path, "saved_model.pb")):
        return _saved_model_predict(path)
    if path.endswith(".tflite"):
        return _tflite_predict(path)
    if path.endswith(".onnx"):
        return _onnx_predict(path)
    raise ValueError(f"{path} is not a SavedModel folder, a .tflite or an .onnx file")


def _saved_model_predict(path: str) -> tuple[Predict, tuple]:
    loaded = tf.saved_model.load(path)  # holds the variables `serve` reads
    shape = tuple(loaded.serve.input_signature[0].shape)
    return lambda images: np.asarray(loaded.serve(images)), shape


def _tflite_predict(path: str) -> tuple[Predict, tuple]:
    interpreter = _tflite_interpreter(path)

    def predict(images: np.ndarray) -> np.ndarray:
        source, target = (
            interpreter.get_input_details()[0],
            interpreter.get_output_details()[0],
        )
        # Where the interpreter applies its CPU delegate, which announces itself.
        with stderr_without(XNNPACK_LINE):
            interpreter.resize_tensor_input(source["index"], images.shape)
            interpreter.allocate_tensors()
            interpreter.set_tensor(source["index"], images)
            interpreter.invoke()
        return np.array(interpreter.get_tensor(target["index"]))

    shape = tuple(int(n) for n in interpreter.get_input_details()[0]["shape"])
    return predict, (None, *shape[1:])


def _onnx_predict(path: str) -> tuple[Predict, tuple]:
    import onnxruntime

    session = onnxruntime.InferenceSession(files.read_bytes(path))
    source = session.get_inputs()[0]
    shape = tuple(n if isinstance(n, int) else None for n in source.shape)
    name = source.name
    return lambda images: np.asarray(session.run(None, {name: images})[0]), shape


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


def _tflite_interpreter(path: str):
    """LiteRT's interpreter where it is installed, else TensorFlow's (deprecated)."""
    content = files.read_bytes(path)
    with stderr_without(XNNPACK_LINE):
        if importlib.util.find_spec("ai_edge_litert") is not None:
            from ai_edge_litert.interpreter import Interpreter

            return Interpreter(model_content=content)
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", UserWarning
            )  # "tf.lite.Interpreter is deprecated"
            return tf.lite.Interpreter(model_content=content)
