"""Every backbone in every mode renders a valid, black-stable, ruff-clean script."""

import ast
import re
import sys

import pytest

from kerastl import backbones
from kerastl.filters import UnsafeValueError, pyident, pyrepr
from kerastl.inline import RUNTIME_DIR, InlineError, inline_runtime
from kerastl.render import render
from kerastl.spec import MODES, make_spec
from tests.quality import assert_black_stable, assert_steps_in_order, ruff_check


def all_scripts() -> dict[str, str]:
    scripts = {}
    for name in backbones.BACKBONES:
        for mode in MODES:
            spec = make_spec(mode=mode, backbone=name)
            scripts[spec.output] = render(spec)
    return scripts


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    return all_scripts()


def test_every_backbone_and_mode_renders(scripts: dict[str, str]) -> None:
    assert len(scripts) == len(backbones.BACKBONES) * len(MODES) == 120
    for name, text in scripts.items():
        compile(text, name, "exec")
        assert_black_stable(text)
        if name.startswith("train_"):
            assert_steps_in_order(text)


def test_every_script_passes_ruff(scripts: dict[str, str]) -> None:
    ruff_check(scripts)


def imported_packages(nodes) -> set[str]:
    return {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in nodes
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }


@pytest.mark.parametrize("mode", MODES)
def test_standalone_scripts_do_not_import_kerastl(mode: str) -> None:
    text = render(make_spec(mode=mode, backbone="MobileNetV3Small", standalone=True))
    compile(text, "standalone", "exec")
    assert_black_stable(text)
    tree = ast.parse(text)
    everywhere, top_level = imported_packages(ast.walk(tree)), imported_packages(
        tree.body
    )
    assert "kerastl" not in everywhere
    # At the top only the standard library and what a Keras user has anyway;
    # the optional packages are imported where they are used, when they are.
    assert top_level - sys.stdlib_module_names <= {"keras", "numpy", "tensorflow"}
    assert everywhere - sys.stdlib_module_names <= {
        "keras",
        "numpy",
        "tensorflow",
        "matplotlib",
        "onnxruntime",
        "ai_edge_litert",
    }
    ruff_check({"standalone.py": text})


def test_standalone_copies_runtime_source_verbatim() -> None:
    """The inlined helpers are the runtime's own source, not a second copy."""
    source = (RUNTIME_DIR / "unfreeze.py").read_text()
    node = next(
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef) and node.name == "find_blocks"
    )
    text = render(make_spec(mode="fine-tune", backbone="ResNet50", standalone=True))
    assert ast.get_source_segment(source, node) in text
    assert not re.search(r"(?<![\w.])runtime\.", text)  # banners name kerastl.runtime.x


def test_the_header_records_options_as_data() -> None:
    spec = make_spec(mode="fine-tune", backbone="densenet121", unfreeze=("2", "all"))
    line = next(
        line
        for line in render(spec).splitlines()
        if line.startswith("# kerastl-options:")
    )
    options = ast.literal_eval(line.split(":", 1)[1].strip())
    assert options == spec.options()
    assert options["unfreeze"] == [2, "all"] and options["backbone"] == "DenseNet121"


def test_pyrepr_round_trips_hostile_text() -> None:
    for text in [
        '"""',
        "'; import os; '",
        "a\nb",
        "\\",
        "__import__('os').system('x')",
        "\u2028",
    ]:
        literal = pyrepr(text)
        assert ast.literal_eval(literal) == text
        assert "\n" not in literal


def test_pyrepr_refuses_non_literals() -> None:
    with pytest.raises(UnsafeValueError):
        pyrepr(object())
    with pytest.raises(UnsafeValueError):
        pyrepr(float("nan"))


@pytest.mark.parametrize("name", ["keras.applications.ResNet50", "resnet_v2", "x1"])
def test_pyident_accepts_identifiers(name: str) -> None:
    assert pyident(name) == name


@pytest.mark.parametrize("name", ["a b", "import", "x;y", "1x", "os.system('x')", ""])
def test_pyident_refuses_anything_else(name: str) -> None:
    with pytest.raises(UnsafeValueError):
        pyident(name)


def test_inlining_needs_the_runtime_import() -> None:
    with pytest.raises(InlineError):
        inline_runtime('import keras\n\nif __name__ == "__main__":\n    pass\n')
