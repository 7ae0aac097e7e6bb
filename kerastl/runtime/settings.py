"""A script's settings, declared once: a dataclass whose fields are `setting()`s.

Each field of a script's `Settings` dataclass holds one setting's default, help
and checks. `parse_settings` derives everything else from that declaration:
the command line (`--batch-size`, for the field `batch_size`), `--help`, the
checks of each value (a bad one is a usage error, exit 2, whether it comes
from the command line or from a default edited in the script), the checks of
values together (`needs`), and the record of the run (`settings_record`, kept
in `run.json` and shown by `kerastl compare`). The type of each option comes
from the field's annotation:

* `bool`: `--name` and `--no-name`;
* `int`, `float`, `str`, and `X | None`: one value;
* `tuple[X, ...]`: one or more values, the option repeatable; its values
  add up (`--export tflite --export onnx` is `--export tflite onnx`) and
  replace the default.

A script's `Settings` extends `RunSettings` (`run_settings.py`), which
declares the settings of the run; `--help` lists the fields of each class
under its own title (a class's `settings_title`, else "the recipe", and its
`settings_description`).
"""

import argparse
import dataclasses
import os
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from .setting_checks import ValueCheck, check_together, checked_default, value_type
from .setting_options import DEFAULT, add_option, environment_value, flag, option_text

__all__ = [
    "flag",
    "option_text",
    "parse_settings",
    "setting",
    "settings_record",
    "training_settings",
]

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
    needs: Mapping[str, Any] | None = None,
    off: Any = None,
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
        needs: Values of other settings this one needs whenever it is not
            `off` (`needs={"lr_schedule": "cosine"}`); a setting of several
            values meets a need when it holds the value. A combination that
            does not is a usage error.
        off: The value at which the setting does nothing, so needs nothing.
    """
    check = ValueCheck(
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
        "needs": dict(needs or {}),
        "off": off,
    }
    if isinstance(default, list):  # a dataclass default must not be mutable
        default = tuple(default)
    return dataclasses.field(default=default, metadata=metadata)


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
        An instance of `cls`. A bad value, given or edited in as a default, or
        a combination a setting's `needs` refuse, exits with a usage error
        (status 2) naming the option.
    """
    parser = argparse.ArgumentParser(description=description)
    hints = typing.get_type_hints(cls)
    for title, about, group in _groups(cls):
        options = parser.add_argument_group(title, about)
        for field in group:
            add_option(options, field, hints[field.name])
    given = vars(parser.parse_args(argv))
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    values = {}
    for field in fields:
        value = given[field.name]
        if value is DEFAULT:  # not on the command line: the script's default
            value = environment_value(parser, field, hints[field.name])
        if value is DEFAULT:
            value = _checked_default(parser, field, hints[field.name])
        values[field.name] = tuple(value) if isinstance(value, list) else value
    if problem := check_together(fields, values, flag):
        parser.error(problem)
    return cls(**values)


def _groups(cls: type) -> list[tuple[str, str | None, list[dataclasses.Field]]]:
    """The fields of `cls` in `--help`'s groups, the script's own first: each
    group's title, description and fields.

    A field belongs to the class that first declares it (a field redeclared
    to change its default stays with its class); a class's title is its
    `settings_title` (else "the recipe"), its description its
    `settings_description`.
    """
    declared_by: dict[str, type] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            for field in dataclasses.fields(klass):
                declared_by.setdefault(field.name, klass)
    groups: dict[str, tuple[str | None, list[dataclasses.Field]]] = {}
    for klass in cls.__mro__:  # the script's class first, its bases after
        title = vars(klass).get("settings_title", "the recipe")
        groups.setdefault(title, (vars(klass).get("settings_description"), []))
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        owner = declared_by[field.name]
        groups[vars(owner).get("settings_title", "the recipe")][1].append(field)
    return [
        (title, about, fields) for title, (about, fields) in groups.items() if fields
    ]


def settings_record(settings: Any) -> dict[str, Any]:
    """The settings as JSON-ready data, for `run.json` and the run's state,
    in the order of `--help`: the recipe, then the run."""
    return {
        field.name: _recorded(field, getattr(settings, field.name))
        for _, _, fields in _groups(type(settings))
        for field in fields
    }


def training_settings(settings: Any) -> dict[str, Any]:
    """The settings that change what a run trains (`setting(trains=True)`)."""
    record = settings_record(settings)
    return {
        field.name: record[field.name]
        for field in dataclasses.fields(settings)
        if field.metadata.get("trains", True)
    }


def _recorded(field: dataclasses.Field, value: Any) -> Any:
    """A value as recorded: a local folder of images as an absolute path (the
    same folder however it was typed), a tuple as a list."""
    check = field.metadata.get("check")
    if check is not None and check.folder and isinstance(value, str):
        return value if "://" in value else os.path.abspath(value)
    return list(value) if isinstance(value, tuple) else value


def _checked_default(
    parser: argparse.ArgumentParser, field: dataclasses.Field, annotation: Any
) -> Any:
    """The default, checked as a typed value would be (a script may edit it)."""
    kind, many, _ = value_type(annotation)
    try:
        return checked_default(field.metadata["check"], field.default, kind, many)
    except argparse.ArgumentTypeError as error:
        parser.error(f"argument {flag(field.name)}: {error} (the script's default)")
