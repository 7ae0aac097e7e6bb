"""The one atomic write (`kerastl.common.atomic`), shared by the generator and the runtime."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kerastl.common import atomic

REPO = Path(__file__).resolve().parent.parent


def test_the_common_helpers_import_without_tensorflow() -> None:
    code = (
        "import sys\n"
        "import kerastl.common.atomic, kerastl.files, kerastl.compare\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow'\n"
        "assert 'kerastl.runtime' not in sys.modules, 'kerastl.runtime'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
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
