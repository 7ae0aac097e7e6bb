"""Feature extraction with and without the feature cache, and against its floor.

Run: .venv/bin/python benchmarks/bench_feature_cache.py [--backbone EfficientNetV2B0]
     [--size 64] [--epochs 10] [--repeats 3]

It writes the 1,797 scikit-learn digits as PNGs, generates the
feature-extraction script with `kerastl new` and imports it, then times, side
by side in one process (the median of `--repeats` runs each, a fresh output
folder every time):

- plain: the script's `train()` of `--epochs` head epochs on the frozen base,
  from image batches (`--no-augment --no-feature-cache`);
- cache: `runtime.cache_features` (one pass of the base over the training and
  validation images) then the same `train()` on the features (`--no-augment`);
- floor: the least that work can cost in Keras: `predict()` of the base and
  pooling over both sets, then `fit()` of a bare copy of the head on the
  features, without the run's bookkeeping (history, best.keras, checkpoints).

Goals: plain / cache >= 5, cache / floor <= 1.3. Weights are random
(`--weights none`): the time per image does not depend on their values.

With `--whole-process`, each path is instead the generated script run as a
process of its own, from Python's start to the report (the run's end
included, as a user runs it): 100 digits of each class (1,000 images) at
`--size` (say 96), `--no-augment --weights none --cache memory`, with and
without `--no-feature-cache`; the minimum of `--repeats` runs each, in wall
seconds and in CPU seconds of all its threads (which vary less on a machine
that others share). Goal: plain / cache >= 3.
"""

import argparse
import importlib.util
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="EfficientNetV2B0")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--whole-process", action="store_true", help="time whole script processes"
    )
    args = parser.parse_args()
    if args.whole_process:
        whole_processes(args)
        return

    from tests.digits import write_digits

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        data = write_digits(root / "digits", per_class=200, size=args.size)
        script = root / "train.py"
        subprocess.run(
            [sys.executable, "-m", "kerastl", "new", "--mode", "feature-extraction"]
            + ["--backbone", args.backbone, "--image-size", str(args.size)]
            + ["--weights", "none", "--data-dir", str(data), "-o", str(script)],
            check=True,
            capture_output=True,
        )
        generated = load_module(script)
        times: dict[str, list[float]] = {"plain": [], "cache": [], "floor": []}
        for repeat in range(args.repeats):
            for path, seconds_of_path in times.items():
                output = root / f"run-{path}-{repeat}"
                seconds = time_path(generated, path, data, output, args.epochs)
                seconds_of_path.append(seconds)
                print(f"run {repeat + 1}, {path}: {seconds:.2f} s", flush=True)
    plain, cache, floor = (statistics.median(seconds) for seconds in times.values())
    print(
        f"{args.backbone} at {args.size} px, 1,797 images, {args.epochs} head epochs "
        f"(median of {args.repeats}): plain {plain:.2f} s, cache {cache:.2f} s, "
        f"floor {floor:.2f} s"
    )
    print(f"plain / cache = {plain / cache:.2f}  (goal >= 5)")
    print(f"cache / floor = {cache / floor:.2f}  (goal <= 1.3)")


def whole_processes(args: argparse.Namespace) -> None:
    """Times the generated script as whole processes, cached and plain."""
    import os

    from tests.digits import write_digits

    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        data = write_digits(root / "digits", per_class=100, size=args.size)
        script = root / "train.py"
        subprocess.run(
            [sys.executable, "-m", "kerastl", "new", "--mode", "feature-extraction"]
            + ["--backbone", args.backbone, "--image-size", str(args.size)]
            + ["-o", str(script)],
            check=True,
            capture_output=True,
            env=environment,
        )
        options = ["--data-dir", str(data), "--no-augment", "--weights", "none"]
        options += ["--epochs", str(args.epochs), "--cache", "memory"]
        options += ["--patience", str(max(1, args.epochs))]
        paths = {"plain": ["--no-feature-cache"], "cache": []}
        times: dict[str, list[float]] = {path: [] for path in paths}
        cpu_times: dict[str, list[float]] = {path: [] for path in paths}
        for repeat in range(args.repeats):
            for path, extra in paths.items():
                output = root / f"run-{path}-{repeat}"
                cpu = _children_cpu()
                started = time.perf_counter()
                result = subprocess.run(
                    [sys.executable, str(script), *options, *extra]
                    + ["--output-dir", str(output)],
                    check=False,
                    capture_output=True,
                    text=True,
                    env=environment,
                )
                seconds = time.perf_counter() - started
                if result.returncode != 0:
                    sys.exit(f"{path} failed:\n{result.stdout}\n{result.stderr}")
                times[path].append(seconds)
                cpu_times[path].append(_children_cpu() - cpu)
                print(
                    f"run {repeat + 1}, {path}: {seconds:.2f} s "
                    f"({cpu_times[path][-1]:.2f} s CPU)",
                    flush=True,
                )
    plain, cache = min(times["plain"]), min(times["cache"])
    plain_cpu, cache_cpu = min(cpu_times["plain"]), min(cpu_times["cache"])
    print(
        f"{args.backbone} at {args.size} px, 1,000 images, {args.epochs} head epochs, "
        f"whole processes (minimum of {args.repeats}): plain {plain:.2f} s "
        f"({plain_cpu:.2f} s CPU), cache {cache:.2f} s ({cache_cpu:.2f} s CPU)"
    )
    print(
        f"plain / cache = {plain / cache:.2f} wall, {plain_cpu / cache_cpu:.2f} CPU"
        "  (goal >= 3)"
    )


def _children_cpu() -> float:
    """CPU seconds of all finished child processes, all their threads."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load_module(path: Path):
    """Imports the generated script as a module (its main() is not run)."""
    spec = importlib.util.spec_from_file_location("generated", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_path(generated, path: str, data: Path, output: Path, epochs: int) -> float:
    """Seconds of one path's training, from loaded image batches to the last epoch."""
    import io
    from contextlib import redirect_stdout

    import keras

    runtime = generated.runtime
    settings = runtime.parse_settings(
        generated.Settings,
        ["--data-dir", str(data), "--no-augment", "--weights", "none"]
        + ["--epochs", str(epochs), "--output-dir", str(output), "--cache", "memory"]
        + ["--patience", str(max(1, epochs))],
    )
    keras.utils.set_random_seed(settings.seed)
    strategy = runtime.distribution_strategy("none", batch_size=settings.batch_size)
    with redirect_stdout(io.StringIO()):
        data_set = runtime.load_training_data(settings, strategy)
    model, base_model = generated.build_model(data_set.num_classes, settings)
    with redirect_stdout(io.StringIO()):
        started = time.perf_counter()
        if path == "floor":
            floor(
                model,
                data_set.train,
                data_set.validation,
                epochs,
                settings.learning_rate,
            )
        else:
            trained_model, training_data = model, data_set
            if path == "cache":
                trained_model, training_data = runtime.cache_training_features(
                    model, "avg_pool", data_set, settings
                )
            run = runtime.Run(
                output,
                model,
                generated.phases(settings),
                trained_model=trained_model,
                patience=settings.patience,
            )
            generated.train(run, base_model, training_data, settings)
        return time.perf_counter() - started


def floor(model, train_ds, val_ds, epochs: int, learning_rate: float) -> None:
    """The bare minimum: the base's features once, then the head fit on them."""
    import keras
    import numpy as np

    from kerastl.runtime.features import split_at

    features, head = split_at(model, "avg_pool")
    pooled = {}
    for name, dataset in (("train", train_ds), ("val", val_ds)):
        images, labels = zip(*((x.numpy(), y.numpy()) for x, y in dataset))
        pooled[name] = (
            features.predict(np.concatenate(images), batch_size=32, verbose=0),
            np.concatenate(labels),
        )
    head.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    head.fit(
        *pooled["train"],
        validation_data=pooled["val"],
        epochs=epochs,
        batch_size=32,
        verbose=0,
    )


if __name__ == "__main__":
    main()
