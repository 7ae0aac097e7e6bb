"""The modes of a script, and how one option of `kerastl new` is typed and kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MODES = ("as-is", "feature-extraction", "fine-tune", "lora")
TRAINING_MODES = ("feature-extraction", "fine-tune", "lora")
UNFREEZE_MODES = ("fine-tune", "lora")  # lora: the blocks that take adapters


@dataclass(frozen=True)
class Option:
    """How one `Spec` field is typed on the command line and kept in the header.

    Attributes:
        flags: The option's names; the first is the one the regenerate command uses.
        metavar: The value's placeholder in `--help`, or None for a switch.
        help: The `--help` text.
        default: The value when the option is left out, as a user would type it.
        show_default: Whether `--help` prints `default`.
        multiple: Whether the option may be repeated.
        choices: The values shell completion offers, or None.
        modes: The modes whose regenerate command writes the option.
        last: Written after every other option in the regenerate command.
    """

    flags: tuple[str, ...]
    metavar: str | None
    help: str
    default: Any = None
    show_default: bool = False
    multiple: bool = False
    choices: tuple[str, ...] | None = None
    modes: tuple[str, ...] = MODES
    last: bool = False

    @property
    def is_flag(self) -> bool:
        """A switch: present or not, with no value."""
        return self.metavar is None

    def command_args(self, value: object) -> list[str]:
        """The arguments that give `value` (as in the header) on the command line."""
        if value is None or value is False:
            return []
        if value is True:
            return [self.flags[0]]
        values = value if isinstance(value, list) else [value]
        return [arg for item in values for arg in (self.flags[0], str(item))]
