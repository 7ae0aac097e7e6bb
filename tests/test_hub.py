"""KerasHub presets as backbones: the preset table, `--backbone`, the scripts.

No test downloads a preset: the scripts run on a tiny DINOv2 backbone built
with KerasHub's own constructor, pre-trained on the digits 0-4 and saved as a
local preset folder (examples/digits_hub_base/make_base.py).
"""

import ast
import contextlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kerastl import hub
from kerastl.cli import cli
from kerastl.render import render
from kerastl.spec import SpecError, make_spec
from tests import test_pitfalls
from tests.conftest import REPO, new_script, script_env

HAS_KERAS_HUB = importlib.util.find_spec("keras_hub") is not None
needs_keras_hub = pytest.mark.skipif(not HAS_KERAS_HUB, reason="keras-hub missing")


@pytest.mark.slow
@needs_keras_hub
def test_preset_table_is_the_installed_keras_hubs() -> None:
    """hub_presets.json is what `python -m kerastl.hub_presets` writes now."""
    from kerastl.hub_presets import installed_table

    assert hub.preset_table() == installed_table()


def test_preset_table_covers_dinov2_dinov3_vit_siglip_and_clip() -> None:
    classes = {entry.family.backbone_class for entry in hub.presets().values()}
    assert classes == {
        "DINOV2Backbone",
        "DINOV3Backbone",
        "ViTBackbone",
        "SigLIPBackbone",
        "CLIPBackbone",
    }
    vit = hub.presets()["vit_base_patch16_384_imagenet"]
    assert (vit.default_size, vit.family.needs_preset_size) == (384, True)


@needs_keras_hub
def test_backbone_takes_a_name_a_handle_or_a_folder(tmp_path: Path) -> None:
    assert make_spec(backbone="dinov2_small").backbone.family.name == "DINOv2"
    handle = "kaggle://keras/dinov2/keras/dinov2_base/2"
    assert make_spec(backbone=handle).backbone.name == "dinov2_base"
    hf = make_spec(backbone="hf://someone/my-dinov3-tuned", mode="feature-extraction")
    assert (hf.backbone.family.name, hf.backbone.name) == ("DINOv3", "my_dinov3_tuned")
    folder = tmp_path / "My Preset"
    folder.mkdir()
    config = {"image_shape": [64, 64, 3], "num_layers": 6}
    (folder / "config.json").write_text(
        json.dumps({"class_name": "ViTBackbone", "config": config})
    )
    spec = make_spec(backbone=str(folder))
    assert (spec.backbone.name, spec.image_size, spec.unfreeze) == (
        "my_preset",
        64,
        (2,),
    )
    assert spec.options()["backbone"] == str(folder)  # the regenerate command's


@needs_keras_hub
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "as-is"}, "--mode as-is: dinov2_small is a KerasHub backbone"),
        ({"unfreeze": ("layers_3",)}, "unfreezes a number of blocks or 'all'"),
        ({"backbone": "hf://someone/model"}, "cannot tell the backbone class"),
        ({"backbone": "dinov2_smal"}, "did you mean: dinov2_small"),
        ({"image_size": 224, "backbone": "vit_base_patch16_384_imagenet"}, "384"),
    ],
)
def test_bad_hub_options_fail_in_one_line(options: dict, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        make_spec(**{"backbone": "dinov2_small"} | options)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_folder_of_another_class_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        '{"class_name": "GemmaBackbone", "config": {}}'
    )
    with pytest.raises(SpecError, match="holds a GemmaBackbone; kerastl takes"):
        make_spec(backbone=str(tmp_path))


def test_without_keras_hub_new_says_how_to_install(monkeypatch, capsys) -> None:
    from kerastl.cli import main

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SystemExit) as exit:
        main(["new", "--backbone", "dinov2_small", "--stdout"])
    assert exit.value.code == 1  # an install to make, not a usage error
    output = capsys.readouterr()
    assert output.out == ""
    assert output.err == (
        "kerastl: error: dinov2_small is a KerasHub preset and keras-hub is not "
        "installed: pip install 'kerastl[hub]'\n"
    )


@needs_keras_hub
def test_hub_scripts_pass_the_pitfall_invariants() -> None:
    """The invariants of tests/test_pitfalls.py that apply to any backbone."""
    scripts = {
        (mode, name): ast.parse(render(make_spec(mode=mode, backbone=name)))
        for name in ("dinov2_with_registers_small", "vit_base_patch16_224_imagenet")
        for mode in test_pitfalls.TRAINING_MODES
    }
    for check in (
        test_pitfalls.test_batchnorm_stays_in_inference_mode,
        test_pitfalls.test_the_output_layer_is_float32,
        test_pitfalls.test_no_lambda_layers,
        test_pitfalls.test_pure_keras_3,
        test_pitfalls.test_augmentation_stays_out_of_the_model,
        test_pitfalls.test_the_test_folder_is_read_after_the_model_is_chosen,
        test_pitfalls.test_class_weights_reach_fit,
    ):
        check(scripts)
    for tree in scripts.values():
        source = ast.unparse(test_pitfalls.function(tree, "build_model"))
        assert "keras_hub.models." in source and "preprocess_input" not in source
        assert "import keras_hub" in ast.unparse(tree)
    plain = render(make_spec(backbone="MobileNetV3Small"))
    assert "keras_hub" not in plain


#: A tiny DINOv2 pre-trained on the digits 0-4 (examples/digits_hub_base/make_base.py).
DIGITS_PRESET = REPO / "examples" / "digits_hub_base" / "tiny_dinov2"
#: Ten images of each digit 5-9 to train on, thirty others to validate on.
DIGITS_5TO9 = REPO / "examples" / "data" / "digits_5to9"
#: The linear probe on the pre-trained preset beats its architecture's random
#: weights by this much validation accuracy, at least (measured: 0.81 against 0.53).
MIN_TRANSFER_GAIN = 0.15


@pytest.mark.slow
@needs_keras_hub
def test_linear_probe_transfers_through_the_feature_cache(tmp_path: Path) -> None:
    """Feature extraction without augmentation runs the frozen base once, and
    the pre-trained preset beats the same script with --weights none."""
    script = new_script(
        tmp_path, "--mode", "feature-extraction", "--backbone", str(DIGITS_PRESET)
    )
    data = (
        "--data-dir",
        str(DIGITS_5TO9 / "train"),
        "--val-dir",
        str(DIGITS_5TO9 / "val"),
    )
    options = ("--epochs", "30", "--learning-rate", "0.01", "--batch-size", "10")
    runs = {}
    with contextlib.ExitStack() as logs:
        for name in ("pretrained", "none"):
            weights = str(DIGITS_PRESET) if name == "pretrained" else "none"
            runs[name] = subprocess.Popen(
                [sys.executable, str(script), *data, *options, "--no-augment"]
                + ["--weights", weights, "--output-dir", name],
                cwd=tmp_path,
                env=script_env(),
                stdout=logs.enter_context((tmp_path / f"{name}.log").open("w")),
                stderr=subprocess.STDOUT,
            )
        for process in runs.values():
            process.wait(timeout=600)
    accuracy = {}
    for name, process in runs.items():
        log = (tmp_path / f"{name}.log").read_text()
        assert process.returncode == 0, log[-3000:]
        assert "Features of the training images: running the frozen base once" in log
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        accuracy[name] = metrics["validation"]["accuracy"]
    assert accuracy["pretrained"] - accuracy["none"] >= MIN_TRANSFER_GAIN, accuracy


def test_keras_hub_is_required_only_by_scripts_that_import_it(monkeypatch) -> None:
    """The runtime (and its --standalone copy) asks for keras-hub in one line,
    only when the script being run imports it."""
    from kerastl.runtime import requirements

    hub_script = render(make_spec(backbone="dinov2_small"))
    plain_script = render(make_spec(backbone="MobileNetV3Small"))
    monkeypatch.setattr(requirements, "installed_version", lambda package: None)
    assert requirements.hub_requirement(plain_script) is None
    message = requirements.hub_requirement(hub_script)
    assert message == (
        "this script uses a KerasHub backbone and needs keras-hub>=0.32 "
        "(not installed): pip install -U 'keras-hub>=0.32'"
    )
    monkeypatch.setattr(requirements, "installed_version", lambda package: "0.32.0")
    assert requirements.hub_requirement(hub_script) is None


@pytest.mark.slow
@needs_keras_hub
def test_runtime_pools_normalizes_and_unfreezes_by_transformer_block(
    capsys, tmp_path: Path
) -> None:
    import keras
    import keras_hub
    import numpy as np

    from kerastl import runtime

    base = keras_hub.models.Backbone.from_preset(str(DIGITS_PRESET))
    assert [block.name for block in runtime.transformer_blocks(base)] == [
        "layers_0",
        "layers_1",
    ]
    blocks = runtime.find_blocks(base)  # the patch embedding and final norm join
    assert [[layer.name for layer in layers] for layers in blocks.values()] == [
        ["dinov2_backbone_embeddings", "layers_0"],
        ["layers_1", "dinov2_backbone_layernorm"],
    ]
    # Step 6: the class token beside the mean of the patches, the register left out.
    tokens = np.random.default_rng(0).normal(size=(2, 18, 32)).astype("float32")
    inputs = keras.Input(shape=(18, 32))
    pooled = keras.Model(inputs, runtime.pool_tokens(inputs, base))(tokens)
    expected = np.concatenate([tokens[:, 0], tokens[:, 2:].mean(axis=1)], axis=-1)
    np.testing.assert_allclose(pooled, expected, atol=1e-6)
    # Step 4: the converter's scaling without its resizing.
    converter = keras_hub.layers.DINOV2ImageConverter.from_preset(str(DIGITS_PRESET))
    images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        runtime.converter_rescaling(converter)(images), converter(images), rtol=1e-5
    )
    # Fine-tune: the top block trains with the final norm; the stages check out.
    base.trainable = False
    model_inputs = keras.Input(shape=(32, 32, 3))
    x = runtime.pool_tokens(base({"images": model_inputs}, training=False), base)
    model = keras.Model(model_inputs, keras.layers.Dense(5)(x))
    runtime.check_unfreeze_stages(base, [1, 2, "all"])
    assert not base.trainable_weights
    trainable = runtime.unfreeze(base, 1)
    runtime.compile_checked(model, base, trainable, optimizer="adam", loss="mse")
    top = {id(w) for layer in blocks["layers_1"] for w in layer.trainable_weights}
    assert {id(w) for w in base.trainable_weights} == top
    # --layer-decay: each block at half the rate of the block above it. DINOv2's
    # embeddings stay frozen: keras-hub rebuilds them when it loads a model.
    trainable = runtime.unfreeze(base, "all")
    embeddings = blocks["layers_0"][0]
    assert not embeddings.trainable and embeddings not in trainable
    runtime.compile_checked(model, base, trainable, optimizer="adam", loss="mse")
    model.fit(images, np.ones((2, 5)), verbose=0)  # trained, it saves and reloads
    runtime.save_model_checked(model, tmp_path / "model.keras", images)
    capsys.readouterr()
    runtime.layer_decay(keras.optimizers.SGD, 0.1, base, 0.5)
    assert capsys.readouterr().out.strip() == (
        "Layer decay 0.5: the head and the top block (layers_1) train at 0.1, "
        "the lowest trained block (layers_0) at 0.05"
    )


def test_info_shows_a_presets_facts_without_keras_hub(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    result = CliRunner().invoke(cli, ["info", "dinov2_with_registers_small"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split(None, 1) for line in result.output.splitlines()[:3])
    assert lines["source"].strip() == (
        f"KerasHub {hub.keras_hub_version()}'s preset table (nothing downloaded)"
    )
    assert "keras_hub.models.DINOV2Backbone" in result.output
    assert "keras_hub.layers.DINOV2ImageConverter" in result.output


def test_a_preset_folder_that_does_not_exist_is_refused_before_loading(
    tmp_path: Path,
) -> None:
    import argparse

    from kerastl.runtime import preset_option

    assert preset_option("dinov2_small") == "dinov2_small"
    assert preset_option("hf://google/siglip2-base-patch16-224").startswith("hf://")
    assert preset_option("none") is None
    assert preset_option(str(tmp_path)) == str(tmp_path)
    with pytest.raises(argparse.ArgumentTypeError, match="preset folder .* not exist"):
        preset_option(str(tmp_path / "gone"))
