"""Labels from a table: reading, checking and splitting, on small CSVs of digits."""

import csv
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from kerastl.runtime.errors import DataError, TableError
from kerastl.runtime.image_sets import load_test_set
from kerastl.runtime.sources import data_sources
from kerastl.runtime.splits import class_counts, split_problem, stratified_split
from tests.conftest import new_script, run_script
from tests.digits import write_digits


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Class folders 0, 1 and 2 of 5 digit PNGs each."""
    return write_digits(tmp_path / "data", per_class=5, classes=3)


def write_table(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def folder_rows(folder: Path) -> list[list[str]]:
    """`[image, label]` for each image of the class folders, as a user would list them."""
    return [
        [str(path.relative_to(folder)), path.parent.name]
        for path in sorted(folder.glob("*/*.png"), reverse=True)  # any row order
    ]


def test_a_table_of_folder_images_gives_the_folders_sets_in_the_same_order(
    folder: Path, tmp_path: Path
) -> None:
    table = write_table(
        tmp_path / "labels.csv", ["image", "label"], folder_rows(folder)
    )
    from_folders = data_sources(folder, validation_split=0.4, seed=7)
    from_table = data_sources(folder, labels=str(table), validation_split=0.4, seed=7)
    assert from_table.class_names == from_folders.class_names == ["0", "1", "2"]
    for subset in ("train", "validation"):
        ours, theirs = getattr(from_table, subset), getattr(from_folders, subset)
        assert ours.paths == theirs.paths
        np.testing.assert_array_equal(ours.labels, theirs.labels)
    assert from_table.train.table_sha256 and from_folders.train.table is None


def test_a_split_column_matches_a_validation_folder(
    folder: Path, tmp_path: Path
) -> None:
    val = write_digits(tmp_path / "val", per_class=2, classes=3, start=5)
    rows = [[*row, "train"] for row in folder_rows(folder)]
    rows += [[f"../val/{image}", label, "val"] for image, label in folder_rows(val)]
    table = write_table(tmp_path / "t.csv", ["image", "label", "split"], rows)
    from_folders = data_sources(folder, val_dir=val)
    from_table = data_sources(folder, labels=str(table))
    for subset in ("train", "validation"):
        assert getattr(from_table, subset).paths == getattr(from_folders, subset).paths
    assert not from_table.split and from_table.test is None


def test_a_labels_column_gives_multi_hot_rows(folder: Path, tmp_path: Path) -> None:
    rows = [
        [image, f"{label};odd" if int(label) % 2 else label]
        for image, label in folder_rows(folder)
    ]
    table = write_table(tmp_path / "m.csv", ["image", "labels"], rows)
    sources = data_sources(folder, labels=str(table), label_delimiter=";", seed=1)
    assert sources.class_names == ["0", "1", "2", "odd"]
    labels = np.concatenate([sources.train.labels, sources.validation.labels])
    assert labels.dtype == np.float32 and labels.shape == (15, 4)
    assert class_counts(labels, sources.class_names) == {
        "0": 5,
        "1": 5,
        "2": 5,
        "odd": 5,
    }
    assert sources.train.multi_label
    # Each class validates (iterative stratification): 20% of 5 images is one.
    assert set(
        class_counts(sources.validation.labels, sources.class_names).values()
    ) == {1}


def test_test_rows_and_other_columns(folder: Path, tmp_path: Path) -> None:
    rows = [
        [note, image, label, "" if note % 5 else "test"]  # one test image a class
        for note, (image, label) in enumerate(folder_rows(folder))
    ]
    table = write_table(tmp_path / "t.csv", ["note", "Image", "Label", "Split"], rows)
    sources = data_sources(folder, labels=str(table))
    assert len(sources.test.paths) == sum(row[3] == "test" for row in rows) > 0
    assert (
        len(sources.train.paths)
        + len(sources.validation.paths)
        + len(sources.test.paths)
        == 15
    )
    test = load_test_set(
        sources.test, image_size=16, batch_size=2, class_names=sources.class_names
    )
    labels = np.concatenate([batch[1] for batch in test.batches.as_numpy_iterator()])
    np.testing.assert_array_equal(labels, np.eye(3))  # one a class, one-hot, in order
    assert test.files.table_sha256 == hashlib.sha256(table.read_bytes()).hexdigest()


def broken(folder: Path, tmp_path: Path, case: str) -> Path:
    """A table with one kind of problem, the others fine."""
    rows = [[*row, ""] for row in folder_rows(folder)]
    header = ["image", "label", "split"]
    if case == "missing files":
        rows += [["0/gone.png", "0", ""], ["2/lost.png", "2", ""]]
    elif case == "unnamed images":
        rows = rows[2:]
    elif case == "duplicates":
        rows += [rows[0], rows[0], rows[3]]
    elif case == "empty labels":
        rows[1][1] = rows[4][1] = " "
    elif case == "class only in validation":
        shutil.copy(folder / "0" / "0_0000.png", folder / "9.png")
        rows += [["9.png", "9", "val"]]
    elif case == "unknown split":
        rows[0][2] = "valid"
    elif case == "fields":
        rows[2].append("extra")
    elif case == "quote":
        (tmp_path / "t.csv").write_text(
            'image,label\n0/0_0000.png,0\n"1/1_0001.png,1\n2/2_0002.png,2\n'
        )  # the quote opened on line 3 reads on to the end
        return tmp_path / "t.csv"
    elif case == "columns":
        header = ["file", "class", "split"]
    return write_table(tmp_path / "t.csv", header, rows)


BROKEN = {
    "missing files": r": 2 rows naming missing files \(0/gone.png \(line 17\), "
    r"2/lost.png \(line 18\)\)$",
    "unnamed images": r": 2 images in .*/data that no row names \(2/2_\d+.png, 2/2_\d+.png\)$",
    "duplicates": r": 3 duplicate rows \(2/2_\d+.png on lines 2, 17, 18, "
    r"2/2_\d+.png on lines 5, 19\)$",
    "empty labels": r"t.csv: 2 rows with empty labels \(line 3, line 6\)$",
    "class only in validation": r": class only in the validation rows, none to "
    r"train: '9' \(1\)$",
    "unknown split": r"t.csv: 1 row with an unknown split \(use train, val, test\) "
    r"\(line 2: 'valid'\)$",
    "fields": r"t.csv: 1 row with another number of fields than the header's 3 "
    r"\(line 4: 4 fields\); 1 image in .* that no row names \(2/2_\d+.png\)$",
    "quote": r"t.csv: malformed CSV at line 3 \(unexpected end of data\); 14 images "
    r"in .* that no row names",
    "columns": r"t.csv has the columns file, class, split; it needs a header row "
    r"with image, and label or labels \(and optionally split\)$",
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_broken_table_is_refused_in_one_line_naming_the_problem(
    folder: Path, tmp_path: Path, case: str
) -> None:
    table = broken(folder, tmp_path, case)
    with pytest.raises(TableError) as raised:
        data_sources(folder, labels=str(table))
    message = str(raised.value)
    assert "\n" not in message
    assert re.search(BROKEN[case], message), message
    print(f"{case}: {message}")  # the report quotes each (pytest -s)


def test_every_problem_of_a_table_is_named_at_once(
    folder: Path, tmp_path: Path
) -> None:
    rows = folder_rows(folder)[1:] + [["0/gone.png", "0"], ["1/1_0001.png", ""]]
    table = write_table(tmp_path / "t.csv", ["image", "label"], rows)
    with pytest.raises(TableError) as raised:
        data_sources(folder, labels=str(table))
    assert re.fullmatch(
        r"the labels cannot be used: t.csv: 1 row with empty labels \(line 17\); "
        r"1 row naming missing files \(0/gone.png \(line 16\)\); "
        r"1 image in .* that no row names \(2/2_\d+.png\)",
        str(raised.value),
    ), raised.value


def test_tables_need_labels_and_class_folders_no_tables(
    folder: Path, tmp_path: Path
) -> None:
    table = write_table(tmp_path / "t.csv", ["image", "label"], folder_rows(folder))
    with pytest.raises(DataError, match="--val-labels and --test-labels need"):
        data_sources(folder, val_labels=str(table))
    with pytest.raises(DataError, match="give --val-labels or a split column"):
        data_sources(folder, labels=str(table), val_dir=folder)
    with pytest.raises(TableError, match="nothing.csv does not exist"):
        data_sources(folder, labels=str(tmp_path / "nothing.csv"))


def test_the_single_label_split_is_stratified_exactly_and_seeded() -> None:
    labels = np.repeat(np.arange(4), [10, 20, 7, 3])
    train, val = stratified_split(labels, 0.2, seed=3)
    assert sorted(np.concatenate([train, val])) == list(range(40))
    assert np.bincount(labels[val]).tolist() == [2, 4, 1, 1]  # 8 of 40
    again = stratified_split(labels, 0.2, seed=3)[1]
    assert val.tolist() == again.tolist()
    assert val.tolist() != stratified_split(labels, 0.2, seed=4)[1].tolist()


def test_the_multi_label_split_keeps_each_label_in_both_sets() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random((200, 6)) < [0.5, 0.3, 0.1, 0.05, 0.02, 0.01]).astype(
        np.float32
    )
    train, val = stratified_split(labels, 0.25, seed=1)
    assert len(val) == 50 and sorted(np.concatenate([train, val])) == list(range(200))
    positives, validated = labels.sum(axis=0), labels[val].sum(axis=0)
    assert (validated >= 1).all() and (labels[train].sum(axis=0) >= 1).all()
    # Each label's validation share stays near 25% (one image for the rarest).
    assert np.all(np.abs(validated - np.maximum(0.25 * positives, 1)) <= 1.5)


def test_a_class_that_cannot_train_and_validate_is_named(
    folder: Path, tmp_path: Path
) -> None:
    for image in sorted((folder / "2").iterdir())[1:]:
        image.unlink()
    with pytest.raises(
        DataError, match=r"^class '2' has fewer than 2 images \('2': 1\)"
    ):
        data_sources(folder)
    labels = np.array([0, 0, 1, 1])
    assert split_problem(labels, np.array([0]), ["0", "1"], split=False) == (
        "class '1' has no validation image; add one to each"
    )


@pytest.mark.slow
def test_a_table_of_the_folders_trains_exactly_as_the_folders(
    digits_dir: Path, tmp_path: Path
) -> None:
    """A run on the folders, then on a table of the same images in another
    order (`test_a_split_column_matches_a_validation_folder` shows a split
    column gives the sets a validation folder gives)."""
    script = new_script(
        tmp_path,
        *("--mode", "feature-extraction", "--backbone", "MobileNetV3Small"),
        *("--image-size", "32"),
    )
    common = ("--data-dir", str(digits_dir), "--weights", "none", "--epochs", "1")
    folders = run_script(script, *common, "--output-dir", str(tmp_path / "folders"))
    assert folders.returncode == 0, folders.stderr[-3000:]
    table = write_table(
        tmp_path / "digits.csv", ["image", "label"], folder_rows(digits_dir)
    )
    result = run_script(
        script,
        *(*common, "--labels", str(table), "--output-dir", str(tmp_path / "run")),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Labels from {table}: 120 images (120 .png)" in result.stdout
    history = (tmp_path / "run" / "history.csv").read_text()
    assert history == (tmp_path / "folders" / "history.csv").read_text()
    card = json.loads((tmp_path / "run" / "run.json").read_text())["data"]
    assert (
        card["training"]["label_table_sha256"]
        == hashlib.sha256(table.read_bytes()).hexdigest()
    )
    print(history)
