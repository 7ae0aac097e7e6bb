"""examples/: the scripts cover every mode, and the sample images are the documented ones.

tests/test_golden.py checks that each script is what its header command makes.
`pytest --update-golden` rewrites the sample images in examples/data/digits.
"""

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from tests.digits import write_digits
from tests.test_golden import header_command

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
DIGITS = EXAMPLES / "data" / "digits"
DIGITS_PER_CLASS = 20


def test_examples_cover_the_seed_case_and_every_mode() -> None:
    options = {script.name: " ".join(header_command(script)) for script in SCRIPTS}
    seed = options["train_efficientnetv2b0_fine_tune.py"]
    assert "--mode fine-tune --backbone EfficientNetV2B0 --image-size 224" in seed
    assert "--num-classes 10" in seed
    for mode in ("as-is", "feature-extraction", "fine-tune"):
        assert any(f"--mode {mode} " in command for command in options.values()), mode


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
