"""JSON files written atomically: a temporary name, then a rename."""

import json
from pathlib import Path

from .files import write_text


def read_json(path: Path) -> dict | None:
    """The JSON object in `path`, or None if there is no such file."""
    return json.loads(path.read_text()) if path.exists() else None


def write_json(path: Path, data: dict) -> None:
    """Writes `data` to `path` through a temporary file, so a kill never leaves half."""
    write_text(path, json.dumps(data, indent=2) + "\n")
