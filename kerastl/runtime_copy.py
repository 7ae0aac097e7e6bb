"""`--standalone`: copy the runtime package beside a script, byte for byte.

`kerastl new --standalone -o DIR/train.py` writes `DIR/kerastl_runtime/`: every
file of `kerastl/runtime/` (no caches) and `MANIFEST`, their SHA-256 hashes in
`sha256sum` format. The script imports the copy as `kerastl_runtime`. The copy
replaces an older one only with `force`; `kerastl update` refreshes a copy whose
files still match its MANIFEST, and refuses one the user edited unless `force`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kerastl.files import OutputError, make_folder

RUNTIME_DIR = Path(__file__).parent / "runtime"
COPY_NAME = "kerastl_runtime"
MANIFEST = "MANIFEST"
CACHE_FOLDER = "__pycache__"


@dataclass(frozen=True)
class RuntimeCopy:
    """A copy worked out, not yet written.

    Attributes:
        folder: Where the copy goes: `kerastl_runtime` beside the script.
        files: Each file's path inside the copy and its bytes, MANIFEST included.
        status: `"wrote"`, `"overwrote"`, `"refreshed"` or `"unchanged"`.
    """

    folder: Path
    files: dict[str, bytes]
    status: str


def runtime_files(runtime_dir: Path = RUNTIME_DIR) -> dict[str, bytes]:
    """The runtime package's files, by path inside it, with their MANIFEST."""
    files = _read_tree(runtime_dir)
    files[MANIFEST] = manifest(files)
    return files


def manifest(files: dict[str, bytes]) -> bytes:
    """`sha256sum` lines for `files`, sorted by path."""
    return "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n"
        for name, data in sorted(files.items())
    ).encode()


def plan_copy(script: Path, *, force: bool, refresh: bool) -> RuntimeCopy:
    """Checks where the copy of the runtime for `script` goes; writes nothing.

    Args:
        script: The standalone script; the copy goes beside it.
        force: Replace any existing copy, edited or not.
        refresh: Replace an existing copy that still matches its MANIFEST
            (`kerastl update`); `kerastl new` replaces one only with `force`.

    Raises:
        OutputError: If the copy there may not be replaced.
    """
    folder = script.parent / COPY_NAME
    files = runtime_files()
    if not folder.exists():
        return RuntimeCopy(folder, files, "wrote")
    if not folder.is_dir():
        raise OutputError(f"{folder} is not a folder; move it away first")
    on_disk = _read_tree(folder)
    if on_disk == files:
        return RuntimeCopy(folder, files, "unchanged")
    if force:
        return RuntimeCopy(folder, files, "overwrote")
    edited = edited_files(on_disk)
    if edited:
        raise OutputError(
            f"{folder} was edited ({', '.join(edited)} differ from its {MANIFEST}); "
            "pass --force to replace it"
        )
    if not refresh:
        raise OutputError(
            f"{folder} exists from another kerastl version; `kerastl update` on "
            "its script refreshes it, --force overwrites it"
        )
    return RuntimeCopy(folder, files, "refreshed")


def edited_files(files: dict[str, bytes]) -> list[str]:
    """The files of a copy that its MANIFEST does not list as they are."""
    listed: dict[str, str] = {}
    try:
        for line in files.get(MANIFEST, b"").decode().splitlines():
            digest, name = line.split("  ", 1)
            listed[name] = digest
    except (UnicodeDecodeError, ValueError):
        listed = {}
    if not listed:
        return [MANIFEST]
    actual = {
        name: hashlib.sha256(data).hexdigest()
        for name, data in files.items()
        if name != MANIFEST
    }
    return sorted(
        name
        for name in actual.keys() | listed.keys()
        if actual.get(name) != listed.get(name)
    )


@contextlib.contextmanager
def installed(copy: RuntimeCopy | None) -> Iterator[None]:
    """Writes `copy` in a hidden folder, and swaps it in if the block succeeds.

    The block writes the script; if it raises, the hidden folder is removed
    and the old copy, if any, stays as it was. The script's folder is created.
    """
    if copy is None or copy.status == "unchanged":
        yield
        return
    make_folder(copy.folder.parent)
    staged = Path(
        tempfile.mkdtemp(
            dir=copy.folder.parent, prefix=f".{COPY_NAME}.", suffix=".partial"
        )
    )
    try:
        _write_tree(staged, copy.files)
        yield
        _swap(staged, copy.folder)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _read_tree(folder: Path) -> dict[str, bytes]:
    """The files under `folder` but Python's caches, by their POSIX path in it."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and CACHE_FOLDER not in path.relative_to(folder).parts
    }


def _write_tree(folder: Path, files: dict[str, bytes]) -> None:
    """Writes `files` under the empty `folder` with the umask's permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())


def _swap(staged: Path, folder: Path) -> None:
    """Puts `staged` in place of `folder` with renames; the old one is removed."""
    if not folder.exists():
        os.replace(staged, folder)
        return
    old = Path(
        tempfile.mkdtemp(dir=folder.parent, prefix=f".{COPY_NAME}.", suffix=".old")
    )
    os.replace(folder, old / COPY_NAME)
    try:
        os.replace(staged, folder)
    except BaseException:
        os.replace(old / COPY_NAME, folder)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
