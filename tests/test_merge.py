"""The three-way merge: `git merge-file --diff3` semantics, checked against git itself."""

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from kerastl.merge import Conflict, marker_lines, merge, split_lines

TRIALS = 150
BASE = "".join(f"line {n}\n" for n in range(1, 11))


def edit(text: str, **changes: str) -> str:
    """`text` with `line N` replaced: edit(BASE, line3="x\\n") (an empty string deletes)."""
    for name, new in changes.items():
        old = name.replace("line", "line ") + "\n"
        assert old in text
        text = text.replace(old, new)
    return text


def test_changes_to_different_lines_merge() -> None:
    ours = edit(BASE, line2="ours 2\n")
    theirs = edit(BASE, line8="theirs 8\n", line9="")
    result = merge(BASE, ours, theirs)
    assert result.clean
    assert result.text == edit(BASE, line2="ours 2\n", line8="theirs 8\n", line9="")


def test_insertions_and_deletions_on_both_sides_merge() -> None:
    ours = edit(BASE, line1="import math\nline 1\n", line5="")
    theirs = edit(BASE, line10="line 10\nline 11\n")
    result = merge(BASE, ours, theirs)
    assert result.clean
    assert result.text == edit(
        BASE, line1="import math\nline 1\n", line5="", line10="line 10\nline 11\n"
    )


def test_an_identical_change_on_both_sides_merges_once() -> None:
    both = edit(BASE, line4="same 4\nextra\n")
    result = merge(BASE, both, both)
    assert result.clean and result.text == both


def test_both_sides_deleting_the_same_lines_merge() -> None:
    both = edit(BASE, line4="", line5="")
    assert merge(BASE, both, both).text == both


def test_unchanged_sides_give_the_other() -> None:
    theirs = edit(BASE, line3="new 3\n")
    assert merge(BASE, BASE, theirs).text == theirs
    assert merge(BASE, theirs, BASE).text == theirs
    assert merge(BASE, BASE, BASE).text == BASE


def test_overlapping_changes_conflict_with_diff3_markers() -> None:
    ours = edit(BASE, line5="ours 5\n")
    theirs = edit(BASE, line5="theirs 5\n")
    result = merge(BASE, ours, theirs, ours_label="yours", theirs_label="kerastl 9")
    assert result.conflicts == (Conflict(5, 11),)
    lines = result.text.splitlines()
    assert lines[3:12] == [
        "line 4",
        "<<<<<<< yours",
        "ours 5",
        "||||||| base",
        "line 5",
        "=======",
        "theirs 5",
        ">>>>>>> kerastl 9",
        "line 6",
    ]
    assert marker_lines(result.text) == [5, 11]


def test_changes_to_adjacent_lines_conflict_as_in_git() -> None:
    result = merge(BASE, edit(BASE, line3="a\n"), edit(BASE, line4="b\n"))
    assert len(result.conflicts) == 1


def test_two_conflicts_are_both_reported() -> None:
    ours = edit(BASE, line2="o2\n", line8="o8\n")
    theirs = edit(BASE, line2="t2\n", line8="t8\n")
    result = merge(BASE, ours, theirs)
    assert len(result.conflicts) == 2
    lines = result.text.splitlines()
    for conflict in result.conflicts:
        assert lines[conflict.start - 1].startswith("<<<<<<< ")
        assert lines[conflict.end - 1].startswith(">>>>>>> ")


def test_a_last_line_without_newline_still_gets_its_markers_on_their_own_lines() -> (
    None
):
    result = merge("a\nb", "a\nours", "a\ntheirs")
    assert "ours\n||||||| base\nb\n=======\ntheirs\n>>>>>>> theirs\n" in result.text


def test_only_newlines_split_lines() -> None:
    text = "s = 'a\u2028b'\n# form\x0cfeed\nlast"
    assert split_lines(text) == ["s = 'a\u2028b'\n", "# form\x0cfeed\n", "last"]
    assert "".join(split_lines(text)) == text


def _random_version(base: list[str], rng: random.Random, tag: str) -> list[str]:
    lines = list(base)
    for n in range(rng.randint(0, 3)):
        at = rng.randrange(len(lines) + 1)
        kind = rng.choice(("replace", "insert", "delete"))
        new = [f"{tag} {n}.{k}\n" for k in range(rng.randint(1, 2))]
        if kind == "insert" or at == len(lines):
            lines[at:at] = new
        elif kind == "replace":
            lines[at : at + 1] = new
        else:
            del lines[at]
    return lines


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_random_merges_match_git_merge_file(tmp_path: Path) -> None:
    rng = random.Random(20240610)
    for trial in range(TRIALS):
        base = [f"line {n}\n" for n in range(rng.randint(1, 12))]
        ours = _random_version(base, rng, "ours")
        theirs = rng.choice([ours, _random_version(base, rng, "theirs")])
        texts = {"ours": ours, "base": base, "theirs": theirs}
        for name, lines in texts.items():
            (tmp_path / name).write_text("".join(lines))
        git = subprocess.run(
            ["git", "merge-file", "--diff3", "-p"]
            + ["-L", "yours", "-L", "base", "-L", "theirs", "ours", "base", "theirs"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        result = merge(*("".join(texts[k]) for k in ("base", "ours", "theirs")))
        context = f"trial {trial}: {texts}"
        assert len(result.conflicts) == git.returncode, context
        assert result.text == git.stdout, context
