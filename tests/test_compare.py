"""`kerastl compare`: the table, the figure, and how it refuses what is not a run."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from kerastl.cli import cli
from kerastl.compare import column_names, loss_column, read_run
from tests.conftest import run_python

REPO = Path(__file__).resolve().parent.parent

SETTINGS = {
    "data_dir": "photos",
    "val_dir": None,
    "test_dir": None,
    "epochs": 3,
    "batch_size": 32,
    "learning_rate": 0.001,
    "weights": "imagenet",
    "output_dir": "runs/x",
    "restart": False,
    "cache": "auto",
    "class_weight": "none",
    "seed": 1337,
}


def per_class(names: list[str]) -> list[dict]:
    return [
        {"class": name, "precision": 0.8, "recall": 0.75, "f1": 0.77, "support": 4}
        for name in names
    ]


def write_run(
    folder: Path,
    history: list[tuple[str, float, float, float, float]],
    *,
    settings: dict,
    metrics: dict,
    best: dict,
    seconds: dict[str, float],
) -> Path:
    """A run folder as a generated training script leaves it."""
    folder.mkdir(parents=True)
    with open(folder / "history.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["epoch", "phase", "accuracy", "loss", "val_accuracy", "val_loss"]
        )
        for epoch, (phase, *values) in enumerate(history, start=1):
            writer.writerow([epoch, phase, *(f"{value:.6g}" for value in values)])
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    card = {
        "shipped_model": metrics["model"],
        "best_epoch": best,
        "phase_seconds": seconds,
        "phases": phases_of([phase for phase, *_ in history]),
        "settings": {**SETTINGS, "output_dir": str(folder), **settings},
        "versions": {"kerastl": "0.1.0", "keras": "3.8.0", "python": "3.12.3"},
        "devices": ["/device:CPU:0"],
        "classes": {"0": "cat", "1": "dog", "2": "fox"},
        "data": {"training": {"images": 96}, "validation": {"images": 24}},
    }
    (folder / "run.json").write_text(json.dumps(card, indent=2))
    return folder


def phases_of(names: list[str]) -> list[dict]:
    """The phases of a run card, from the phase of each epoch."""
    return [
        {
            "name": name,
            "first_epoch": names.index(name) + 1,
            "last_epoch": len(names) - names[::-1].index(name),
        }
        for name in dict.fromkeys(names)
    ]


def subset_metrics(loss: float, accuracy: float, macro_f1: float) -> dict:
    return {
        "loss": loss,
        "accuracy": accuracy,
        "macro_f1": macro_f1,
        "per_class": per_class(["cat", "dog", "fox"]),
        "confusion_matrix": [[7, 1, 0], [1, 6, 1], [0, 2, 6]],
        "examples": 24,
    }


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    """A feature-extraction run (3 head epochs) and a fine-tune run (2 + 2)."""
    extraction = write_run(
        tmp_path / "runs" / "extract",
        [
            ("head", 0.41, 1.52, 0.50, 1.21),
            ("head", 0.62, 1.05, 0.58, 1.02),
            ("head", 0.71, 0.83, 0.63, 0.97),
        ],
        settings={},
        metrics={
            "model": "best.keras",
            "validation": subset_metrics(0.9712, 0.625, 0.611),
        },
        best={"value": 0.9712, "epoch": 3, "phase": "head"},
        seconds={"head": 42.5},
    )
    fine_tune = write_run(
        tmp_path / "runs" / "tune",
        [
            ("head", 0.40, 1.55, 0.48, 1.25),
            ("head", 0.60, 1.08, 0.57, 1.04),
            ("unfreeze-5", 0.74, 0.77, 0.67, 0.88),
            ("unfreeze-5", 0.83, 0.52, 0.71, 0.81),
        ],
        settings={
            "epochs": 2,
            "learning_rate": 0.0005,
            "fine_tune_epochs": 2,
            "fine_tune_learning_rate": 1e-05,
            "weights": None,  # --weights none
        },
        metrics={
            "model": "model.keras",
            "validation": {
                **subset_metrics(0.8093, 0.7083, 0.7012),
                "tta": {"loss": 0.79, "accuracy": 0.7292, "macro_f1": 0.72},
            },
            "test": subset_metrics(0.8411, 0.6875, 0.6790),
        },
        best={"value": 0.8093, "epoch": 4, "phase": "unfreeze-5"},
        seconds={"head": 40.0, "unfreeze-5": 95.25},
    )
    return extraction, fine_tune


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["compare", *args])
    return result.exit_code, result.stdout, result.stderr


def table_cells(lines: list[str]) -> dict[str, list[str]]:
    """Each row's label and cells, cut where the headings of the columns start."""
    starts = [lines[0].index(name) for name in lines[0].split()]
    bounds = [*zip(starts, [*starts[1:], None])]
    return {
        line[: starts[0]].strip(): [line[a:b].strip() for a, b in bounds]
        for line in lines[1:]
    }


def test_table_shows_what_differs_and_the_final_metrics(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    code, out, err = invoke(*map(str, runs), "-o", str(tmp_path / "c.png"))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["extract", "tune"]
    assert lines[-1] == f"wrote {tmp_path / 'c.png'}"
    rows = table_cells(lines[:-1])
    assert rows["learning_rate"] == ["0.001", "0.0005"]
    assert rows["epochs"] == ["3", "2"]
    assert rows["fine_tune_epochs"] == ["-", "2"]
    assert rows["fine_tune_learning_rate"] == ["-", "1e-05"]
    assert rows["output_dir"] == [str(run) for run in runs]
    assert rows["weights"] == ["imagenet", "none"]
    assert rows["(8 settings the same)"] == ["", ""]
    for same in ("batch_size", "seed", "data_dir", "cache"):
        assert same not in out
    assert rows["shipped model"] == ["best.keras", "model.keras"]
    assert rows["validation cross-entropy"] == ["0.9712", "0.8093"]
    assert rows["validation accuracy"] == ["0.6250", "0.7083"]
    assert rows["validation macro-F1"] == ["0.6110", "0.7012"]
    assert rows["validation accuracy, TTA"] == ["-", "0.7292"]  # run with --tta
    assert "test accuracy, TTA" not in rows
    assert rows["test cross-entropy"] == ["-", "0.8411"]
    assert rows["test accuracy"] == ["-", "0.6875"]
    assert rows["test macro-F1"] == ["-", "0.6790"]
    assert rows["best epoch"] == ["3 (head)", "4 (unfreeze-5)"]
    assert rows["training time"] == ["42.5 s", "2 min 15 s"]


def test_without_a_test_set_there_are_no_test_rows(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    tune = runs[1]
    metrics = json.loads((tune / "metrics.json").read_text())
    del metrics["test"]
    (tune / "metrics.json").write_text(json.dumps(metrics))
    code, out, _ = invoke(*map(str, runs), "-o", str(tmp_path / "c.png"))
    assert code == 0
    labels = list(table_cells(out.splitlines()[:-1]))
    assert "validation cross-entropy" in labels
    assert not [label for label in labels if label.startswith("test")]


def test_the_figure_is_a_1000_by_400_png(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    output = tmp_path / "figure.png"
    assert invoke(*map(str, runs), "--output", str(output))[0] == 0
    with Image.open(output) as image:
        assert image.format == "PNG" and image.size == (1000, 400)
        assert image.info.get("Title") == "Comparison of extract, tune"
    assert [path.name for path in tmp_path.iterdir() if path.is_file()] == [
        "figure.png"
    ]
    umask = os.umask(0o022)
    os.umask(umask)
    assert output.stat().st_mode & 0o777 == 0o666 & ~umask  # as every other output


def test_default_output_is_compare_png_here(
    runs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = invoke(*map(str, runs))
    assert code == 0 and out.splitlines()[-1] == "wrote compare.png"
    assert (tmp_path / "compare.png").stat().st_size > 0
    # A second comparison keeps the first's figure unless told to replace it.
    (tmp_path / "compare.png").write_bytes(b"mine")
    code, _, err = invoke(*map(str, runs))
    assert code == 2 and "compare.png exists; pass --force to overwrite it" in err
    assert (tmp_path / "compare.png").read_bytes() == b"mine"
    assert invoke(*map(str, runs), "--force")[0] == 0
    assert (tmp_path / "compare.png").read_bytes() != b"mine"


@pytest.mark.usefixtures("without_matplotlib")
def test_without_matplotlib_the_table_still_prints(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    output = tmp_path / "c.png"
    code, out, _ = invoke(*map(str, runs), "-o", str(output))
    assert code == 0
    assert "learning_rate" in out
    assert out.splitlines()[-1] == f"matplotlib is not installed: skipping {output}"
    assert not output.exists()


def test_equal_folder_names_get_their_parent() -> None:
    names = column_names([Path("a/run"), Path("b/run"), Path("c/other")])
    assert names == ["a/run", "b/run", "other"]


def usage_error(args: list[str], cwd: Path) -> list[str]:
    """Runs `kerastl compare ARGS`; checks exit 2 and returns stderr's lines."""
    result = subprocess.run(
        [sys.executable, "-m", "kerastl", "compare", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("Usage: kerastl compare ")
    assert [line for line in lines if line.startswith("Error: ")] == [lines[-1]]
    return lines


def test_bad_run_folders_are_usage_errors(runs: tuple[Path, Path]) -> None:
    extraction, fine_tune = runs
    root = extraction.parent
    (fine_tune / "metrics.json").unlink()
    error = usage_error(["extract", "tune"], root)[-1]
    assert "tune: not a run folder: no metrics.json" in error
    (fine_tune / "resume").mkdir(exist_ok=True)
    (fine_tune / "resume" / "state.json").write_text("{}")  # stopped, not finished
    error = usage_error(["extract", "tune"], root)[-1]
    assert "tune: not a finished run (no metrics.json): run its script again" in error
    error = usage_error(["extract"], root)[-1]
    assert "only one run folder (extract); give two or more" in error
    error = usage_error(["extract", "nowhere"], root)[-1]
    assert "'nowhere'" in error and "does not exist" in error
    error = usage_error(["extract", "extract/"], root)[-1]
    assert "extract is given twice" in error
    (fine_tune / "metrics.json").write_text("{}")
    error = usage_error(["extract", "tune", "-o", "no/c.png"], root)[-1]
    assert "'--output': folder no does not exist" in error
    (extraction / "run.json").write_text('{"settings": {')
    error = usage_error(["extract", "tune"], root)[-1]
    assert "extract: run.json is not valid JSON" in error
    assert list(root.glob("*.png")) == []


def test_broken_history_names_the_folder_and_the_line(
    runs: tuple[Path, Path],
) -> None:
    extraction, _ = runs
    with open(extraction / "history.csv", "a") as file:
        file.write("four,head,0.7,0.8,0.6,0.9\n")
    code, _, err = invoke(*map(str, runs))
    assert code == 2
    assert f"{extraction}: history.csv line 5: epoch 'four'" in err


def test_compare_never_imports_tensorflow(runs: tuple[Path, Path]) -> None:
    code = (
        "import sys\n"
        "from kerastl.cli import main\n"
        "try:\n"
        f"    main(['compare', *{[str(run) for run in runs]!r}, '-o', "
        f"{str(runs[0].parent / 'c.png')!r}])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "assert 'matplotlib' in sys.modules  # it drew\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert (runs[0].parent / "c.png").is_file()


def test_the_loss_drawn_is_the_plain_cross_entropy_where_every_run_has_it(
    runs: tuple[Path, Path],
) -> None:
    extract, tune = (read_run(run) for run in runs)
    assert loss_column([extract, tune]) == ("val_loss", "validation loss")
    for row in tune.history:  # as a script with the plain metric writes it
        row["val_categorical_crossentropy"] = row["val_loss"]
    assert loss_column([tune]) == (
        "val_categorical_crossentropy",
        "validation cross-entropy",
    )
    assert loss_column([extract, tune])[0] == "val_loss"  # one run lacks it
