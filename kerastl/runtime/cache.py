"""Where decoded images are cached: in memory, on disk, or not at all, by size."""

import hashlib
import json
import os
import re
import shutil
import tempfile

from . import files
from .errors import DataError

CACHE_CHOICES = ("auto", "memory", "disk", "none")

# "auto" caches in memory what fits a quarter of the available memory.
MEMORY_SHARE = 4

_CACHE_FORMAT = "uint8-v1"  # in the disk cache's fingerprint: a new format, new files


def choose_cache(
    cache: str,
    size: int,
    *,
    cache_dir: str | os.PathLike | None,
    memory_budget: int | None,
    available: int | None,
) -> tuple[str, str]:
    """Where to cache `size` bytes of decoded images, and why.

    "auto" keeps the images in memory when they fit the budget (by default a
    quarter of the `available` memory: training needs the rest, and a disk
    cache is read back through the system's file cache while memory is free),
    else on disk in `cache_dir`, else decodes them again each epoch.

    Returns:
        `("memory" | "disk" | "none", reason)`, the reason for the printed line.

    Raises:
        DataError: If "disk" has no `cache_dir`, or "memory" cannot fit.
    """
    takes = f"decoded images take about {readable_size(size)}"
    known = f"{readable_size(available)} available" if available is not None else None
    if cache == "none":
        return "none", f"as asked; {takes}, decoded again each epoch"
    if cache == "disk":
        if cache_dir is None:
            raise DataError("cache 'disk' needs a cache folder (cache_dir)")
        return "disk", f"as asked; {takes}"
    if cache == "memory":
        if available is not None and size > available:
            raise DataError(
                f"cache 'memory': {takes}, more than the {known}; "
                "use cache 'auto' or 'disk'"
            )
        return "memory", f"as asked; {takes}" + (f" of {known}" if known else "")
    if memory_budget is not None:
        budget, limit = (
            memory_budget,
            f"the memory budget of {readable_size(memory_budget)}",
        )
    elif available is not None:
        budget, limit = available // MEMORY_SHARE, f"a quarter of the {known}"
    else:
        budget, limit = -1, "a budget: the available memory is unknown"
    if size <= budget:
        return "memory", f"{takes} of {known or limit}"
    if cache_dir is None:
        return "none", f"{takes}; more than {limit}, and there is no cache folder"
    return "disk", f"{takes}; more than {limit}"


def available_memory() -> int | None:
    """Bytes of memory available to this process, or None where unknown.

    Linux's MemAvailable (which counts the file cache the system can drop),
    capped by a cgroup v2 memory limit (a container's); elsewhere the free
    pages `os.sysconf` reports.
    """
    available = None
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as file:
            limit = file.read().strip()
        with open("/sys/fs/cgroup/memory.current") as file:
            used = file.read().strip()
        if limit != "max":
            left = max(int(limit) - int(used), 0)
            available = left if available is None else min(available, left)
    except (OSError, ValueError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, AttributeError):
            pass
    return available


def readable_size(size: int) -> str:
    """`size` in bytes, for people: "18 MB", "9.6 GB"."""
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 999.5:
            break
        value /= 1000
    else:
        unit = "TB"
    return (
        f"{value:.1f} {unit}"
        if value < 9.95 and unit != "bytes"
        else f"{value:.0f} {unit}"
    )


def cache_folder(folder: str | os.PathLike, size: int) -> tuple[str, str]:
    """Where a cache of `size` bytes meant for `folder` goes, and the words saying so.

    A local `folder` is used as it is. A cache meant for a remote folder
    (`gs://...`) goes to a local temporary folder, deleted when the process
    exits, if it takes at most half the free space there: a cache is read at
    least once per run (the image cache every epoch), and a local read costs no
    request. A larger one goes to the remote folder, where a rerun reuses it.

    Returns:
        `(folder, words)`: "in FOLDER", and for a remote run why there.
    """
    folder = os.fspath(folder)
    if not files.is_remote(folder):
        return folder, f"in {folder}"
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if size <= free // 2:
        local = files.local_temporary_folder("kerastl-cache-")
        return local, (
            f"in {local}, a local temporary folder deleted at exit as the output "
            "folder is remote"
        )
    return folder, (
        f"in {folder}, remote: {readable_size(size)} is more than half the "
        f"{readable_size(free)} free on the local disk"
    )


def disk_cache_prefix(
    cache_dir: str | os.PathLike,
    subset: str,
    file_paths: list[str],
    class_names: list[str],
    image_size: int,
    *,
    labels: list | None = None,
) -> tuple[str, str]:
    """The file prefix of a subset's disk cache, and "reused", "new" or "replaced".

    The prefix ends in a fingerprint of what the cache holds (each file's path,
    size, modification time and label, the classes, the image size), so a cache of
    other images is never read. Files of this subset under another fingerprint
    are deleted, as are the leftovers of a run killed while filling the cache
    (its lockfile would stop TensorFlow): `cache_dir` is the script's own folder.
    """
    labelled = sorted(
        zip(file_paths, [None] * len(file_paths) if labels is None else labels)
    )
    paths = [path for path, _ in labelled]
    entries = [
        (path, size, mtime, label)
        for (path, label), (size, mtime) in zip(labelled, files.sizes_and_times(paths))
    ]
    digest = hashlib.sha256(
        json.dumps([_CACHE_FORMAT, image_size, class_names, entries]).encode()
    ).hexdigest()[:16]
    name = f"{subset}-{digest}"
    prefix = files.join(cache_dir, name)
    whole = files.exists(f"{prefix}.index")
    files.make_dirs(cache_dir)
    replaced = False
    for entry in files.list_dir(cache_dir):
        if not re.fullmatch(rf"{subset}-[0-9a-f]{{16}}[._].*", entry):
            continue
        if whole and entry.startswith(f"{name}."):
            continue
        replaced = replaced or not entry.startswith(name)
        files.delete(files.join(cache_dir, entry))
    return prefix, "reused" if whole else "replaced" if replaced else "new"
