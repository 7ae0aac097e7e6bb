"""Every backbone in every mode renders a valid, black-stable, ruff-clean script."""

import ast
import difflib
import sys
from pathlib import Path

import pytest

from kerastl import backbones
from kerastl.filters import UnsafeValueError, pyident, pyrepr
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
    assert len(scripts) == len(backbones.BACKBONES) * len(MODES) == 160
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
def test_standalone_scripts_import_the_copy_not_kerastl(mode: str) -> None:
    """What the copy imports: tests/test_runtime_copy.py."""
    text = render(make_spec(mode=mode, backbone="MobileNetV3Small", standalone=True))
    compile(text, "standalone", "exec")
    assert_black_stable(text)
    imported = imported_packages(ast.walk(ast.parse(text)))
    assert imported - sys.stdlib_module_names == {"keras", "kerastl_runtime"}
    ruff_check({"standalone.py": text})


def test_standalone_scripts_differ_only_in_their_import_lines() -> None:
    """The standalone script is the normal one importing the copy of the runtime."""
    for mode in MODES:
        options = {"mode": mode, "backbone": "ResNet50", "output": "t.py"}
        normal = render(make_spec(**options)).splitlines()
        standalone = render(make_spec(**options, standalone=True)).splitlines()
        changed = [
            line
            for line in difflib.unified_diff(normal, standalone, n=0, lineterm="")
            if line[:1] in "+-" and line[:3] not in ("+++", "---")
        ]
        assert len(changed) <= 12, changed
        # The header's command and options, and the import of the runtime.
        assert all(line[1:2] == "#" or "runtime" in line for line in changed), changed
        assert any(line.startswith("-from kerastl import runtime") for line in changed)
        assert any(
            line.startswith("+import kerastl_runtime as runtime") for line in changed
        )


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


def test_compiled_templates_are_kept_and_give_the_same_script() -> None:
    from kerastl.render import environment

    spec = make_spec(mode="fine-tune", backbone="MobileNetV3Small")
    first = render(spec)
    env = environment()
    bytecode = env.bytecode_cache
    names = ("fine_tune.py.jinja", "_training.py.jinja", "_steps.py.jinja")
    files = [
        Path(bytecode.directory)
        / (
            bytecode.pattern
            % bytecode.get_cache_key(name, env.loader.get_source(env, name)[1])
        )
        for name in names
    ]
    assert all(path.is_file() for path in files)
    environment().cache.clear()  # Jinja's in-memory copies: load the kept ones
    assert render(spec) == first
