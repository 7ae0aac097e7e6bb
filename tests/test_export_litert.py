"""TFLite exports that load in LiteRT: builtin ops only, each quantization's
accuracy beside the float Keras model's, and which interpreter checked them."""

import importlib.util
from importlib.metadata import version
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from kerastl.runtime import export_model, save_labels
from kerastl.runtime.export import ExportError, load_artifact
from kerastl.runtime.export_tflite import (
    export_tflite,
    ops_without_builtin,
    tflite_interpreter,
)

CLASSES = [str(digit) for digit in range(10)]


@pytest.fixture(scope="module")
def digits() -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """scikit-learn's 8x8 digits as raw RGB pixels: (training, held-out) batches."""
    data = load_digits()
    images = np.repeat(data.images[..., np.newaxis] * (255 / 16), 3, axis=-1)
    images, labels = images.astype("float32"), data.target

    def batches(part: slice) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices((images[part], labels[part])).batch(
            64
        )

    return batches(slice(0, 1200)), batches(slice(1200, None))


@pytest.fixture(scope="module")
def trained(digits) -> keras.Model:
    """A small classifier of the digits, trained enough that accuracy means something."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)  # takes raw pixels, as the scripts do
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)  # 288 x 10 weights: dynamic range quantizes them
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(digits[0], epochs=8, shuffle=False, verbose=0)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("weights", ["float16", "dynamic", "int8"])
def test_each_quantization_loads_in_litert_with_its_accuracy_change(
    trained, digits, weights: str, tmp_path: Path, capfd
) -> None:
    save_labels(tmp_path, CLASSES)
    training, held_out = digits
    results = export_model(
        trained,
        tmp_path,
        ["tflite"],
        held_out,
        quantize=weights,
        calibration_data=training,
        images="test",
    )
    figures = results["export/model.tflite"]
    content = (tmp_path / "export" / "model.tflite").read_bytes()
    assert b"Flex" not in content  # no TensorFlow op for LiteRT to lack
    assert figures["runtime"] == f"ai_edge_litert {version('ai-edge-litert')}"
    assert figures["weights"] == weights and figures["images"] == "test"
    # The float Keras model's accuracy on the same images, and the change.
    assert figures["examples"] == 597
    assert figures["keras_accuracy"] > 0.8  # trained: the change means something
    predicted = np.argmax(trained.predict(held_out, verbose=0), axis=1)
    labels = np.concatenate([labels for _, labels in held_out])
    assert figures["keras_accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert figures["accuracy_change"] == pytest.approx(
        figures["accuracy"] - figures["keras_accuracy"]
    )
    # An artifact can only lose or gain on the images where it disagrees.
    assert abs(figures["accuracy_change"]) <= 1 - figures["agreement"] + 1e-9
    assert figures["accuracy_change"] > -0.03  # what quantization costs here
    if weights == "int8":
        assert figures["op_sets"] == ["TFLITE_BUILTINS", "TFLITE_BUILTINS_INT8"]
    out, err = capfd.readouterr()
    assert "fully_quantize" not in err  # the int8 converter's C++ line
    change = f"{100 * figures['accuracy_change']:+.2f} points"
    assert f"(the Keras model's {figures['keras_accuracy']:.4f}: {change})" in out
    assert "checked with ai_edge_litert" in out and "597 test images" in out


class Erf(keras.layers.Layer):
    """The error function: Keras's converter settings make it a Flex op, which
    the LiteRT runtime refuses to load; LiteRT has no builtin for it."""

    def call(self, inputs):
        return keras.ops.erf(inputs)


@pytest.mark.slow
def test_a_model_that_needs_tensorflow_ops_is_refused_naming_them(
    tmp_path: Path, capfd
) -> None:
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(3, activation="softmax")(Erf()(x))
    model = keras.Model(inputs, outputs)
    save_labels(tmp_path, ["a", "b", "c"])
    images = np.zeros((4, 8, 8, 3), "float32")
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(4))).batch(4)
    with pytest.raises(ExportError) as raised:
        export_model(model, tmp_path, ["tflite"], dataset)
    message = str(raised.value)
    assert "\n" not in message
    assert "TensorFlow ops that LiteRT has no builtin for (Erf)" in message
    assert not (tmp_path / "export" / "model.tflite").exists()
    assert "tf.Erf" not in capfd.readouterr().err  # nor the converter's pages


def test_the_converter_error_names_each_missing_op_once() -> None:
    message = (
        "error: 'tf.Erfinv' op is neither a custom op nor a flex op\n"
        "error: 'tf.Lgamma' op is neither a custom op nor a flex op\n"
        "error: failed while converting: 'main':\n"
        "Custom ops: Erfinv, Lgamma\n"
    )
    assert ops_without_builtin(message) == ["Erfinv", "Lgamma"]
    assert ops_without_builtin("Could not translate MLIR to FlatBuffer.") == []


@pytest.mark.slow
def test_without_litert_tensorflows_interpreter_checks_and_says_so(
    trained, tmp_path: Path, monkeypatch
) -> None:
    path = tmp_path / "model.tflite"
    export_tflite(trained, str(path), "none", None)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "ai_edge_litert" else real(name, *args),
    )
    _, name = tflite_interpreter(path.read_bytes())
    assert name.startswith(f"tf.lite.Interpreter of tensorflow {tf.__version__}")
    assert "deprecated" in name and "kerastl[litert]" in name
    predict, shape = load_artifact(path)  # what `kerastl predict` loads
    images = np.full((2, 8, 8, 3), 128, "float32")
    assert shape == (None, 8, 8, 3)
    np.testing.assert_allclose(
        predict(images), trained.predict(images, verbose=0), atol=1e-5
    )
