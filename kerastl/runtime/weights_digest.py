"""A hash of a model's weights, to know when they changed. Plain numpy."""

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np


def weights_hash(model) -> str:
    """A hash of the values of the model's weights."""
    return arrays_hash(model.get_weights())


def arrays_hash(arrays: Iterable[Any], *, prefix: bytes = b"") -> str:
    """A hash of `prefix` and of each array's dtype, shape and values, in order."""
    digest = hashlib.blake2b(prefix, digest_size=16)
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
