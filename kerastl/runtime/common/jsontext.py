"""Reading JSON files, with one-line errors that name the file."""

import json
import os
from typing import Any


class JsonFileError(ValueError):
    """A JSON file that cannot be read, is not JSON, or holds the wrong kind."""


def parse_json(text: str | bytes, name: str, kind: type | None = None) -> Any:
    """The JSON value in `text`, which came from the file `name`.

    Args:
        text: The file's contents.
        name: The file, as the error names it.
        kind: The type the value must have (`dict`, `list`), or None for any.

    Raises:
        JsonFileError: If `text` is not JSON or its value is not a `kind`.
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise JsonFileError(f"{name} is not valid JSON ({error})") from None
    if kind is not None and not isinstance(data, kind):
        article = "an" if kind.__name__[0] in "aeiou" else "a"
        noun = {"dict": "object", "list": "array"}.get(kind.__name__, kind.__name__)
        raise JsonFileError(f"{name} does not hold {article} JSON {noun}")
    return data


def read_json_file(
    path: str | os.PathLike, kind: type | None = None, name: str | None = None
) -> Any:
    """The JSON value in the local file `path` (see `parse_json`).

    Raises:
        FileNotFoundError: If there is no such file.
        JsonFileError: If it cannot be read, is not JSON or not a `kind`.
    """
    name = name or os.fspath(path)
    try:
        with open(path, "rb") as file:
            text = file.read()
    except FileNotFoundError:
        raise
    except OSError as error:
        raise JsonFileError(f"cannot read {name} ({error})") from None
    return parse_json(text, name, kind)
