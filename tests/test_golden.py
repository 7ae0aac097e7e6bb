"""Golden files: the example scripts whole, and what each other case changes.

The scripts in examples/ are the golden scripts, one per template and mode
(as-is, feature extraction, fine-tune, fine-tune standalone). Line 2 of each
(`# Regenerate: kerastl new ...`) is its case: the test renders that command
with `--stdout`, in the script's folder, and compares the whole script.

Each file in tests/golden/backbones/ is a small case, like black's test cases:
its first line is a `kerastl new` command, the rest only what that render
changes against the example of its mode, line by line (`-` the example's
line, `+` the case's, `@@` between places). So the per-backbone facts show
(the preprocessing, the optimizer, the learning rates, the blocks...), and a
template change that every script shares leaves the cases alone. To add a
case, write a file holding only its command line, then regenerate.

After a deliberate change, regenerate every golden file, read the diff, then
commit:

    PYTHONPATH=$PWD python -m pytest -n 0 tests/test_golden.py --update-golden
"""

import ast
import difflib
import shlex
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner

from kerastl.cli import cli
from tests.quality import assert_black_stable, assert_steps_in_order, ruff_check

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
CASES = sorted((REPO / "tests" / "golden" / "backbones").glob("*.txt"))
HEADER_PREFIX = "# Regenerate: kerastl "
CASE_PREFIX = "# kerastl "
STANDALONE = EXAMPLES / "train_resnet50v2_fine_tune_standalone.py"
# The limits of the default fine-tune script (issue 23): it shows the recipe.
SCRIPT_LINES, FUNCTION_LINES, TRAIN_LINES = 320, 50, 32


def name(path: Path) -> str:
    """The path from the repository root, e.g. `examples/x.py`."""
    return path.relative_to(REPO).as_posix()


def header_command(script: Path) -> list[str]:
    """The `kerastl` arguments on line 2 of `script`, e.g. `["new", "--mode", ...]`."""
    line = script.read_text().splitlines()[1]
    assert line.startswith(HEADER_PREFIX + "new "), f"{name(script)}: {line}"
    return shlex.split(line.removeprefix(HEADER_PREFIX))


def case_command(case: Path) -> list[str]:
    """The `kerastl` arguments on the first line of a case file."""
    line = case.read_text().splitlines()[0]
    assert line.startswith(CASE_PREFIX + "new "), f"{name(case)}: {line}"
    return shlex.split(line.removeprefix(CASE_PREFIX))


def render(command: tuple[str, ...], folder: Path) -> str:
    """What `kerastl <command> --stdout` prints, run in `folder`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        result = CliRunner().invoke(cli, [*command, "--stdout"])
    assert result.exit_code == 0, f"kerastl {shlex.join(command)}: {result.output}"
    return result.stdout  # a standalone script's note is on stderr


@cache
def rendered_example(script: Path) -> str:
    return render(tuple(header_command(script)), script.parent)


def example_of_mode(command: list[str]) -> Path:
    """The example script (not standalone) of the mode `command` renders."""
    mode = command[command.index("--mode") + 1] if "--mode" in command else None
    for script in SCRIPTS:
        options = header_command(script)
        if "--standalone" not in options and options[options.index("--mode") + 1] == (
            mode or "fine-tune"
        ):
            return script
    raise AssertionError(f"no example of --mode {mode}")


def changes(reference: str, case: str) -> str:
    """The lines `case` changes against `reference`: `-`, `+`, `@@` between."""
    lines = difflib.unified_diff(
        reference.splitlines(), case.splitlines(), n=0, lineterm=""
    )
    return "".join(
        ("@@" if line.startswith("@@") else line) + "\n"
        for line in list(lines)[2:]  # past the ---/+++ lines
    )


def fail_with_diff(expected: str, actual: str, path: Path, what: str) -> None:
    diff = difflib.unified_diff(
        expected.splitlines(keepends=True),
        actual.splitlines(keepends=True),
        fromfile=name(path),
        tofile=what,
    )
    pytest.fail(
        f"{name(path)} differs from what {what} gives "
        "(pytest --update-golden rewrites it):\n" + "".join(diff)
    )


@pytest.mark.parametrize("script", SCRIPTS, ids=name)
def test_example_is_what_its_header_command_makes(
    script: Path, update_golden: bool
) -> None:
    actual = rendered_example(script)
    if update_golden:
        script.write_text(actual)
        if script == STANDALONE:  # its kerastl_runtime/ too (git-ignored)
            with pytest.MonkeyPatch.context() as patch:
                patch.chdir(script.parent)
                result = CliRunner().invoke(cli, [*header_command(script), "--force"])
            assert result.exit_code == 0, result.output
    if actual != script.read_text():
        fail_with_diff(script.read_text(), actual, script, "its # Regenerate: line")


@pytest.mark.parametrize("case", CASES, ids=name)
def test_case_changes_only_what_its_options_change(
    case: Path, update_golden: bool
) -> None:
    command = case_command(case)
    actual = render(tuple(command), case.parent)
    compile(actual, name(case), "exec")
    assert_black_stable(actual)
    if "--mode as-is" not in " ".join(command):
        assert_steps_in_order(actual)
    reference = example_of_mode(command)
    text = case.read_text().splitlines(keepends=True)[0]
    text += f"# What it renders against {name(reference)}:\n"
    text += changes(rendered_example(reference), actual)
    if update_golden:
        case.write_text(text)
    if text != case.read_text():
        fail_with_diff(case.read_text(), text, case, "its first line")


@pytest.mark.parametrize("script", SCRIPTS, ids=name)
def test_example_is_clean(script: Path) -> None:
    text = script.read_text()
    compile(text, name(script), "exec")
    assert_black_stable(text)
    if "--mode as-is" not in " ".join(header_command(script)):
        assert_steps_in_order(text)


def test_examples_pass_ruff() -> None:
    ruff_check({script.name: script.read_text() for script in SCRIPTS})


def test_cases_are_small_and_differ() -> None:
    texts = [case.read_text() for case in CASES]
    assert len(set(texts)) == len(texts)
    # A KerasHub case changes steps 1 and 4 to 6 too: at most 80 lines.
    assert all(len(text.splitlines()) <= 80 for text in texts)


def test_one_example_is_standalone() -> None:
    """Its kerastl_runtime/ is not committed: tests/test_runtime_copy.py checks
    the copy `kerastl new` writes against kerastl/runtime/."""
    standalone = [
        script for script in SCRIPTS if "--standalone" in header_command(script)
    ]
    assert standalone == [STANDALONE]
    assert "\nimport kerastl_runtime as runtime" in STANDALONE.read_text()


def function_lines(text: str) -> dict[str, int]:
    """The lines of each top-level function of a script, by name."""
    return {
        node.name: node.end_lineno - node.lineno + 1
        for node in ast.parse(text).body
        if isinstance(node, ast.FunctionDef) and node.end_lineno is not None
    }


@cache
def default_fine_tune_script() -> str:
    return render(("new", "--mode", "fine-tune"), REPO)


def test_the_default_fine_tune_script_is_short_and_train_is_the_loop() -> None:
    text = default_fine_tune_script()
    assert len(text.splitlines()) <= SCRIPT_LINES
    assert function_lines(text)["train"] <= TRAIN_LINES


@pytest.mark.parametrize("function", function_lines(default_fine_tune_script()))
def test_no_function_of_the_default_fine_tune_script_is_long(function: str) -> None:
    assert function_lines(default_fine_tune_script())[function] <= FUNCTION_LINES


@pytest.mark.parametrize(
    "script", [script for script in SCRIPTS if "train" in script.name], ids=name
)
def test_train_is_the_loop_in_every_training_example(script: Path) -> None:
    assert function_lines(script.read_text())["train"] <= TRAIN_LINES
