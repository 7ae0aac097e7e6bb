"""Class folders: the preflight scan of a folder with one sub-folder per class.

The scan catches what would otherwise crash training mid-epoch (an unreadable
file, an empty class, fewer than two classes, validation classes that differ)
and says in one line how many files of each kind it used and skipped: no image
is dropped silently.
"""

import os
from dataclasses import dataclass, field

import numpy as np

from . import files
from .errors import DataError
from .image_lists import LabelledImages, kinds_line, skipped_files
from .images import IMAGE_EXTENSIONS, check_images, list_images


@dataclass(frozen=True)
class FolderScan:
    """What the preflight scan found in a data folder.

    Attributes:
        class_names: Sub-folder names, in the order Keras numbers them.
        counts: Number of images in each class.
    """

    class_names: list[str]
    counts: dict[str, int]
    paths: list[str] = field(default_factory=list)

    def images(self, root: str) -> LabelledImages:
        """The images, labelled by their class folder's index."""
        labels = np.repeat(
            np.arange(len(self.class_names), dtype=np.int32),
            [self.counts[name] for name in self.class_names],
        )
        return LabelledImages(list(self.paths), labels, root)

    @property
    def total(self) -> int:
        """Number of images in all classes."""
        return sum(self.counts.values())


def scan_image_folder(
    data_dir: str | os.PathLike, what: str = "data folder", *, notes: bool = True
) -> FolderScan:
    """Checks a folder of class sub-folders before training.

    Args:
        data_dir: The folder.
        what: What it is, for the messages ("data folder", "validation folder").
        notes: Whether to print the files used and skipped (`kinds_line`)
            and `nested_images_line` (once per folder: a folder scanned
            again says nothing).

    Raises:
        DataError: If the folder is missing, has fewer than two classes, has an
            empty class, or holds a file that is not an image; the message
            names the folder or file.
    """
    root = os.fspath(data_dir)
    if not files.is_dir(root):
        raise DataError(f"{what} {root} does not exist")
    class_names = [
        name
        for name in files.list_dir(root)
        if not name.startswith(".") and files.is_dir(files.join(root, name))
    ]
    if len(class_names) < 2:
        raise DataError(
            f"{root} has {len(class_names)} class folder(s); a classifier needs at least two"
        )
    counts, images, empty = {}, [], []
    for name in class_names:
        in_class = list_images(files.join(root, name))
        if not in_class:
            empty.append(files.join(root, name))
        counts[name] = len(in_class)
        images += in_class
    if notes:
        print(kinds_line(f"Scan of the {what} {root}", images, skipped_files(root)))
        if nested := nested_images_line(root, images):
            print(nested)
    # Every problem at once: one run names every empty class and bad file.
    try:
        check_images(images)
    except DataError as unreadable:
        if not empty:
            raise
        raise DataError(f"{_empty_classes(empty)}; and {unreadable}") from None
    if empty:
        raise DataError(_empty_classes(empty))
    return FolderScan(class_names, counts, images)


def _empty_classes(folders: list[str]) -> str:
    kinds = ", ".join(IMAGE_EXTENSIONS)
    if len(folders) == 1:
        return f"class folder {folders[0]} has no images ({kinds})"
    return f"class folders {', '.join(folders)} have no images ({kinds})"


def nested_images_line(root: str, images: list[str]) -> str | None:
    """One line when images lie in sub-folders of class folders, which Keras
    counts in the class: how many, in which folders (the first 3, then a count)."""
    folders: dict[str, int] = {}
    for path in images:
        parts = files.relative(path, root).split("/")
        if len(parts) > 2:
            folder = "/".join(parts[:-1])
            folders[folder] = folders.get(folder, 0) + 1
    if not folders:
        return None
    named = ", ".join(f"{name} ({count})" for name, count in list(folders.items())[:3])
    more = f" and {len(folders) - 3} more" if len(folders) > 3 else ""
    return (
        f"Note: {sum(folders.values())} images in {root} lie in sub-folders of a "
        f"class folder and count in that class: {named}{more}."
    )


def check_classes(scan: FolderScan, class_names: list[str], what: str) -> None:
    """Raises DataError unless the folder of `scan` has the classes `class_names`.

    The message names the classes missing from the folder and those it adds.
    """
    if scan.class_names == class_names:
        return
    missing = [name for name in class_names if name not in scan.class_names]
    extra = [name for name in scan.class_names if name not in class_names]
    raise DataError(
        f"the {what} has other classes than the training data: "
        f"missing {', '.join(missing) or 'none'}; extra {', '.join(extra) or 'none'}"
    )


def check_test_folder(
    test_dir: str | os.PathLike, class_names: list[str], *, notes: bool = True
) -> FolderScan:
    """Checks a test folder (its images and classes) before anything trains."""
    scan = scan_image_folder(test_dir, "test folder", notes=notes)
    check_classes(scan, class_names, f"test folder {test_dir}")
    return scan
