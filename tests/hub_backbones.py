"""Tiny KerasHub backbones saved as local presets: what the tests generate from.

Built with KerasHub's own constructors and saved with `save_to_preset`, as a
preset from Kaggle or Hugging Face would be, so no test needs the network.
"""

from pathlib import Path

#: ImageNet's mean and standard deviation, which DINOv2's converter applies.
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGE_SIZE = 32


def tiny_dinov2(image_size: int = IMAGE_SIZE):
    """A DINOv2 backbone of 2 blocks, 32 features, 8-pixel patches, 1 register."""
    import keras_hub

    return keras_hub.models.DINOV2Backbone(
        patch_size=8,
        num_layers=2,
        hidden_dim=32,
        num_heads=2,
        intermediate_dim=64,
        num_register_tokens=1,
        image_shape=(image_size, image_size, 3),
        position_embedding_shape=(image_size, image_size, 3),
    )


def save_preset(backbone, folder: Path) -> Path:
    """Saves `backbone` and DINOv2's image converter as a preset in `folder`."""
    import keras_hub

    backbone.save_to_preset(str(folder))
    converter = keras_hub.layers.DINOV2ImageConverter(
        image_size=(IMAGE_SIZE, IMAGE_SIZE),
        scale=[1 / (255 * std) for std in STD],
        offset=[-mean / std for mean, std in zip(MEAN, STD)],
    )
    converter.save_to_preset(str(folder))
    return folder
