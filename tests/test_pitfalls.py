"""The transfer-learning traps that show in a generated script's code.

Each test names its trap and a public report of it. The traps that only show
when a script runs are tested where they run: BatchNorm and recompiling in
test_runtime_unfreeze.py, resuming in test_resume.py and test_run.py, the
folders and the cache in test_runtime_data.py, saving and reloading in
test_e2e.py.
"""

import ast
from pathlib import Path

import pytest

from kerastl import backbones
from kerastl.render import render, script_source
from kerastl.spec import make_spec

SHIP_MODULE = Path(__file__).resolve().parents[1] / "kerastl" / "runtime" / "ship.py"

TRAINING_MODES = ("feature-extraction", "fine-tune")


def script(mode: str, backbone: str) -> str:
    return render(make_spec(mode=mode, backbone=backbone))


@pytest.fixture(scope="module")
def training_scripts() -> dict[tuple[str, str], ast.Module]:
    """The syntax tree of every training script: the templates' output, whose
    tree black keeps (test_render.py checks every script after black)."""
    return {
        (mode, name): ast.parse(script_source(make_spec(mode=mode, backbone=name)))
        for name in backbones.BACKBONES
        for mode in TRAINING_MODES
    }


def function(tree: ast.Module, name: str) -> ast.FunctionDef:
    (found,) = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name == name
    ]
    return found


def calls(node: ast.AST) -> list[ast.Call]:
    """The calls in `node`, in the order they stand in the source."""
    found = [call for call in ast.walk(node) if isinstance(call, ast.Call)]
    return sorted(found, key=lambda call: (call.lineno, call.col_offset))


def dotted(node: ast.AST) -> str:
    return ast.unparse(node)


def keyword(call: ast.Call, name: str) -> str | None:
    values = [dotted(kw.value) for kw in call.keywords if kw.arg == name]
    return values[0] if values else None


def setting_default(tree: ast.Module, name: str) -> object:
    settings = next(
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name == "Settings"
    )
    for statement in settings.body:
        if isinstance(statement, ast.AnnAssign) and dotted(statement.target) == name:
            assert isinstance(statement.value, ast.Call)
            return ast.literal_eval(statement.value.args[0])
    raise AssertionError(f"no setting {name}")


def test_batchnorm_stays_in_inference_mode(training_scripts) -> None:
    """Unfrozen BatchNorm wrecks fine-tuning unless the base is called with
    training=False (keras-team/keras#11590; the Keras transfer-learning guide)."""
    for tree in training_scripts.values():
        base_calls = [
            call
            for call in calls(function(tree, "build_model"))
            if dotted(call.func) == "base_model"
        ]
        assert [keyword(call, "training") for call in base_calls] == ["False"]


def test_each_backbone_gets_exactly_its_preprocessing(training_scripts) -> None:
    """Wrong or doubled preprocessing (keras-team/keras-io#1549,
    tensorflow/tensorflow#48412): step 4 applies the family's rule, once."""
    for (_, name), tree in training_scripts.items():
        entry = backbones.BACKBONES[name]
        preprocess = [
            dotted(call.func)
            for call in calls(function(tree, "build_model"))
            if dotted(call.func).endswith("preprocess_input")
        ]
        expected = (
            []
            if entry.family.preprocessing == "built-in"
            else [f"keras.applications.{entry.module}.preprocess_input"]
        )
        assert preprocess == expected, name
        assert "Rescaling" not in ast.unparse(tree)


def test_the_output_layer_is_float32(training_scripts) -> None:
    """A float16 softmax under mixed precision gives NaN losses
    (tensorflow/tensorflow#34406)."""
    for tree in training_scripts.values():
        (dense,) = [
            call
            for call in calls(function(tree, "build_model"))
            if dotted(call.func) == "keras.layers.Dense"
        ]
        assert keyword(dense, "dtype") == "'float32'"
        assert keyword(dense, "activation") == "'softmax'"


def test_optimizer_and_learning_rates_come_from_the_family() -> None:
    """One learning rate for every backbone fails ConvNeXt
    (keras-team/keras-cv#1235): the registry's family defaults are used."""
    convnext = ast.parse(script("fine-tune", "ConvNeXtTiny"))
    optimizers = [
        dotted(call.func)
        for call in calls(function(convnext, "make_optimizer"))
        if dotted(call.func).startswith("keras.optimizers.")
    ]
    assert optimizers == ["keras.optimizers.AdamW"]
    assert setting_default(convnext, "fine_tune_learning_rate") == 5e-05
    resnet = ast.parse(script("fine-tune", "ResNet50"))
    assert setting_default(resnet, "learning_rate") == 0.001
    assert setting_default(resnet, "fine_tune_learning_rate") == 1e-05


def test_no_lambda_layers(training_scripts) -> None:
    """Lambda layers are refused by safe_mode when a model is reloaded
    (keras-team/keras#18284)."""
    for tree in training_scripts.values():
        assert "Lambda" not in ast.unparse(tree)


def test_pure_keras_3(training_scripts) -> None:
    """Keras 2 objects in a Keras 3 model fail (tensorflow/tensorflow#65419)."""
    for tree in training_scripts.values():
        modules = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert "keras" in modules
        assert not {"tensorflow", "tf_keras", "tensorflow_hub"} & modules
        assert "tf.keras" not in ast.unparse(tree)


def test_augmentation_stays_out_of_the_model(training_scripts) -> None:
    """Augmentation layers inside the model break its export
    (keras-team/keras#19108): they go to the input pipeline."""
    for tree in training_scripts.values():
        assert "Random" not in ast.unparse(function(tree, "build_model"))
        main = function(tree, "main")
        loads = [
            call
            for call in calls(main)
            if dotted(call.func) == "runtime.load_training_data"
        ]
        assert [keyword(call, "augmentation") for call in loads] == ["augment"]


def test_the_test_folder_is_read_after_the_model_is_chosen(training_scripts) -> None:
    """Test images that pick an epoch or a model leak into the result: the
    report reads --test-dir only after the file to ship is chosen."""
    for tree in training_scripts.values():
        (ship,) = [
            call
            for call in calls(function(tree, "main"))
            if dotted(call.func) == "runtime.ship"
        ]
        assert keyword(ship, "test_dir") == "settings.test_dir"
    runtime_ship = ast.parse(SHIP_MODULE.read_text())
    order = [dotted(call.func) for call in calls(function(runtime_ship, "ship"))]
    assert order.index("run.finish") < order.index("choose_model")
    assert order.index("choose_model") < order.index("write_report")
    (report,) = [
        call
        for call in calls(function(runtime_ship, "ship"))
        if dotted(call.func) == "write_report"
    ]
    assert keyword(report, "test_dir") == "test_dir"


def test_class_weights_reach_fit(training_scripts) -> None:
    """Class imbalance hidden behind accuracy: --class-weight auto's weights
    must reach fit() (they were once dropped on the way)."""
    for tree in training_scripts.values():
        (fit,) = [
            call
            for call in calls(function(tree, "train"))
            if dotted(call.func) == "run.fit"
        ]
        assert keyword(fit, "class_weight") == "data.class_weight"
