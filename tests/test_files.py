"""The runtime's file layer, on a local folder and on `ram://` (a stand-in for gs://)."""

import os
from pathlib import Path

import pytest
import tensorflow as tf

from kerastl.runtime import files


@pytest.fixture(params=["local", "remote"])
def folder(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "folder")
    return f"ram://{tmp_path.name}/folder"


def test_paths_keep_urls_whole() -> None:
    assert files.join("gs://bucket/run", "resume", "state.json") == (
        "gs://bucket/run/resume/state.json"
    )
    assert files.parent("gs://bucket/run/model.keras") == "gs://bucket/run"
    assert files.parent("sheet.png") == "."
    assert files.base_name("gs://bucket/run/") == "run"
    assert files.relative("gs://bucket/data/3/a.png", "gs://bucket/data/") == "3/a.png"
    assert files.relative("data/3/a.png", "data") == "3/a.png"
    assert files.is_remote("ram://x") and not files.is_remote("runs/x")


def test_whole_files_replace_and_leave_no_partial(folder: str) -> None:
    path = files.join(folder, "sub", "state.json")
    files.write_text(path, "one")
    files.write_text(path, "two")
    assert files.read_text(path) == "two"
    assert files.list_dir(files.join(folder, "sub")) == ["state.json"]
    with pytest.raises(RuntimeError), files.replacing(path) as partial:
        files.write_text(partial, "half")
        raise RuntimeError("killed")
    assert files.read_text(path) == "two"
    assert files.list_dir(files.join(folder, "sub")) == ["state.json"]


def test_listing_sizes_and_deleting(folder: str) -> None:
    for name in ("b/2.png", "a/1.png", "a/deep/3.png"):
        files.write_bytes(files.join(folder, name), b"x" * len(name))
    below = files.files_below(folder)
    assert [files.relative(path, folder) for path in below] == [
        "a/1.png",
        "a/deep/3.png",
        "b/2.png",
    ]
    assert [size for size, _ in files.sizes_and_times(below)] == [7, 12, 7]
    assert files.list_dir(folder) == ["a", "b"]
    assert files.is_dir(files.join(folder, "a")) and files.is_file(below[0])
    assert files.delete(files.join(folder, "a")) and files.delete(below[-1])
    assert not files.delete(below[-1])
    assert files.list_dir(folder) == ["b"]


def test_local_only_writers_reach_remote_folders(folder: str) -> None:
    with files.written_locally(files.join(folder, "model.tflite")) as local:
        assert not files.is_remote(local)
        Path(local).write_bytes(b"flat")
    with files.written_locally(files.join(folder, "saved")) as local:
        os.makedirs(os.path.join(local, "variables"))
        Path(local, "saved_model.pb").write_bytes(b"pb")
        Path(local, "variables", "v.index").write_bytes(b"index")
    assert files.read_bytes(files.join(folder, "model.tflite")) == b"flat"
    saved = files.join(folder, "saved")
    assert [files.relative(path, saved) for path in files.files_below(saved)] == [
        "saved_model.pb",
        "variables/v.index",
    ]
    assert tf.io.gfile.exists(files.join(saved, "variables", "v.index"))
