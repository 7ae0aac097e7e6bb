"""JSON files, local or remote: read with one-line errors, written atomically."""

import json
import os

from . import files
from .common.jsontext import parse_json


def read_json(path: str | os.PathLike) -> dict | None:
    """The JSON value in `path`, or None if there is no such file.

    Raises:
        JsonFileError: If the file is not JSON.
    """
    if not files.exists(path):
        return None
    return parse_json(files.read_bytes(path), os.fspath(path))


def write_json(path: str | os.PathLike, data: dict) -> None:
    """Writes `data` to `path` through a temporary file, so a kill never leaves half."""
    files.write_text(path, json.dumps(data, indent=2) + "\n")
