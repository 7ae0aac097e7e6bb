"""Golden files: each case in tests/cases/ renders exactly its script in tests/golden/.

Regenerate after a deliberate change with `pytest tests/test_golden.py --update-golden`.
"""

import difflib
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from kerastl.cli import cli
from tests.quality import assert_black_stable, assert_steps_in_order, ruff_check

CASES = Path(__file__).parent / "cases"
GOLDEN = Path(__file__).parent / "golden"
CASE_NAMES = sorted(path.stem for path in CASES.glob("*.args"))


def render_case(name: str) -> str:
    args = shlex.split((CASES / f"{name}.args").read_text())
    result = CliRunner().invoke(cli, ["new", *args, "--stdout"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_matches_golden(name: str, update_golden: bool) -> None:
    actual = render_case(name)
    golden = GOLDEN / f"{name}.py"
    if update_golden:
        golden.write_text(actual)
    expected = golden.read_text() if golden.exists() else ""
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"tests/golden/{name}.py",
            tofile=f"rendered from tests/cases/{name}.args",
        )
        pytest.fail(
            "rendered script differs from its golden file "
            "(pytest --update-golden rewrites it):\n" + "".join(diff)
        )


def test_every_golden_file_has_a_case() -> None:
    assert sorted(path.stem for path in GOLDEN.glob("*.py")) == CASE_NAMES


@pytest.mark.parametrize("name", CASE_NAMES)
def test_golden_script_is_clean(name: str) -> None:
    text = (GOLDEN / f"{name}.py").read_text()
    compile(text, name, "exec")
    assert_black_stable(text)
    if not name.startswith("as_is"):
        assert_steps_in_order(text)


def test_golden_scripts_pass_ruff() -> None:
    ruff_check({path.name: path.read_text() for path in GOLDEN.glob("*.py")})
