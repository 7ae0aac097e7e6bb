"""KerasHub presets as backbones: the preset table, `--backbone`, the scripts.

No test downloads a preset: the scripts run on a tiny DINOv2 backbone built
with KerasHub's own constructor and saved as a local preset folder.
"""

import ast
import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kerastl import hub
from kerastl.cli import cli
from kerastl.render import render
from kerastl.spec import SpecError, make_spec
from tests import test_pitfalls
from tests.conftest import new_script, run_script
from tests.hub_backbones import save_preset, tiny_dinov2

HAS_KERAS_HUB = importlib.util.find_spec("keras_hub") is not None
needs_keras_hub = pytest.mark.skipif(not HAS_KERAS_HUB, reason="keras-hub missing")


@pytest.mark.slow
@needs_keras_hub
def test_preset_table_is_the_installed_keras_hubs() -> None:
    """hub_presets.json is what `python -m kerastl.hub_presets` writes now."""
    from kerastl.hub_presets import installed_table

    assert hub.preset_table() == installed_table()


def test_preset_table_covers_dinov2_dinov3_and_vit() -> None:
    classes = {entry.family.backbone_class for entry in hub.presets().values()}
    assert classes == {"DINOV2Backbone", "DINOV3Backbone", "ViTBackbone"}
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


def test_without_keras_hub_new_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    result = CliRunner().invoke(cli, ["new", "--backbone", "dinov2_small", "--stdout"])
    assert result.exit_code != 0
    last = result.output.strip().splitlines()[-1]
    assert "keras-hub is not installed: pip install 'kerastl[hub]'" in last


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


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DINOv2 backbone of 2 blocks at 32 pixels, saved as a local preset."""
    pytest.importorskip("keras_hub")
    return save_preset(tiny_dinov2(), tmp_path_factory.mktemp("hub") / "tiny_dinov2")


@pytest.mark.slow
def test_linear_probe_runs_the_base_once(
    tiny_preset: Path, digits_dir: Path, tmp_path: Path
) -> None:
    """Feature extraction without augmentation: the feature cache's one pass."""
    script = new_script(
        tmp_path, "--mode", "feature-extraction", "--backbone", str(tiny_preset)
    )
    result = run_script(
        script,
        *("--data-dir", str(digits_dir), "--epochs", "2", "--no-augment"),
        *("--output-dir", "run"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Features of the training images: running the frozen base once" in (
        result.stdout
    )
    assert (tmp_path / "run" / "model.keras").is_file()


@pytest.mark.slow
def test_fine_tune_unfreezes_the_top_block_with_layer_decay(
    tiny_preset: Path, digits_dir: Path, tmp_path: Path
) -> None:
    script = new_script(tmp_path, "--backbone", str(tiny_preset), "--unfreeze", "2")
    result = run_script(
        script,
        *("--data-dir", str(digits_dir), "--epochs", "1", "--fine-tune-epochs", "1"),
        *("--layer-decay", "0.5", "--output-dir", "run"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the top block (layers_1) train at" in result.stdout
    assert "the lowest trained block (layers_0)" in result.stdout
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 2  # the header, the head's epoch, the stage's


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
