"""SigLIP (and SigLIP 2) and CLIP presets as backbones: their image towers.

No test downloads a preset: tiny SigLIP and CLIP models, built with KerasHub's
own constructors (2 image blocks at 32 px, a one-block text tower), are saved
with `save_to_preset` into local folders once for the session.
"""

import ast
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from kerastl import hub
from kerastl.hub_info import facts
from kerastl.render import render
from kerastl.spec import SpecError, make_spec
from tests import test_pitfalls
from tests.conftest import new_script, run_script
from tests.hub_backbones import save_image_and_text_preset, tiny_image_and_text

needs_keras_hub = pytest.mark.skipif(
    importlib.util.find_spec("keras_hub") is None, reason="keras-hub missing"
)
FAMILIES = ("SigLIP", "CLIP")


@pytest.fixture(scope="session")
def tower_presets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny SigLIP and a tiny CLIP preset folder, by family name."""
    import keras

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("towers")
    return {
        family: save_image_and_text_preset(
            tiny_image_and_text(family), folder / f"tiny_{family.lower()}"
        )
        for family in FAMILIES
    }


def build_source(mode: str, backbone: str) -> str:
    """The `build_model` function of the script `kerastl new` writes."""
    source = render(make_spec(mode=mode, backbone=backbone))
    build = test_pitfalls.function(ast.parse(source), "build_model")
    return str(ast.get_source_segment(source, build))


@needs_keras_hub
def test_the_scripts_take_the_image_tower_and_pool_as_the_family_does() -> None:
    """Step 1 keeps the image tower alone; step 4 is the preset's converter;
    step 6 pools as SigLIP and CLIP themselves do, not as DINOv2 does."""
    siglip = build_source("fine-tune", "siglip2_base_patch16_224")
    assert "keras_hub.models.SigLIPBackbone.from_preset(" in siglip
    assert "base_model = backbone.vision_encoder" in siglip
    assert "image_shape" not in siglip  # a tower's size is its preset's
    assert "keras_hub.layers.SigLIPImageConverter.from_preset(preset)" in siglip
    assert "SigLIP's attention-pooling head" in siglip
    clip = build_source("lora", "clip_vit_base_patch16")
    assert "keras_hub.models.CLIPBackbone.from_preset(" in clip
    assert "keras_hub.layers.CLIPImageConverter.from_preset(preset)" in clip
    assert "class token after the image tower's final layer norm" in clip
    assert "DINOv2" not in siglip + clip
    scripts = {
        (mode, name): ast.parse(render(make_spec(mode=mode, backbone=name)))
        for name in ("siglip2_base_patch16_224", "clip_vit_base_patch16")
        for mode in (*test_pitfalls.TRAINING_MODES, "lora")
    }
    for check in (
        test_pitfalls.test_batchnorm_stays_in_inference_mode,
        test_pitfalls.test_the_output_layer_is_float32,
        test_pitfalls.test_no_lambda_layers,
    ):
        check(scripts)


@needs_keras_hub
def test_the_preset_table_lists_siglip2_and_clip_with_their_facts() -> None:
    presets = hub.presets()
    siglip2 = presets["siglip2_so400m_patch16_512"]
    assert (siglip2.family.name, siglip2.default_size) == ("SigLIP", 512)
    assert presets["clip_vit_large_patch14_336"].default_size == 336
    shown = facts(presets["siglip2_base_patch16_224"])
    assert shown["image_tower"] == (
        "vision_encoder (SigLIPVisionEncoder); the text tower is left out"
    )
    assert str(shown["params"]).endswith("(image and text towers)")
    assert "attention-pooling head" in str(shown["pooling"])
    clip = make_spec(backbone="hf://someone/clip-vit-tuned")
    assert clip.backbone.family.name == "CLIP"  # not ViT, which "clip-vit" names
    siglip = make_spec(backbone="hf://google/siglip2-base-patch16-384")
    assert (siglip.backbone.family.name, siglip.image_size) == ("SigLIP", 384)
    with pytest.raises(SpecError, match="an image tower of 224 px"):
        make_spec(backbone="siglip2_base_patch16_224", image_size=256, weights="none")


@pytest.mark.slow
@needs_keras_hub
def test_a_local_tower_preset_gives_its_size_and_blocks(tower_presets) -> None:
    for family, folder in tower_presets.items():
        spec = make_spec(backbone=str(folder), mode="fine-tune")
        assert (spec.backbone.family.name, spec.image_size) == (family, 32)
        assert spec.backbone.num_blocks == 2


@pytest.mark.slow
@needs_keras_hub
def test_the_runtime_pools_unfreezes_adapts_and_explains_image_towers(
    tower_presets,
) -> None:
    """Pooling, whole blocks from the top, LoRA on query and value, Grad-CAM."""
    import keras
    import keras_hub

    from kerastl import runtime

    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    for family, folder in tower_presets.items():
        backbone = keras_hub.models.Backbone.from_preset(str(folder))
        base = backbone.vision_encoder
        with pytest.raises(runtime.ScriptError, match="takes 32 px images"):
            runtime.check_image_size(base, 64)
        inputs = keras.Input((32, 32, 3))
        tokens = base({"images": inputs}, training=False)
        pooled = runtime.pool_tokens(tokens, base)
        model = keras.Model(inputs, keras.layers.Dense(3, name="predictions")(pooled))
        expected = base.predict({"images": images}, verbose=0)
        if family == "CLIP":  # the class token, as CLIPVisionPooler takes it
            expected = expected[:, 0]
        features = keras.Model(inputs, pooled).predict(images, verbose=0)
        np.testing.assert_allclose(features, expected, atol=1e-5)
        # Fine-tune: the top block, with the final norm (and SigLIP's head).
        blocks = runtime.find_blocks(base)
        top = [layer.name.split("encoder_")[-1] for layer in list(blocks.values())[-1]]
        after = ["post_layer_norm", "head"] if family == "SigLIP" else ["layer_norm"]
        assert top == ["block_1", *after]
        base.trainable = False
        trained = runtime.unfreeze(base, 1)
        assert {id(w) for w in base.trainable_weights} == {
            id(w) for layer in trained for w in layer.trainable_weights
        }
        assert not any("block_0" in w.path for w in base.trainable_weights)
        # LoRA: the query and value of the top block's attention (and of
        # SigLIP's pooling head, which unfreezes with it).
        base.trainable = False
        adapted = runtime.add_lora(base, 1, rank=2)
        attentions = {
            layer.path.rsplit("/", 1)[0].split("encoder_")[-1] for layer in adapted
        }
        assert {layer.name for layer in adapted} == {"query", "value"}
        assert attentions == (
            {"block_1/self_attn", "head/attention"}
            if family == "SigLIP"
            else {"block_1/attention"}
        )
        # The summary names the adapted layers inside the blocks.
        runtime.train_lora(base)
        model.compile(optimizer="adam", loss="mse")
        trainable = runtime.trainable_summary(model).splitlines()[-1]
        assert trainable.endswith("/value, predictions") and "block_1/" in trainable
        # Grad-CAM inside the tower, where the patch tokens reach the head.
        heatmaps = runtime.grad_cam(model, images)
        assert heatmaps.shape == (2, 32, 32) and heatmaps.std() > 0.01


@pytest.mark.slow
@needs_keras_hub
def test_a_siglip_lora_script_runs_from_a_local_preset(
    tower_presets, tmp_path: Path, digits_dir: Path
) -> None:
    """One epoch of LoRA on the top block (and the pooling head) of the tower;
    best.keras goes back into the model with its adapters (SigLIP's probe is
    an unnamed weight), loads plainly, and is explained by Grad-CAM."""
    import keras

    script = new_script(
        tmp_path,
        *("--mode", "lora", "--backbone", str(tower_presets["SigLIP"])),
        *("--unfreeze", "1"),
    )
    result = run_script(
        script,
        *("--data-dir", str(digits_dir), "--epochs", "1", "--lora-rank", "2"),
        *("--tta", "off", "--output-dir", "run"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(
        r"^LoRA: rank 2, alpha [\d.]+, adapters on 4 layers of 'sig_lip_vision_encoder'",
        result.stdout,
        re.MULTILINE,
    ), result.stdout
    assert "No heatmaps" not in result.stdout
    run = tmp_path / "run"
    assert (run / "explanations.png").is_file() and (run / "lora.weights.h5").is_file()
    model = keras.models.load_model(run / "best.keras")
    assert model.get_layer("token_pool").output.shape == (None, 16)
