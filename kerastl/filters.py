"""The Jinja filters: the only ways values enter generated code.

* `pyrepr` writes a value as a Python literal (user text goes through it).
* `pyident` writes a name as a Python identifier, after validating it.
"""

import ast
import keyword

from kerastl.errors import KerastlError

LITERAL_TYPES = (str, int, float, bool, type(None), list, tuple, dict)


class UnsafeValueError(KerastlError, ValueError):
    """A value that cannot be written into generated code safely."""


def pyrepr(value: object) -> str:
    """Returns `value` as a Python literal, checked by `ast.literal_eval`.

    Raises:
        UnsafeValueError: If `value` is not made of literal types, or its
            `repr` does not read back as the same value.
    """
    _check_literal(value)
    text = _double_quoted(repr(value)) if isinstance(value, str) else repr(value)
    try:
        same = ast.literal_eval(text) == value
    except (ValueError, SyntaxError):
        same = False
    if not same or "\n" in text:
        raise UnsafeValueError(
            f"cannot write {type(value).__name__} {text[:60]} as a literal"
        )
    return text


def _double_quoted(text: str) -> str:
    """`repr`'s `'text'` as `"text"`, black's quotes, where nothing else changes."""
    if text.startswith("'") and '"' not in text:
        return '"' + text[1:-1] + '"'
    return text


def pyident(value: object) -> str:
    """Returns `value` if it is a (dotted) Python identifier, else raises.

    Raises:
        UnsafeValueError: If a part is not an identifier or is a keyword.
    """
    if not isinstance(value, str) or not all(
        part.isidentifier() and not keyword.iskeyword(part) for part in value.split(".")
    ):
        raise UnsafeValueError(f"{value!r} is not a Python identifier")
    return value


def _check_literal(value: object) -> None:
    if not isinstance(value, LITERAL_TYPES):
        raise UnsafeValueError(f"{type(value).__name__} is not a literal type")
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_literal(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_literal(key)
            _check_literal(item)


FILTERS = {"pyrepr": pyrepr, "pyident": pyident}
