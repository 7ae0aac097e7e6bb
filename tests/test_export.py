"""Exports of a small real model, each checked with its own runtime."""

import argparse
import importlib.util
import json
from importlib.metadata import version
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerastl.runtime import export as export_module
from kerastl.runtime import export_format, export_model, save_labels
from kerastl.runtime.export import ExportError
from kerastl.runtime.export_onnx import ONNX_OPSET

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(0, 255, (24, 8, 8, 3)).astype("float32")
LABELS = RNG.integers(0, 3, 24)


@pytest.fixture(autouse=True)
def no_openvino_telemetry(monkeypatch) -> None:
    """OpenVINO's converter sends usage events (a second a model) except in CI."""
    monkeypatch.setenv("CI", "true")


@pytest.fixture(scope="module")
def model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)  # takes raw pixels, as the scripts do
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="small")


def batches() -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)).batch(8)


CLASSES = ["cat", "dog", "red fox"]


@pytest.mark.slow
def test_float_exports_agree_and_are_recorded(
    model, tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "metrics.json").write_text(json.dumps({"model": "best.keras"}))
    save_labels(tmp_path, CLASSES)
    monkeypatch.chdir(tmp_path.parent)  # paths in metrics.json do not depend on it
    formats = ["saved-model", "tflite", "onnx", "openvino"]
    results = export_model(model, tmp_path.name, formats, batches())
    assert sorted(results) == [
        "export/model.onnx",
        "export/model.tflite",
        "export/model.xml",
        "export/saved_model",
    ]
    assert (tmp_path / "export" / "model.bin").is_file()  # OpenVINO's weights
    labels = (tmp_path / "export" / "labels.txt").read_text()
    assert labels == "cat\ndog\nred fox\n"  # one a line, the TFLite convention
    expected = model.predict(IMAGES, verbose=0).argmax(axis=1)
    for figures in results.values():
        assert figures["agreement"] == 1.0 and figures["examples"] == 24
        assert figures["max_probability_difference"] < 1e-4
        assert figures["accuracy"] == pytest.approx(np.mean(expected == LABELS))
        assert figures["keras_accuracy"] == figures["accuracy"]
        assert figures["accuracy_change"] == 0 and figures["images"] == "validation"
    runtimes = {figures["format"]: figures["runtime"] for figures in results.values()}
    assert runtimes == {
        "saved-model": f"tensorflow {tf.__version__}",
        "tflite": f"ai_edge_litert {version('ai-edge-litert')}",
        "onnx": f"onnxruntime {version('onnxruntime')}",
        "openvino": f"openvino {version('openvino')} (CPU, float32)",
    }
    assert results["export/model.onnx"]["opset"] == ONNX_OPSET
    assert results["export/model.tflite"]["op_sets"] == ["TFLITE_BUILTINS"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["model"] == "best.keras" and metrics["exports"] == results


@pytest.mark.slow
def test_a_quantized_model_below_its_minimum_fails_loudly_keeping_its_files(
    model, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(export_module.MIN_AGREEMENT, "int8", 1.01)  # unreachable
    save_labels(tmp_path, CLASSES)
    with pytest.raises(ExportError, match="agrees on .* \\(needs 101%\\)"):
        export_model(
            model,
            tmp_path,
            ["tflite"],
            batches(),
            quantize="int8",
            calibration_data=batches(),
        )
    assert (tmp_path / "export" / "model.tflite").is_file()  # whatever the weights
    exports = json.loads((tmp_path / "metrics.json").read_text())["exports"]
    (figures,) = exports.values()
    assert figures["weights"] == "int8" and 0 <= figures["agreement"] <= 1


@pytest.mark.slow
def test_the_tflite_check_prints_no_delegate_line(model, tmp_path: Path, capfd) -> None:
    """TensorFlow Lite announces its CPU delegate from C++ on standard error."""
    save_labels(tmp_path, CLASSES)
    export_model(model, tmp_path, ["tflite"], batches())
    out, err = capfd.readouterr()
    assert "Exported" in out
    assert "XNNPACK" not in err and "XNNPACK" not in out


@pytest.mark.slow
def test_a_rerun_with_other_formats_leaves_only_what_it_lists(
    model, tmp_path: Path
) -> None:
    save_labels(tmp_path, CLASSES)
    export = tmp_path / "export"
    export_model(model, tmp_path, ["saved-model", "tflite"], batches())
    (export / "model-dynamic.tflite").write_bytes(b"")  # an older release's name
    (export / "model.xml").write_text("<net/>")  # OpenVINO's graph and weights
    (export / "model.bin").write_bytes(b"")
    results = export_model(model, tmp_path, ["onnx"], batches())
    assert sorted(path.name for path in export.iterdir()) == [
        "labels.txt",
        "model.onnx",
    ]  # model.xml and model.bin went together
    exports = json.loads((tmp_path / "metrics.json").read_text())["exports"]
    assert list(exports) == list(results) == ["export/model.onnx"]


def test_export_formats_are_checked_before_training(monkeypatch) -> None:
    assert export_format("tflite") == "tflite"
    with pytest.raises(argparse.ArgumentTypeError, match="unknown format 'tf'"):
        export_format("tf")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "tf2onnx" else real(name, *args),
    )
    with pytest.raises(argparse.ArgumentTypeError, match="kerastl\\[onnx\\]"):
        export_format("onnx")
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "openvino" else real(name, *args),
    )
    with pytest.raises(argparse.ArgumentTypeError, match="kerastl\\[openvino\\]"):
        export_format("openvino")
