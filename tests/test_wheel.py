"""The wheel ships the templates, and `kerastl new` works from an installed wheel."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kerastl.runtime_copy import COPY_NAME, runtime_files
from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("kerastl-*.whl")
    return path


def test_wheel_contains_templates_and_runtime(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    templates = sorted(
        Path(name).name for name in names if name.startswith("kerastl/templates/")
    )
    assert templates == sorted(
        path.name for path in (REPO / "templates").glob("*.jinja")
    )
    assert "kerastl/runtime/unfreeze.py" in names
    assert "kerastl/runtime/families.json" in names  # data the runtime reads
    assert "kerastl/hub_presets.json" in names  # KerasHub's presets, as data
    assert "kerastl/runtime/common/atomic.py" in names  # and its TF-free helpers
    assert "kerastl/common/__init__.py" in names  # which the generator imports
    assert not any(name.startswith(("tests/", "examples/")) for name in names)


def test_new_works_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import kerastl.render as render, sys; "
        "print(render.template_dir()); print(render.__file__)"
    )
    where = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert where[0] == str(target / "kerastl" / "templates")
    assert where[1].startswith(str(target))
    installed = subprocess.run(
        [sys.executable, "-m", "kerastl", "new", "--backbone", "vgg16", "--stdout"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    checkout = subprocess.run(
        [sys.executable, "-m", "kerastl", "new", "--backbone", "vgg16", "--stdout"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert installed == checkout
    subprocess.run(
        [sys.executable, "-m", "kerastl", "new", "--standalone", "-o", "train.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=True,
    )
    copy = tmp_path / COPY_NAME
    assert {
        path.relative_to(copy).as_posix(): path.read_bytes()
        for path in copy.rglob("*")
        if path.is_file()  # the runtime has folders: common/
    } == runtime_files()  # the installed runtime is the checkout's, files and data
