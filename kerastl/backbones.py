"""The registry of every `keras.applications` backbone, as data.

Each backbone belongs to a family that shares its preprocessing rule, the names
of its blocks (for unfreezing whole blocks) and its default optimizer. The facts
are checked against real Keras by `tests/test_backbones_keras.py`.

This module is pure data: it never imports TensorFlow or Keras.
"""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kerastl.errors import KerastlError

Preprocessing = Literal["built-in", "tf", "caffe", "torch"]

#: Each backbone's block starts: the first layer of each block, in model order.
BLOCK_STARTS_FILE = Path(__file__).with_name("block_starts.json")

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

    Attributes:
        name: Family name, as in the Keras docs.
        preprocessing: Which input rule the family expects (`PREPROCESSING_RULES`).
        optimizer: Name of the `keras.optimizers` class used by default.
        head_learning_rate: Default learning rate while only the head trains.
        fine_tune_learning_rate: Default learning rate once the base is unfrozen.
        imagenet_needs_default_size: Whether the ImageNet weights only load at
            the backbone's default input size.
    """

    name: str
    preprocessing: Preprocessing
    optimizer: str = "Adam"
    head_learning_rate: float = 1e-3
    fine_tune_learning_rate: float = 1e-5
    imagenet_needs_default_size: bool = False


CONVNEXT = Family(
    "ConvNeXt", "built-in", optimizer="AdamW", fine_tune_learning_rate=5e-5
)
DENSENET = Family("DenseNet", "torch")
EFFICIENTNET = Family("EfficientNet", "built-in")
EFFICIENTNET_V2 = Family("EfficientNetV2", "built-in")
INCEPTION_RESNET = Family("InceptionResNet", "tf")
INCEPTION = Family("Inception", "tf")
MOBILENET = Family("MobileNet", "tf")
MOBILENET_V2 = Family("MobileNetV2", "tf")
MOBILENET_V3 = Family("MobileNetV3", "built-in")
NASNET = Family("NASNet", "tf", imagenet_needs_default_size=True)
RESNET = Family("ResNet", "caffe")
RESNET_V2 = Family("ResNetV2", "tf")
VGG = Family("VGG", "caffe")
XCEPTION = Family("Xception", "tf")


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
        num_blocks: Blocks of the base, as `kerastl.runtime.find_blocks` groups them.
    """

    name: str
    module: str
    family: Family
    default_size: int
    min_size: int
    feature_dim: int
    params: int
    num_blocks: int

    @property
    def preprocess_module(self) -> str | None:
        """Module whose `preprocess_input` step 4 calls, or None if built in."""
        return None if self.family.preprocessing == "built-in" else self.module

    @property
    def preprocessing_rule(self) -> str:
        """What step 4 does, in words."""
        return PREPROCESSING_RULES[self.family.preprocessing]


# fmt: off
# name, module, family, default size, min size, feature dim, params, blocks
_TABLE: tuple[tuple[str, str, Family, int, int, int, int, int], ...] = (
    ("ConvNeXtTiny", "convnext", CONVNEXT, 224, 32, 768, 27_820_128, 18),
    ("ConvNeXtSmall", "convnext", CONVNEXT, 224, 32, 768, 49_454_688, 36),
    ("ConvNeXtBase", "convnext", CONVNEXT, 224, 32, 1024, 87_566_464, 36),
    ("ConvNeXtLarge", "convnext", CONVNEXT, 224, 32, 1536, 196_230_336, 36),
    ("ConvNeXtXLarge", "convnext", CONVNEXT, 224, 32, 2048, 348_147_968, 36),
    ("DenseNet121", "densenet", DENSENET, 224, 32, 1024, 7_037_504, 58),
    ("DenseNet169", "densenet", DENSENET, 224, 32, 1664, 12_642_880, 82),
    ("DenseNet201", "densenet", DENSENET, 224, 32, 1920, 18_321_984, 98),
    ("EfficientNetB0", "efficientnet", EFFICIENTNET, 224, 32, 1280, 4_049_571, 16),
    ("EfficientNetB1", "efficientnet", EFFICIENTNET, 240, 32, 1280, 6_575_239, 23),
    ("EfficientNetB2", "efficientnet", EFFICIENTNET, 260, 32, 1408, 7_768_569, 23),
    ("EfficientNetB3", "efficientnet", EFFICIENTNET, 300, 32, 1536, 10_783_535, 26),
    ("EfficientNetB4", "efficientnet", EFFICIENTNET, 380, 32, 1792, 17_673_823, 32),
    ("EfficientNetB5", "efficientnet", EFFICIENTNET, 456, 32, 2048, 28_513_527, 39),
    ("EfficientNetB6", "efficientnet", EFFICIENTNET, 528, 32, 2304, 40_960_143, 45),
    ("EfficientNetB7", "efficientnet", EFFICIENTNET, 600, 32, 2560, 64_097_687, 55),
    ("EfficientNetV2B0", "efficientnet_v2", EFFICIENTNET_V2, 224, 32, 1280, 5_919_312, 21),
    ("EfficientNetV2B1", "efficientnet_v2", EFFICIENTNET_V2, 240, 32, 1280, 6_931_124, 27),
    ("EfficientNetV2B2", "efficientnet_v2", EFFICIENTNET_V2, 260, 32, 1408, 8_769_374, 28),
    ("EfficientNetV2B3", "efficientnet_v2", EFFICIENTNET_V2, 300, 32, 1536, 12_930_622, 32),
    ("EfficientNetV2S", "efficientnet_v2", EFFICIENTNET_V2, 384, 32, 1280, 20_331_360, 40),
    ("EfficientNetV2M", "efficientnet_v2", EFFICIENTNET_V2, 480, 32, 1280, 53_150_388, 57),
    ("EfficientNetV2L", "efficientnet_v2", EFFICIENTNET_V2, 480, 32, 1280, 117_746_848, 79),
    ("InceptionResNetV2", "inception_resnet_v2", INCEPTION_RESNET, 299, 75, 1536, 54_336_736, 43),
    ("InceptionV3", "inception_v3", INCEPTION, 299, 75, 2048, 21_802_784, 11),
    ("MobileNet", "mobilenet", MOBILENET, 224, 32, 1024, 3_228_864, 13),
    ("MobileNetV2", "mobilenet_v2", MOBILENET_V2, 224, 32, 1280, 2_257_984, 16),
    ("MobileNetV3Small", "mobilenet_v3", MOBILENET_V3, 224, 32, 576, 939_120, 11),
    ("MobileNetV3Large", "mobilenet_v3", MOBILENET_V3, 224, 32, 960, 2_996_352, 15),
    ("NASNetMobile", "nasnet", NASNET, 224, 32, 1056, 4_269_716, 16),
    ("NASNetLarge", "nasnet", NASNET, 331, 32, 4032, 84_916_818, 22),
    ("ResNet50", "resnet", RESNET, 224, 32, 2048, 23_587_712, 16),
    ("ResNet101", "resnet", RESNET, 224, 32, 2048, 42_658_176, 33),
    ("ResNet152", "resnet", RESNET, 224, 32, 2048, 58_370_944, 50),
    ("ResNet50V2", "resnet_v2", RESNET_V2, 224, 32, 2048, 23_564_800, 16),
    ("ResNet101V2", "resnet_v2", RESNET_V2, 224, 32, 2048, 42_626_560, 33),
    ("ResNet152V2", "resnet_v2", RESNET_V2, 224, 32, 2048, 58_331_648, 50),
    ("VGG16", "vgg16", VGG, 224, 32, 512, 14_714_688, 5),
    ("VGG19", "vgg19", VGG, 224, 32, 512, 20_024_384, 5),
    ("Xception", "xception", XCEPTION, 299, 71, 2048, 20_861_480, 14),
)
# fmt: on

BACKBONES: dict[str, Backbone] = {row[0]: Backbone(*row) for row in _TABLE}


class UnknownBackboneError(KerastlError, ValueError):
    """Raised for a name that is not a `keras.applications` backbone."""


def _lookalike_key(text: str) -> str:
    return text.lower().translate(LOOKALIKES)


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


#: Characters a user types for one another: O for 0, l and I for 1.
LOOKALIKES = str.maketrans({"o": "0", "l": "1", "i": "1"})


def closest_names(
    word: str, names: tuple[str, ...], *, limit: int = 3, cutoff: float = 0.5
) -> list[str]:
    """The names closest to `word`, best first, case-insensitive.

    Look-alike characters count as equal (`LOOKALIKES`). Names that begin with
    `word` come first, then the more similar, then the plain spelling breaks
    ties; names tied with the last one shown are shown too. A name equal to
    `word` but for look-alikes is the only one shown.
    """
    key = _lookalike_key(word)

    def score(name: str) -> tuple[bool, float, float]:
        name_key = _lookalike_key(name)
        return (
            name_key.startswith(key),
            difflib.SequenceMatcher(None, key, name_key).ratio(),
            difflib.SequenceMatcher(None, word.lower(), name.lower()).ratio(),
        )

    scores = {name: score(name) for name in names}
    same = [name for name in names if _lookalike_key(name) == key]
    if same:
        return same
    ranked = sorted(
        (name for name in names if scores[name][1] >= cutoff),
        key=scores.__getitem__,
        reverse=True,
    )
    if len(ranked) <= limit:
        return ranked
    last_shown = scores[ranked[limit - 1]]
    return [name for name in ranked if scores[name] >= last_shown]
