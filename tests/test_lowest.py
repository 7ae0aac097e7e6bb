"""The smoke test `.ci/run` also runs on the lowest versions pyproject.toml
allows: a generated fine-tune script trains with the whole recipe."""

import json
from pathlib import Path

import pytest

from .conftest import run_script
from .test_recipe import generate

pytestmark = [pytest.mark.slow, pytest.mark.lowest]

RECIPE = (
    *("--label-smoothing", "0.1", "--mixup", "0.2", "--cutmix", "1.0"),
    *("--rand-augment", "--ema", "--layer-decay", "0.7"),
)


def test_a_short_fine_tune_with_the_recipe(tmp_path: Path, digits_dir: Path) -> None:
    script = generate(
        tmp_path,
        *("--mode", "fine-tune", "--backbone", "MobileNetV3Small"),
        *("--image-size", "32", "--weights", "none", "--unfreeze", "1"),
    )
    result = run_script(
        script,
        *("--data-dir", str(digits_dir), "--epochs", "1", "--fine-tune-epochs", "1"),
        *RECIPE,
        *("--output-dir", "run"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Layer decay 0.7: the head and the top block" in result.stdout
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["settings"]["mixup"] == 0.2 and run["settings"]["ema"] is True
    assert (tmp_path / "run" / "model.keras").is_file()
