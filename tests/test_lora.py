"""--mode lora: adapters train on a frozen base; what it saves loads plainly.

One LoRA script (MobileNetV3Small at 32 px, the demo's base pre-trained on the
digits 0-4) trains two epochs once for the module; the tests read that run,
stop a second run with SIGTERM and resume it, and check the runtime on a tiny
KerasHub ViT built in this process.
"""

import csv
import importlib.util
import json
import re
import signal
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, new_script, run_script
from tests.test_resume import assert_same_run, checkpoint_epoch, stop_when

pytestmark = pytest.mark.slow
BASE = REPO / "examples" / "digits_base" / "mobilenetv3small_32px.weights.h5"


def arguments(digits_dir: Path, output: Path) -> list[str]:
    return [
        *("--data-dir", str(digits_dir), "--weights", str(BASE)),
        *("--epochs", "2", "--lora-rank", "4", "--output-dir", str(output)),
    ]


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lora")
    return new_script(
        folder,
        *("--mode", "lora", "--backbone", "MobileNetV3Small", "--image-size", "32"),
        *("--unfreeze", "2"),
    )


@pytest.fixture(scope="module")
def lora_run(script: Path, digits_dir: Path) -> tuple[Path, str]:
    """The run trained once, uninterrupted, with a TFLite export."""
    output = script.parent / "run"
    result = run_script(script, *arguments(digits_dir, output), "--export", "tflite")
    assert result.returncode == 0, result.stderr[-3000:]
    return output, result.stdout


def test_only_the_adapters_and_the_head_train(lora_run: tuple[Path, str]) -> None:
    """The adapters, their layers' biases and the head: no kernel of the base."""
    _, stdout = lora_run
    adapters = re.search(
        r"^LoRA: rank 4, alpha 8.0, adapters on \d+ layers of 'MobileNetV3Small': "
        r"([\d,]+) weights$",
        stdout,
        re.MULTILINE,
    )
    (line,) = re.findall(r"^trainable parameters: .*$", stdout, re.MULTILINE)  # once
    trained, total = (
        int(number.replace(",", ""))
        for number in re.fullmatch(
            r"trainable parameters: ([\d,]+) of ([\d,]+) \([\d.]+%\)", line
        ).groups()
    )
    head = 576 * 10 + 10  # the pooled features to ten classes
    assert 0 <= trained - head - int(adapters[1].replace(",", "")) < 2_000  # biases
    assert trained / total < 0.05
    assert "BatchNormalization layers that train: 0 of" in stdout


def load_script(path: Path):
    spec = importlib.util.spec_from_file_location("lora_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_saved_models_load_plainly_and_the_adapters_alone_rebuild_them(
    script: Path, digits_dir: Path, lora_run: tuple[Path, str]
) -> None:
    """best.keras and model.keras load with plain Keras; lora.weights.h5 on a
    freshly built base predicts as the model shipped."""
    import keras

    from kerastl import runtime

    output, stdout = lora_run
    shipped = (
        "best.keras"
        if "Better on the validation data: best" in stdout
        else "model.keras"
    )
    images = np.stack(
        [
            np.asarray(keras.utils.load_img(path))
            for path in sorted(digits_dir.glob("*/*.png"))[::12]
        ]
    ).astype("float32")
    expected = {
        name: keras.models.load_model(output / name).predict(images, verbose=0)
        for name in ("best.keras", "model.keras")
    }
    module = load_script(script)
    settings = runtime.parse_settings(module.Settings, arguments(digits_dir, output))
    model, _ = module.build_model(10, settings)
    runtime.load_adapters(model, str(output / "lora.weights.h5"))
    np.testing.assert_allclose(
        model.predict(images, verbose=0), expected[shipped], atol=1e-5
    )


def test_exports_carry_the_merged_weights(lora_run: tuple[Path, str]) -> None:
    output, _ = lora_run
    exports = json.loads((output / "metrics.json").read_text())["exports"]
    assert set(exports) == {"export/model.tflite"}
    for figures in exports.values():
        assert figures["agreement"] == 1.0
        assert figures["max_probability_difference"] < 1e-4


def test_a_stopped_lora_run_resumes_exactly(
    script: Path, digits_dir: Path, tmp_path: Path, lora_run: tuple[Path, str]
) -> None:
    """Killed in epoch 2: epoch 1's checkpoint holds W, A and B apart, so the
    rerun ends as the uninterrupted run (history and weights), not from
    zeroed adapters."""
    output = tmp_path / "run"
    args = arguments(digits_dir, output)
    status, _ = stop_when(script, args, lambda: checkpoint_epoch(output) >= 1)
    assert status == -signal.SIGKILL
    result = run_script(script, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Phase 'lora', epochs 2 to 2" in result.stdout
    assert_same_run(output, lora_run[0])
    with open(output / "history.csv", newline="") as file:
        assert [row["phase"] for row in csv.DictReader(file)] == ["lora", "lora"]


def tiny_vit():
    """A KerasHub ViT of two blocks at 32 px with a softmax head on its class token."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)  # the same base weights each time
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3),
        patch_size=8,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        mlp_dim=32,
    )
    inputs = keras.Input((32, 32, 3))
    tokens = backbone(inputs, training=False)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(
        tokens[:, 0]
    )
    return keras.Model(inputs, outputs), backbone


def test_lora_on_a_kerashub_vit_targets_query_and_value(tmp_path: Path) -> None:
    import keras

    from kerastl.runtime import add_lora, compile_checked, load_adapters, train_lora
    from kerastl.runtime.lora import lora_layers
    from kerastl.runtime.lora_saving import merged_model, save_adapters, unmerged_saving

    model, backbone = tiny_vit()
    top = add_lora(backbone, 1, rank=2)
    assert (
        sorted(layer.path.split("/")[-3:][0] for layer in top)
        == ["transformer_block_2"] * 2
    )
    model, backbone = tiny_vit()
    layers = add_lora(backbone, "all", rank=2, alpha=4)
    assert sorted(layer.name for layer in layers) == [
        "query",
        "query",
        "value",
        "value",
    ]
    trainable = train_lora(backbone)
    compile_checked(
        model, backbone, trainable, optimizer="adam", loss="categorical_crossentropy"
    )
    assert len(model.trainable_weights) == 3 * 4 + 2  # A, B and bias; the head
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    labels = keras.utils.to_categorical(np.arange(8) % 3, 3)
    model.fit(images, labels, epochs=2, verbose=0)
    expected = model.predict(images, verbose=0)
    # A checkpoint keeps W, A and B apart; Keras's own saving merges and zeroes.
    path = str(tmp_path / "checkpoint.weights.h5")
    with unmerged_saving(model):
        model.save_weights(path)
    copy, copy_backbone = tiny_vit()
    add_lora(copy_backbone, "all", rank=2, alpha=4)
    with unmerged_saving(copy):
        copy.load_weights(path)
    for actual, wanted in zip(copy.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(actual, wanted)
    copy.load_weights(path)  # merged by Keras where no unmerged_saving
    assert not any(np.any(layer.lora_kernel_b.numpy()) for layer in lora_layers(copy))
    # The merged model: no LoRA layer, the same function.
    merged = merged_model(model)
    assert not lora_layers(merged)
    np.testing.assert_allclose(merged.predict(images, verbose=0), expected, atol=1e-5)
    # The adapters and the head alone rebuild the model on a fresh base.
    save_adapters(model, str(tmp_path / "lora.weights.h5"))
    fresh, fresh_backbone = tiny_vit()
    add_lora(fresh_backbone, "all", rank=2, alpha=4)
    load_adapters(fresh, str(tmp_path / "lora.weights.h5"))
    np.testing.assert_allclose(fresh.predict(images, verbose=0), expected, atol=1e-5)
    # A .keras file of it: KerasHub's configs do not record the adapters, so
    # the file holds the merged kernels alone; they go back in, in order.
    from kerastl.runtime.weights_files import load_weights_into

    model.save(tmp_path / "model.keras")
    assert len(keras.saving.load_model(tmp_path / "model.keras").weights) < len(
        model.weights
    )
    again, again_backbone = tiny_vit()
    add_lora(again_backbone, "all", rank=2, alpha=4)
    load_weights_into(again, str(tmp_path / "model.keras"))
    np.testing.assert_allclose(again.predict(images, verbose=0), expected, atol=1e-5)
