"""Each transfer-learning pitfall that shows in a generated script's text.

The pitfalls that only show at run time are caught elsewhere:
1, 2 and 5 in test_runtime_unfreeze.py; 7 in test_resume.py; 10 to 12 and 17
in test_runtime_data.py; 8, 11 and 13 in test_e2e.py; 15, 16 and 20 (the best
model of the run, no NaN saved, reruns after edits) in test_run.py.
"""

import ast
import re

import pytest

from kerastl import backbones
from kerastl.render import render
from kerastl.spec import make_spec

TRAINING_MODES = ("feature-extraction", "fine-tune")


def script(mode: str, backbone: str) -> str:
    return render(make_spec(mode=mode, backbone=backbone))


@pytest.fixture(scope="module")
def training_scripts() -> dict[tuple[str, str], str]:
    return {
        (mode, name): script(mode, name)
        for name in backbones.BACKBONES
        for mode in TRAINING_MODES
    }


def test_1_the_base_runs_in_inference_mode(training_scripts) -> None:
    for text in training_scripts.values():
        assert "x = base_model(x, training=False)" in text


def test_3_each_backbone_gets_exactly_its_preprocessing(training_scripts) -> None:
    for (_, name), text in training_scripts.items():
        entry = backbones.BACKBONES[name]
        calls = re.findall(r"keras\.applications\.(\w+)\.preprocess_input", text)
        if entry.family.preprocessing == "built-in":
            assert calls == [], name
            assert "x = inputs\n" in text
        else:
            assert calls == [entry.module], name
        assert "Rescaling" not in text  # never a second, hand-made normalization


def test_4_the_output_layer_is_float32(training_scripts) -> None:
    for text in training_scripts.values():
        assert 'activation="softmax", dtype="float32"' in text


def test_6_optimizer_and_learning_rates_come_from_the_family() -> None:
    convnext = script("fine-tune", "ConvNeXtTiny")
    assert "keras.optimizers.AdamW(learning_rate=learning_rate)" in convnext
    assert "FINE_TUNE_LEARNING_RATE = 5e-05" in convnext
    resnet = script("fine-tune", "ResNet50")
    assert "keras.optimizers.Adam(learning_rate=learning_rate)" in resnet
    assert (
        "LEARNING_RATE = 0.001" in resnet
        and "FINE_TUNE_LEARNING_RATE = 1e-05" in resnet
    )


def test_8_no_lambda_layers_and_a_checked_keras_file(training_scripts) -> None:
    for text in training_scripts.values():
        assert "Lambda" not in text
        assert "run.finish(val_ds)" in text


def test_9_pure_keras_3(training_scripts) -> None:
    for text in training_scripts.values():
        modules = {
            alias.name
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert "keras" in modules
        assert not {"tensorflow", "tf_keras", "tensorflow_hub"} & modules
        assert "tf.keras" not in text


def test_13_augmentation_stays_out_of_the_model(training_scripts) -> None:
    for text in training_scripts.values():
        build = text.split("def build_model", 1)[1].split("\ndef ", 1)[0]
        assert "Random" not in build
        assert "augmentation=augmentation()" in text


def test_14_the_test_folder_is_read_only_after_the_model_is_chosen(
    training_scripts,
) -> None:
    for text in training_scripts.values():
        main = text.split("def main", 1)[1]
        assert main.index("shipped = run.finish(val_ds)") < main.index(
            "runtime.load_test_folder("
        )
        assert "class_weight=class_weight" in text  # --class-weight auto reaches fit()
