"""Lists of image files and their labels, from class folders or a table alike.

Class folders and tables give the same `LabelledImages`, so everything after
them (the split, the order, the pipeline, the caches) is one code path: the
same images with the same labels train the same way whichever way they came.
"""

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np

from . import files
from .images import IMAGE_EXTENSIONS, all_files, is_image_name


@dataclass(frozen=True)
class LabelledImages:
    """Image files and their labels.

    Attributes:
        paths: The files.
        labels: One class index per file (int32), or one multi-hot row per
            file (float32, files x classes) when an image may have several.
        root: The folder relative paths are named from (`--data-dir`).
        table: The table the labels come from, or None for class folders.
        table_sha256: The SHA-256 of that table's bytes.
    """

    paths: list[str]
    labels: np.ndarray
    root: str
    table: str | None = None
    table_sha256: str | None = None

    @property
    def multi_label(self) -> bool:
        """Whether each image has a set of labels (multi-hot rows)."""
        return self.labels.ndim == 2

    def subset(self, indices: np.ndarray | list[int]) -> "LabelledImages":
        """The images at `indices`, in that order."""
        indices = np.asarray(indices, int)
        return LabelledImages(
            [self.paths[i] for i in indices],
            self.labels[indices],
            self.root,
            self.table,
            self.table_sha256,
        )

    def in_path_order(self) -> "LabelledImages":
        """Sorted by path: the order Keras lists a folder's classes and files."""
        return self.subset(sorted(range(len(self.paths)), key=self.paths.__getitem__))

    def shuffled(self, seed: int) -> "LabelledImages":
        """In an order drawn from `seed`: a shuffle buffer smaller than the
        set then still mixes the classes."""
        return self.subset(np.random.RandomState(seed).permutation(len(self.paths)))


def kinds_line(what: str, paths: list[str], skipped: list[str]) -> str:
    """One line: the files used and skipped, counted by kind (extension)."""
    line = f"{what}: {len(paths)} images ({_kinds(paths)})"
    if skipped:
        noun = "file" if len(skipped) == 1 else "files"
        line += (
            f"; skipped {len(skipped)} {noun} that are not images "
            f"({', '.join(IMAGE_EXTENSIONS)}): {_kinds(skipped)}"
        )
    return line


def _kinds(paths: list[str]) -> str:
    counts: dict[str, int] = {}
    for path in paths:
        kind = os.path.splitext(files.base_name(path))[1].lower() or "no extension"
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items()))


def skipped_files(folder: str) -> list[str]:
    """The files below `folder` that are not images by their extension."""
    return [path for path in all_files(folder) if not is_image_name(path)]


def images_fingerprint(images: LabelledImages, class_names: list[str]) -> str:
    """SHA-256 of the sorted names (relative to the root) and sizes of the
    files, and for a table their labels: another file, name, size or label
    changes it; new bytes of the same size in a file of the same name do not."""
    sizes = files.sizes_and_times(images.paths)
    listed = []
    for index, (path, (size, _)) in enumerate(zip(images.paths, sizes)):
        entry: list = [files.relative(path, images.root), size]
        if images.table is not None:
            entry.append(label_names(images.labels[index], class_names))
        listed.append(entry)
    return hashlib.sha256(json.dumps(sorted(listed)).encode()).hexdigest()


def label_names(label: np.ndarray, class_names: list[str]) -> list[str]:
    """The class names of one image's label (an index or a multi-hot row)."""
    if np.ndim(label) == 0:
        return [class_names[int(label)]]
    return [class_names[i] for i in np.flatnonzero(label)]
