"""Quiet output: TensorFlow's start-up lines, progress bars off a terminal,
and the log records of a library that a user cannot act on."""

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

#: Set by a user who wants TensorFlow's C++ log lines: then none is hidden.
TF_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"


@contextlib.contextmanager
def quiet_start() -> Iterator[None]:
    """Hides what TensorFlow's C++ side prints while it loads.

    On a machine without a GPU, a CUDA build of TensorFlow prints lines such
    as "Could not find cuda drivers" (before its own log level is read) and
    "failed call to cuInit" (when it first looks for GPUs). Around the block
    that imports TensorFlow and looks for GPUs, this sends the process's
    standard error to a temporary file, printed after all if the block fails
    (not when Ctrl-C stops it), and it sets `TF_CPP_MIN_LOG_LEVEL=2` for the
    run: TensorFlow's C++ errors show, its information and warnings do not.
    A user who sets `TF_CPP_MIN_LOG_LEVEL` (`0` shows everything) sees what
    that lets through.
    """
    if TF_LOG_LEVEL in os.environ or "tensorflow" in sys.modules:
        yield
        return
    os.environ[TF_LOG_LEVEL] = "2"
    captured = _Captured()
    try:
        with _standard_error_captured(captured):
            yield
    except KeyboardInterrupt:  # Ctrl-C: the user asked for no more output
        raise
    except BaseException:
        sys.stderr.write(captured.text)
        raise


def progress_verbosity() -> str | int:
    """`fit()`'s `verbose`: a progress bar on a terminal, else a line an epoch."""
    return "auto" if sys.stdout.isatty() else 2


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


@contextlib.contextmanager
def stderr_without(
    *hidden: str, dropped_on: tuple[type[BaseException], ...] = ()
) -> Iterator[None]:
    """Hides the lines of the process's standard error that hold one of `hidden`.

    For what a C++ library prints straight to file descriptor 2, past Python
    and past `TF_CPP_MIN_LOG_LEVEL` (TensorFlow Lite's "INFO: Created
    TensorFlow Lite XNNPACK delegate for CPU."): in the block, descriptor 2
    goes to a temporary file; when the block ends, error or not, every other
    line is written to standard error. None is when the block raises one of
    `dropped_on`, errors that say in a line what the output said in pages.
    """
    captured = _Captured()
    try:
        with _standard_error_captured(captured):
            yield
    except dropped_on:
        captured.text = ""
        raise
    finally:
        lines = captured.text.splitlines(keepends=True)
        kept = [line for line in lines if not any(text in line for text in hidden)]
        if kept:
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


class _Captured:
    """What a block wrote to file descriptor 2, once the block has ended."""

    text = ""


@contextlib.contextmanager
def _standard_error_captured(captured: _Captured) -> Iterator[None]:
    """Sends file descriptor 2 (C++ libraries write there, past Python) to a
    temporary file in the block; restores it, error or not, and keeps its
    text in `captured`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as file:
        os.dup2(file.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            file.seek(0)
            captured.text = file.read().decode(errors="replace")
