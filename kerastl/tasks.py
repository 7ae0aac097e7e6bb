"""The tasks a training script can learn, as data: what each decides.

A task is chosen when a script is generated (`kerastl new --task`): one label
per image (softmax over the classes) or several (a sigmoid per class). It
decides step 7's activation, the loss and the metrics the script compiles;
the runtime reads the task back from the loaded data (`TrainingData.multi_label`)
for everything after training (thresholds, report, predictions).

This module is pure data: it never imports TensorFlow or Keras.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """A metric built from its class: `keras.metrics.<name>(**arguments)`.

    Attributes:
        name: The class's name in `keras.metrics`.
        arguments: Its keyword arguments, `(keyword, literal)` pairs.
    """

    name: str
    arguments: tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class Task:
    """What one task writes into a training script.

    Attributes:
        name: The value of `--task`.
        summary: What the script learns, for its docstring.
        activation: Step 7's activation (float32 in every case).
        outputs: What step 7's outputs are, for its comment.
        loss: The loss class or function, a dotted name in the script.
        loss_arguments: Its keyword arguments: `(keyword, expression)` pairs,
            each expression a dotted name in the script.
        loss_comment: What the loss does with the labels, in comment lines.
        metrics: The metrics the script compiles: each a Keras metric's name,
            or a `Metric` built from its class.
        metrics_comment: What the metrics are, in comment lines.
        class_weight_help: What `--class-weight auto` does, for `--help`.
        label_smoothing_help: What `--label-smoothing` does, for `--help`.
    """

    name: str
    summary: str
    activation: str
    outputs: str
    loss: str
    loss_arguments: tuple[tuple[str, str], ...]
    loss_comment: tuple[str, ...]
    metrics: tuple[str | Metric, ...]
    metrics_comment: tuple[str, ...]
    class_weight_help: str
    label_smoothing_help: str

    @property
    def multi_label(self) -> bool:
        """Whether an image may have several labels (multi-hot rows)."""
        return self.activation == "sigmoid"


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            name="single-label",
            summary="one class per image",
            activation="softmax",
            outputs="one probability per class, summing to 1",
            loss="keras.losses.CategoricalCrossentropy",
            loss_arguments=(("label_smoothing", "settings.label_smoothing"),),
            loss_comment=("Labels arrive one-hot: smoothed here, mixed by mixing().",),
            metrics=("accuracy", "categorical_crossentropy"),
            metrics_comment=(
                "categorical_crossentropy: the loss without smoothing (metrics.json's).",
            ),
            class_weight_help="auto: weigh each class by the inverse of its share",
            label_smoothing_help="share of each target spread evenly over the classes",
        ),
        Task(
            name="multi-label",
            summary="any number of classes per image",
            activation="sigmoid",
            outputs="one independent probability per class",
            loss="runtime.multi_label_loss",
            loss_arguments=(
                ("label_smoothing", "settings.label_smoothing"),
                ("positive_weights", "data.positive_weights"),
            ),
            loss_comment=(
                "Labels arrive multi-hot: a binary cross-entropy per class,",
                "smoothed here, mixed by mixing(); --class-weight auto weighs",
                "each class's positives in it (fit()'s class_weight cannot).",
            ),
            metrics=(
                "binary_accuracy",
                "binary_crossentropy",
                Metric(
                    "AUC",
                    (("curve", "PR"), ("multi_label", True), ("name", "pr_auc")),
                ),
            ),
            metrics_comment=(
                "binary_accuracy: right yes/no answers at 0.5; binary_crossentropy:",
                "the loss without smoothing; pr_auc: the mean over the classes of",
                "the area under precision-recall (close to the report's mAP).",
            ),
            class_weight_help="auto: weigh each class's positives by its negatives / positives",
            label_smoothing_help="share of each target moved towards 0.5",
        ),
    )
}

#: The values of `--task`, the default first.
TASK_NAMES = tuple(TASKS)
