"""A KerasHub script's `--weights`: which preset, and its loading's failures
in one line."""

import argparse
import contextlib
import os
from collections.abc import Iterator

from . import files
from .errors import ScriptError, WeightsError


def preset_option(value: str) -> str | None:
    """An argparse `type` for a KerasHub `--weights`: a preset, or `none` (None).

    A preset is a name, a handle (`hf://...`, `kaggle://...`) or a folder; a
    value that names a path (it holds a slash) must be a folder that exists.
    """
    if value == "none":
        return None
    names_path = "://" not in value and ("/" in value or os.sep in value)
    if names_path and not files.is_dir(value):
        raise argparse.ArgumentTypeError(
            f"preset folder {value} does not exist (give a preset name, "
            "an hf:// or kaggle:// handle, a preset folder, or none)"
        )
    return value


@contextlib.contextmanager
def loading_preset(preset: str) -> Iterator[None]:
    """Turns the ways `from_preset` fails into one line naming the preset.

    Raises:
        WeightsError: If the preset cannot be downloaded or read.
        ScriptError: If it is not a preset of the backbone class asked for.
    """
    try:
        yield
    except (OSError, ValueError, KeyError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if isinstance(error, ValueError) and "Saved preset has type" in reason:
            raise ScriptError(f"--weights {preset}: {reason}") from None
        raise WeightsError(
            f"could not load the KerasHub preset {preset} ({reason or type(error).__name__}); "
            "pass a local preset folder, or --weights none"
        ) from None
