"""The validation split: stratified by class, the same for folders and tables.

One label per image: each class gives the validation set its share of its
images exactly (rounded by largest remainder, so that the whole split holds
`round(split * images)`), at least one, and keeps one to train. Several labels
per image: iterative stratification (Sechidis, Tsoumakas and Vlahavas, "On the
stratification of multi-label data", ECML PKDD 2011): the label with the
fewest images left is dealt out first, each of its images to the set that
still wants most of that label; each label's validation share is at least one
image. Both draw their choices from the seed alone.
"""

import numpy as np

from .errors import DataError


def stratified_split(
    labels: np.ndarray, validation_split: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The training and validation indices of the images, each sorted.

    Args:
        labels: Class indices (one per image), or multi-hot rows (images x classes).
        validation_split: Share of the images to validate on, in (0, 1).
        seed: Seed of the choices.

    Raises:
        DataError: If `validation_split` is out of range.
    """
    if not 0 < validation_split < 1:
        raise DataError(
            f"validation split must be between 0 and 1, not {validation_split}"
        )
    rng = np.random.default_rng(seed)
    if labels.ndim == 1:
        chosen = _single_label(labels, validation_split, rng)
    else:
        chosen = _iterative(labels.astype(bool), validation_split, rng)
    validation = np.flatnonzero(chosen)
    return np.flatnonzero(~chosen), validation


def _single_label(
    labels: np.ndarray, share: float, rng: np.random.Generator
) -> np.ndarray:
    classes = np.unique(labels)
    counts = np.array([np.sum(labels == name) for name in classes])
    wanted = share * counts
    quotas = np.floor(wanted).astype(int)
    left = round(share * len(labels)) - int(quotas.sum())
    by_remainder = np.argsort(-(wanted - quotas), kind="stable")
    quotas[by_remainder[: max(left, 0)]] += 1
    quotas = np.clip(quotas, 1, np.maximum(counts - 1, 1))
    chosen = np.zeros(len(labels), bool)
    for name, quota in zip(classes, quotas):
        members = np.flatnonzero(labels == name)
        chosen[rng.permutation(members)[:quota]] = True
    return chosen


def _iterative(
    labels: np.ndarray, share: float, rng: np.random.Generator
) -> np.ndarray:
    """Sechidis et al.'s algorithm for two sets: index 0 trains, 1 validates."""
    positives = labels.sum(axis=0)
    wanted_labels = np.zeros((2, labels.shape[1]))
    wanted_labels[1] = np.maximum(share * positives, np.minimum(positives, 1))
    wanted_labels[0] = positives - wanted_labels[1]
    wanted = np.array([(1 - share) * len(labels), share * len(labels)])
    chosen = np.zeros(len(labels), bool)
    left = np.ones(len(labels), bool)
    while left.any():
        remaining = labels[left].sum(axis=0)
        if not remaining.any():  # images without a label: to the set that wants most
            for image in rng.permutation(np.flatnonzero(left)):
                target = int(np.argmax(wanted))
                chosen[image], wanted[target] = bool(target), wanted[target] - 1
            break
        label = int(np.argmin(np.where(remaining > 0, remaining, np.inf)))
        for image in rng.permutation(np.flatnonzero(left & labels[:, label])):
            target = _target(wanted_labels[:, label], wanted, rng)
            chosen[image] = bool(target)
            left[image] = False
            wanted_labels[target] -= labels[image]
            wanted[target] -= 1
    return chosen


def _target(
    for_label: np.ndarray, overall: np.ndarray, rng: np.random.Generator
) -> int:
    """The set that wants most of the label; then most images; then at random."""
    best = np.flatnonzero(for_label == for_label.max())
    if len(best) > 1:
        best = best[overall[best] == overall[best].max()]
    return int(best[0] if len(best) == 1 else rng.choice(best))


def split_problem(
    train: np.ndarray, validation: np.ndarray, class_names: list[str], split: bool
) -> str | None:
    """Why a split cannot train and validate every class, or None.

    Args:
        train: The training images' labels (indices or multi-hot rows).
        validation: The validation images' labels, alike.
        class_names: The classes, in the order of the labels.
        split: Whether the validation images were split off the training
            images (a class then needs 2 images in all).
    """
    trained, validated = (
        _per_class(train, class_names),
        _per_class(validation, class_names),
    )
    if split:
        few = [n for n in class_names if trained[n] + validated[n] < 2]
        if few:
            return (
                f"{_named(few)} fewer than 2 images ({_counts(few, trained, validated)}); "
                "each class needs one to train and one to validate"
            )
    unvalidated = [n for n in class_names if validated[n] == 0]
    if unvalidated:
        return f"{_named(unvalidated)} no validation image; add one to each"
    untrained = [n for n in class_names if trained[n] == 0]
    if untrained:
        return f"{_named(untrained)} no training image; add one to each"
    return None


def class_counts(labels: np.ndarray, class_names: list[str]) -> dict[str, int]:
    """Images of each class (with multi-hot rows: the images that have it)."""
    return _per_class(labels, class_names)


def _per_class(labels: np.ndarray, class_names: list[str]) -> dict[str, int]:
    if labels.ndim == 2:
        totals = labels.astype(bool).sum(axis=0)
    else:
        totals = np.bincount(labels.astype(int), minlength=len(class_names))
    return {name: int(total) for name, total in zip(class_names, totals)}


def _named(names: list[str]) -> str:
    quoted = ", ".join(repr(name) for name in names)
    return f"class {quoted} has" if len(names) == 1 else f"classes {quoted} have"


def _counts(names: list[str], *per_set: dict[str, int]) -> str:
    return ", ".join(f"{name!r}: {sum(s[name] for s in per_set)}" for name in names)
