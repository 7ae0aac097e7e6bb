"""Golden scripts: every script in tests/golden/ and examples/ is what its header makes.

Line 2 of each script (`# Regenerate: kerastl new ...`) is its case: the test
renders that command with `--stdout`, in the script's folder, and compares.
To add a case, write a script whose second line is the command (or generate it
with `kerastl new ... -o tests/golden/NAME.py`). After a deliberate change,
`pytest --update-golden` rewrites every script; read the diff, then commit.
"""

import difflib
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from kerastl.cli import cli
from tests.quality import assert_black_stable, assert_steps_in_order, ruff_check

REPO = Path(__file__).resolve().parent.parent
GOLDEN_FOLDERS = (REPO / "tests" / "golden", REPO / "examples")
SCRIPTS = sorted(path for folder in GOLDEN_FOLDERS for path in folder.glob("*.py"))
HEADER_PREFIX = "# Regenerate: kerastl "
STANDALONE = REPO / "examples" / "train_resnet50v2_fine_tune_standalone.py"


def name(script: Path) -> str:
    """The script's path from the repository root, e.g. `examples/x.py`."""
    return script.relative_to(REPO).as_posix()


def header_command(script: Path) -> list[str]:
    """The `kerastl` arguments on line 2 of `script`, e.g. `["new", "--mode", ...]`."""
    line = script.read_text().splitlines()[1]
    assert line.startswith(HEADER_PREFIX + "new "), f"{name(script)}: {line}"
    return shlex.split(line.removeprefix(HEADER_PREFIX))


def render_from_header(script: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """What the script's own header command prints, run in the script's folder."""
    monkeypatch.chdir(script.parent)
    result = CliRunner().invoke(cli, [*header_command(script), "--stdout"])
    assert result.exit_code == 0, f"{name(script)}: {result.output}"
    return result.stdout  # a standalone script's note is on stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=name)
def test_script_is_what_its_header_command_makes(
    script: Path, update_golden: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    actual = render_from_header(script, monkeypatch)
    if update_golden:
        script.write_text(actual)
        if script == STANDALONE:  # its kerastl_runtime/ too (git-ignored)
            result = CliRunner().invoke(cli, [*header_command(script), "--force"])
            assert result.exit_code == 0, result.output
    expected = script.read_text()
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=name(script),
            tofile="rendered from its # Regenerate: line",
        )
        pytest.fail(
            "the script differs from what its header command renders "
            "(pytest --update-golden rewrites it):\n" + "".join(diff)
        )


@pytest.mark.parametrize("script", SCRIPTS, ids=name)
def test_script_is_clean(script: Path) -> None:
    text = script.read_text()
    compile(text, name(script), "exec")
    assert_black_stable(text)
    if "--mode as-is" not in " ".join(header_command(script)):
        assert_steps_in_order(text)


def test_scripts_pass_ruff() -> None:
    ruff_check(
        {name(script).replace("/", "__"): script.read_text() for script in SCRIPTS}
    )


def test_no_script_is_a_copy_of_another() -> None:
    texts = [script.read_text() for script in SCRIPTS]
    assert len(set(texts)) == len(texts)


def test_one_example_is_standalone() -> None:
    """Its kerastl_runtime/ is not committed: tests/test_runtime_copy.py checks
    the copy `kerastl new` writes against kerastl/runtime/."""
    standalone = [
        script for script in SCRIPTS if "--standalone" in header_command(script)
    ]
    assert standalone == [STANDALONE]
    assert "\nimport kerastl_runtime as runtime" in STANDALONE.read_text()
