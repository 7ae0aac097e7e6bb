"""Export the shipped model, and check each artifact with its own runtime.

Every artifact takes raw 0-255 RGB pixels, as `model.keras` does: step 4's
normalization is inside the model. Each one is loaded back with the runtime a
user would deploy it with (TensorFlow, LiteRT, onnxruntime, OpenVINO),
evaluated on the validation images (the test images when given) and compared
with the Keras model, because exported and quantized models can silently
differ (tensorflow/tensorflow#55660, onnx/tensorflow-onnx#1428). Each format's
module says how it writes and loads its artifact (`export_types.ExportFormat`).
"""

import argparse
import importlib.util
import os
from collections.abc import Sequence

import keras
import tensorflow as tf

from . import files
from .common.labels import LABELS_FILE, class_names_in, thresholds_in
from .errors import ScriptError
from .export_check import compare, export_line
from .export_onnx import ONNX
from .export_openvino import OPENVINO
from .export_saved_model import SAVED_MODEL
from .export_tflite import QUANTIZATIONS, TFLITE
from .export_types import ExportError, ExportFormat, Predict
from .jsonfile import read_json, write_json
from .lora_saving import merged_model
from .report import METRICS_FILE

#: The `--export` choices. Each writes the same file names into the export
#: folder whatever the quantization (metrics.json records the weights).
FORMATS: dict[str, ExportFormat] = {
    "saved-model": SAVED_MODEL,
    "tflite": TFLITE,
    "onnx": ONNX,
    "openvino": OPENVINO,
}
EXPORT_FORMATS = tuple(FORMATS)
# The least top-1 agreement with the Keras model each artifact must reach on the
# validation images: float32 formats compute the same function; quantized
# weights round it, int8 activations most.
MIN_AGREEMENT = {"none": 0.99, "float16": 0.99, "dynamic": 0.97, "int8": 0.95}
# The exports' folder, in the run's output folder.
EXPORT_FOLDER = "export"


def export_format(value: str) -> str:
    """An argparse `type` for `--export`: a format whose packages are installed."""
    if value not in FORMATS:
        raise argparse.ArgumentTypeError(
            f"unknown format {value!r} (choose from {', '.join(EXPORT_FORMATS)})"
        )
    chosen = FORMATS[value]
    missing = [
        package
        for package in chosen.packages
        if importlib.util.find_spec(package) is None
    ]
    if missing:
        raise argparse.ArgumentTypeError(
            f"{value} export needs {', '.join(missing)}: "
            f"pip install 'kerastl[{chosen.extra}]'"
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
    images: str = "validation",
) -> dict[str, dict]:
    """Exports `model` in each format, then checks each artifact against it.

    The artifacts go to `output_dir/export/` (`FORMATS` names their files),
    with `labels.txt`, the class names of `output_dir/labels.json` one a line
    (the TFLite convention); an artifact of a format not asked for this time is
    deleted, so the folder holds what `metrics.json` lists. Their figures (the
    runtime that ran it, its accuracy beside the Keras model's, top-1
    agreement with the Keras model, the largest probability difference, and
    what the format records: the ONNX opset, the TFLite op sets) are added to
    `output_dir/metrics.json` under `"exports"`, by path relative to
    `output_dir`.

    Args:
        model: The model to ship, holding its weights.
        output_dir: The run's output folder; it holds `labels.json`.
        formats: Any of `EXPORT_FORMATS`.
        validation_data: Batches of `(images, labels)` to compare on.
        quantize: The TFLite weights: one of `QUANTIZATIONS`.
        calibration_data: Training batches that calibrate int8 quantization.
        images: What `validation_data` holds, for the record: "validation"
            or "test".

    Returns:
        The figures of each artifact, by its path relative to `output_dir`.

    Raises:
        ExportError: If a format cannot write the model, or an artifact agrees
            with the Keras model on fewer than `MIN_AGREEMENT` of the images
            (everything is written first).
    """
    output_dir = os.fspath(output_dir)
    folder = files.join(output_dir, EXPORT_FOLDER)
    files.make_dirs(folder)
    class_names, thresholds = _class_names(output_dir)
    formats = list(dict.fromkeys(formats))  # `--export tflite --export tflite`: once
    _remove_stale(folder, formats)
    files.write_text(
        files.join(folder, "labels.txt"), "".join(f"{name}\n" for name in class_names)
    )
    results: dict[str, dict] = {}
    exported = merged_model(model)  # LoRA's adapters folded into the kernels
    for name in formats:
        chosen = FORMATS[name]
        weights = quantize if chosen.quantized else "none"
        path = files.join(folder, chosen.artifact)
        facts = chosen.export(exported, path, weights, calibration_data)
        loaded = chosen.load(path)
        figures = {
            "format": name,
            "weights": weights,
            "runtime": loaded.runtime,
            **facts,
            "images": images,
            **compare(model, loaded.predict, validation_data, thresholds),
            "minimum": MIN_AGREEMENT[weights],
        }
        results[files.relative(path, output_dir)] = figures
        print(export_line(path, figures))
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


def _class_names(output_dir: str) -> tuple[list[str], list[float] | None]:
    """The class names of the run's `labels.json`, and a multi-label run's
    thresholds (None for a single-label run)."""
    path = files.join(output_dir, LABELS_FILE)
    labels = read_json(path)
    if labels is None:
        raise ScriptError(f"{path} is missing: no class names")
    try:
        return class_names_in(labels, path), thresholds_in(labels, path)
    except ValueError as error:
        raise ScriptError(str(error)) from None


def _remove_stale(folder: str, formats: list[str]) -> None:
    """Deletes the files of `folder` whose format is not in `formats`.

    Also the names older releases gave quantized TFLite files
    (`model-dynamic.tflite`...), which no format writes any more.
    """
    stale = [
        files.join(folder, name)
        for format, exporter in FORMATS.items()
        if format not in formats
        for name in exporter.files
    ]
    stale += [
        files.join(folder, f"model-{weights}.tflite") for weights in QUANTIZATIONS[1:]
    ]
    for path in stale:
        if files.delete(path):
            print(f"Removed {path}: not among the formats exported this time")


def load_artifact(path: str | os.PathLike) -> tuple[Predict, tuple]:
    """An exported artifact, loaded with the runtime a user would deploy it with.

    Args:
        path: A SavedModel folder, or a `.tflite`, `.onnx` or OpenVINO `.xml` file.

    Returns:
        A function from a float32 batch of raw 0-255 RGB pixels to the class
        probabilities (numpy arrays), and the artifact's input shape, e.g.
        `(None, 224, 224, 3)`.

    Raises:
        ValueError: If `path` is none of these.
    """
    path = os.fspath(path)
    if files.is_file(files.join(path, "saved_model.pb")):
        return SAVED_MODEL.load(path)[:2]
    for chosen in FORMATS.values():
        suffix = os.path.splitext(chosen.artifact)[1]
        if suffix and path.endswith(suffix):
            return chosen.load(path)[:2]
    raise ValueError(
        f"{path} is not a SavedModel folder, a .tflite, an .onnx or an OpenVINO "
        ".xml file"
    )
