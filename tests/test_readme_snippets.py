"""The export snippets of docs/export.md and the `kerastl predict` commands of
the README and docs/, run as written against a real exported run (slow: trains
one tiny run for the session)."""

import contextlib
import csv
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kerastl.cli import cli
from tests.conftest import REPO, script_env
from tests.test_docs import code_blocks, kerastl_commands

pytestmark = pytest.mark.slow

EXPORT_SNIPPETS = [
    block
    for block in code_blocks(REPO / "docs" / "export.md", "python")
    if "/export/" in block
]
# Each distinct `kerastl predict` command of the pages, in order.
PREDICT_COMMANDS = list(
    dict.fromkeys(
        shlex.join(command.words)
        for command in kerastl_commands()
        # On the demo's run (docs/multilabel.md's runs/tags is a multi-label
        # run of photos the docs do not ship).
        if command.words[1] == "predict" and command.words[2] == "runs/first"
    )
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, exported_run: Path) -> Path:
    """A folder laid out as the docs assume: `runs/first` and `examples/`."""
    folder = tmp_path_factory.mktemp("readme")
    (folder / "runs").mkdir()
    (folder / "runs" / "first").symlink_to(exported_run)
    (folder / "examples").symlink_to(REPO / "examples")
    return folder


def run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        env=script_env(PYTHONPATH=str(REPO)),
        timeout=300,
    )


def test_the_docs_have_a_snippet_per_format_and_predict_commands() -> None:
    formats = [
        "/export/saved_model",
        "/export/model.tflite",
        "/export/model.onnx",
        "/export/model.xml",
    ]
    assert [
        next(name for name in formats if name in block) for block in EXPORT_SNIPPETS
    ] == formats
    # docs/predict.md's three and the README's; one writes the CSV read below.
    assert len(PREDICT_COMMANDS) >= 3
    assert any("--output predictions.csv" in command for command in PREDICT_COMMANDS)


@pytest.mark.parametrize(
    "index", range(4), ids=["saved-model", "tflite", "onnx", "openvino"]
)
def test_each_export_snippet_runs_as_written(workspace: Path, index: int) -> None:
    result = run(workspace, "-c", EXPORT_SNIPPETS[index])
    assert result.returncode == 0, result.stderr[-3000:]
    name, probability = result.stdout.split()
    labels = json.loads((workspace / "runs" / "first" / "labels.json").read_text())
    assert name in labels and 0 < float(probability) <= 1


def test_the_predict_commands_run_as_written_and_agree_with_keras(
    workspace: Path,
) -> None:
    import keras
    import numpy as np

    # In this process, as `kerastl` runs them (TensorFlow is imported already).
    for command in PREDICT_COMMANDS:
        with contextlib.chdir(workspace):
            result = CliRunner().invoke(cli, shlex.split(command)[1:])
        assert result.exit_code == 0, (command, result.output[-3000:])
    with open(workspace / "predictions.csv", newline="") as file:
        top = [row for row in csv.DictReader(file) if row["rank"] == "1"]
    # One row per image of the folder docs/predict.md's CSV command names.
    folder = next(
        command.split()[3] for command in PREDICT_COMMANDS if "--output" in command
    )
    assert len(top) == len(list((workspace / folder).rglob("*.png")))
    run_dir = workspace / "runs" / "first"
    shipped = json.loads((run_dir / "metrics.json").read_text())["model"]
    model = keras.saving.load_model(run_dir / shipped, compile=False)
    images = np.stack(
        [
            keras.utils.img_to_array(
                keras.utils.load_img(workspace / row["image"], target_size=(32, 32))
            )
            for row in top
        ]
    )
    labels = json.loads((run_dir / "labels.json").read_text())
    expected = [labels[i] for i in model.predict(images, verbose=0).argmax(axis=1)]
    assert [row["class_name"] for row in top] == expected
    assert (workspace / "sheet.png").is_file()
