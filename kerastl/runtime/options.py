"""Types for a script's command-line options: a bad value is a usage error."""

import argparse
from collections.abc import Callable
from pathlib import Path


def int_range(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse `type` for whole numbers from `minimum` to `maximum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = (
                f"from {minimum} to {maximum}" if maximum else f"at least {minimum}"
            )
            raise argparse.ArgumentTypeError(f"must be {bounds}, not {value}")
        return value

    parse.__name__ = "whole number"
    return parse


def positive_float(text: str) -> float:
    """An argparse `type` for a number above zero, such as a learning rate."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be above zero, not {text}")
    return value


def weights_option(value: str) -> str | None:
    """An argparse `type` for `--weights`: `imagenet`, `none` (None) or a file."""
    if value in ("imagenet", "none"):
        return None if value == "none" else value
    if not Path(value).is_file():
        raise argparse.ArgumentTypeError(
            f"weights file {value} does not exist (give imagenet, none or a file)"
        )
    return value
