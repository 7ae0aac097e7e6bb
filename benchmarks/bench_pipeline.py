"""Does the input pipeline keep up with training? Epoch times, side by side.

Run: .venv/bin/python benchmarks/bench_pipeline.py [--images 3000] [--size 64]
     [--backbone MobileNetV3Small] [--repeats 3]

It writes the scikit-learn digits as PNGs, hard-linked up to `--images` files,
builds the generated feature-extraction script's model (`kerastl new`, random
weights: the time per image does not depend on their values) and times one
epoch of `fit()` (the median of `--repeats`, after a first epoch that traces)
with the training data fed four ways:

- tensors: the decoded images already in memory as one array (the floor);
- kerastl: `runtime.load_image_folders` as the scripts call it (cache "auto",
  shuffled, prefetched), without and with the scripts' augmentation;
- guide: `keras.utils.image_dataset_from_directory` batches, decoded from the
  PNG files each epoch, no cache, no prefetch (the Keras guides' loader).

Goal: kerastl / tensors <= 1.15 without augmentation. With augmentation, the
ratio shows what the random flips, turns and zooms cost on this machine's CPU.
"""

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--backbone", default="MobileNetV3Small")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import keras
    import numpy as np

    from benchmarks.bench_feature_cache import load_module
    from benchmarks.bench_scan import link_copies
    from tests.digits import write_digits

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        source = write_digits(root / "source", per_class=200, size=args.size)
        data = link_copies(source, root / "data", args.images)
        script = root / "train.py"
        subprocess.run(
            [sys.executable, "-m", "kerastl", "new", "--mode", "feature-extraction"]
            + ["--backbone", args.backbone, "--image-size", str(args.size)]
            + ["--weights", "none", "-o", str(script)],
            check=True,
            capture_output=True,
        )
        generated = load_module(script)
        runtime = generated.runtime
        feeds = {}
        with redirect_stdout(io.StringIO()):
            for name, augmentation in (
                ("kerastl", None),
                ("kerastl, augmented", generated.augmentation()),
            ):
                loaded = runtime.load_image_folders(
                    data,
                    image_size=args.size,
                    batch_size=32,
                    augmentation=augmentation,
                    cache_dir=root / "cache",
                )
                train, class_names = loaded.train, loaded.class_names
                feeds[name] = train
        images, labels = zip(*((x.numpy(), y.numpy()) for x, y in feeds["kerastl"]))
        tensors = (np.concatenate(images), np.concatenate(labels))
        guide = keras.utils.image_dataset_from_directory(
            data,
            image_size=(args.size, args.size),
            batch_size=32,
            validation_split=0.2,
            subset="training",
            seed=1337,
            verbose=False,
        )
        feeds = {"tensors": tensors, **feeds, "guide": guide}
        # One model per feed, each traced by a first epoch; then the timed
        # epochs take turns, so that a slower spell of the machine hits all.
        fits = {
            name: epoch_function(generated, feed, len(class_names))
            for name, feed in feeds.items()
        }
        times: dict[str, list[float]] = {name: [] for name in feeds}
        for _ in range(args.repeats):
            for name, fit in fits.items():
                started = time.perf_counter()
                fit()
                times[name].append(time.perf_counter() - started)
        seconds = {name: statistics.median(values) for name, values in times.items()}
        for name, value in seconds.items():
            print(f"{name:<20} {value:6.2f} s per epoch", flush=True)
    count = len(tensors[1])
    print(
        f"{args.backbone} at {args.size} px, {count} training images, "
        f"median of {args.repeats} epochs after the first:"
    )
    floor = seconds["tensors"]
    for name in ("kerastl", "kerastl, augmented", "guide"):
        print(f"{name} / tensors = {seconds[name] / floor:.2f}")
    print(f"guide / kerastl = {seconds['guide'] / seconds['kerastl']:.2f}")


def epoch_function(generated, feed, classes: int):
    """A function that trains one epoch of a new model on `feed`, traced once."""
    settings = generated.Settings(data_dir=None, weights=None)
    model, _ = generated.build_model(classes, settings)
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    if isinstance(feed, tuple):

        def fit():
            model.fit(*feed, batch_size=32, epochs=1, verbose=0, shuffle=True)

    else:

        def fit():
            model.fit(feed, epochs=1, verbose=0, shuffle=False)  # shuffles itself

    fit()
    return fit


if __name__ == "__main__":
    main()
