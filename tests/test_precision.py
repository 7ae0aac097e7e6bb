"""Mixed precision on the CPU: the policy, the EfficientNet traps, saving, loss scaling."""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_script
from tests.test_e2e import generate, on_data

pytestmark = pytest.mark.slow


@pytest.fixture
def policy():
    """Restores Keras's global dtype policy after the test."""
    import keras

    saved = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(saved)


def test_the_policy_follows_the_choice(policy, capsys) -> None:
    import keras

    from kerastl import runtime

    assert runtime.set_mixed_precision("bfloat16") == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert runtime.set_mixed_precision("float16") == "mixed_float16"
    # This machine has no GPU or TPU: auto keeps float32.
    assert runtime.set_mixed_precision("auto") == "float32"
    assert "no GPU or TPU" in capsys.readouterr().out
    with pytest.raises(runtime.ScriptError, match="must be one of auto, off"):
        runtime.set_mixed_precision("half")


@pytest.mark.parametrize("backbone", ["EfficientNetB0", "EfficientNetV2B0"])
def test_efficientnet_trains_saves_and_reloads_in_bfloat16(
    tmp_path: Path, policy, backbone: str
) -> None:
    """keras-team/keras#14950 and #16401: EfficientNet's input normalization
    failed under non-float32 policies; the model must train, save, reload."""
    import importlib.util

    import keras

    from kerastl import runtime

    script = generate(
        tmp_path,
        f"--mode feature-extraction --backbone {backbone} --image-size 32",
    )
    spec = importlib.util.spec_from_file_location("script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    runtime.set_mixed_precision("bfloat16")
    settings = module.Settings(data_dir=None, weights=None, image_size=32)
    model, _ = module.build_model(3, settings)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3))
    images = images.astype("float32")
    history = model.fit(images, np.arange(8) % 3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.get_layer("predictions").dtype_policy.name == "float32"
    saved = tmp_path / "model.keras"
    runtime.save_model_checked(model, saved, images[:2])

    keras.config.set_dtype_policy("float32")
    reloaded = keras.saving.load_model(saved)
    assert reloaded.get_layer("avg_pool").dtype_policy.name == "mixed_bfloat16"
    predictions = reloaded.predict(images, verbose=0)
    assert predictions.dtype == np.float32
    np.testing.assert_allclose(predictions, model.predict(images, verbose=0))


def test_loss_scaling_survives_a_resume(tmp_path: Path, policy) -> None:
    import keras
    import tensorflow as tf

    from kerastl import runtime

    runtime.set_mixed_precision("float16")
    images = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((images, np.arange(32) % 2)).batch(32)

    def start(epochs: int):
        inputs = keras.Input((4,), name="x")
        hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
        outputs = keras.layers.Dense(
            2, activation="softmax", dtype="float32", name="out"
        )(hidden)
        model = keras.Model(inputs, outputs, name="tiny")
        phase = runtime.Phase("head", epochs=epochs, learning_rate=0.01)
        run = runtime.Run(tmp_path, model, [phase])
        model.compile(
            optimizer=keras.optimizers.SGD(0.01),
            loss="sparse_categorical_crossentropy",
        )
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        run.fit(phase, data, validation_data=data, verbose=0)
        return model

    first = start(2)
    scale = float(first.optimizer.dynamic_scale)
    steps = int(first.optimizer.iterations)
    assert steps == 2  # one batch of 32 per epoch
    # Training on restores the optimizer, loss scale included, then continues.
    second = start(3)
    assert int(second.optimizer.iterations) == steps + 1
    assert float(second.optimizer.dynamic_scale) == pytest.approx(scale)


def test_a_script_in_bfloat16_with_xla(tmp_path: Path, digits_dir: Path) -> None:
    import keras

    script = generate(
        tmp_path,
        "--mode feature-extraction --backbone MobileNetV3Small --image-size 32",
    )
    options = (
        "--weights none --epochs 2 --no-augment --mixed-precision bfloat16 "
        "--jit-compile --output-dir out"
    )
    result = run_script(script, *on_data(digits_dir, options))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Precision: mixed_bfloat16 (as asked)" in result.stdout
    model = keras.saving.load_model(tmp_path / "out" / "model.keras")
    assert model.get_layer("avg_pool").dtype_policy.name == "mixed_bfloat16"
    assert model.predict(np.zeros((1, 32, 32, 3)), verbose=0).dtype == np.float32
