"""The helpers the generator and the runtime share, importable without TensorFlow.

`kerastl.common.X` is the file `kerastl/runtime/common/X.py`: the one atomic
write, the JSON reader, the top-k ranking and the matplotlib figure.
"""

import os
from pathlib import Path

import pytest

from kerastl.common import atomic, jsontext, labels, plots, ranking
from tests.conftest import run_python

REPO = Path(__file__).resolve().parent.parent


def test_the_common_helpers_import_without_tensorflow() -> None:
    code = (
        "import sys\n"
        "import kerastl.common.atomic, kerastl.common.jsontext, kerastl.common.plots\n"
        "import kerastl.common.labels, kerastl.common.ranking, kerastl.files, kerastl.compare, kerastl.cli\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow'\n"
        "assert 'kerastl.runtime' not in sys.modules, 'kerastl.runtime'\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr


def test_two_writers_of_one_file_get_their_own_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "model.keras"
    with atomic.replacing(target) as first, atomic.replacing(target) as second:
        assert first != second
        for partial in (first, second):
            assert Path(partial).parent == tmp_path
            assert partial.endswith("-model.keras")
        Path(first).write_text("first")
        Path(second).write_text("second")
    assert target.read_text() == "first"  # the outer block ends last
    assert [path.name for path in tmp_path.iterdir()] == ["model.keras"]


def test_the_file_is_synced_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        events.append("fsync")
        real_fsync(descriptor)

    def replace(source: str, target: str) -> None:
        events.append("rename")
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic.write_bytes(tmp_path / "state.json", b"{}")
    assert events == ["fsync", "rename"]


def test_a_failure_keeps_the_old_file_and_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "run.sh"
    target.write_text("old")
    target.chmod(0o750)
    with pytest.raises(RuntimeError), atomic.replacing(target) as partial:
        Path(partial).write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    atomic.write_bytes(target, b"new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o750
    assert [path.name for path in tmp_path.iterdir()] == ["run.sh"]


def test_ranking_puts_the_highest_first_and_ties_to_the_lower_index() -> None:
    assert ranking.ranked([0.1, 0.5, 0.2, 0.5], 3) == [1, 3, 2]
    assert ranking.ranked([0.3, 0.7], 5) == [1, 0]


def test_json_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text('{"model": "model.keras"}')
    assert jsontext.read_json_file(path, dict) == {"model": "model.keras"}
    with pytest.raises(
        jsontext.JsonFileError, match=r"^m.json does not hold a JSON array$"
    ):
        jsontext.read_json_file(path, list, name="m.json")
    path.write_text('{"model": ')
    with pytest.raises(
        jsontext.JsonFileError, match=r"metrics.json is not valid JSON \("
    ):
        jsontext.read_json_file(path)
    with pytest.raises(FileNotFoundError):
        jsontext.read_json_file(tmp_path / "gone.json")


@pytest.mark.usefixtures("without_matplotlib")
def test_without_matplotlib_the_skip_is_said_once_per_process(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert plots.agg_figure(tmp_path / "a.png", (4, 3)) is None
    assert plots.agg_figure(tmp_path / "b.png", (4, 3)) is None
    assert capsys.readouterr().out == (
        f"matplotlib is not installed: skipping {tmp_path / 'a.png'}\n"
    )


def test_class_names_are_a_list_of_names() -> None:
    assert labels.class_names_in(["cat", 7], "labels.json") == ["cat", "7"]
    data: object
    for data in ([], {"0": "cat"}, None):
        with pytest.raises(ValueError, match="^run/labels.json does not list"):
            labels.class_names_in(data, "run/labels.json")
