"""The command line of a script's settings: one argparse option per field.

`settings.parse_settings` adds each field's option with `add_option`; a value
the command line did not give stays `DEFAULT`, and `environment_value` reads
the setting's environment variable, if it has one, as the command line would.
"""

import argparse
import dataclasses
import os
from collections.abc import Callable
from typing import Any

from .setting_checks import ValueCheck, value_type


class _NotGiven:
    """Marks an option that the command line did not give."""

    def __repr__(self) -> str:
        return "the setting's default"


DEFAULT = _NotGiven()


def flag(name: str) -> str:
    """The option of the setting `name`: `--batch-size` for `batch_size`."""
    return "--" + name.replace("_", "-")


def option_text(name: str, value: Any) -> str:
    """The option that gives `value`: `--dropout 0.5`, `--no-augment`."""
    if isinstance(value, bool):
        return flag(name) if value else "--no-" + flag(name)[2:]
    shown = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
    return f"{flag(name)} {shown}"


def add_option(parser: Any, field: dataclasses.Field, annotation: Any) -> None:
    """Adds the option of `field` to `parser` (or one of its argument groups)."""
    check: ValueCheck = field.metadata["check"]
    default = field.default
    kind, many, optional = value_type(annotation)
    shown = _shown(default)
    needs = field.metadata.get("needs") or {}
    help = field.metadata["help"] + "".join(
        f" (needs {option_text(name, value)})" for name, value in needs.items()
    )
    options: dict[str, Any] = {
        "dest": field.name,
        "default": DEFAULT,
        "help": help + _default_text(field, shown),
    }
    if kind is bool and not many:
        options["action"] = argparse.BooleanOptionalAction
        options["help"] = f"{help} (default: {'yes' if default else 'no'})"
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


def _reader(check: ValueCheck, kind: type, optional: bool) -> Callable[[str], Any]:
    def read(text: str) -> Any:
        return check.read(text, kind, optional)

    read.__name__ = kind.__name__  # argparse names the type in its errors
    return read


class _AddUp(argparse.Action):
    """Values of a repeated option add up, and replace the default."""

    def __call__(self, parser, namespace, values, option_string=None):
        earlier = getattr(namespace, self.dest)
        earlier = [] if earlier is DEFAULT else earlier
        setattr(namespace, self.dest, [*earlier, *values])


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(map(str, value)) or "none"
    if isinstance(value, str) and not value.strip():
        return repr(value)  # a space shown as ' '
    return str(value)


def _default_text(field: dataclasses.Field, shown: str) -> str:
    """What `--help` says of a default: nothing where the help says it
    already, or where there is none (an optional value, None by default)."""
    environment = _from_environment(field)
    if "(default" in field.metadata["help"]:
        return ""
    if field.default is None and field.metadata["required"]:
        return " (required)"
    if field.default is None and not environment:
        return ""
    return f" (default: {shown}{environment})"


def environment_value(
    parser: argparse.ArgumentParser, field: dataclasses.Field, annotation: Any
) -> Any:
    """The value of the setting's environment variable, read as the command
    line's would be; `DEFAULT` when it has none or the variable is not set."""
    name = field.metadata.get("environment")
    text = os.environ.get(name) if name else None
    if not text:
        return DEFAULT
    kind, _, optional = value_type(annotation)
    try:
        return _reader(field.metadata["check"], kind, optional)(text)
    except argparse.ArgumentTypeError as error:
        parser.error(f"argument {flag(field.name)}: {error} (from ${name})")
