"""JSON files written atomically: a temporary name, then a rename."""

import json
import os

from . import files


def read_json(path: str | os.PathLike) -> dict | None:
    """The JSON object in `path`, or None if there is no such file."""
    return json.loads(files.read_text(path)) if files.exists(path) else None


def write_json(path: str | os.PathLike, data: dict) -> None:
    """Writes `data` to `path` through a temporary file, so a kill never leaves half."""
    files.write_text(path, json.dumps(data, indent=2) + "\n")
