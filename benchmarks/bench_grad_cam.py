"""Grad-CAM's cost against a plain prediction of the same batch.

Run: nice -n 10 .venv/bin/python benchmarks/bench_grad_cam.py
     [--backbone MobileNetV3Small] [--size 224] [--batch 32] [--repeat 5]

It builds a classifier as a kerastl script does (the backbone from
keras.applications with random weights, so nothing is downloaded, called with
training=False, then average pooling, dropout and a float32 softmax layer),
and a batch of `--batch` random 0-255 images. After one warm-up call of each,
it times `model.predict(batch)` and `runtime.grad_cam(model, batch)` in
turns, `--repeat` times each, and prints the medians and their ratio (the
issue's goal: at most a few times a prediction). Cutting the model at its
base (`explain_split.split_model`) happens once per model, in the warm-up:
it is timed apart.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="MobileNetV3Small")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from kerastl import runtime  # first: it quiets TensorFlow's start
    from kerastl.runtime.explain_split import split_model

    import keras  # isort: skip
    import numpy as np  # isort: skip

    model = classifier(args.backbone, args.size)
    batch = np.random.default_rng(0).uniform(
        0, 255, (args.batch, args.size, args.size, 3)
    )
    batch = batch.astype("float32")
    calls = {
        "model.predict": lambda: model.predict(batch, batch_size=args.batch, verbose=0),
        "runtime.grad_cam": lambda: runtime.grad_cam(model, batch),
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    start = time.perf_counter()
    split_model(model)
    cut = time.perf_counter() - start
    for call in calls.values():
        call()  # warm-up: tracing, first allocations
    for _ in range(args.repeat):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"{args.backbone} at {args.size} px, a batch of {args.batch}, "
        f"median of {args.repeat} (keras {keras.__version__}, "
        f"{keras.backend.backend()} backend):"
    )
    for name, seconds in medians.items():
        print(f"  {name:<17} {seconds:.3f} s")
    print(f"  (the cut, once per model: {cut:.3f} s)")
    ratio = medians["runtime.grad_cam"] / medians["model.predict"]
    print(f"  ratio             {ratio:.2f} (Grad-CAM / prediction)")


def classifier(backbone: str, size: int):
    """A kerastl-shaped classifier of 10 classes on `backbone`, random weights."""
    import keras

    base = getattr(keras.applications, backbone)(
        include_top=False, weights=None, input_shape=(size, size, 3)
    )
    inputs = keras.Input((size, size, 3), name="image")
    x = base(inputs, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(0.2, name="dropout")(x)
    outputs = keras.layers.Dense(
        10, activation="softmax", dtype="float32", name="predictions"
    )(x)
    return keras.Model(inputs, outputs)


if __name__ == "__main__":
    main()
