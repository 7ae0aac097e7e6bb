"""Which images train, validate and test, with which labels: from class folders
or from tables, checked and split the same way before any image is decoded.

Every set is put in one order whatever the source (`LabelledImages`): the
files sorted by path, as Keras lists class folders; the training images then
shuffled from the seed. So a table that names the images of class folders,
with the classes they are in, trains exactly as the folders do.
"""

import os
from dataclasses import dataclass

from .errors import DataError
from .folders import check_classes, scan_image_folder
from .image_lists import LabelledImages, kinds_line
from .images import check_images
from .splits import split_problem, stratified_split
from .table_sets import load_tables


@dataclass(frozen=True)
class DataSources:
    """The images of each set and the classes, in the order of the labels.

    `test` holds a table's test rows (a test folder is read at the end by
    `load_test_folder`); `split` says whether the validation images were
    split off the training images.
    """

    train: LabelledImages
    validation: LabelledImages
    test: LabelledImages | None
    class_names: list[str]
    split: bool


def data_sources(
    data_dir: str | os.PathLike,
    *,
    val_dir: str | os.PathLike | None = None,
    labels: str | None = None,
    val_labels: str | None = None,
    test_labels: str | None = None,
    label_delimiter: str | None = None,
    validation_split: float = 0.2,
    seed: int = 1337,
) -> DataSources:
    """Scans the folders or reads the tables, then splits off the validation
    images if no folder, table or `split` column gives them
    (`stratified_split`).

    Raises:
        DataError: If a folder or table cannot be used (`TableError` for a
            table), or a class could not be both trained and validated.
    """
    root = os.fspath(data_dir)
    test = None
    if labels is None:
        if val_labels is not None or test_labels is not None:
            raise DataError("--val-labels and --test-labels need a --labels table")
        scan = scan_image_folder(root)
        class_names, train, validation = scan.class_names, scan.images(root), None
        if val_dir is not None:
            val_scan = scan_image_folder(val_dir, "validation folder")
            check_classes(val_scan, class_names, f"validation folder {val_dir}")
            validation = val_scan.images(os.fspath(val_dir))
    else:
        if val_dir is not None:
            raise DataError(
                "--val-dir is for class folders; with --labels, give --val-labels "
                "or a split column"
            )
        tables = load_tables(
            root,
            labels,
            val_labels=val_labels,
            test_labels=test_labels,
            delimiter=label_delimiter,
        )
        class_names, train = tables.class_names, tables.train
        validation, test = tables.validation, tables.test
        named = [s for s in (train, validation, test) if s is not None]
        paths = [path for images in named for path in images.paths]
        print(kinds_line(f"Labels from {labels}", paths, []))
        check_images(paths)  # every set at once: one run names every bad file
    train = train.in_path_order()
    split = validation is None
    if validation is None:
        kept, held_out = stratified_split(train.labels, validation_split, seed)
        train, validation = train.subset(kept), train.subset(held_out)
    if problem := split_problem(train.labels, validation.labels, class_names, split):
        raise DataError(problem)
    return DataSources(
        train.shuffled(seed),
        validation.in_path_order(),
        None if test is None else test.in_path_order(),
        class_names,
        split,
    )
