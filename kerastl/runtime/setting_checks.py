"""The checks of a script's settings: each value alone, then the values together.

`settings.setting()` stores a `ValueCheck` with each field; `parse_settings`
runs it on every value, then `check_together` on the whole: folder settings
that name one folder twice, an output folder among the images, and a setting
whose `needs` another one does not meet. Each problem is one line of text that
`parse_settings` turns into a usage error. `value_type` reads a field's
annotation (one value or several, None allowed or not), which `checked_default`
holds an edited default to.
"""

import argparse
import dataclasses
import math
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import files


@dataclasses.dataclass(frozen=True)
class ValueCheck:
    """The checks of one setting's values."""

    minimum: float | None
    maximum: float | None
    above: float | None
    below: float | None
    choices: tuple[str, ...]
    parse: Callable[[str], Any] | None
    folder: bool
    output: bool

    def read(self, text: str, kind: type, optional: bool) -> Any:
        """Reads a value from the command line (`none` for None if optional)."""
        if optional and text.strip().lower() == "none":
            return None
        if self.parse is not None:
            value = self.parse(text)
            return value if value is None else self.check(value)
        try:
            value = kind(text)
        except ValueError:
            noun = "whole number" if kind is int else "number"
            raise argparse.ArgumentTypeError(f"not a {noun}: {text!r}") from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        """Returns `value` if it is allowed, else raises `ArgumentTypeError`.

        Bounds apply to numbers (a stage of `--unfreeze` may also be a name).
        """
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {value}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self._check_bounds(value)
        if self.choices and value not in self.choices:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not one of {', '.join(self.choices)}"
            )
        if self.folder and not files.is_dir(value):
            raise argparse.ArgumentTypeError(f"{value} is not a folder")
        if self.output and (problem := unwritable(value)):
            raise argparse.ArgumentTypeError(problem)
        return value

    def _check_bounds(self, value: float) -> None:
        bounds = [
            (self.minimum, lambda limit: value >= limit, "at least"),
            (self.maximum, lambda limit: value <= limit, "at most"),
            (self.above, lambda limit: value > limit, "above"),
            (self.below, lambda limit: value < limit, "below"),
        ]
        broken = [
            f"{words} {limit:g}"
            for limit, holds, words in bounds
            if limit is not None and not holds(limit)
        ]
        if broken:
            allowed = " and ".join(
                f"{words} {limit:g}" for limit, _, words in bounds if limit is not None
            )
            raise argparse.ArgumentTypeError(f"must be {allowed}, not {value:g}")


def value_type(annotation: Any) -> tuple[Any, bool, bool]:
    """The type of one value; whether the setting holds several; whether None."""
    if typing.get_origin(annotation) is tuple:
        item = typing.get_args(annotation)[0]
        return value_type(item)[0], True, False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        optional = len(kinds) < len(typing.get_args(annotation))
        if set(kinds) == {int, str}:
            return int_or_str, False, optional
        (kind,) = kinds
        return value_type(kind)[0], False, optional
    return annotation, False, False


#: What a default of each type may be (a whole number is a float too).
_ACCEPTS: dict[Any, tuple[type, ...]] = {float: (int, float)}


def int_or_str(text: str) -> int | str:
    """A whole number if the text is one (`--unfreeze 3`), else the text."""
    stripped = text.strip()
    return int(stripped) if stripped.lstrip("+-").isdigit() else stripped


def checked_default(check: ValueCheck, value: Any, kind: Any, many: bool) -> Any:
    """A default checked as a typed value would be; raises `ArgumentTypeError`."""
    if value is None:
        return value
    accepted = _ACCEPTS.get(kind, (int, str) if kind is int_or_str else (kind,))

    def checked(item: Any) -> Any:
        wrong_bool = isinstance(item, bool) and bool not in accepted
        if wrong_bool or not isinstance(item, accepted):
            names = " or ".join(kind.__name__ for kind in accepted)
            raise argparse.ArgumentTypeError(f"{item!r} is not of type {names}")
        if isinstance(item, bool):
            return item
        if check.parse is not None and isinstance(item, str):
            parsed = check.parse(item)
            return parsed if parsed is None else check.check(parsed)
        return check.check(item)

    if not many:
        return checked(value)
    if not isinstance(value, tuple):
        raise argparse.ArgumentTypeError(f"{value!r} is not a tuple")
    return tuple(checked(item) for item in value)


def check_together(
    fields: Sequence[dataclasses.Field],
    values: Mapping[str, Any],
    flag: Callable[[str], str],
) -> str | None:
    """What is wrong with the settings taken together, or None.

    Args:
        fields: The fields of the settings dataclass.
        values: Each field's value.
        flag: The option of a field's name (`--batch-size` for `batch_size`).
    """
    return _folders_problem(fields, values, flag) or _needs_problem(
        fields, values, flag
    )


def _needs_problem(
    fields: Sequence[dataclasses.Field],
    values: Mapping[str, Any],
    flag: Callable[[str], str],
) -> str | None:
    """A setting that is on (not its `off` value) whose `needs` are not met.

    A needed value is met by an equal value, or by a setting of several
    values that holds it (`--export tflite` meets `export="tflite"`).
    """
    for field in fields:
        needs = field.metadata.get("needs") or {}
        if not needs or values[field.name] == field.metadata.get("off"):
            continue
        for name, wanted in needs.items():
            if name not in values:  # a mistake in the declaration, not the input
                raise TypeError(f"{field.name} needs {name}, which is no setting")
            value = values[name]
            several = isinstance(value, (tuple, list))
            if (wanted in value) if several else (value == wanted):
                continue
            given = " ".join(map(str, value)) if several else value
            return (
                f"argument {flag(field.name)}: needs {flag(name)} {wanted}, "
                f"not {given or 'none'}"
            )
    return None


def _folders_problem(
    fields: Sequence[dataclasses.Field],
    values: Mapping[str, Any],
    flag: Callable[[str], str],
) -> str | None:
    """Folder settings must name different folders, and the output none of them."""
    seen: dict[str, str] = {}
    for field in fields:
        value = values[field.name]
        if not field.metadata["check"].folder or value is None:
            continue
        key = _folder_key(value)
        if key in seen:
            return (
                f"argument {flag(field.name)}: {value} is also {flag(seen[key])}; "
                "give a different folder"
            )
        seen[key] = field.name
    for field in fields:
        value = values[field.name]
        if not field.metadata["check"].output or value is None:
            continue
        output = _folder_key(value)
        for folder, name in seen.items():
            if output == folder or output.startswith(folder.rstrip("/") + "/"):
                return (
                    f"argument {flag(field.name)}: {value} is inside {flag(name)}; "
                    "its files would be read as images: give another folder"
                )
    return None


def _folder_key(path: str) -> str:
    """The same string for two spellings of one folder (`a/../b`, `gs://b/x/`)."""
    return path.rstrip("/") if files.is_remote(path) else os.path.realpath(path)


def unwritable(path: str) -> str | None:
    """Why a script could not write in the folder `path`, or None if it can."""
    if files.is_remote(
        path
    ):  # gs://, s3://...: its file system says at the first write
        return None
    if os.path.exists(path) and not os.path.isdir(path):
        return f"{path} is a file, not a folder"
    nearest = os.path.abspath(path)
    while not os.path.exists(nearest):
        nearest = os.path.dirname(nearest)
    if not os.path.isdir(nearest):
        return f"{path} cannot be made: {nearest} is a file"
    if not os.access(nearest, os.W_OK | os.X_OK):
        return f"cannot write in {nearest} (permission denied)"
    return None
