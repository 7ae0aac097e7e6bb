"""`kerastl update`: re-render an edited script and merge the user's edits in.

Three texts meet: the base (the render the script started from, kept by
`kerastl new` in `.kerastl/<script name>.base` beside the script), ours (the
script as the user edited it) and theirs (the render of today's templates for
the recorded options, with any options given to `update` in place of theirs).
`kerastl.merge` merges them; the new render then becomes the base.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass
from pathlib import Path

from kerastl import __version__
from kerastl.errors import KerastlError
from kerastl.files import write_atomic
from kerastl.merge import MergeResult, marker_lines, merge
from kerastl.runtime_copy import RuntimeCopy, installed, plan_copy
from kerastl.spec import OPTIONS, Spec, SpecError, make_spec

BASE_FOLDER = ".kerastl"
BASE_SUFFIX = ".base"
HEADER_PREFIX = "# kerastl-options: "
MAX_HEADER_LENGTH = 10_000


class UpdateError(KerastlError):
    """The script cannot be updated; the message is one line."""


@dataclass(frozen=True)
class Update:
    """An update worked out, not yet written.

    Attributes:
        script: The script's path.
        spec: The options of the new render.
        ours: The script as it is now.
        theirs: The new render; the next base.
        merged: The merge of the base, ours and theirs.
        text: What the script becomes: the merge. The user's lines stay as
            they wrote them (formatted with black or not); the lines that come
            from the new render are black-formatted, as every render is.
        copy: The copy of the runtime beside a standalone script, else None.
    """

    script: Path
    spec: Spec
    ours: str
    theirs: str
    merged: MergeResult
    text: str
    copy: RuntimeCopy | None = None

    def diff(self) -> str:
        """The unified diff from the script as it is to what it becomes."""
        name = str(self.script)
        return "".join(
            difflib.unified_diff(
                self.ours.splitlines(keepends=True),
                self.text.splitlines(keepends=True),
                fromfile=name,
                tofile=f"{name} (updated)",
            )
        )

    def conflict_lines(self) -> str:
        """Where the conflicts are, e.g. `lines 40-48, 120-130`."""
        return "lines " + ", ".join(
            f"{conflict.start}-{conflict.end}" for conflict in self.merged.conflicts
        )


def base_path(script: Path) -> Path:
    """Where the base of `script` is kept: `<folder>/.kerastl/<name>.base`."""
    return script.parent / BASE_FOLDER / (script.name + BASE_SUFFIX)


def write_base(script: Path, text: str) -> None:
    """Keeps `text`, the render `script` was written from, as its base (atomic)."""
    path = base_path(script)
    path.parent.mkdir(exist_ok=True)
    write_atomic(path, text, force=True)


def read_options(text: str, source: str) -> dict[str, object]:
    """The options recorded in a script's header, checked, never executed.

    The header line is parsed with `ast.literal_eval`: it must be a dict of
    the known options (those of an older kerastl may be missing), each of
    the type the option takes; `make_spec` then validates the values.

    Args:
        text: The script.
        source: How to name the script in messages.

    Raises:
        UpdateError: If there is no header, or it is not a valid one.
    """
    lines = [
        line
        for line in _leading_comments(text)
        if line.startswith(HEADER_PREFIX.rstrip())
    ]
    if not lines:
        raise UpdateError(
            f"{source} has no kerastl header (a '{HEADER_PREFIX.strip()} {{...}}' "
            "line at the top); only a script written by `kerastl new` can be updated"
        )
    if len(lines) > 1:
        raise UpdateError(f"{source}: the header has {len(lines)} options lines")
    literal = lines[0].removeprefix(HEADER_PREFIX.rstrip()).strip()
    if len(literal) > MAX_HEADER_LENGTH:
        raise UpdateError(f"{source}: the header's options line is too long")
    try:
        options = ast.literal_eval(literal)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise UpdateError(
            f"{source}: the header's options are not a Python literal; "
            "it was edited by hand: restore it from the base or version control"
        ) from None
    if not isinstance(options, dict):
        raise UpdateError(f"{source}: the header's options are not a dict")
    unknown = sorted(map(repr, set(options) - {"kerastl", *OPTIONS}))
    if unknown:
        raise UpdateError(
            f"{source}: unknown options in the header: {', '.join(unknown)}"
        )
    if not isinstance(options.get("kerastl"), str):
        raise UpdateError(f"{source}: the header does not give the kerastl version")
    for name, value in options.items():
        if name != "kerastl" and not _fits(name, value):
            raise UpdateError(
                f"{source}: the header's {name} is {value!r}, not a valid value"
            )
    return options


def recorded_spec(options: dict[str, object], source: str) -> Spec:
    """Validates recorded options as `kerastl new` validates typed ones.

    Raises:
        UpdateError: If a value is not valid.
    """
    try:
        return make_spec(**_spec_options(options))
    except SpecError as error:
        raise UpdateError(f"{source}: the header's {error}") from None


def resolve(
    recorded: dict[str, object], overrides: dict[str, object], script: Path
) -> Spec:
    """The options of the new render: the recorded ones, with `overrides`.

    Where `overrides` change the mode or the backbone, recorded values that
    were the old mode's and backbone's defaults (the image size, the stages)
    take the new ones' defaults, and options the new mode does not take are
    dropped. The output keeps its recorded value unless the script was
    renamed; then it is the script's path.

    Raises:
        SpecError: If the result is not valid (a Click usage error).
    """
    old = make_spec(**_spec_options(recorded))
    options = _spec_options(recorded)
    new_mode = make_spec(mode=overrides.get("mode", old.mode)).mode
    new_backbone = make_spec(backbone=overrides.get("backbone", old.backbone.name))
    if (new_mode, new_backbone.backbone) != (old.mode, old.backbone):
        defaults = make_spec(mode=old.mode, backbone=old.backbone.name).options()
        for name, option in OPTIONS.items():
            # The mode and the backbone are what changes, not defaults to follow.
            if name in overrides or name in ("mode", "backbone", "output"):
                continue
            if options.get(name) == defaults[name] or new_mode not in option.modes:
                options.pop(name, None)
    if Path(str(options.get("output", ""))).name != script.name:
        options["output"] = str(script)
    return make_spec(**(options | overrides))


def plan(script: Path, overrides: dict[str, object], *, force: bool = False) -> Update:
    """Works out the update of `script`; writes nothing.

    A standalone script's `kerastl_runtime/` is refreshed too: replaced by
    today's runtime when its files match its MANIFEST, or with `force`.

    Raises:
        UpdateError: If the script or its base cannot be read or do not match,
            the script still holds conflict markers, or a clean merge is not
            valid Python.
        SpecError: If the options given do not make a valid script.
        OutputError: If the runtime's copy was edited and `force` is false.
    """
    from kerastl.render import render

    ours = _read(script, "the script").replace("\r\n", "\n")
    recorded = read_options(ours, str(script))
    recorded_spec(recorded, str(script))
    markers = marker_lines(ours)
    if markers:
        raise UpdateError(
            f"{script} still has conflict markers (line {markers[0]}) from the last "
            "update; resolve them, then update again"
        )
    base_file = base_path(script)
    if not base_file.is_file():
        raise UpdateError(
            f"{script} has no base ({base_file}: the render it started from, which "
            "`kerastl new` keeps): restore it from version control, or regenerate "
            "the script with the command on its second line and --force"
        )
    base = _read(base_file, "the base")
    base_options = read_options(base, str(base_file))
    if base_options != recorded:
        changed = sorted(
            name
            for name in set(base_options) | set(recorded)
            if base_options.get(name) != recorded.get(name)
        )
        raise UpdateError(
            f"{script} and its base {base_file} record other options "
            f"({', '.join(changed)}): the script was regenerated, copied or its "
            "header edited; change options with `kerastl update SCRIPT --OPTION`"
        )
    spec = resolve(recorded, overrides, script)
    theirs = render(spec)
    merged = merge(
        base,
        ours,
        theirs,
        ours_label=f"yours ({script.name})",
        base_label=f"base (kerastl {recorded['kerastl']})",
        theirs_label=f"kerastl {__version__}",
    )
    if merged.clean:
        _check_compiles(merged.text, script)
    copy = plan_copy(script, force=force, refresh=True) if spec.standalone else None
    return Update(script, spec, ours, theirs, merged, merged.text, copy)


def apply(update: Update) -> str:
    """Writes the script, its runtime's copy, then its new base, each atomically.

    All are written even with conflicts: the script then holds both sides
    between conflict markers, and the new render is the base the script
    follows once the user has resolved them.

    Returns:
        `"updated"` or `"unchanged"`: the script's status.
    """
    with installed(update.copy):
        status = write_atomic(update.script, update.text, force=True)
    write_base(update.script, update.theirs)
    return "unchanged" if status == "unchanged" else "updated"


def _check_compiles(text: str, script: Path) -> None:
    """Checks that a clean merge is valid Python (without formatting it).

    Raises:
        UpdateError: If it is not.
    """
    try:
        compile(text, str(script), "exec", dont_inherit=True)
    except SyntaxError as error:
        raise UpdateError(
            f"the merge of {script} is not valid Python ({error.msg}, line "
            f"{error.lineno}); nothing written: fix the script, or regenerate it "
            "with --force"
        ) from None


def _leading_comments(text: str) -> list[str]:
    """The comment lines at the top of a script, before any code."""
    lines = []
    for line in text.split("\n"):
        if not line.startswith("#"):
            break
        lines.append(line)
    return lines


def _fits(name: str, value: object) -> bool:
    """Whether a recorded value has a type that the option takes."""
    option = OPTIONS[name]
    if option.is_flag:
        return isinstance(value, bool)
    if option.multiple:
        return isinstance(value, list) and all(
            isinstance(item, str | int) and not isinstance(item, bool) for item in value
        )
    return value is None or (
        isinstance(value, str | int) and not isinstance(value, bool)
    )


def _spec_options(options: dict[str, object]) -> dict[str, object]:
    """The options `make_spec` takes: all but the kerastl version."""
    return {name: value for name, value in options.items() if name != "kerastl"}


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UpdateError(f"{path}: {what} is not UTF-8 text") from None
