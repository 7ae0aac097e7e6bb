"""Writing a generated file: atomically, and never over a file without `force`."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from kerastl.errors import KerastlError


class OutputError(KerastlError):
    """The output path cannot be written."""


def write_atomic(path: Path, text: str, *, force: bool = False) -> str:
    """Writes `text` to `path` through a temporary file and an atomic rename.

    A failure at any point leaves `path` as it was.

    Returns:
        `"wrote"`, `"overwrote"`, or `"unchanged"` when `path` already holds `text`.

    Raises:
        OutputError: If the folder does not exist, `path` is a folder, or
            `path` exists with other content and `force` is false.
    """
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} does not exist")
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give a file name with -o")
    existed = path.exists()
    if existed:
        try:
            if path.read_text(encoding="utf-8") == text:
                return "unchanged"
        except (OSError, UnicodeDecodeError):
            pass
        if not force:
            raise OutputError(f"{path} exists; pass --force to overwrite it")
    with atomic_file(path, "w", encoding="utf-8", newline="\n") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    return "overwrote" if existed else "wrote"


@contextmanager
def atomic_file(path: Path, mode: str = "w", **open_args) -> Iterator[IO]:
    """A file opened under a temporary name beside `path`, renamed to it at the end.

    The file gets the permissions of the file it replaces, or those of a new
    file under the umask (not the 0600 of a temporary file). An error inside
    the block deletes it and leaves `path` as it was.
    """
    existed = path.exists()
    descriptor, partial = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".partial"
    )
    try:
        with os.fdopen(descriptor, mode, **open_args) as file:
            yield file
        os.chmod(partial, path.stat().st_mode & 0o777 if existed else default_mode())
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def default_mode() -> int:
    """Permissions of a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
