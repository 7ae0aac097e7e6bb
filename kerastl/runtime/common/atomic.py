"""The one atomic write of a local file: whole or not at all.

The guarantee of `replacing`: the new contents go to a temporary file with a
unique name in the target's folder, keeping the target's endings
(`.partial-k2x9-model.keras`, which Keras and numpy read to choose a format);
the file is flushed to the disk (fsync), gets the target's permissions (or the
umask's for a new file) and is renamed over the target. A reader sees the old
file or the new one, never half of one; a failure leaves the target as it was
and deletes the temporary file. Two writers of one target never share a
temporary file. (Remote paths, `gs://...`, have no rename: `runtime/files.py`
writes them as a partial object copied over the target.)
"""

import contextlib
import os
import tempfile
from collections.abc import Iterator

PARTIAL_PREFIX = ".partial-"


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[str]:
    """A new temporary file beside `path`, put in its place if the block succeeds.

    The block writes the temporary file by its name (it exists, empty); the
    folder must exist.
    """
    path = os.fspath(path)
    folder, name = os.path.split(path)
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else _default_mode()
    descriptor, partial = tempfile.mkstemp(
        dir=folder or ".", prefix=PARTIAL_PREFIX, suffix=f"-{name}"
    )
    os.close(descriptor)
    try:
        yield partial
        _sync(partial)
        os.chmod(partial, mode)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> str:
    """Writes `data` to the local file `path` through `replacing`; returns the path."""
    with replacing(path) as partial, open(partial, "wb") as file:
        file.write(data)
    return os.fspath(path)


def _sync(path: str) -> None:
    """Flushes the file `path` to the disk."""
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def _default_mode() -> int:
    """Permissions of a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
