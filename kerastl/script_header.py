"""The options a script records in its header, read back and checked, never run."""

from __future__ import annotations

import ast

from kerastl.errors import KerastlError
from kerastl.spec import OPTIONS, Spec, SpecError, make_spec

HEADER_PREFIX = "# kerastl-options: "
MAX_HEADER_LENGTH = 10_000


class UpdateError(KerastlError):
    """The script cannot be updated; the message is one line."""


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
        return make_spec(**spec_arguments(options))
    except SpecError as error:
        raise UpdateError(f"{source}: the header's {error}") from None


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


def spec_arguments(options: dict[str, object]) -> dict[str, object]:
    """The options `make_spec` takes: all but the kerastl version."""
    return {name: value for name, value in options.items() if name != "kerastl"}
