"""The cases of tests/data/update/: what `kerastl update` makes of the user's edits.

Each file is one case (see tests/update_cases.py for the format): the options of
`kerastl new` and `kerastl update`, what an older release wrote, the user's
edits, and the expected script. `pytest --update-golden` rewrites the expected
scripts; read the diff, then commit.
"""

import difflib
from pathlib import Path

import pytest

from tests.conftest import run_script
from tests.update_cases import (
    SCRIPT,
    case_files,
    changed_lines,
    play,
    read_case,
    surviving,
    write_output,
)

CASES = case_files()


def test_there_are_cases_of_both_kinds() -> None:
    expected = {read_case(path).expect for path in CASES}
    assert expected == {"clean", "conflict"}


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_update_case(path: Path, tmp_path: Path, update_golden: bool) -> None:
    case = read_case(path)
    played = play(case, tmp_path)
    if update_golden:
        write_output(case, played.text)
        case = read_case(path)
    survived = surviving(case, played)
    if case.expect == "clean":
        assert played.exit_code == 0, played.messages
        assert all(survived), [e.label for e, ok in zip(case.edits, survived) if not ok]
        compile(played.text, SCRIPT, "exec")
        # The update changes what the new render changed, and no other line:
        # the user's lines stay as written, formatted with black or not.
        assert changed_lines(played.before, played.text) == changed_lines(
            played.old_base, played.new_base
        )
    else:
        assert played.exit_code == 1, played.messages
        assert "conflict" in played.messages and "<<<<<<< yours" in played.text
        for edit in case.edits:  # neither side is lost: conflicted edits are kept
            assert edit.replace in played.text, edit.label
    if case.output != played.text:
        diff = difflib.unified_diff(
            (case.output or "").splitlines(keepends=True),
            played.text.splitlines(keepends=True),
            fromfile=f"{path.name} (expected)",
            tofile="kerastl update",
        )
        pytest.fail(
            "the update differs from the case's output "
            "(pytest --update-golden rewrites it):\n" + "".join(diff)
        )


RUN_CASES = [path for path in CASES if read_case(path).run is not None]


@pytest.mark.slow
@pytest.mark.parametrize("path", RUN_CASES, ids=lambda path: path.stem)
def test_updated_script_runs_one_epoch(
    path: Path, tmp_path: Path, digits_dir: Path
) -> None:
    case = read_case(path)
    played = play(case, tmp_path)
    assert played.exit_code == 0, played.messages
    options = [*(case.run or []), "--output-dir", "out"]
    result = run_script(played.script, "--data-dir", str(digits_dir), *options)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out" / "model.keras").is_file()
    assert "top3" in (tmp_path / "out" / "history.csv").read_text()
