"""`kerastl predict` against a bare script calling `model.predict`: time, agreement.

Run: nice -n 10 .venv/bin/python benchmarks/bench_predict.py [--images 1200]
     [--size 64] [--repeat 3]

In a temporary folder (deleted at the end) it writes `--images` scikit-learn
digits as PNGs in ten class folders and a run folder as a training script
leaves it: a MobileNetV3Small (random weights, no download) trained for one
epoch on the images (BatchNormalization momentum 0.5), saved as `model.keras`, with `labels.json` and a
`metrics.json` naming the shipped file. It then times two whole processes, in turns, `--repeat` times
each: `kerastl predict RUN IMAGES --output predictions.csv`, and a bare script
that loads the same model, reads the same images with
`keras.utils.image_dataset_from_directory` and calls `model.predict`. It prints
the median wall times, their ratio (goal: at most 1.5), the share of images
on which both give the same top class, and the largest difference of the top
probability.
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BARE_SCRIPT = """\
import json, sys
import keras
model = keras.saving.load_model(sys.argv[1], compile=False)
size = model.input_shape[1]
images = keras.utils.image_dataset_from_directory(
    sys.argv[2], labels=None, image_size=(size, size), batch_size=32,
    shuffle=False, verbose=False,
)
probabilities = model.predict(images, verbose=0)
top = [[int(p.argmax()), float(p.max())] for p in probabilities]
json.dump(dict(zip(images.file_paths, top)), open(sys.argv[3], "w"))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        images = write_images(root / "images", args.images, args.size)
        run_dir = write_run(root / "run", images, args.size)
        (root / "bare.py").write_text(BARE_SCRIPT)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
        commands = {
            "kerastl predict": [
                *(sys.executable, "-m", "kerastl", "predict", str(run_dir)),
                *(str(images), "--output", str(root / "predictions.csv"), "--force"),
            ],
            "bare model.predict": [
                *(sys.executable, str(root / "bare.py"), str(run_dir / "model.keras")),
                *(str(images), str(root / "bare.json")),
            ],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, command in commands.items():  # in turns: noise hits both
                start = time.perf_counter()
                subprocess.run(command, env=env, check=True, capture_output=True)
                times[name].append(time.perf_counter() - start)
        with open(root / "predictions.csv", newline="") as file:
            ours = {
                row["image"]: (row["class_name"], float(row["probability"]))
                for row in csv.DictReader(file)
                if row["rank"] == "1"
            }
        labels = json.loads((run_dir / "labels.json").read_text())
        bare = {
            path: (labels[index], probability)
            for path, (index, probability) in json.loads(
                (root / "bare.json").read_text()
            ).items()
        }
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        runs = ", ".join(f"{value:.1f}" for value in values)
        print(f"{name}: median {medians[name]:.1f} s ({runs})")
    ratio = medians["kerastl predict"] / medians["bare model.predict"]
    print(f"ratio: {ratio:.2f} (goal: at most 1.5), {len(ours)} images")
    same = sum(ours[path][0] == name for path, (name, _) in bare.items())
    print(f"same top class: {same} of {len(bare)} images ({same / len(bare):.2%})")
    difference = max(abs(ours[path][1] - top) for path, (_, top) in bare.items())
    print(f"largest difference of the top probability: {difference:.2g}")
    classes = len({name for name, _ in bare.values()})
    print(f"classes predicted by the model: {classes} of {len(labels)}")


def write_images(folder: Path, count: int, size: int) -> Path:
    from tests.digits import write_digits

    per_class = -(-count // 10)
    return write_digits(folder, per_class=per_class, size=size)


def write_run(folder: Path, images: Path, size: int) -> Path:
    """A run folder as a training script leaves it: a MobileNetV3Small (random
    weights, no download) trained for one epoch on the images, its
    BatchNormalization momentum lowered so that the model does not predict one
    class for every image (which would make the agreement say little)."""
    import keras

    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(size, size, 3)
    )
    inputs = keras.Input((size, size, 3))
    features = keras.layers.GlobalAveragePooling2D()(base(inputs))
    outputs = keras.layers.Dense(10, activation="softmax")(features)
    model = keras.Model(inputs, outputs)
    for layer in base.layers:  # moving statistics that one epoch brings to the data
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.5
    model.compile("adam", "sparse_categorical_crossentropy")
    data = keras.utils.image_dataset_from_directory(
        images, image_size=(size, size), batch_size=32, verbose=False
    )
    model.fit(data, epochs=1, verbose=0)
    folder.mkdir()
    model.save(folder / "model.keras")
    (folder / "labels.json").write_text(json.dumps([str(d) for d in range(10)]))
    (folder / "metrics.json").write_text(json.dumps({"model": "model.keras"}))
    return folder


if __name__ == "__main__":
    main()
