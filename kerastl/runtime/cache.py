"""Where decoded images are cached: in memory, on disk, or not at all, by size."""

import hashlib
import json
import os
import re
from pathlib import Path

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
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
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


def disk_cache_prefix(
    cache_dir: Path,
    subset: str,
    file_paths: list[str],
    class_names: list[str],
    image_size: int,
) -> tuple[str, str]:
    """The file prefix of a subset's disk cache, and "reused", "new" or "replaced".

    The prefix ends in a fingerprint of what the cache holds (each file's path,
    size and modification time, the classes, the image size), so a cache of
    other images is never read. Files of this subset under another fingerprint
    are deleted, as are the leftovers of a run killed while filling the cache
    (its lockfile would stop TensorFlow): `cache_dir` is the script's own folder.
    """
    entries = []
    for file_path in sorted(file_paths):
        stat = os.stat(file_path)
        entries.append((file_path, stat.st_size, stat.st_mtime_ns))
    digest = hashlib.sha256(
        json.dumps([_CACHE_FORMAT, image_size, class_names, entries]).encode()
    ).hexdigest()[:16]
    prefix = cache_dir / f"{subset}-{digest}"
    whole = Path(f"{prefix}.index").is_file()
    cache_dir.mkdir(parents=True, exist_ok=True)
    replaced = False
    for path in cache_dir.iterdir():
        if not re.fullmatch(rf"{subset}-[0-9a-f]{{16}}[._].*", path.name):
            continue
        if whole and path.name.startswith(f"{prefix.name}."):
            continue
        replaced = replaced or not path.name.startswith(prefix.name)
        path.unlink()
    return str(prefix), "reused" if whole else "replaced" if replaced else "new"
