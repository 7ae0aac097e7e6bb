"""A generated script's `main()` called in one Python process, as a notebook does."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, new_script, script_env

pytestmark = pytest.mark.slow

NOTEBOOK = """
import sys

sys.path.insert(0, {folder!r})
import train

arguments = {arguments!r}
train.main(arguments)
print("=== second run")
train.main(arguments)  # a cell run again: the run is finished
print("=== range test")
train.main([*arguments, "--find-lr"])  # returns: the range test is a whole run
print("=== the interpreter goes on")
"""


def test_main_twice_in_one_process_runs_as_two_processes(
    tmp_path: Path, digits_dir: Path
) -> None:
    new_script(tmp_path, "--backbone", "MobileNetV3Small", "--image-size", "32")
    output = tmp_path / "run"
    arguments = ["--data-dir", str(digits_dir), "--weights", "none"]
    arguments += ["--epochs", "1", "--fine-tune-epochs", "1"]
    arguments += ["--output-dir", str(output)]
    notebook = NOTEBOOK.format(folder=str(tmp_path), arguments=arguments)
    result = subprocess.run(
        [sys.executable, "-c", notebook],
        capture_output=True,
        text=True,
        env=script_env(PYTHONPATH=str(REPO)),
        cwd=tmp_path,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    first, second, range_test = result.stdout.split("=== ")[:3]
    assert "Phase 'head', epochs 1 to 1:" in first
    assert "holds a run with" not in result.stderr
    assert f"The run in {output} finished: nothing to train." in second
    assert "Phase 'head', epochs" not in second
    assert "suggested learning rate: " in range_test
    assert (output / "lr_find.png").is_file()
    assert result.stdout.rstrip().endswith("=== the interpreter goes on")
