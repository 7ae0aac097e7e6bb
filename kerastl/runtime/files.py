"""Every file the runtime reads, writes, lists, renames or deletes: local or remote.

Paths are strings, either local or URLs that `tf.io.gfile` opens: `gs://`
natively, `s3://` and `hdfs://` with `tensorflow-io`, `ram://` (TensorFlow's
in-memory file system, which the tests use). `pathlib` would turn `gs://b/x`
into `gs:/b/x`, so the runtime builds paths with `join` and never with `Path`.
(The generator has its own `kerastl.files`: it may not import this package,
which loads TensorFlow.)

What is atomic where. A file written whole goes through `replacing`.
- On a local disk it is the one atomic write of `common/atomic.py`, which the
  generator uses too: a temporary file with a unique name beside NAME, synced
  to the disk, renamed onto NAME. NAME is the old file or the new one.
- Object stores (`gs://`, `s3://`) have no rename: the file is written as
  `partial-NAME` beside NAME; `tf.io.gfile` copies it onto NAME, then deletes
  it. An object appears whole when its upload ends, so NAME is never
  half-written either, but a kill between the copy and the delete leaves a
  `partial-` object behind, which the next write replaces.
- A run's state file (`resume/state.json`) names the checkpoint files it uses
  and is written after them; files it no longer names are deleted after it.
  A kill at any point leaves a state that names whole files.
"""

import atexit
import contextlib
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import tensorflow as tf

from .common import atomic

PARTIAL_PREFIX = "partial-"  # a remote file being written: `partial-best.keras`

# Remote metadata requests made at once by `sizes_and_times`.
_REMOTE_REQUESTS = 16


def is_remote(path: str | os.PathLike) -> bool:
    """Whether `path` is a URL (`gs://...`) rather than a local path."""
    return "://" in os.fspath(path)


def join(folder: str | os.PathLike, *names: str) -> str:
    """`folder/name/...`, for local paths and URLs alike."""
    return os.path.join(os.fspath(folder), *names)  # "/" on POSIX, kept in URLs


def base_name(path: str | os.PathLike) -> str:
    """The last part of `path` (`gs://b/run/model.keras` -> `model.keras`)."""
    return os.fspath(path).rstrip("/").rsplit("/", 1)[-1]


def parent(path: str | os.PathLike) -> str:
    """The folder holding `path`."""
    return os.path.dirname(os.fspath(path).rstrip("/")) or "."


def relative(path: str | os.PathLike, folder: str | os.PathLike) -> str:
    """`path` relative to `folder`, with "/" between its parts."""
    path, folder = os.fspath(path), os.fspath(folder)
    if is_remote(path):
        return path[len(folder.rstrip("/")) + 1 :]
    return os.path.relpath(path, folder).replace(os.sep, "/")


def exists(path: str | os.PathLike) -> bool:
    return tf.io.gfile.exists(os.fspath(path))


def is_dir(path: str | os.PathLike) -> bool:
    return tf.io.gfile.isdir(os.fspath(path))


def is_file(path: str | os.PathLike) -> bool:
    return exists(path) and not is_dir(path)


def make_dirs(path: str | os.PathLike) -> None:
    """Creates the folder `path` and its parents, if missing."""
    tf.io.gfile.makedirs(os.fspath(path))


def list_dir(path: str | os.PathLike) -> list[str]:
    """The names of the entries of folder `path`, sorted (folders without "/")."""
    return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(os.fspath(path)))


def files_below(folder: str | os.PathLike) -> list[str]:
    """Every file below `folder`, at any depth, sorted, as full paths."""
    folder = os.fspath(folder)
    # os.walk where it can: a local listing through tf.io.gfile costs twice the time.
    walk = tf.io.gfile.walk if is_remote(folder) else os.walk
    return sorted(join(root, name) for root, _, names in walk(folder) for name in names)


def sizes_and_times(paths: list[str]) -> list[tuple[int, int]]:
    """Each file's size in bytes and modification time in nanoseconds.

    Remote files are asked about in parallel: one request each.
    """

    def stat(path: str) -> tuple[int, int]:
        info = tf.io.gfile.stat(path)
        return info.length, info.mtime_nsec

    if not any(is_remote(path) for path in paths):
        return [stat(path) for path in paths]
    with ThreadPoolExecutor(_REMOTE_REQUESTS) as pool:
        return list(pool.map(stat, paths))


def read_bytes(path: str | os.PathLike) -> bytes:
    return read_head(path, -1)


def read_head(path: str | os.PathLike, size: int) -> bytes:
    """The first `size` bytes of a file (fewer if it is shorter; -1: all)."""
    path = os.fspath(path)
    # Python's own reader for a local file: for thousands of small images,
    # tf.io.gfile's costs more than the check of their contents.
    opener = tf.io.gfile.GFile if is_remote(path) else open
    with opener(path, "rb") as file:
        return file.read(size)


@contextlib.contextmanager
def mapped(path: str | os.PathLike) -> Iterator[bytes | mmap.mmap]:
    """A file's contents: memory-mapped if local and at least 1 MiB (only the
    pages read are loaded), else read whole."""
    path = os.fspath(path)
    if is_remote(path) or os.path.getsize(path) < 1 << 20:
        yield read_bytes(path)
        return
    with (
        open(path, "rb") as file,
        mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as contents,
    ):
        yield contents


def read_text(path: str | os.PathLike) -> str:
    return read_bytes(path).decode("utf-8")


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[str]:
    """A temporary path beside `path`, put in its place when the block succeeds.

    The temporary name keeps `path`'s endings (`partial-model.keras`), which
    Keras and numpy read to choose a format. If the block fails, the partial
    file is deleted and `path` stays as it was. The folder is created. A
    local `path` gets `common.atomic.replacing`'s guarantee.
    """
    path = os.fspath(path)
    make_dirs(parent(path))
    if not is_remote(path):
        with atomic.replacing(path) as partial:
            yield partial
        return
    partial = join(parent(path), PARTIAL_PREFIX + base_name(path))
    try:
        yield partial
        tf.io.gfile.rename(partial, path, overwrite=True)
    except BaseException:
        delete(partial)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> str:
    """Writes `data` to `path` through `replacing`; returns the path."""
    if not is_remote(path):
        make_dirs(parent(path))
        return atomic.write_bytes(path, data)
    with replacing(path) as partial, tf.io.gfile.GFile(partial, "wb") as file:
        file.write(data)
    return os.fspath(path)


def write_text(path: str | os.PathLike, text: str) -> str:
    """Writes `text` (UTF-8) to `path` through `replacing`; returns the path."""
    return write_bytes(path, text.encode("utf-8"))


def delete(path: str | os.PathLike) -> bool:
    """Deletes a file or a folder with its contents; returns whether there was one."""
    path = os.fspath(path)
    if is_dir(path):
        tf.io.gfile.rmtree(path)
        return True
    if exists(path):
        tf.io.gfile.remove(path)
        return True
    return False


@contextlib.contextmanager
def written_locally(path: str | os.PathLike) -> Iterator[str]:
    """A local path to write a file or folder to, for writers that only know
    local files (TFLite, ONNX); a remote `path` gets it copied up afterwards,
    replacing what was there."""
    path = os.fspath(path)
    if not is_remote(path):
        make_dirs(parent(path))
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="kerastl-") as folder:
        local = os.path.join(folder, base_name(path))
        yield local
        delete(path)
        sources = files_below(local) if os.path.isdir(local) else [local]
        for source in sources:
            target = join(path, relative(source, local)) if source != local else path
            make_dirs(parent(target))
            tf.io.gfile.copy(source, target, overwrite=True)


def local_temporary_folder(prefix: str) -> str:
    """A new local folder, deleted with its contents when the process exits."""
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
