"""Writing a generated file: atomically, and never over a file without `force`.

Every file the generator writes goes through `replacing`. (The runtime has its
own `kerastl.runtime.files`: the generator never imports the runtime, which
loads TensorFlow.)
"""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
    with (
        replacing(path) as partial,
        open(partial, "w", encoding="utf-8", newline="\n") as file,
    ):
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    return "overwrote" if existed else "wrote"


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A new temporary file beside `path`, renamed onto it when the block succeeds.

    The file gets the permissions `path` has, or for a new file those of the
    umask. If the block fails, the temporary file is deleted and `path` stays
    as it was.
    """
    mode = path.stat().st_mode & 0o777 if path.exists() else default_mode()
    descriptor, partial = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".partial"
    )
    os.close(descriptor)
    try:
        yield Path(partial)
        os.chmod(partial, mode)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def default_mode() -> int:
    """Permissions of a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
