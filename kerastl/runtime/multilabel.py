"""Training a multi-label classifier: its loss, and the weights of its classes.

Keras's `fit(class_weight=...)` weighs a whole image by its one class: with
multi-hot labels it would weigh each image by the first of its labels. A
multi-label script weighs inside the loss instead (`--class-weight auto`):
each class's positive term is multiplied by that class's `positive_weights`,
so that in the training images each class's positives weigh as much as its
negatives.
"""

import keras

from .errors import DataError


def positive_weights(
    counts: dict[str, int], images: int, class_names: list[str]
) -> list[float]:
    """Each class's weight of a positive: its negatives over its positives.

    With it, a class's positive images weigh as much in the loss as its
    negative ones (PyTorch's `BCEWithLogitsLoss(pos_weight=...)` convention):
    a class on 10% of the images weighs 9, one on half of them 1.

    Args:
        counts: The training images that have each class.
        images: The number of training images.
        class_names: The classes, in the order of the model's outputs.

    Raises:
        DataError: If a class is on no training image, or on all of them.
    """
    missing = [name for name in class_names if counts.get(name, 0) <= 0]
    if missing:
        raise DataError(f"cannot weigh classes without images: {', '.join(missing)}")
    everywhere = [name for name in class_names if counts[name] >= images]
    if everywhere:
        raise DataError(
            "cannot weigh classes that every training image has: "
            + ", ".join(everywhere)
        )
    return [(images - counts[name]) / counts[name] for name in class_names]


@keras.saving.register_keras_serializable(package="kerastl")
class WeightedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy whose positive terms are weighed per class.

    `loss = -mean_c(w_c * y_c * log(p_c) + (1 - y_c) * log(1 - p_c))`, with
    `y` smoothed as `keras.losses.BinaryCrossentropy` smooths it (towards 0.5).

    Args:
        positive_weights: Each class's weight of a positive, `w_c`.
        label_smoothing: As `keras.losses.BinaryCrossentropy`'s.
    """

    def __init__(
        self,
        positive_weights: list[float],
        label_smoothing: float = 0.0,
        name: str = "weighted_binary_crossentropy",
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.positive_weights = [float(weight) for weight in positive_weights]
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        ops = keras.ops
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        y_true = y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        epsilon = keras.config.epsilon()
        y_pred = ops.clip(y_pred, epsilon, 1.0 - epsilon)
        weights = ops.convert_to_tensor(self.positive_weights, dtype=y_pred.dtype)
        terms = weights * y_true * ops.log(y_pred) + (1.0 - y_true) * ops.log(
            1.0 - y_pred
        )
        return -ops.mean(terms, axis=-1)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "positive_weights": self.positive_weights,
            "label_smoothing": self.label_smoothing,
        }


def multi_label_loss(
    label_smoothing: float = 0.0, positive_weights: list[float] | None = None
) -> keras.losses.Loss:
    """The loss of a multi-label script: Keras's binary cross-entropy, or with
    `positive_weights` (`--class-weight auto`) `WeightedBinaryCrossentropy`."""
    if positive_weights is None:
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
    return WeightedBinaryCrossentropy(positive_weights, label_smoothing=label_smoothing)
