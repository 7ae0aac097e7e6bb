"""The validated settings of one generated script: what the templates receive."""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass

from kerastl import __version__, backbones
from kerastl.backbones import Backbone
from kerastl.errors import KerastlError

MODES = ("as-is", "feature-extraction", "fine-tune")
WEIGHTS = ("imagenet", "none")
MAX_IMAGE_SIZE = 2048
MAX_CLASSES = 100_000

Unfreeze = int | str  # top blocks, "all", or the first layer to unfreeze


class SpecError(KerastlError, ValueError):
    """A setting that cannot produce a valid script; the message is one line."""


@dataclass(frozen=True)
class Spec:
    """Everything that decides the content of one generated script.

    Rendering is a pure function of a `Spec` and the templates.

    Attributes:
        mode: One of `MODES`.
        backbone: The registry entry of the backbone.
        image_size: Input height and width in pixels.
        num_classes: Number of classes, or None to count them in the data.
        weights: The script's default `--weights`: `"imagenet"` or `"none"`.
        unfreeze: Fine-tuning stages, in order (fine-tune mode only).
        data_dir: The script's default data folder (or images, as-is), if any.
        output: The output path as given, recorded in the header.
        standalone: Inline the runtime helpers so the script needs only Keras.
    """

    mode: str
    backbone: Backbone
    image_size: int
    num_classes: int | None
    weights: str
    unfreeze: tuple[Unfreeze, ...]
    data_dir: str | None
    output: str
    standalone: bool

    @property
    def template_name(self) -> str:
        """The template that renders this mode."""
        return self.mode.replace("-", "_") + ".py.jinja"

    @property
    def slug(self) -> str:
        """A short name for files and folders: `efficientnetv2b0_fine_tune`."""
        return f"{self.backbone.name.lower()}_{self.mode.replace('-', '_')}"

    def options(self) -> dict[str, object]:
        """The full resolved options, recorded as data in the script's header."""
        return {
            "kerastl": __version__,
            "mode": self.mode,
            "backbone": self.backbone.name,
            "image_size": self.image_size,
            "num_classes": self.num_classes,
            "weights": self.weights,
            "unfreeze": list(self.unfreeze),
            "data_dir": self.data_dir,
            "output": self.output,
            "standalone": self.standalone,
        }

    def command(self) -> str:
        """The `kerastl new` command that regenerates this script, on one line."""
        args = ["kerastl", "new", "--mode", self.mode, "--backbone", self.backbone.name]
        if self.mode != "as-is":
            args += ["--image-size", str(self.image_size)]
        if self.num_classes is not None:
            args += ["--num-classes", str(self.num_classes)]
        args += ["--weights", self.weights]
        for stage in self.unfreeze:
            args += ["--unfreeze", str(stage)]
        if self.data_dir is not None:
            args += ["--data-dir", self.data_dir]
        if self.standalone:
            args.append("--standalone")
        args += ["-o", self.output]
        return " ".join(shell_quote(arg) for arg in args)

    def run_command(self) -> str:
        """How to run the script, on one line."""
        args = ["python", self.output]
        if self.data_dir is None:
            args += _placeholder(self.mode)
        return " ".join(shell_quote(arg) for arg in args)


def _placeholder(mode: str) -> list[str]:
    return ["--images", "IMAGES"] if mode == "as-is" else ["--data-dir", "DATA_DIR"]


def default_output(mode: str, backbone_name: str) -> str:
    """The default file name: `train_<backbone>_<mode>.py`, `predict_<backbone>.py`."""
    name = backbone_name.lower()
    if mode == "as-is":
        return f"predict_{name}.py"
    return f"train_{name}_{mode.replace('-', '_')}.py"


def make_spec(
    *,
    mode: str = "fine-tune",
    backbone: str = "EfficientNetV2B0",
    image_size: int | str | None = None,
    num_classes: int | str | None = None,
    weights: str = "imagenet",
    unfreeze: tuple[str | int, ...] = (),
    data_dir: str | None = None,
    output: str | None = None,
    standalone: bool = False,
) -> Spec:
    """Validates raw options (as typed by a user) into a `Spec`.

    Raises:
        SpecError: On the first invalid option, naming it and the valid choices.
    """
    mode = _choice("--mode", mode, MODES)
    try:
        entry = backbones.get(backbone)
    except backbones.UnknownBackboneError as error:
        raise SpecError(str(error)) from None
    weights = _choice("--weights", weights, WEIGHTS)
    size = _integer("--image-size", image_size) if image_size is not None else None
    classes = (
        _integer("--num-classes", num_classes) if num_classes is not None else None
    )

    if mode == "as-is":
        if size is not None and size != entry.default_size:
            raise SpecError(
                f"--image-size: as-is uses the ImageNet classifier of {entry.name}, "
                f"which takes {entry.default_size} px; leave --image-size out"
            )
        if classes is not None:
            raise SpecError("--num-classes: as-is predicts the 1000 ImageNet classes")
        if unfreeze:
            raise SpecError("--unfreeze applies to --mode fine-tune only")
    elif mode == "feature-extraction" and unfreeze:
        raise SpecError("--unfreeze applies to --mode fine-tune only")
    size = entry.default_size if size is None else size
    if not entry.min_size <= size <= MAX_IMAGE_SIZE:
        raise SpecError(
            f"--image-size {size}: {entry.name} takes {entry.min_size} to {MAX_IMAGE_SIZE} px"
        )
    if (
        entry.family.imagenet_needs_default_size
        and weights == "imagenet"
        and size != entry.default_size
    ):
        raise SpecError(
            f"--image-size {size}: the ImageNet weights of {entry.name} need "
            f"{entry.default_size} px; use --image-size {entry.default_size} or --weights none"
        )
    if classes is not None and not 2 <= classes <= MAX_CLASSES:
        raise SpecError(
            f"--num-classes {classes}: a classifier needs 2 to {MAX_CLASSES} classes"
        )
    stages = _unfreeze_stages(unfreeze, entry) if mode == "fine-tune" else ()
    if data_dir is not None and not data_dir.strip():
        raise SpecError("--data-dir: the path is empty")
    return Spec(
        mode=mode,
        backbone=entry,
        image_size=size,
        num_classes=classes,
        weights=weights,
        unfreeze=stages,
        data_dir=data_dir,
        output=output if output is not None else default_output(mode, entry.name),
        standalone=standalone,
    )


def default_unfreeze(backbone: Backbone) -> int:
    """Default fine-tuning stage: the top quarter of the blocks, at least one."""
    return max(1, round(backbone.num_blocks / 4))


def _unfreeze_stages(
    values: tuple[str | int, ...], backbone: Backbone
) -> tuple[Unfreeze, ...]:
    if not values:
        return (default_unfreeze(backbone),)
    stages: list[Unfreeze] = []
    for raw in values:
        value = str(raw).strip()
        if re.fullmatch(r"[+-]?\d+", value):
            blocks = int(value)
            if not 1 <= blocks <= backbone.num_blocks:
                raise SpecError(
                    f"--unfreeze {blocks}: {backbone.name} has {backbone.num_blocks} blocks; "
                    f"give 1 to {backbone.num_blocks}, 'all' or a layer name"
                )
            stages.append(blocks)
        elif value.lower() == "all":
            stages.append("all")
        elif value:
            stages.append(str(raw))  # a layer name, kept exactly
        else:
            raise SpecError(
                "--unfreeze: empty value; give a number of blocks, 'all' or a layer name"
            )
    counts = [stage for stage in stages if isinstance(stage, int)]
    if counts != sorted(set(counts)) or ("all" in stages and stages[-1] != "all"):
        raise SpecError(
            f"--unfreeze {' '.join(map(str, stages))}: each stage must unfreeze more than "
            "the last (increasing block counts, 'all' last)"
        )
    if len(set(map(str, stages))) != len(stages):
        raise SpecError(f"--unfreeze {' '.join(map(str, stages))}: a stage is repeated")
    return tuple(stages)


def _choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    normalized = value.strip().lower().replace("_", "-")
    if normalized in choices:
        return normalized
    close = difflib.get_close_matches(normalized, choices, n=2, cutoff=0.4)
    hint = (
        f"did you mean {' or '.join(close)}?"
        if close
        else f"choose from {', '.join(choices)}"
    )
    raise SpecError(f"{option} {value!r}: {hint}")


def _integer(option: str, value: int | str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise SpecError(f"{option} {value!r}: not a whole number")
    return int(text)


def shell_quote(arg: str) -> str:
    """Quotes `arg` for a POSIX shell, always on one printable line.

    An argument with unprintable characters (a newline) uses bash's `$'...'`
    quoting, so a header comment can hold any argument.
    """
    if arg.isprintable():
        return shlex.quote(arg)
    escaped = "".join(_ansi_c_escape(char) for char in arg)
    return f"$'{escaped}'"


def _ansi_c_escape(char: str) -> str:
    if char in "\\'":
        return "\\" + char
    if char.isprintable():
        return char
    code = ord(char)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    )
