"""A whole run on remote storage: TensorFlow's `ram://` file system, as gs:// would be.

The data, the test images and the base's weights come from `ram://`; the run
writes where Vertex AI's variables say (no --output-dir); a rerun finds it
finished; and nothing is left on the local disk.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, new_script, script_env
from tests.digits import write_digits

VERTEX_AI = {
    "AIP_CHECKPOINT_DIR": "ram://bucket/checkpoints",
    "AIP_MODEL_DIR": "ram://bucket/model",
    "AIP_TENSORBOARD_LOG_DIR": "ram://bucket/logs",
}


@pytest.mark.slow
def test_a_run_reads_and_writes_only_remote_folders(
    tmp_path: Path, digits_dir: Path
) -> None:
    script = new_script(
        tmp_path,
        *("--mode", "feature-extraction", "--backbone", "MobileNetV3Small"),
        *("--image-size", "32"),
    )
    test = write_digits(tmp_path / "test", per_class=2)
    work, temporary = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    temporary.mkdir()
    result = tmp_path / "result.json"
    options = "--weights ram://weights/base.weights.h5 --epochs 2 --no-augment"
    options += " --cache disk"
    process = subprocess.run(
        [sys.executable, str(REPO / "tests" / "remote_run.py"), str(digits_dir)]
        + [str(test), str(script), str(result), *options.split()],
        capture_output=True,
        text=True,
        env=script_env(TMPDIR=str(temporary), **VERTEX_AI),
        cwd=work,
        timeout=600,
        check=False,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    outcome = json.loads(result.read_text())
    assert outcome["codes"] == [0, 0], process.stdout[-3000:]
    names = {path.removeprefix("ram://bucket/") for path in outcome["files"]}
    run = {
        name.removeprefix("checkpoints/") for name in names if "checkpoints/" in name
    }
    assert run == {
        "best.keras",
        "model.keras",
        "labels.json",
        "history.csv",
        "metrics.json",
        "run.json",
        "confusion_matrix.png",
        "training_curves.png",
        "top_losses.png",
        "explanations.png",
        "resume/state.json",  # the checkpoints are gone: model.keras replaces them
    }
    model = {name.removeprefix("model/") for name in names if name.startswith("model/")}
    assert {"saved_model.pb", "labels.json", "model.keras"} <= model
    assert any(name.startswith("logs/train/events.out.tfevents") for name in names)
    assert all(size > 0 for size in outcome["files"].values())
    settings = outcome["run"]["settings"]
    assert settings["data_dir"] == "ram://data"
    assert settings["output_dir"] == "ram://bucket/checkpoints"
    assert outcome["run"]["data"]["test"]["images"] == 20
    # The caches went to a local temporary folder, deleted at exit; the rerun
    # trained nothing; nothing is left on the local disk.
    assert f"Cache: disk in {temporary}/kerastl-cache-" in process.stdout
    assert "a local temporary folder deleted at exit" in process.stdout
    assert "finished: nothing to train" in process.stdout
    assert "Vertex AI: the shipped model is in ram://bucket/model" in process.stdout
    assert list(work.iterdir()) == []
    assert list(temporary.iterdir()) == []
