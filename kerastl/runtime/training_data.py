"""The data of a training script, loaded from its settings in one call."""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import keras
import tensorflow as tf

from . import files
from .class_balance import class_weights
from .data import ImageFolders, load_image_folders
from .data_checks import check_num_classes
from .distribute import worker_folder
from .errors import DataError
from .features import cache_features
from .folders import check_test_folder
from .multilabel import positive_weights


@dataclass(frozen=True)
class TrainingData(ImageFolders):
    """What a training script trains and validates on: the image folders'
    batches (`ImageFolders`; `train` and `validation` hold features once
    they are cached), and how a run uses them.

    Attributes:
        class_weight: `fit()`'s class weights, or None (always, multi-label).
        multi_label: (`ImageFolders`'s) here, whether the script's task is
            multi-label: the labels are multi-hot rows (one-hot from class
            folders), the model's outputs one sigmoid per class.
        positive_weights: Multi-label with `--class-weight auto`: each
            class's weight of a positive in the loss (`multi_label_loss`).
        identity: What a resumed run must share with the saved one: image
            size, batch size, classes and validation data.
    """

    class_weight: dict[int, float] | None = None
    positive_weights: list[float] | None = None
    identity: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.class_names)


def load_training_data(
    settings: Any,
    strategy: tf.distribute.Strategy,
    *,
    augmentation: keras.layers.Layer | None = None,
    mixing: Sequence[keras.layers.Layer] = (),
    multi_label: bool = False,
) -> TrainingData:
    """Scans and loads a script's image folders (`load_image_folders`).

    Args:
        settings: The script's settings; reads `data_dir`, `val_dir`,
            `validation_split`, `image_size`, `batch_size` (per replica of
            `strategy`), `seed`, `cache`, `class_weight`, `num_classes`,
            `output_dir` and, if it has them, `test_dir` (checked now),
            `labels`, `val_labels`, `test_labels` and `label_delimiter`.
        strategy: The tf.distribute strategy the model trains in.
        augmentation: Random changes applied to the training images each epoch.
        mixing: Layers that mix training batches and their labels (MixUp,
            CutMix), in turn by batch.
        multi_label: The script's task is multi-label (`kerastl new --task`):
            `--class-weight auto` weighs each class's positives in the loss
            (`positive_weights`), not whole images in `fit()`.

    Returns:
        The data.

    Raises:
        DataError: If the folders cannot be used, hold another number of
            classes than `settings.num_classes`, or the test folder other
            classes than the training data.
    """
    folder = worker_folder(settings.output_dir, strategy)
    tables = {
        name: getattr(settings, name, None)
        for name in ("labels", "val_labels", "test_labels", "label_delimiter")
    }
    if tables["labels"] is not None and getattr(settings, "test_dir", None):
        raise DataError(
            "--test-dir is for class folders; with --labels, give --test-labels"
        )
    images = load_image_folders(
        settings.data_dir,
        image_size=settings.image_size,
        batch_size=settings.batch_size * strategy.num_replicas_in_sync,
        val_dir=settings.val_dir,
        validation_split=settings.validation_split,
        seed=settings.seed,
        augmentation=augmentation,
        mixing=mixing,
        cache=settings.cache,
        cache_dir=files.join(folder, "cache"),
        class_weight=settings.class_weight,
        **tables,
    )
    class_names = images.class_names
    check_num_classes(settings.num_classes, class_names)
    if images.multi_label and not multi_label:
        raise DataError(
            f"{settings.labels} gives several labels per image (a labels column), "
            "but the script is single-label: generate it with --task multi-label, "
            "or give one class per image in a label column"
        )
    if getattr(settings, "test_dir", None) is not None:
        check_test_folder(settings.test_dir, class_names)  # now, not after training
    counts = images.train_files.class_counts
    weights, positives = None, None
    if settings.class_weight == "auto" and multi_label:
        positives = positive_weights(counts, len(images.train_files.paths), class_names)
    elif settings.class_weight == "auto":
        weights = class_weights(counts, class_names)
    # A validation folder by its images (the same folder named another way,
    # with a trailing slash or from another directory, is the same data).
    validation = images.validation_files
    validation_source = (
        f"{len(validation.paths)} images, fingerprint {validation.fingerprint[:16]}"
        if settings.val_dir
        else f"{settings.validation_split:.0%} of the data, seed {settings.seed}"
    )
    identity = {
        "image_size": settings.image_size,
        "batch_size": settings.batch_size,
        "classes": class_names,
        "validation": validation_source,
        **_table_hashes(images),
    }
    return TrainingData(
        **(vars(images) | {"multi_label": multi_label}),
        class_weight=weights,
        positive_weights=positives,
        identity=identity,
    )


def _table_hashes(images: ImageFolders) -> dict[str, dict[str, str]]:
    """The SHA-256 of each label table, by set: a resumed run needs the same."""
    sets = {"training": images.train_files, "validation": images.validation_files}
    hashes = {
        name: listed.table_sha256
        for name, listed in sets.items()
        if listed.table_sha256 is not None
    }
    if images.test_images is not None and images.test_images.table_sha256:
        hashes["test"] = images.test_images.table_sha256
    return {"label_tables": hashes} if hashes else {}


def cache_training_features(
    model: keras.Model, layer_name: str, data: TrainingData, settings: Any
) -> tuple[keras.Model, TrainingData]:
    """`cache_features` for a script: the head, and the data as features.

    Reads `settings.output_dir` (the cache goes to its `features/`),
    `batch_size` and `seed`. Training batches that are mixed anew each epoch
    (MixUp, CutMix) cannot be cached: then the model and data are returned
    unchanged, and one line says so.
    """
    if data.mixed:
        print(
            "Features: not cached, as MixUp or CutMix mixes the images anew each "
            "epoch (the frozen base runs on every batch)"
        )
        return model, data
    head, train, validation = cache_features(
        model,
        layer_name,
        data,
        files.join(settings.output_dir, "features"),
        batch_size=settings.batch_size * model.distribute_strategy.num_replicas_in_sync,
        seed=settings.seed,
    )
    return head, replace(data, train=train, validation=validation)
