"""The run's best weights kept in memory by the process that trained them."""

import keras
import numpy as np

from . import files
from .lora_saving import unmerged_saving

HELD = ""  # the file of weights that only memory holds yet


class HeldWeights:
    """Weights of a model kept in memory, as Keras's
    `EarlyStopping(restore_best_weights=True)` keeps them, with the name of
    the run's file that holds them too (`HELD` while none does).

    Args:
        model: The model whose weights are kept and put back.
    """

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        self.file: str | None = None  # None: nothing held
        self._values: list[np.ndarray] = []

    def hold(self) -> None:
        """Keeps the model's weights, as yet in no file."""
        self._values = self.model.get_weights()
        self.file = HELD

    def written_to(self, name: str) -> None:
        """Records that the file `name` now holds the run's best weights
        (which memory holds too, if this process trained them)."""
        if self.file is not None:
            self.file = name

    def put_back(self, name: str) -> bool:
        """Puts the kept weights into the model if they are those of the file
        `name`; whether it did."""
        if self.file != name:
            return False
        self.model.set_weights(self._values)
        return True

    def write(self, path: str) -> None:
        """Writes the kept weights into the weights file `path` (a temporary
        name, then renamed); the model keeps its own weights."""
        current = self.model.get_weights()
        with files.replacing(path) as partial, unmerged_saving(self.model):
            self.model.set_weights(self._values)
            self.model.save_weights(partial)
        self.model.set_weights(current)
