"""Pre-trains MobileNetV3Small on the handwritten digits 0-4: the demo's base weights.

The README's first command fine-tunes this base on ten images of each digit
5-9, digits it has never seen, to show transfer learning where the ImageNet
weights cannot be downloaded. Run it from the repository root after the
README's second set-up command (it needs scikit-learn and Pillow):

    .venv/bin/python examples/digits_base/make_base.py

It writes mobilenetv3small_32px.weights.h5 beside itself: the base's weights
saved with save_weights(), the file a generated script's --weights PATH takes.
"""

import sys
import time
from pathlib import Path

import keras
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from tests.digits import turned_digits  # the look of the demo images

OUTPUT = Path(__file__).with_name("mobilenetv3small_32px.weights.h5")
IMAGE_SIZE = 32
DIGITS = range(5)  # the demo fine-tunes on 5-9: the base never sees them
TURNS = 4  # each image also turned by 90, 180 and 270 degrees, a class of its own
HELD_OUT = 30  # images of each digit kept out of training, to check the base
EPOCHS = 5
BATCH_SIZE = 32
LEARNING_RATE = 0.002
SEED = 0


def load(start: int, count: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Images of the digits 0-4 in their four turns, RGB 0-255, one-hot labels.

    Class `digit + 5 * turn`: telling five digits apart takes few features,
    telling them and their turns apart takes more strokes and directions,
    which serve other digits too.
    """
    images, labels = turned_digits(DIGITS, TURNS, start=start, count=count)
    return images, keras.utils.to_categorical(labels)


def main() -> None:
    """Trains the base with a temporary head, checks it, saves the base's weights."""
    started = time.perf_counter()
    keras.utils.set_random_seed(SEED)
    val_images, val_labels = load(start=0, count=HELD_OUT)
    train_images, train_labels = load(start=HELD_OUT, count=None)

    # The backbone as the generated scripts build it: include_top=False, raw
    # 0-255 pixels (MobileNetV3 rescales them itself).
    base = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3)
    )
    # Its BatchNormalization layers average their statistics over ~1,000 steps
    # (momentum 0.999), made for ImageNet's long runs; this one has ~450. The
    # scripts use those statistics (the frozen base runs in inference mode),
    # so make them follow this run.
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9

    # A temporary head: pooled features, then one output per class.
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs))
    outputs = keras.layers.Dense(train_labels.shape[1], activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
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
    base.save_weights(OUTPUT)
    print(
        f"{OUTPUT.name}: {OUTPUT.stat().st_size / 1e6:.1f} MB, held-out accuracy "
        f"{accuracy:.3f} on {len(val_labels)} turned images of 0-4, "
        f"{time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
