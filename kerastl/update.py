"""`kerastl update`: re-render an edited script and merge the user's edits in.

Three texts meet: the base (the render the script started from, kept by
`kerastl new` in `.kerastl/<script name>.base` beside the script), ours (the
script as the user edited it) and theirs (the render of today's templates for
the recorded options, with any options given to `update` in place of theirs).
`kerastl.merge` merges them; the new render then becomes the base.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from kerastl import __version__
from kerastl.files import write_atomic
from kerastl.merge import MergeResult, marker_lines, merge
from kerastl.runtime_copy import RuntimeCopy, installed, plan_copy
from kerastl.script_base import base_path, write_base
from kerastl.script_header import (
    UpdateError,
    read_options,
    recorded_spec,
    spec_arguments,
)
from kerastl.spec import OPTIONS, Spec, make_spec


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
    old = make_spec(**spec_arguments(recorded))
    options = spec_arguments(recorded)
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
    old = recorded_spec(recorded, str(script))
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
        theirs_label=_new_render_label(old, spec),
    )
    if merged.clean:
        _check_compiles(merged.text, script)
    copy = plan_copy(script, force=force, refresh=True) if spec.standalone else None
    return Update(script, spec, ours, theirs, merged, merged.text, copy)


def _new_render_label(old: Spec, new: Spec) -> str:
    """The new render's conflict label: the kerastl version and the options
    that changed (`kerastl 0.1.0, --image-size 96`)."""
    before, after = old.options(), new.options()
    changed = []
    for name, option in OPTIONS.items():
        if name != "output" and before.get(name) != after[name]:
            args = option.command_args(after[name])
            changed.append(" ".join(args) if args else f"no {option.flags[0]}")
    return ", ".join([f"kerastl {__version__}", *changed])


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


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UpdateError(f"{path}: {what} is not UTF-8 text") from None
