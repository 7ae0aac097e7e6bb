"""The top classes of a prediction: one ranking for the scripts and `kerastl predict`."""

from typing import Any


def ranked(scores: Any, k: int) -> list[int]:
    """The indices of the `k` highest of `scores`, highest first.

    Ties go to the lower index, as with `argmax`.
    """
    import numpy as np

    return [int(index) for index in np.argsort(-np.asarray(scores), kind="stable")[:k]]


def over_thresholds(scores: Any, thresholds: Any, k: int | None = None) -> list[int]:
    """The indices of `scores` at least their class's threshold (a multi-label
    model's labels), highest first, at most `k` of them (None: all)."""
    import numpy as np

    scores = np.asarray(scores, dtype="float64")
    chosen = [
        index
        for index in ranked(scores, len(scores))
        if scores[index] >= float(thresholds[index])
    ]
    return chosen if k is None else chosen[:k]
