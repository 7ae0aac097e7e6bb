"""The cases of `kerastl update` in tests/data/update/: read, played, rewritten.

A case is a text file. Lines before the first `@@@` line describe it; then:

    @@@ new --backbone ResNet50V2 --image-size 32   the options of `kerastl new`
    @@@ update --backbone MobileNetV3Small          the options of `kerastl update`
    @@@ expect clean                                or `expect conflict`
    @@@ run --epochs 1                              (optional) run the result on the digits
    @@@ release: what an older kerastl wrote        (optional, repeatable)
    text of today's render ...
    @@@ was
    ... that the older release wrote instead
    @@@ edit: a new callback                        (repeatable) the user's edits
    text of the script ...
    @@@ with
    ... that the user wrote instead
    @@@ output
    what the script becomes (rewritten by `pytest --update-golden`)

Playing a case: `kerastl new` writes train.py; the release edits turn it and its
base into what an older kerastl would have written; the user's edits change the
script; `kerastl update` merges. Each search text must occur exactly once.
"""

from __future__ import annotations

import difflib
import os
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner

from kerastl.cli import cli
from kerastl.script_base import base_path

REPO = Path(__file__).resolve().parent.parent
CASES = REPO / "tests" / "data" / "update"
MARK = "@@@ "
SCRIPT = "train.py"


class CaseError(Exception):
    """A case file that cannot be read or played."""


@dataclass(frozen=True)
class Edit:
    """Replace `search` (found exactly once) by `replace`."""

    label: str
    search: str
    replace: str


@dataclass
class Case:
    """One case file, parsed."""

    path: Path
    inputs: str = ""  # the file up to the output section, as written
    new: list[str] = field(default_factory=list)
    update: list[str] = field(default_factory=list)
    expect: str = ""
    run: list[str] | None = None
    release: list[Edit] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    output: str | None = None

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass(frozen=True)
class Played:
    """What `kerastl update` did: its exit code, the script after, what it printed."""

    exit_code: int
    text: str
    messages: str
    script: Path
    before: str = ""  # the script the user edited, before the update
    old_base: str = ""  # the render it started from
    new_base: str = ""  # today's render: the base after the update


def case_files() -> list[Path]:
    return sorted(CASES.glob("*.txt"))


def read_case(path: Path) -> Case:
    text = path.read_text()
    case = Case(path)
    if "\n" + MARK + "output\n" in text:
        case.inputs, case.output = text.split("\n" + MARK + "output\n", 1)
        case.inputs += "\n"
    else:
        case.inputs = text
    sections: list[tuple[str, list[str]]] = []
    for line in case.inputs.splitlines(keepends=True):
        if line.startswith(MARK):
            sections.append((line[len(MARK) :].rstrip("\n"), []))
        elif sections:
            sections[-1][1].append(line)
    pending: tuple[str, str, str] | None = None  # kind, label, search
    for heading, lines in sections:
        word, _, rest = heading.partition(" ")
        body = "".join(lines)
        if heading in ("was", "with"):
            if pending is None:
                raise CaseError(f"{path.name}: '{heading}' without a search text")
            kind, label, search = pending
            (case.release if kind == "release:" else case.edits).append(
                Edit(label, search, body)
            )
            pending = None
        elif word in ("release:", "edit:"):
            pending = (word, rest, body)
        elif word in ("new", "update", "run"):
            setattr(case, word, shlex.split(rest))
        elif word == "expect" and rest in ("clean", "conflict"):
            case.expect = rest
        else:
            raise CaseError(f"{path.name}: unknown section {heading!r}")
    if pending is not None or not case.new or not case.expect:
        raise CaseError(f"{path.name}: needs new, expect, and a with/was per edit")
    return case


def apply_edits(text: str, edits: list[Edit], what: str, case: Case) -> str:
    for edit in edits:
        count = text.count(edit.search)
        if count != 1:
            raise CaseError(
                f"{case.path.name}: {edit.label!r}: its text occurs {count} times "
                f"in the {what}; the templates changed: edit the case"
            )
        text = text.replace(edit.search, edit.replace)
    return text


def play(case: Case, folder: Path) -> Played:
    """Plays `case` in `folder` (the working folder while it runs)."""
    previous = Path.cwd()
    os.chdir(folder)
    try:
        runner = CliRunner()
        result = runner.invoke(cli, ["new", *case.new, "-o", SCRIPT])
        if result.exit_code != 0:
            raise CaseError(f"{case.path.name}: kerastl new failed: {result.output}")
        script = folder / SCRIPT
        old_render = apply_edits(script.read_text(), case.release, "render", case)
        script.write_text(old_render)
        base_path(script).write_text(old_render)
        before = apply_edits(old_render, case.edits, "script", case)
        script.write_text(before)
        result = runner.invoke(cli, ["update", SCRIPT, *case.update])
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Played(
            result.exit_code,
            script.read_text(),
            result.output,
            script,
            before=before,
            old_base=old_render,
            new_base=base_path(script).read_text(),
        )
    finally:
        os.chdir(previous)


def write_output(case: Case, output: str) -> None:
    """Rewrites the case's output section (`pytest --update-golden`)."""
    case.path.write_text(case.inputs + MARK + "output\n" + output)


def surviving(case: Case, played: Played) -> list[bool]:
    """For each of the user's edits, whether its text is in the result, unconflicted."""
    outside = _outside_conflicts(played.text)
    return [edit.replace in outside for edit in case.edits]


def _outside_conflicts(text: str) -> str:
    lines, inside = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("<<<<<<< "):
            inside = True
        elif line.startswith(">>>>>>> "):
            inside = False
        elif not inside:
            lines.append(line)
    return "".join(lines)


def changed_lines(old: str, new: str) -> tuple[Counter[str], Counter[str]]:
    """The lines a line diff from `old` to `new` removes, and those it adds."""
    removed: Counter[str] = Counter()
    added: Counter[str] = Counter()
    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        if tag != "equal":
            removed.update(old_lines[old_start:old_end])
            added.update(new_lines[new_start:new_end])
    return removed, added
