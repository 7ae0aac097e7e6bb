"""A three-way merge of lines, with the semantics of `git merge-file --diff3`.

`merge(base, ours, theirs)` keeps every change that only one side made, keeps a
change both sides made identically once, and turns changes of both sides that
overlap or touch (no unchanged line between them) into a conflict, shown with
the standard markers:

    <<<<<<< yours
    (our lines)
    ||||||| base
    (the base's lines)
    =======
    (their lines)
    >>>>>>> kerastl 0.2.0

The algorithm is the classic one (as in bzr's and breezy's `merge3`): the lines
of the base that both sides kept unchanged, in order, split the three texts into
stable regions and the unstable regions between them; each unstable region is
taken from the side that changed it, or is a conflict.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

OURS_MARKER = "<<<<<<<"
BASE_MARKER = "|||||||"
SEPARATOR = "======="
THEIRS_MARKER = ">>>>>>>"


@dataclass(frozen=True)
class Conflict:
    """One conflict in the merged text: lines `start` to `end`, markers included.

    Attributes:
        start: The line of the `<<<<<<<` marker, from 1.
        end: The line of the `>>>>>>>` marker, from 1.
    """

    start: int
    end: int


@dataclass(frozen=True)
class MergeResult:
    """The merged text and its conflicts (none: a clean merge)."""

    text: str
    conflicts: tuple[Conflict, ...]

    @property
    def clean(self) -> bool:
        """Whether every change merged without a conflict."""
        return not self.conflicts


def split_lines(text: str) -> list[str]:
    """The lines of `text`, each with its `\\n`; only `\\n` ends a line.

    (`str.splitlines` would also split at form feeds and Unicode line
    separators, which Python source may hold inside strings and comments.)
    """
    lines = text.split("\n")
    last = lines.pop()
    return [line + "\n" for line in lines] + ([last] if last else [])


def merge(
    base: str,
    ours: str,
    theirs: str,
    *,
    ours_label: str = "yours",
    base_label: str = "base",
    theirs_label: str = "theirs",
) -> MergeResult:
    """Merges the changes from `base` to `ours` and from `base` to `theirs`.

    Args:
        base: The common ancestor.
        ours: One changed version (the user's file).
        theirs: The other changed version (the new render).
        ours_label: Written after the `<<<<<<<` marker.
        base_label: Written after the `|||||||` marker.
        theirs_label: Written after the `>>>>>>>` marker.

    Returns:
        The merged text, with conflict markers where both sides changed the same
        lines differently, and where those conflicts are.
    """
    base_lines, our_lines, their_lines = map(split_lines, (base, ours, theirs))
    merged: list[str] = []
    conflicts: list[Conflict] = []
    for base_part, our_part, their_part in _regions(base_lines, our_lines, their_lines):
        if our_part == their_part or their_part == base_part:
            merged += our_part
        elif our_part == base_part:
            merged += their_part
        else:
            start = len(merged) + 1
            merged += _conflict(
                our_part,
                base_part,
                their_part,
                (ours_label, base_label, theirs_label),
            )
            conflicts.append(Conflict(start, len(merged)))
    return MergeResult("".join(merged), tuple(conflicts))


def marker_lines(text: str) -> list[int]:
    """The lines (from 1) of `text` that start a conflict left by a merge."""
    return [
        number
        for number, line in enumerate(split_lines(text), 1)
        if line.startswith((OURS_MARKER + " ", THEIRS_MARKER + " "))
    ]


def _conflict(
    ours: list[str],
    base: list[str],
    theirs: list[str],
    labels: tuple[str, str, str],
) -> list[str]:
    ours_label, base_label, theirs_label = labels
    return [
        f"{OURS_MARKER} {ours_label}\n",
        *_terminated(ours),
        f"{BASE_MARKER} {base_label}\n",
        *_terminated(base),
        f"{SEPARATOR}\n",
        *_terminated(theirs),
        f"{THEIRS_MARKER} {theirs_label}\n",
    ]


def _terminated(lines: list[str]) -> list[str]:
    """`lines` with a `\\n` after the last one, so that a marker starts a line."""
    if lines and not lines[-1].endswith("\n"):
        return [*lines[:-1], lines[-1] + "\n"]
    return lines


def _regions(
    base: list[str], ours: list[str], theirs: list[str]
) -> Iterator[tuple[list[str], list[str], list[str]]]:
    """The merge regions, in order: the base's, our and their lines of each.

    Stable regions (all three equal) alternate with unstable ones.
    """
    base_at = ours_at = theirs_at = 0
    for base_start, base_end, ours_start, theirs_start in _stable_regions(
        base, ours, theirs
    ):
        if (base_start, ours_start, theirs_start) != (base_at, ours_at, theirs_at):
            yield (
                base[base_at:base_start],
                ours[ours_at:ours_start],
                theirs[theirs_at:theirs_start],
            )
        length = base_end - base_start
        if length:
            part = base[base_start:base_end]
            yield part, part, part
        base_at, ours_at, theirs_at = (
            base_end,
            ours_start + length,
            theirs_start + length,
        )


def _stable_regions(
    base: list[str], ours: list[str], theirs: list[str]
) -> Iterator[tuple[int, int, int, int]]:
    """Runs of base lines both sides kept: base start and end, our and their start.

    Ends with the empty run at the end of all three texts.
    """
    ours_matches = _matches(base, ours)
    theirs_matches = _matches(base, theirs)
    i = j = 0
    while i < len(ours_matches) and j < len(theirs_matches):
        a_base, a_other, a_length = ours_matches[i]
        b_base, b_other, b_length = theirs_matches[j]
        start = max(a_base, b_base)
        end = min(a_base + a_length, b_base + b_length)
        if start < end:
            yield start, end, a_other + start - a_base, b_other + start - b_base
        if a_base + a_length < b_base + b_length:
            i += 1
        else:
            j += 1
    yield len(base), len(base), len(ours), len(theirs)


def _matches(base: Sequence[str], other: Sequence[str]) -> list[tuple[int, int, int]]:
    """The blocks of lines `other` kept from `base`: base start, other start, length."""
    matcher = difflib.SequenceMatcher(None, base, other, autojunk=False)
    return [
        (block.a, block.b, block.size)
        for block in matcher.get_matching_blocks()
        if block.size
    ]
