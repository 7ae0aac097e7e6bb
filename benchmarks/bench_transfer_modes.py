"""Linear probe, full fine-tune and LoRA on a base pre-trained here, few-shot digits.

Run: .venv/bin/python benchmarks/bench_transfer_modes.py [--epochs 12] [--seeds 3]

Two bases, both pre-trained on the digits 0-4 (each also turned by 90, 180
and 270 degrees, a class of its own), never on 5-9:

- cnn: MobileNetV3Small at 32 px, the demo's base
  (examples/digits_base/mobilenetv3small_32px.weights.h5, make_base.py);
- vit: a KerasHub ViTBackbone (4 blocks, 64 wide, 4x4 patches, 32 px),
  pre-trained by this script first, with its pooling: the class token and
  the mean of the patch tokens.

Each then learns the digits 5-9 from 10 images of each (validation: 30 others
of each) in four modes, with the runtime's own helpers, for `--epochs`
epochs, Adam, batch 16, BatchNorm frozen and the base in inference mode:

- probe: the frozen base runs once over the images (the feature cache), then
  a softmax layer trains on the pooled features (rate 3e-3);
- full: every layer of the base trains with the head (rate 3e-4);
- lora-4, lora-16: LoRA adapters of that rank (alpha = rank) train with the
  head (rate 3e-3): every Conv2D/Dense of the CNN, the attention's query and
  value of the ViT.

Each (base, mode) runs in a process of its own, for its peak memory (the
process's peak resident set, TensorFlow included), over `--seeds` seeds. It
prints a markdown table: the best validation accuracy of the run (mean and
standard deviation over the seeds), the weights that train, the seconds of an
epoch (the median, the first epoch left out: it traces) and the peak memory.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CNN_WEIGHTS = REPO / "examples" / "digits_base" / "mobilenetv3small_32px.weights.h5"
MODES = {"probe": 3e-3, "full": 3e-4, "lora-4": 3e-3, "lora-16": 3e-3}
SIZE, TURNS, BATCH = 32, 4, 16


def digits(labels, start: int, count: int | None, turns: int = 1):
    """RGB 0-255 images of `labels` (and their turns) and one-hot classes."""
    from tests.digits import digit_images

    images, classes = [], []
    for index, label in enumerate(labels):
        for _, pixels in digit_images(label, start=start, count=count):
            rgb = np.repeat(pixels[..., None], 3, axis=-1)
            for turn in range(turns):
                images.append(np.rot90(rgb, turn))
                classes.append(index + len(labels) * turn)
    return np.array(images, "float32"), keras.utils.to_categorical(classes)


def vit_backbone():
    import keras_hub

    return keras_hub.models.ViTBackbone(
        image_shape=(SIZE, SIZE, 3),
        patch_size=4,
        num_layers=4,
        num_heads=4,
        hidden_dim=64,
        mlp_dim=128,
    )


def with_head(base, name: str, classes: int):
    """Raw pixels, the base's scaling, the base in inference mode, pooling, softmax."""
    inputs = keras.Input((SIZE, SIZE, 3))
    if name == "vit":  # the class token and the mean of the patch tokens
        tokens = base(keras.layers.Rescaling(1 / 255)(inputs), training=False)
        patches = keras.ops.mean(tokens[:, 1:], axis=1)
        x = keras.layers.Concatenate()([tokens[:, 0], patches])
    else:
        x = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


def pretrain_vit(path: Path, epochs: int) -> None:
    """Pre-trains the ViT on the digits 0-4 and their turns; saves its weights."""
    keras.utils.set_random_seed(0)
    images, labels = digits(range(5), start=30, count=None, turns=TURNS)
    backbone = vit_backbone()
    model = with_head(backbone, "vit", labels.shape[1])
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(images, labels, batch_size=32, epochs=epochs, verbose=2)
    backbone.save_weights(path)


def base_of(name: str, weights: Path):
    if name == "cnn":
        return keras.applications.MobileNetV3Small(
            include_top=False, weights=str(CNN_WEIGHTS), input_shape=(SIZE, SIZE, 3)
        )
    backbone = vit_backbone()
    backbone.load_weights(weights)
    return backbone


def prepare(base, mode: str) -> list:
    """Sets what trains in `mode`; returns the trainable layers of the base."""
    from kerastl import runtime
    from kerastl.runtime.lora import every_layer

    if mode.startswith("lora"):
        runtime.add_lora(base, "all", rank=int(mode.split("-")[1]))
        return runtime.train_lora(base)
    if mode == "full":
        base.trainable = True
        for layer in every_layer(base):  # BatchNorm stays frozen
            layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
        return [layer for layer in base.layers if layer.trainable]
    return runtime.freeze(base)


class EpochTimes(keras.callbacks.Callback):
    """Records the seconds of each epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self.started = 0.0

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.seconds.append(time.perf_counter() - self.started)


def one_seed(name: str, mode: str, seed: int, epochs: int, weights: Path) -> dict:
    """Trains one mode on one base from one seed; its figures."""
    from kerastl import runtime

    keras.utils.set_random_seed(seed)
    train_x, train_y = digits(range(5, 10), start=0, count=10)
    val_x, val_y = digits(range(5, 10), start=10, count=30)
    base = base_of(name, weights)
    model = with_head(base, name, 5)
    trainable = prepare(base, mode)
    timer = EpochTimes()
    fitted, x, validation = model, train_x, (val_x, val_y)
    if mode == "probe":  # the feature cache: the frozen base once, then the head
        pooled = keras.Model(model.input, model.layers[-1].input)
        x = pooled.predict(train_x, verbose=0)
        validation = (pooled.predict(val_x, verbose=0), val_y)
        fitted = keras.Sequential([keras.Input(x.shape[1:]), model.layers[-1]])
    options = {"optimizer": keras.optimizers.Adam(MODES[mode])}
    options.update(loss="categorical_crossentropy", metrics=["accuracy"])
    if mode == "probe":
        fitted.compile(**options)
    else:
        runtime.compile_checked(model, base, trainable, **options)
    history = fitted.fit(
        x,
        train_y,
        batch_size=BATCH,
        epochs=epochs,
        validation_data=validation,
        verbose=0,
        callbacks=[timer],
    )
    return {
        "accuracy": max(history.history["val_accuracy"]),
        "trained": sum(int(keras.ops.size(w)) for w in fitted.trainable_weights),
        "total": sum(int(keras.ops.size(w)) for w in model.weights),
        "epoch_seconds": statistics.median(timer.seconds[1:] or timer.seconds),
    }


def one_process(args: argparse.Namespace) -> None:
    """`--one BASE MODE`: every seed of one mode on one base, as one JSON line."""
    name, mode = args.one
    runs = [
        one_seed(name, mode, seed, args.epochs, args.vit_weights)
        for seed in range(args.seeds)
    ]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(json.dumps({"runs": runs, "peak_mb": peak}))


def row(name: str, mode: str, result: dict) -> str:
    runs = result["runs"]
    accuracy = [run["accuracy"] for run in runs]
    spread = statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0
    trained, total = runs[0]["trained"], runs[0]["total"]
    seconds = statistics.median(run["epoch_seconds"] for run in runs)
    return (
        f"| {name} | {mode} | {statistics.mean(accuracy):.3f} ± {spread:.3f} | "
        f"{trained:,} ({100 * trained / total:.3g}%) | {seconds:.2f} | "
        f"{result['peak_mb']:,.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--vit-weights", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_process(args)
        return
    started = time.perf_counter()
    lines = [
        (
            "| base | mode | val accuracy (mean ± std) | weights trained (share) "
            "| s / epoch | peak memory (MB) |"
        ),
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "vit.weights.h5"
        pretrain_vit(weights, args.pretrain_epochs)
        for name in ("cnn", "vit"):
            for mode in MODES:
                command = [sys.executable, __file__, "--one", name, mode]
                command += ["--epochs", str(args.epochs), "--seeds", str(args.seeds)]
                command += ["--vit-weights", str(weights)]
                done = subprocess.run(
                    command, capture_output=True, text=True, check=True
                )
                lines.append(row(name, mode, json.loads(done.stdout.splitlines()[-1])))
                print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))
    print(f"\n({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
