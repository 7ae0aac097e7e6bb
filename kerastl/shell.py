"""Quoting for POSIX shells: the one-line commands in a script's header."""

from __future__ import annotations

import shlex


def shell_quote(arg: str) -> str:
    """Quotes `arg` for a POSIX shell, always on one printable line.

    An argument with unprintable characters (a newline) uses bash's `$'...'`
    quoting, so a header comment can hold any argument.
    """
    if arg.isprintable():
        return shlex.quote(arg)
    escaped = "".join(_ansi_c_escape(char) for char in arg)
    return f"$'{escaped}'"


def shell_join(args: list[str]) -> str:
    """Quotes each argument and joins them into one command line."""
    return " ".join(shell_quote(arg) for arg in args)


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
