"""Quieting a library's logger for the length of a block."""

import contextlib
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_logger(
    name: str, *, below: int | None = None, containing: str | None = None
) -> Iterator[None]:
    """Hides records of logger `name` that the user cannot act on, in the block.

    Args:
        name: The logger, e.g. `"tensorflow"`.
        below: Hide its records (and its child loggers') below this level.
        containing: Hide its records whose message holds this text.
    """
    logger = logging.getLogger(name)
    level = logger.level

    def keep(record: logging.LogRecord) -> bool:
        return containing is None or containing not in record.getMessage()

    if below is not None:
        logger.setLevel(below)
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)
        if below is not None:
            logger.setLevel(level)
