"""examples/ stays in sync with the generator: each script is what its header's command makes.

`pytest --update-golden` rewrites the scripts (from their own header commands)
and the sample images in examples/data/digits.
"""

import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kerastl.cli import cli
from tests.digits import write_digits

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
DIGITS = EXAMPLES / "data" / "digits"
DIGITS_PER_CLASS = 20


def header_command(script: Path) -> list[str]:
    line = script.read_text().splitlines()[1]
    assert line.startswith("# Regenerate: kerastl new "), line
    return shlex.split(line.removeprefix("# Regenerate: kerastl "))


def test_examples_cover_the_seed_case_and_every_mode() -> None:
    options = {script.name: " ".join(header_command(script)) for script in SCRIPTS}
    seed = options["train_efficientnetv2b0_fine_tune.py"]
    assert "--mode fine-tune --backbone EfficientNetV2B0 --image-size 224" in seed
    assert "--num-classes 10" in seed
    for mode in ("as-is", "feature-extraction", "fine-tune"):
        assert any(f"--mode {mode} " in command for command in options.values()), mode


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.name for script in SCRIPTS])
def test_example_is_regenerated_by_its_header_command(
    script: Path, update_golden: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(EXAMPLES)
    result = CliRunner().invoke(cli, [*header_command(script), "--stdout"])
    assert result.exit_code == 0, result.output
    if update_golden:
        script.write_text(result.output)
    assert result.output == script.read_text(), (
        f"{script.name} is out of date: run pytest --update-golden"
    )


def pixels(folder: Path) -> dict[str, np.ndarray]:
    return {
        str(path.relative_to(folder)): np.asarray(Image.open(path))
        for path in sorted(folder.rglob("*.png"))
    }


def test_sample_digits_are_the_documented_images(tmp_path: Path, update_golden: bool) -> None:
    expected = write_digits(tmp_path / "digits", per_class=DIGITS_PER_CLASS)
    if update_golden:
        shutil.rmtree(DIGITS, ignore_errors=True)
        write_digits(DIGITS, per_class=DIGITS_PER_CLASS)
    actual, wanted = pixels(DIGITS), pixels(expected)
    assert actual.keys() == wanted.keys()
    assert all(np.array_equal(actual[name], wanted[name]) for name in wanted)
    total = sum(path.stat().st_size for path in DIGITS.rglob("*") if path.is_file())
    assert total < 300_000
