"""The top classes of a prediction: one ranking for the scripts and `kerastl predict`."""

from typing import Any


def ranked(scores: Any, k: int) -> list[int]:
    """The indices of the `k` highest of `scores`, highest first.

    Ties go to the lower index, as with `argmax`.
    """
    import numpy as np

    return [int(index) for index in np.argsort(-np.asarray(scores), kind="stable")[:k]]
