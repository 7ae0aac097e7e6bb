"""What every export format declares: its files, the packages it needs, how it
writes an artifact and how a user's runtime loads one back."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .errors import ScriptError

#: A function from a float32 batch of raw 0-255 RGB pixels to class probabilities.
Predict = Callable[[np.ndarray], np.ndarray]


class ExportError(ScriptError):
    """An artifact cannot be written, or does not agree with the Keras model."""


class Loaded(NamedTuple):
    """An artifact loaded back with the runtime a user would deploy it with."""

    predict: Predict
    shape: tuple  # the input shape, e.g. (None, 224, 224, 3)
    runtime: str  # what ran it, e.g. "ai_edge_litert 2.3.0"


@dataclass(frozen=True)
class ExportFormat:
    """One `--export` choice.

    Attributes:
        files: What it writes into the export folder; the first is the
            artifact (the file or folder a user loads), the others lie beside it.
        export: `(model, path, weights, calibration_data)` writes the artifact
            to `path` and returns the facts `metrics.json` records of it (the
            ONNX opset...).
        load: The artifact at a path, loaded back (`Loaded`).
        packages: The modules it needs besides TensorFlow.
        extra: The `pip install 'kerastl[extra]'` that installs them.
        quantized: Whether `--quantize` sets its weights.
    """

    files: tuple[str, ...]
    export: Callable[..., dict]
    load: Callable[[str], Loaded]
    packages: tuple[str, ...] = ()
    extra: str | None = None
    quantized: bool = False

    @property
    def artifact(self) -> str:
        """The name of the file or folder a user loads."""
        return self.files[0]
