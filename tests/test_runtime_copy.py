"""`--standalone`: the runtime copied beside the script, its MANIFEST, refusals."""

import ast
import hashlib
import sys
from pathlib import Path

import pytest

from kerastl import runtime_copy
from kerastl.runtime_copy import COPY_NAME, MANIFEST, RUNTIME_DIR, runtime_files
from kerastl.script_base import base_path
from tests.test_update import kerastl  # the command line in this process

SCRIPT = "train.py"
NEW = ["new", "--mode", "fine-tune", "--image-size", "32", "--standalone", "-o"]
#: What the runtime may import besides the standard library: at the top of a
#: module, what any Keras user has; inside functions, the optional packages.
TOP_LEVEL_PACKAGES = {"keras", "numpy", "tensorflow", "h5py"}  # h5py: Keras needs it
OPTIONAL_PACKAGES = {
    "matplotlib",
    "onnxruntime",
    "onnx",
    "openvino",
    "ai_edge_litert",
    "keras_hub",
}


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def copy_on_disk(folder: Path) -> dict[str, bytes]:
    copy = folder / COPY_NAME
    return {
        path.relative_to(copy).as_posix(): path.read_bytes()
        for path in copy.rglob("*")
        if path.is_file()
    }


def packages(nodes: list[ast.stmt]) -> set[str]:
    """The top-level packages that absolute imports among `nodes` name."""
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add((node.module or "").split(".")[0])
    return names


def test_the_copy_is_the_runtime_byte_for_byte_with_its_manifest() -> None:
    files = runtime_files()
    python = sorted(
        path.relative_to(RUNTIME_DIR).as_posix()
        for path in RUNTIME_DIR.rglob("*.py")
        if "__pycache__" not in path.parts
    )
    assert python and set(python) <= set(files)
    for name, data in files.items():
        if name != MANIFEST:
            assert (RUNTIME_DIR / name).read_bytes() == data
            assert "__pycache__" not in name and not name.endswith(".pyc")
    lines = files[MANIFEST].decode().splitlines()
    assert lines == [
        f"{hashlib.sha256(files[name]).hexdigest()}  {name}"
        for name in sorted(set(files) - {MANIFEST})
    ]


def test_the_runtime_imports_only_its_siblings_and_keras() -> None:
    """The copy must work where kerastl is not installed."""
    for name, data in runtime_files().items():
        if not name.endswith(".py"):
            continue
        tree = ast.parse(data)
        everywhere = packages(list(ast.walk(tree)))
        assert "kerastl" not in everywhere, name
        assert packages(tree.body) - sys.stdlib_module_names <= TOP_LEVEL_PACKAGES
        assert everywhere - sys.stdlib_module_names <= (
            TOP_LEVEL_PACKAGES | OPTIONAL_PACKAGES
        ), name


def test_new_writes_the_script_and_the_copy(folder: Path, capsys) -> None:
    code, out, err = kerastl(capsys, *NEW, SCRIPT)
    assert code == 0, err
    assert out.startswith(f"wrote {SCRIPT}, wrote {COPY_NAME}/;")
    assert "import kerastl_runtime as runtime" in (folder / SCRIPT).read_text()
    assert copy_on_disk(folder) == runtime_files()
    assert sorted(path.name for path in folder.iterdir()) == [
        ".kerastl",
        COPY_NAME,
        SCRIPT,
    ]  # no partial folders left


def test_new_again_leaves_an_identical_copy_alone(folder: Path, capsys) -> None:
    kerastl(capsys, *NEW, SCRIPT)
    code, out, _ = kerastl(capsys, *NEW, "other.py")
    assert code == 0 and f"unchanged {COPY_NAME}/" in out


def test_new_replaces_another_copy_only_with_force(folder: Path, capsys) -> None:
    kerastl(capsys, *NEW, SCRIPT)
    older = runtime_files() | {"errors.py": b'"""An older release."""\n'}
    older[MANIFEST] = runtime_copy.manifest(
        {name: data for name, data in older.items() if name != MANIFEST}
    )
    (folder / COPY_NAME / "errors.py").write_bytes(older["errors.py"])
    (folder / COPY_NAME / MANIFEST).write_bytes(older[MANIFEST])
    code, _, err = kerastl(capsys, *NEW, "other.py")
    assert code == 1 and err.count("\n") == 1
    assert "exists from another kerastl version" in err
    assert not Path("other.py").exists()  # nothing written
    assert copy_on_disk(folder) == older
    code, out, _ = kerastl(capsys, *NEW, "other.py", "--force")
    assert code == 0 and f"overwrote {COPY_NAME}/" in out
    assert copy_on_disk(folder) == runtime_files()


def test_a_failed_script_write_leaves_the_old_copy(folder: Path, capsys) -> None:
    kerastl(capsys, *NEW, SCRIPT)
    (folder / COPY_NAME / "errors.py").write_text("# mine\n")
    edited = copy_on_disk(folder)
    Path("taken.py").mkdir()  # the script cannot be written
    code, _, err = kerastl(capsys, *NEW, "taken.py", "--force")
    assert code == 1 and "is a folder" in err
    assert copy_on_disk(folder) == edited
    assert not [path for path in folder.iterdir() if path.name.startswith(".kerastl_")]


def test_stdout_prints_the_script_and_says_the_copy_is_not_written(
    folder: Path, capsys
) -> None:
    code, out, err = kerastl(capsys, *NEW, SCRIPT, "--stdout")
    assert code == 0 and out.startswith("# Generated by kerastl")
    assert err.count("\n") == 1 and f"imports {COPY_NAME}" in err
    assert list(folder.iterdir()) == []


def test_update_refreshes_an_unedited_copy(folder: Path, capsys) -> None:
    kerastl(capsys, *NEW, SCRIPT)
    stale = folder / COPY_NAME / "errors.py"
    stale.write_text('"""An older release."""\n')
    files = copy_on_disk(folder)
    (folder / COPY_NAME / MANIFEST).write_bytes(
        runtime_copy.manifest({k: v for k, v in files.items() if k != MANIFEST})
    )
    code, out, err = kerastl(capsys, "update", SCRIPT)
    assert code == 0, err
    assert out.splitlines()[0] == f"refreshed {COPY_NAME}/"
    assert copy_on_disk(folder) == runtime_files()
    code, out, _ = kerastl(capsys, "update", SCRIPT)
    assert code == 0 and out == f"{SCRIPT} is up to date\n"


def test_update_refuses_an_edited_copy_unless_forced(folder: Path, capsys) -> None:
    kerastl(capsys, *NEW, SCRIPT)
    (folder / COPY_NAME / "unfreeze.py").write_text("# my fix\n")
    script = (folder / SCRIPT).read_text()
    for args in (["--dry-run"], []):
        code, _, err = kerastl(capsys, "update", SCRIPT, *args)
        assert code == 1 and err.count("\n") == 1
        assert "unfreeze.py differ from its MANIFEST" in err and "--force" in err
    assert (folder / COPY_NAME / "unfreeze.py").read_text() == "# my fix\n"
    assert (folder / SCRIPT).read_text() == script
    code, _, err = kerastl(capsys, "update", SCRIPT, "--force")
    assert code == 0, err
    assert copy_on_disk(folder) == runtime_files()


def test_a_copy_without_manifest_counts_as_edited(folder: Path, capsys) -> None:
    kerastl(capsys, *NEW, SCRIPT)
    (folder / COPY_NAME / MANIFEST).unlink()
    code, _, err = kerastl(capsys, "update", SCRIPT)
    assert code == 1 and f"({MANIFEST} differ" in err


def test_an_added_file_counts_as_edited(folder: Path, capsys) -> None:
    kerastl(capsys, *NEW, SCRIPT)
    (folder / COPY_NAME / "mine.py").write_text("x = 1\n")
    code, _, err = kerastl(capsys, "update", SCRIPT)
    assert code == 1 and "(mine.py differ" in err


def test_update_to_standalone_writes_the_copy(folder: Path, capsys) -> None:
    code, _, err = kerastl(capsys, "new", "--image-size", "32", "-o", SCRIPT)
    assert code == 0, err
    assert not (folder / COPY_NAME).exists()
    code, out, err = kerastl(capsys, "update", SCRIPT, "--standalone")
    assert code == 0, err
    assert out.splitlines()[0] == f"wrote {COPY_NAME}/"
    assert copy_on_disk(folder) == runtime_files()
    assert "import kerastl_runtime as runtime" in base_path(Path(SCRIPT)).read_text()
