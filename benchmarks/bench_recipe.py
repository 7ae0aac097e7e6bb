"""The fine-tuning recipe, measured: each option of the training scripts against
the default, few-shot, over three seeds; and the LR finder against a sweep.

1. A base is pre-trained here by a plain Keras recipe (no ImageNet weights can
   be downloaded), as the README's demo base is (examples/digits_base): from
   random weights, on scikit-learn's digits 0-4 at 32 px, each image also
   turned by 90, 180 and 270 degrees (20 classes). MobileNetV3Small uses the
   demo's base itself.
2. The generated fine-tuning script, its augmentation without the horizontal
   flip (a mirrored digit is another symbol), then trains on 10 images of
   each digit 5-9, which the base never saw, and validates on the other 851 of them, for
   the default recipe,
   each option alone and all of them together, with seeds 1, 2 and 3 (the
   seed picks the ten images too). It prints the mean and the spread (the
   sample standard deviation) of the validation accuracy, and whether the
   option beats the default by more than the larger of the two spreads: only
   then would it earn a default.
3. The head phase alone is trained at 1e-5, 1e-4, 1e-3, 1e-2 and 1e-1 (seed 1);
   `--find-lr` suggests a rate from the same start; the factor between the
   suggestion and the best rate of the sweep is printed.

The scripts run in this process (`main(argv)`), one after another.

    .venv/bin/python benchmarks/bench_recipe.py [--backbones VGG16 ...] [--quick]

It takes about 40 minutes on 2 CPU cores for MobileNetV3Small and about 70
more for EfficientNetV2B0.
"""

import argparse
import contextlib
import importlib.util
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.digits import digit_images

IMAGE_SIZE = 32
PRETRAINED_ON = range(5)  # the base's digits
FINE_TUNED_ON = range(5, 10)  # the few-shot digits, unseen by the base
SHOTS = 10  # training images per digit
DEMO_BASE = REPO / "examples" / "digits_base" / "mobilenetv3small_32px.weights.h5"
SEEDS = (1, 2, 3)
SWEEP = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
# The options measured, each alone, then together.
OPTIONS = {
    "label smoothing 0.1": ["--label-smoothing", "0.1"],
    "mixup 0.2": ["--mixup", "0.2"],
    "cutmix 1.0": ["--cutmix", "1.0"],
    "rand-augment": ["--rand-augment"],
    "ema": ["--ema"],
    "layer decay 0.7": ["--layer-decay", "0.7"],
}
COMBINED = "all together"
# The few-shot fine-tuning every run shares.
COMMON = [
    "--image-size", str(IMAGE_SIZE),
    "--epochs", "10",
    "--fine-tune-epochs", "10",
    "--batch-size", "16",
    "--patience", "20",
    "--cache", "memory",
]  # fmt: skip


def main() -> None:
    """Pre-trains each base, runs the recipe and the sweep, prints the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backbones", nargs="+", default=["MobileNetV3Small", "EfficientNetV2B0"]
    )
    parser.add_argument(
        "--quick", action="store_true", help="one seed, two epochs: a check"
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--work-dir", type=Path, help="default: a temporary folder")
    args = parser.parse_args()
    seeds = args.seeds[:1] if args.quick else args.seeds
    common = list(COMMON)
    if args.quick:
        common[common.index("--epochs") + 1] = "2"
        common[common.index("--fine-tune-epochs") + 1] = "2"
    with contextlib.ExitStack() as stack:
        work = args.work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        results = {}
        for backbone in args.backbones:
            results[backbone] = measure(backbone, work / backbone, seeds, common)
        for backbone, result in results.items():
            print_tables(backbone, result, seeds)
        print(json.dumps(results, indent=1))


def measure(backbone: str, work: Path, seeds, common: list[str]) -> dict:
    """The recipe's accuracies and the sweep of one backbone."""
    work.mkdir(parents=True, exist_ok=True)
    weights = pretrain(backbone, work / "base.weights.h5")
    script = generate(backbone, work / "train.py")
    args = [*common, "--weights", str(weights)]
    accuracies: dict[str, list[float]] = {}
    tta: list[float] = []
    configurations = {"default": [], **OPTIONS}
    configurations[COMBINED] = [flag for flags in OPTIONS.values() for flag in flags]
    for seed in seeds:
        train_dir, val_dir = few_shot_folders(work / f"data-{seed}", seed)
        data = ["--data-dir", str(train_dir), "--val-dir", str(val_dir)]
        for name, flags in configurations.items():
            output = work / "runs" / f"{name.replace(' ', '-')}-{seed}"
            extra = ["--tta", "on"] if name == "default" else []
            metrics = run_script(
                script,
                [*data, *args, *flags, *extra, "--seed", str(seed)],
                output,
            )
            accuracies.setdefault(name, []).append(metrics["validation"]["accuracy"])
            if extra:
                tta.append(metrics["validation"]["tta"]["accuracy"])
    # The sweep and the finder: the head phase alone, seed 1.
    train_dir, val_dir = few_shot_folders(work / f"data-{seeds[0]}", seeds[0])
    data = ["--data-dir", str(train_dir), "--val-dir", str(val_dir)]
    head_only = [*data, *args, "--fine-tune-epochs", "0", "--seed", str(seeds[0])]
    sweep = {}
    for rate in SWEEP:
        output = work / "runs" / f"sweep-{rate:g}"
        metrics = run_script(script, [*head_only, "--learning-rate", str(rate)], output)
        sweep[rate] = metrics["validation"]["accuracy"]
    suggested = find_lr(script, head_only, work / "runs" / "find-lr")
    return {
        "accuracy": accuracies,
        "tta": tta,
        "sweep": {f"{rate:g}": value for rate, value in sweep.items()},
        "suggested": suggested,
    }


def pretrain(backbone: str, path: Path) -> Path:
    """Pre-trains `backbone` from random weights on the digits 0-4 and their turns."""
    if backbone == "MobileNetV3Small":
        return DEMO_BASE
    if path.exists():
        return path
    import keras

    started = time.perf_counter()
    keras.utils.set_random_seed(0)
    images, labels = [], []
    for label in PRETRAINED_ON:
        for _, pixels in digit_images(label, size=IMAGE_SIZE):
            rgb = np.repeat(pixels[..., None], 3, axis=-1)
            for turn in range(4):
                images.append(np.rot90(rgb, turn))
                labels.append(label + len(PRETRAINED_ON) * turn)
    order = np.random.default_rng(0).permutation(len(images))  # the split: mixed
    images = np.array(images, dtype="float32")[order]
    classes = 4 * len(PRETRAINED_ON)
    labels = keras.utils.to_categorical(np.array(labels)[order], classes)
    application = getattr(keras.applications, backbone)
    base = application(
        include_top=False, weights=None, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3)
    )
    for layer in base.layers:  # BatchNorm statistics that follow a short run
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = inputs
    if backbone.startswith("VGG"):  # VGG's own preprocessing, as step 4 does it
        x = keras.applications.vgg16.preprocess_input(x)
    x = keras.layers.GlobalAveragePooling2D()(base(x))
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.Adam(1e-4 if backbone.startswith("VGG") else 2e-3),
        "categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        images, labels, batch_size=32, epochs=5, validation_split=0.1, verbose=0
    )
    base.save_weights(path)
    print(
        f"{backbone}: base pre-trained on {len(images)} images in "
        f"{time.perf_counter() - started:.0f} s, held-out accuracy "
        f"{history.history['val_accuracy'][-1]:.3f} ({classes} classes)",
        flush=True,
    )
    keras.backend.clear_session()
    return path


def generate(backbone: str, path: Path) -> Path:
    """`kerastl new --mode fine-tune` for the backbone, its top 2 blocks unfreezing."""
    subprocess.run(
        [
            str(Path(sys.executable).with_name("kerastl")), "new",
            "--mode", "fine-tune",
            "--backbone", backbone,
            "--image-size", str(IMAGE_SIZE),
            "--num-classes", str(len(FINE_TUNED_ON)),
            "--unfreeze", "2",
            "--force",
            "-o", str(path),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    # A mirrored digit is another symbol: as a user training on digits would,
    # delete the flip from the script's augmentation() (--tta auto follows).
    script = path.read_text()
    assert FLIP in script, f"{path} has no {FLIP}"
    path.write_text(script.replace(FLIP, ""))
    return path


#: The flip of the generated scripts' augmentation(), which digits must not have.
FLIP = 'keras.layers.RandomFlip("horizontal"), '


def few_shot_folders(folder: Path, seed: int) -> tuple[Path, Path]:
    """10 images of each digit 5-9 (drawn with `seed`), and the rest of them
    to validate on."""
    from PIL import Image

    train, val = folder / "train", folder / "val"
    if train.exists():
        return train, val
    rng = np.random.default_rng(seed)
    for label in FINE_TUNED_ON:
        rest = digit_images(label, size=IMAGE_SIZE)
        chosen = set(rng.choice(len(rest), SHOTS, replace=False).tolist())
        for position, (index, pixels) in enumerate(rest):
            target = (train if position in chosen else val) / str(label)
            target.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels, mode="L").save(target / f"{index:04d}.png")
    return train, val


def run_script(script: Path, argv: list[str], output: Path) -> dict:
    """Runs the generated script's `main(argv)` here; its metrics.json."""
    metrics = output / "metrics.json"
    if not metrics.exists():
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            load(script).main([*argv, "--output-dir", str(output), "--restart"])
        print(
            f"  {output.name}: {time.perf_counter() - started:.0f} s, accuracy "
            f"{json.loads(metrics.read_text())['validation']['accuracy']:.3f}",
            flush=True,
        )
    return json.loads(metrics.read_text())


def find_lr(script: Path, argv: list[str], output: Path) -> float:
    """The rate `--find-lr` suggests, read from the line it prints."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.suppress(SystemExit):
        load(script).main([*argv, "--find-lr", "--output-dir", str(output)])
    line = next(
        line for line in printed.getvalue().splitlines() if line.startswith("suggested")
    )
    return float(line.split(":")[1])


def load(script: Path):
    """The generated script as a module; Keras's session cleared first."""
    import keras

    keras.backend.clear_session()
    spec = importlib.util.spec_from_file_location(script.stem, script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def print_tables(backbone: str, result: dict, seeds) -> None:
    """The recipe's table and the finder's factor, as the README shows them."""
    accuracies = result["accuracy"]
    default = accuracies["default"]
    print(
        f"\n{backbone}, {SHOTS} images per digit, seeds {', '.join(map(str, seeds))}:"
    )
    print("| option | validation accuracy | against the default | a default? |")
    print("|---|---|---|---|")
    for name, values in accuracies.items():
        mean, spread = statistics.mean(values), _spread(values)
        if name == "default":
            print(f"| default | {mean:.3f} ± {spread:.3f} | | |")
            continue
        gain = mean - statistics.mean(default)
        earned = gain > max(spread, _spread(default))
        print(
            f"| {name} | {mean:.3f} ± {spread:.3f} | {gain:+.3f} | "
            f"{'yes' if earned else 'no'} |"
        )
    tta = result["tta"]
    print(
        f"| default, evaluated with --tta on | {statistics.mean(tta):.3f} ± "
        f"{_spread(tta):.3f} | {statistics.mean(tta) - statistics.mean(default):+.3f} "
        "| |"
    )
    sweep = result["sweep"]
    best = max(sweep, key=sweep.get)
    print(
        "Head alone, seed 1: "
        + ", ".join(f"{rate} {value:.3f}" for rate, value in sweep.items())
        + f"; --find-lr suggests {result['suggested']:.2g}, "
        f"{result['suggested'] / float(best):.2g} times the sweep's best ({best})"
    )


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


if __name__ == "__main__":
    main()
