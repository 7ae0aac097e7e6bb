"""A hash of a model's weights, to know when they changed. Plain numpy."""

import hashlib

import numpy as np


def weights_hash(model) -> str:
    """A hash of the values of the model's weights."""
    digest = hashlib.blake2b(digest_size=16)
    for weight in model.get_weights():
        weight = np.ascontiguousarray(weight)
        digest.update(f"{weight.dtype}{weight.shape}".encode())
        digest.update(weight.tobytes())
    return digest.hexdigest()
