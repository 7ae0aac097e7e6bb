"""Imbalanced classes: inverse-frequency weights, and the line that warns of them."""

from .errors import DataError

IMBALANCE_RATIO = 5  # largest class over smallest, above which the scan warns
CLASS_WEIGHTS = ("none", "auto")  # auto: `class_weights` of the training images


def class_weights(counts: dict[str, int], class_names: list[str]) -> dict[int, float]:
    """Inverse-frequency weights, as `fit(class_weight=...)` takes them.

    A class's weight is `total / (number of classes * its count)`, so the
    weights average 1 over the images and each class weighs the same in all.

    Raises:
        DataError: If a class has no count or no images.
    """
    missing = [name for name in class_names if counts.get(name, 0) <= 0]
    if missing:
        raise DataError(f"cannot weight classes without images: {', '.join(missing)}")
    total = sum(counts[name] for name in class_names)
    return {
        index: total / (len(class_names) * counts[name])
        for index, name in enumerate(class_names)
    }


def imbalance_warning(counts: dict[str, int], *, weighted: bool = False) -> str | None:
    """One line when the largest class has over `IMBALANCE_RATIO` times the smallest.

    It suggests `--class-weight auto`, or with `weighted` says it is on.
    """
    if len(counts) < 2:
        return None
    largest = max(counts, key=lambda name: counts[name])
    smallest = min(counts, key=lambda name: counts[name])
    if counts[largest] <= IMBALANCE_RATIO * counts[smallest]:
        return None
    ratio = (
        f"{counts[largest] / counts[smallest]:.1f} times"
        if counts[smallest] > 0
        else "infinitely"
    )
    return (
        f"The classes are imbalanced: {largest!r} has {counts[largest]} images, "
        f"{ratio} as many as {smallest!r} ({counts[smallest]}); "
        + (
            "weighing them by --class-weight auto."
            if weighted
            else "consider --class-weight auto."
        )
    )
