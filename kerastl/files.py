"""Writing a generated file: atomically, and never over a file without `force`.

Every file the generator writes goes through `replacing`, the runtime's one
atomic write (`kerastl.common.atomic`, which imports no TensorFlow).
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path

from kerastl.common.atomic import replacing as atomic_replacing
from kerastl.errors import KerastlError


class OutputError(KerastlError):
    """The output path cannot be written."""


def write_atomic(path: Path, text: str, *, force: bool = False) -> str:
    """Writes `text` to `path` with `replacing`, creating its missing folders.

    A failure at any point leaves `path` as it was.

    Returns:
        `"wrote"`, `"overwrote"`, or `"unchanged"` when `path` already holds `text`.

    Raises:
        OutputError: If `path` is a folder, a folder on its way is a file, or
            `path` exists with other content and `force` is false.
    """
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
            raise OutputError(
                f"{path} exists; pass --force to overwrite it (kerastl update "
                f"{path} brings a generated script up to date, keeping your edits)"
            )
    make_folder(path.parent)
    with (
        replacing(path) as partial,
        open(partial, "w", encoding="utf-8", newline="\n") as file,
    ):
        file.write(text)
    return "overwrote" if existed else "wrote"


def make_folder(folder: Path) -> None:
    """Creates `folder` and its missing parents.

    Raises:
        OutputError: If `folder` or one of its parents is a file.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(
            f"cannot create folder {folder}: a file is in the way"
        ) from None


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A new temporary file beside `path`, renamed onto it when the block succeeds.

    See `kerastl.common.atomic.replacing` for the guarantee.
    """
    with atomic_replacing(path) as partial:
        yield Path(partial)
