"""examples/: the scripts cover every mode, and the sample images are the documented ones.

tests/test_golden.py checks that each script is what its header command makes.
`pytest --update-golden` rewrites the sample images in examples/data/: digits
(ten digits) and digits_5to9 (the README demo's few images of the digits 5-9,
for training, and others for validation).
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.digits import write_digits
from tests.test_golden import header_command

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
DATA = EXAMPLES / "data"
# Each folder of sample images, and the `write_digits` arguments that write it.
SAMPLES = {
    "digits": {"per_class": 20},
    "digits_5to9/train": {"per_class": 10, "labels": range(5, 10)},
    "digits_5to9/val": {"per_class": 30, "labels": range(5, 10), "start": 10},
}


def test_examples_cover_the_seed_case_and_every_mode() -> None:
    options = {script.name: " ".join(header_command(script)) for script in SCRIPTS}
    seed = options["train_efficientnetv2b0_fine_tune.py"]
    assert "--mode fine-tune --task single-label --backbone EfficientNetV2B0" in seed
    assert "--image-size 224" in seed
    assert "--num-classes 10" in seed
    for mode in ("as-is", "feature-extraction", "fine-tune", "lora"):
        assert any(f"--mode {mode} " in command for command in options.values()), mode


def pixels(folder: Path) -> dict[str, np.ndarray]:
    return {
        str(path.relative_to(folder)): np.asarray(Image.open(path))
        for path in sorted(folder.rglob("*.png"))
    }


@pytest.mark.parametrize("sample", SAMPLES)
def test_sample_digits_are_the_documented_images(
    sample: str, tmp_path: Path, update_golden: bool
) -> None:
    folder = DATA / sample
    expected = write_digits(tmp_path / "digits", **SAMPLES[sample])
    if update_golden:
        shutil.rmtree(folder, ignore_errors=True)
        write_digits(folder, **SAMPLES[sample])
    actual, wanted = pixels(folder), pixels(expected)
    assert actual.keys() == wanted.keys()
    assert all(np.array_equal(actual[name], wanted[name]) for name in wanted)
    total = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    assert total < 300_000


def test_demo_validation_images_are_not_training_images() -> None:
    train, val = (
        {path.name for path in (DATA / "digits_5to9" / name).rglob("*.png")}
        for name in ("train", "val")
    )
    assert train and val and train.isdisjoint(val)
