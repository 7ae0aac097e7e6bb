"""Pre-trains a tiny DINOv2 on the handwritten digits 0-4: a local KerasHub preset.

A KerasHub preset is downloaded when a script runs; this one is made here, so
that a script generated with `--backbone examples/digits_hub_base/tiny_dinov2`
shows transfer without the network: it learns the digits 5-9, which the base
never saw, better than the same script with `--weights none`
(tests/test_hub_transfer.py). Run it from the repository root (it needs
keras-hub, scikit-learn and Pillow):

    .venv/bin/python examples/digits_hub_base/make_base.py

It writes tiny_dinov2/ beside itself with `save_to_preset`: the backbone's
config.json and weights, and its image converter (ImageNet's mean and std).
"""

import sys
import time
from pathlib import Path

import keras
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from tests.digits import turned_digits  # the look of the demo images
from tests.hub_backbones import IMAGE_SIZE, MEAN, STD, save_preset, tiny_dinov2

OUTPUT = Path(__file__).with_name("tiny_dinov2")
DIGITS = range(5)  # the transfer test learns 5-9: the base never sees them
TURNS = 4  # each image also turned by 90, 180 and 270 degrees, a class of its own
HELD_OUT = 30  # images of each digit kept out of training, to check the base
EPOCHS = 30
BATCH_SIZE = 32
LEARNING_RATE = 0.001
SEED = 0


def load(start: int, count: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Images of the digits 0-4 in their four turns, RGB 0-255, one-hot labels."""
    images, labels = turned_digits(DIGITS, TURNS, start=start, count=count)
    return images, keras.utils.to_categorical(labels)


def main() -> None:
    """Trains the backbone with a temporary head, checks it, saves the preset."""
    started = time.perf_counter()
    keras.utils.set_random_seed(SEED)
    val_images, val_labels = load(start=0, count=HELD_OUT)
    train_images, train_labels = load(start=HELD_OUT, count=None)

    base = tiny_dinov2()
    # As the scripts feed it: the converter's normalization, then the class
    # token beside the mean of the patch tokens.
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.Rescaling(
        [1 / (255 * std) for std in STD], [-mean / std for mean, std in zip(MEAN, STD)]
    )(inputs)
    tokens = base({"images": x})
    count, prefix = tokens.shape[1], 1 + base.num_register_tokens
    class_token = keras.layers.Flatten()(
        keras.layers.Cropping1D((0, count - 1))(tokens)
    )
    patches = keras.layers.GlobalAveragePooling1D()(
        keras.layers.Cropping1D((prefix, 0))(tokens)
    )
    x = keras.layers.Concatenate()([class_token, patches])
    outputs = keras.layers.Dense(train_labels.shape[1], activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.AdamW(LEARNING_RATE),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        train_images,
        train_labels,
        batch_size=BATCH_SIZE,
        epochs=EPOCHS,
        validation_data=(val_images, val_labels),
        verbose=2,
    )
    _, accuracy = model.evaluate(val_images, val_labels, verbose=0)
    save_preset(base, OUTPUT)
    size = sum(path.stat().st_size for path in OUTPUT.iterdir())
    print(
        f"{OUTPUT.name}/: {size / 1e6:.2f} MB, held-out accuracy {accuracy:.3f} "
        f"on {len(val_labels)} turned images of 0-4, "
        f"{time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
