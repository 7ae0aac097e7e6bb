"""`kerastl predict --explain DIR`: each image with its Grad-CAM heatmap.

For each image, the heatmap of its top class (`runtime.grad_cam`) is
computed at the model's input size, stretched to the image's own size and
coloured over it; the PNG is named after the image (`cat.jpg` -> `cat.png`,
`cat-2.png` for a second `cat`). TensorFlow is imported only to write them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

EXTENSION = ".png"


def heatmap_names(folder: Path, paths: list[Path]) -> dict[Path, Path]:
    """The PNG each image's heatmap goes to, in `folder`, one name per image."""
    names: dict[Path, Path] = {}
    taken: set[str] = set()
    for path in paths:
        name, copy = path.stem, 1
        while name.lower() in taken:
            copy += 1
            name = f"{path.stem}-{copy}"
        taken.add(name.lower())
        names[path] = folder / f"{name}{EXTENSION}"
    return names


def explain_problem(model: Any) -> str | None:
    """Why `runtime.grad_cam` cannot explain `model`; None if it can."""
    from kerastl.runtime.explain_split import split_model

    try:
        split_model(model)
    except (TypeError, ValueError) as error:
        return str(error)
    return None


class HeatmapWriter:
    """Writes the heatmaps of predicted batches, each image into its PNG."""

    def __init__(self, model: Any, names: dict[Path, Path]) -> None:
        """`model`: the run's Keras model; `names`: from `heatmap_names`."""
        self.model = model
        self.names = names
        self.written = 0

    def add(self, paths: list[Path], images: Any, probabilities: Any) -> Any:
        """Writes a batch's heatmaps of its top classes.

        Returns:
            The images at the model's size with their heatmaps over them
            (uint8), for the contact sheet.
        """
        import numpy as np
        import tensorflow as tf

        from kerastl.runtime import files, grad_cam
        from kerastl.runtime.explain import overlay

        heatmaps = grad_cam(self.model, images, np.argmax(probabilities, axis=1))
        for path, heatmap in zip(paths, heatmaps):
            original = tf.io.decode_image(
                tf.io.read_file(str(path)), channels=3, expand_animations=False
            ).numpy()
            stretched = tf.image.resize(heatmap[..., None], original.shape[:2])
            shown = overlay(original, stretched.numpy()[..., 0])
            files.write_bytes(self.names[path], tf.io.encode_png(shown).numpy())
            self.written += 1
        return np.stack([overlay(*pair) for pair in zip(images, heatmaps)])
