"""Checks every generated script must pass: valid, black-stable, ruff-clean, eight steps."""

import ast
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import black

from kerastl.render import black_mode

BLACK_MODE = black_mode()
STEP_COMMENT = re.compile(r"^    # (\d)\. ", re.MULTILINE)


def assert_black_stable(text: str) -> None:
    assert black.format_str(text, mode=BLACK_MODE) == text, "not black-formatted"


def assert_steps_in_order(text: str) -> None:
    """Training scripts mark the eight documented steps, each once, in order."""
    assert [int(n) for n in STEP_COMMENT.findall(text)] == list(range(1, 9))


def ruff_check(files: dict[str, str]) -> None:
    """Runs `ruff check` with its default rules on the scripts, as a user's project would.

    The scripts are copied to a fresh folder so that no project configuration
    (and no local `kerastl` package) changes the verdict.
    """
    folder = Path(tempfile.mkdtemp(prefix="kerastl-ruff-"))
    try:
        for name, text in files.items():
            (folder / name).write_text(text)
        result = subprocess.run(
            [sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "."],
            cwd=folder,
            check=False,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def string_constants(text: str) -> list[str]:
    """Every string literal of the script (where user text may appear)."""
    return [
        node.value
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
