"""The base of a script: the render it started from, kept beside it for updates."""

from __future__ import annotations

from pathlib import Path

from kerastl.files import write_atomic

BASE_FOLDER = ".kerastl"
BASE_SUFFIX = ".base"


def base_path(script: Path) -> Path:
    """Where the base of `script` is kept: `<folder>/.kerastl/<name>.base`."""
    return script.parent / BASE_FOLDER / (script.name + BASE_SUFFIX)


def write_base(script: Path, text: str) -> None:
    """Keeps `text`, the render `script` was written from, as its base (atomic)."""
    path = base_path(script)
    path.parent.mkdir(exist_ok=True)
    write_atomic(path, text, force=True)
