"""A script's settings, declared once: a dataclass whose fields are `setting()`s.

Each field of a script's `Settings` dataclass holds one setting's default, help
and checks. `parse_settings` derives everything else from that declaration:
the command line (`--batch-size`, for the field `batch_size`), `--help`, the
checks of each value (a bad one is a usage error, exit 2, whether it comes
from the command line or from a default edited in the script), and the record
of the run (`settings_record`, kept in `run.json` and shown by
`kerastl compare`). The type of each option comes from the field's annotation:

* `bool`: `--name` and `--no-name`;
* `int`, `float`, `str`, and `X | None`: one value;
* `tuple[X, ...]`: one or more values, the option repeatable; its values
  add up (`--export tflite --export onnx` is `--export tflite onnx`) and
  replace the default.
"""

import argparse
import dataclasses
import math
import os
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from . import files

SettingsT = TypeVar("SettingsT")


def setting(
    default: Any,
    help: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
    choices: Sequence[str] | None = None,
    parse: Callable[[str], Any] | None = None,
    folder: bool = False,
    output: bool = False,
    required: bool = False,
    trains: bool = True,
    environment: str | None = None,
    bare: Any = None,
    metavar: str | None = None,
) -> Any:
    """One field of a script's `Settings` dataclass.

    Args:
        default: The value when the option is not given; a tuple for several.
        help: What the setting does, for `--help`.
        minimum: The smallest value allowed.
        maximum: The largest value allowed.
        above: A value the setting must exceed.
        below: A value the setting must stay under.
        choices: The values allowed.
        parse: Reads one value from its text instead of the annotated type;
            raises `argparse.ArgumentTypeError` for a bad one.
        folder: The value is an existing folder of images, different from the
            other folder settings.
        output: The value is the folder the script writes: not a file, not
            among the folders of images, and writable (the nearest existing
            folder on its path), checked before anything loads. A URL
            (`gs://...`) is left to its file system.
        required: A value must be given when the default is None.
        trains: Whether the setting changes what a run trains; those that do
            not (the output folder, exports...) are left out when a rerun of a
            finished run names the settings it ignores.
        environment: An environment variable whose value, when it is set,
            replaces `default` (a platform's convention, such as Vertex AI's
            `AIP_CHECKPOINT_DIR`); the command line still wins.
        bare: The value of the option given alone, without a value
            (`--find-lr` for `--find-lr head`).
        metavar: The value's name in `--help` (default: the field name's
            last word, upper-cased).
    """
    check = _Check(
        minimum, maximum, above, below, tuple(choices or ()), parse, folder, output
    )
    metadata = {
        "help": help,
        "check": check,
        "required": required,
        "trains": trains,
        "environment": environment,
        "bare": bare,
        "metavar": metavar,
    }
    if isinstance(default, list):  # a dataclass default must not be mutable
        default = tuple(default)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class _Check:
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
        if self.output and (problem := _unwritable(value)):
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


def parse_settings(
    cls: type[SettingsT],
    argv: Sequence[str] | None = None,
    *,
    description: str | None = None,
) -> SettingsT:
    """The settings of a run: `cls`'s defaults, overridden by the command line.

    Args:
        cls: The script's `Settings` dataclass, its fields made by `setting()`.
        argv: The arguments (default: the command line).
        description: The first line of `--help`.

    Returns:
        An instance of `cls`. A bad value, given or edited in as a default,
        exits with a usage error (status 2) naming the option.
    """
    parser = argparse.ArgumentParser(description=description)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    for field in fields:
        _add_option(parser, field, hints[field.name])
    given = vars(parser.parse_args(argv))
    values = {}
    for field in fields:
        value = given[field.name]
        if value is _DEFAULT:  # not on the command line: the script's default
            value = _environment_value(parser, field, hints[field.name])
        if value is _DEFAULT:
            value = _checked_default(parser, field, hints[field.name])
        values[field.name] = tuple(value) if isinstance(value, list) else value
    _check_folders(parser, fields, values)
    return cls(**values)


def settings_record(settings: Any) -> dict[str, Any]:
    """The settings as JSON-ready data, for `run.json` and the run's state."""
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in dataclasses.asdict(settings).items()
    }


def training_settings(settings: Any) -> dict[str, Any]:
    """The settings that change what a run trains (`setting(trains=True)`)."""
    record = settings_record(settings)
    return {
        field.name: record[field.name]
        for field in dataclasses.fields(settings)
        if field.metadata.get("trains", True)
    }


class _Default:
    """Marks an option that the command line did not give."""

    def __repr__(self) -> str:
        return "the setting's default"


_DEFAULT = _Default()


def flag(name: str) -> str:
    """The option of the setting `name`: `--batch-size` for `batch_size`."""
    return "--" + name.replace("_", "-")


def option_text(name: str, value: Any) -> str:
    """The option that gives `value`: `--dropout 0.5`, `--no-augment`."""
    if isinstance(value, bool):
        return flag(name) if value else "--no-" + flag(name)[2:]
    shown = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
    return f"{flag(name)} {shown}"


def _add_option(
    parser: argparse.ArgumentParser, field: dataclasses.Field, annotation: Any
) -> None:
    check: _Check = field.metadata["check"]
    default = field.default
    kind, many, optional = _value_type(annotation)
    shown = _shown(default)
    options: dict[str, Any] = {
        "dest": field.name,
        "default": _DEFAULT,
        "help": f"{field.metadata['help']} (default: {shown}{_from_environment(field)})",
    }
    if kind is bool and not many:
        options["action"] = argparse.BooleanOptionalAction
        options["help"] = (
            field.metadata["help"] + f" (default: {'yes' if default else 'no'})"
        )
    else:
        options["type"] = _reader(check, kind, optional)
        options["metavar"] = (
            "{" + ",".join(check.choices) + "}"
            if check.choices
            else field.metadata.get("metavar") or field.name.upper().split("_")[-1]
        )
        if many:
            options["nargs"] = "+"
            options["action"] = _AddUp
        elif field.metadata.get("bare") is not None:
            options["nargs"] = "?"
            options["const"] = field.metadata["bare"]
        if field.metadata["required"] and default is None:
            options["required"] = True
    parser.add_argument(flag(field.name), **options)


def _from_environment(field: dataclasses.Field) -> str:
    name = field.metadata.get("environment")
    return f", or ${name} when it is set" if name else ""


def _reader(check: _Check, kind: type, optional: bool) -> Callable[[str], Any]:
    def read(text: str) -> Any:
        return check.read(text, kind, optional)

    read.__name__ = kind.__name__  # argparse names the type in its errors
    return read


class _AddUp(argparse.Action):
    """Values of a repeated option add up, and replace the default."""

    def __call__(self, parser, namespace, values, option_string=None):
        earlier = getattr(namespace, self.dest)
        earlier = [] if earlier is _DEFAULT else earlier
        setattr(namespace, self.dest, [*earlier, *values])


def _value_type(annotation: Any) -> tuple[Any, bool, bool]:
    """The type of one value; whether the setting holds several; whether None."""
    if typing.get_origin(annotation) is tuple:
        item = typing.get_args(annotation)[0]
        return _value_type(item)[0], True, False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        optional = len(kinds) < len(typing.get_args(annotation))
        if set(kinds) == {int, str}:
            return _int_or_str, False, optional
        (kind,) = kinds
        return _value_type(kind)[0], False, optional
    return annotation, False, False


#: What a default of each type may be (a whole number is a float too).
_ACCEPTS: dict[Any, tuple[type, ...]] = {float: (int, float)}


def _int_or_str(text: str) -> int | str:
    """A whole number if the text is one (`--unfreeze 3`), else the text."""
    stripped = text.strip()
    return int(stripped) if stripped.lstrip("+-").isdigit() else stripped


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(map(str, value)) or "none"
    return str(value)


def _environment_value(
    parser: argparse.ArgumentParser, field: dataclasses.Field, annotation: Any
) -> Any:
    """The value of the setting's environment variable, read as the command
    line's would be; `_DEFAULT` when it has none or the variable is not set."""
    name = field.metadata.get("environment")
    text = os.environ.get(name) if name else None
    if not text:
        return _DEFAULT
    kind, _, optional = _value_type(annotation)
    try:
        return _reader(field.metadata["check"], kind, optional)(text)
    except argparse.ArgumentTypeError as error:
        parser.error(f"argument {flag(field.name)}: {error} (from ${name})")


def _checked_default(
    parser: argparse.ArgumentParser, field: dataclasses.Field, annotation: Any
) -> Any:
    """The default, checked as a typed value would be (a script may edit it)."""
    check: _Check = field.metadata["check"]
    value = field.default
    kind, many, _ = _value_type(annotation)
    if value is None:
        return value
    accepted = _ACCEPTS.get(kind, (int, str) if kind is _int_or_str else (kind,))

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

    try:
        if many:
            if not isinstance(value, tuple):
                raise argparse.ArgumentTypeError(f"{value!r} is not a tuple")
            return tuple(checked(item) for item in value)
        return checked(value)
    except argparse.ArgumentTypeError as error:
        parser.error(f"argument {flag(field.name)}: {error} (the script's default)")


def _check_folders(
    parser: argparse.ArgumentParser,
    fields: Sequence[dataclasses.Field],
    values: dict[str, Any],
) -> None:
    """Folder settings must name different folders, and the output none of them."""
    seen: dict[str, str] = {}
    for field in fields:
        value = values[field.name]
        if not field.metadata["check"].folder or value is None:
            continue
        key = _folder_key(value)
        if key in seen:
            parser.error(
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
                parser.error(
                    f"argument {flag(field.name)}: {value} is inside {flag(name)}; "
                    "its files would be read as images: give another folder"
                )


def _folder_key(path: str) -> str:
    """The same string for two spellings of one folder (`a/../b`, `gs://b/x/`)."""
    return path.rstrip("/") if files.is_remote(path) else os.path.realpath(path)


def _unwritable(path: str) -> str | None:
    """Why a script could not write in the folder `path`, or None if it can."""
    if files.is_remote(
        path
    ):  # gs://, s3://...: its file system says so at the first write
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
