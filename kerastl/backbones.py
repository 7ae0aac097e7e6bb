"""The registry of every `keras.applications` backbone, as data.

Each backbone belongs to a family that shares its preprocessing rule, the names
of its blocks (for unfreezing whole blocks) and its default optimizer. The facts
are checked against real Keras by `tests/test_backbones_keras.py`.

This module is pure data: it never imports TensorFlow or Keras.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kerastl.closest_names import closest_names
from kerastl.errors import KerastlError

Preprocessing = Literal["built-in", "tf", "caffe", "torch"]

#: Each backbone's block starts: the first layer of each block, in model order.
BLOCK_STARTS_FILE = Path(__file__).with_name("block_starts.json")
#: Each family's facts, read as a file here and by `kerastl.runtime.blocks`
#: (the runtime's copy of `--standalone` carries it).
FAMILIES_FILE = Path(__file__).parent / "runtime" / "families.json"

#: What each preprocessing rule does to raw 0-255 RGB pixels.
PREPROCESSING_RULES: dict[str, str] = {
    "built-in": "nothing; the model rescales 0-255 pixels itself",
    "tf": "scale to [-1, 1]",
    "caffe": "RGB to BGR, minus the ImageNet mean",
    "torch": "scale to [0, 1], then the ImageNet mean and std",
}


@dataclass(frozen=True)
class Family:
    """Facts shared by the backbones of one `keras.applications` family.

    One entry of `FAMILIES_FILE`, which the runtime reads too.

    Attributes:
        name: Family name, as in the Keras docs.
        model_names: Regular expression that matches the names Keras gives the
            family's models (`efficientnetv2-b0`, `resnet50`...).
        block_pattern: Regular expression whose first group names the block
            of a layer (`kerastl.runtime.BlockRule`).
        unnamed_layers: The block a layer the pattern does not match joins:
            that of the nearest matching layer after it (`"next"`) or before.
        preprocessing: Which input rule the family expects (`PREPROCESSING_RULES`).
        optimizer: Name of the `keras.optimizers` class used by default.
        head_learning_rate: Default learning rate while only the head trains.
        fine_tune_learning_rate: Default learning rate once the base is unfrozen.
        imagenet_needs_default_size: Whether the ImageNet weights only load at
            the backbone's default input size.
    """

    name: str
    model_names: str
    block_pattern: str
    unnamed_layers: Literal["next", "previous"]
    preprocessing: Preprocessing
    optimizer: str
    head_learning_rate: float
    fine_tune_learning_rate: float
    imagenet_needs_default_size: bool


#: Every entry of `FAMILIES_FILE`: `keras.applications` families, and those of
#: KerasHub backbones (`"source": "keras_hub"`, read by `kerastl.hub`).
FAMILY_ENTRIES: list[dict] = json.loads(FAMILIES_FILE.read_text(encoding="utf-8"))

FAMILIES: dict[str, Family] = {
    facts["name"]: Family(**facts) for facts in FAMILY_ENTRIES if "source" not in facts
}


@dataclass(frozen=True)
class Backbone:
    """One `keras.applications` constructor and the facts a script needs.

    Attributes:
        name: Constructor name in `keras.applications`, e.g. `EfficientNetV2B0`.
        module: Its module in `keras.applications`, e.g. `efficientnet_v2`.
        family: The facts shared with its family.
        default_size: Native input size (the ImageNet classifier's size).
        min_size: Smallest input size Keras accepts.
        feature_dim: Channels of the base's output (`include_top=False`).
        params: Parameters of the base (`include_top=False`).
    """

    name: str
    module: str
    family: Family
    default_size: int
    min_size: int
    feature_dim: int
    params: int

    #: Where the constructor comes from (KerasHub presets: `kerastl.hub`).
    source = "keras.applications"
    #: How the templates' words describe its weights.
    pretrained = "pretrained on ImageNet"
    #: The pooling layer of step 6, whose outputs the feature cache keeps.
    pooling_layer = "avg_pool"
    #: The layers that take LoRA adapters (`runtime.add_lora`), in words.
    lora_targets = "Conv2D and Dense layers of the top --unfreeze blocks"

    @property
    def num_blocks(self) -> int:
        """Blocks of the base, as `kerastl.runtime.find_blocks` groups them."""
        return len(block_starts(self.name))

    @property
    def preprocess_module(self) -> str | None:
        """Module whose `preprocess_input` step 4 calls, or None if built in."""
        return None if self.family.preprocessing == "built-in" else self.module

    @property
    def preprocessing_rule(self) -> str:
        """What step 4 does, in words."""
        return PREPROCESSING_RULES[self.family.preprocessing]


# fmt: off
# name, module, family, default size, min size, feature dim, params
_TABLE: tuple[tuple[str, str, str, int, int, int, int], ...] = (
    ("ConvNeXtTiny", "convnext", "ConvNeXt", 224, 32, 768, 27_820_128),
    ("ConvNeXtSmall", "convnext", "ConvNeXt", 224, 32, 768, 49_454_688),
    ("ConvNeXtBase", "convnext", "ConvNeXt", 224, 32, 1024, 87_566_464),
    ("ConvNeXtLarge", "convnext", "ConvNeXt", 224, 32, 1536, 196_230_336),
    ("ConvNeXtXLarge", "convnext", "ConvNeXt", 224, 32, 2048, 348_147_968),
    ("DenseNet121", "densenet", "DenseNet", 224, 32, 1024, 7_037_504),
    ("DenseNet169", "densenet", "DenseNet", 224, 32, 1664, 12_642_880),
    ("DenseNet201", "densenet", "DenseNet", 224, 32, 1920, 18_321_984),
    ("EfficientNetB0", "efficientnet", "EfficientNet", 224, 32, 1280, 4_049_571),
    ("EfficientNetB1", "efficientnet", "EfficientNet", 240, 32, 1280, 6_575_239),
    ("EfficientNetB2", "efficientnet", "EfficientNet", 260, 32, 1408, 7_768_569),
    ("EfficientNetB3", "efficientnet", "EfficientNet", 300, 32, 1536, 10_783_535),
    ("EfficientNetB4", "efficientnet", "EfficientNet", 380, 32, 1792, 17_673_823),
    ("EfficientNetB5", "efficientnet", "EfficientNet", 456, 32, 2048, 28_513_527),
    ("EfficientNetB6", "efficientnet", "EfficientNet", 528, 32, 2304, 40_960_143),
    ("EfficientNetB7", "efficientnet", "EfficientNet", 600, 32, 2560, 64_097_687),
    ("EfficientNetV2B0", "efficientnet_v2", "EfficientNetV2", 224, 32, 1280, 5_919_312),
    ("EfficientNetV2B1", "efficientnet_v2", "EfficientNetV2", 240, 32, 1280, 6_931_124),
    ("EfficientNetV2B2", "efficientnet_v2", "EfficientNetV2", 260, 32, 1408, 8_769_374),
    ("EfficientNetV2B3", "efficientnet_v2", "EfficientNetV2", 300, 32, 1536, 12_930_622),
    ("EfficientNetV2S", "efficientnet_v2", "EfficientNetV2", 384, 32, 1280, 20_331_360),
    ("EfficientNetV2M", "efficientnet_v2", "EfficientNetV2", 480, 32, 1280, 53_150_388),
    ("EfficientNetV2L", "efficientnet_v2", "EfficientNetV2", 480, 32, 1280, 117_746_848),
    ("InceptionResNetV2", "inception_resnet_v2", "InceptionResNet", 299, 75, 1536, 54_336_736),
    ("InceptionV3", "inception_v3", "Inception", 299, 75, 2048, 21_802_784),
    ("MobileNet", "mobilenet", "MobileNet", 224, 32, 1024, 3_228_864),
    ("MobileNetV2", "mobilenet_v2", "MobileNetV2", 224, 32, 1280, 2_257_984),
    ("MobileNetV3Small", "mobilenet_v3", "MobileNetV3", 224, 32, 576, 939_120),
    ("MobileNetV3Large", "mobilenet_v3", "MobileNetV3", 224, 32, 960, 2_996_352),
    ("NASNetMobile", "nasnet", "NASNet", 224, 32, 1056, 4_269_716),
    ("NASNetLarge", "nasnet", "NASNet", 331, 32, 4032, 84_916_818),
    ("ResNet50", "resnet", "ResNet", 224, 32, 2048, 23_587_712),
    ("ResNet101", "resnet", "ResNet", 224, 32, 2048, 42_658_176),
    ("ResNet152", "resnet", "ResNet", 224, 32, 2048, 58_370_944),
    ("ResNet50V2", "resnet_v2", "ResNetV2", 224, 32, 2048, 23_564_800),
    ("ResNet101V2", "resnet_v2", "ResNetV2", 224, 32, 2048, 42_626_560),
    ("ResNet152V2", "resnet_v2", "ResNetV2", 224, 32, 2048, 58_331_648),
    ("VGG16", "vgg16", "VGG", 224, 32, 512, 14_714_688),
    ("VGG19", "vgg19", "VGG", 224, 32, 512, 20_024_384),
    ("Xception", "xception", "Xception", 299, 71, 2048, 20_861_480),
)
# fmt: on

BACKBONES: dict[str, Backbone] = {
    name: Backbone(name, module, FAMILIES[family], *sizes)
    for name, module, family, *sizes in _TABLE
}


class UnknownBackboneError(KerastlError, ValueError):
    """Raised for a name that is not a `keras.applications` backbone."""


def get(name: str) -> Backbone:
    """Returns the backbone called `name` (case-insensitive).

    Raises:
        UnknownBackboneError: If there is none, naming the closest valid names.
    """
    by_lower = {key.lower(): backbone for key, backbone in BACKBONES.items()}
    backbone = by_lower.get(name.lower())
    if backbone is not None:
        return backbone
    close = closest_names(name, tuple(BACKBONES))
    hint = f"did you mean: {', '.join(close)}" if close else "run `kerastl list`"
    raise UnknownBackboneError(f"unknown backbone {name!r}; {hint}")


@functools.cache
def _all_block_starts() -> dict[str, tuple[str, ...]]:
    data = json.loads(BLOCK_STARTS_FILE.read_text(encoding="utf-8"))
    return {name: tuple(starts) for name, starts in data.items()}


def block_starts(name: str) -> tuple[str, ...]:
    """The layers where the blocks of backbone `name` start, in model order.

    These are the only layers a fine-tuning stage can start from without
    cutting a block in half. Read from `BLOCK_STARTS_FILE` on first use.
    """
    return _all_block_starts()[name]
