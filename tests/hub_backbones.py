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


def tiny_image_and_text(family: str, image_size: int = IMAGE_SIZE):
    """A SigLIP or CLIP model of 2 image blocks at 32 px and a one-block text tower."""
    import keras_hub

    models = keras_hub.models
    sizes = {"hidden_dim": 16, "num_heads": 2, "intermediate_dim": 32}
    text = {"vocabulary_size": 50, "embedding_dim": 16, "num_layers": 1}
    image_shape = (image_size, image_size, 3)
    if family == "SigLIP":
        return models.SigLIPBackbone(
            models.SigLIPVisionEncoder(
                patch_size=8, num_layers=2, image_shape=image_shape, **sizes
            ),
            models.SigLIPTextEncoder(max_sequence_length=8, **text, **sizes),
        )
    return models.CLIPBackbone(
        models.CLIPVisionEncoder(
            patch_size=8, num_layers=2, image_shape=image_shape, **sizes
        ),
        models.CLIPTextEncoder(max_sequence_length=8, **text, **sizes),
        projection_dim=16,
    )


def save_image_and_text_preset(backbone, folder: Path) -> Path:
    """Saves a SigLIP or CLIP model and its image converter as a preset in `folder`.

    SigLIP's converter maps [0, 255] to [-1, 1]; CLIP's normalizes as DINOv2's.
    """
    import keras_hub

    backbone.save_to_preset(str(folder))
    if type(backbone).__name__ == "SigLIPBackbone":
        converter = keras_hub.layers.SigLIPImageConverter(
            image_size=(IMAGE_SIZE, IMAGE_SIZE), scale=1 / 127.5, offset=-1.0
        )
    else:
        converter = keras_hub.layers.CLIPImageConverter(
            image_size=(IMAGE_SIZE, IMAGE_SIZE),
            scale=[1 / (255 * std) for std in STD],
            offset=[-mean / std for mean, std in zip(MEAN, STD)],
        )
    converter.save_to_preset(str(folder))
    return folder
