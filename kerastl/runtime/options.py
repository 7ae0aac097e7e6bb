"""Readers of a script's option values beyond a type and bounds (`setting(parse=...)`)."""

import argparse

from . import files


def weights_option(value: str) -> str | None:
    """An argparse `type` for `--weights`: `imagenet`, `none` (None) or a file."""
    if value in ("imagenet", "none"):
        return None if value == "none" else value
    if not files.is_file(value):
        raise argparse.ArgumentTypeError(
            f"weights file {value} does not exist (give imagenet, none or a file)"
        )
    return value
