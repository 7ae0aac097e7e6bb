"""Render a `Spec` into a formatted script: templates, Jinja, black.

Rendering is a pure function of the spec and the templates; the same spec gives
the same bytes.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from kerastl import __version__
from kerastl.errors import KerastlError
from kerastl.filters import FILTERS
from kerastl.spec import Spec

if TYPE_CHECKING:
    import black

PACKAGED_TEMPLATES = Path(__file__).parent / "templates"  # inside an installed wheel
SOURCE_TEMPLATES = Path(__file__).parent.parent / "templates"  # in a source checkout
PYTHON_TARGET = "py310"
LINE_LENGTH = 88


class RenderError(KerastlError):
    """The templates did not produce a valid, stable script."""


def template_dir() -> Path:
    """The templates of this installation: the wheel's copy, else the checkout's."""
    for candidate in (PACKAGED_TEMPLATES, SOURCE_TEMPLATES):
        if (candidate / "_steps.py.jinja").is_file():
            return candidate
    raise RenderError(
        f"kerastl's templates are missing (looked in {PACKAGED_TEMPLATES})"
    )


class _CompiledTemplates(jinja2.FileSystemBytecodeCache):
    """The compiled templates, kept between runs as Python keeps `.pyc` files.

    Compiling the templates is a fifth of `kerastl new`. Jinja keys each file by
    the template's source, so an edited template compiles again; the folder is
    Jinja's own (`_jinja2-cache-UID` in the temporary folder, private to the
    user), and one that cannot be written only means compiling each time.
    """

    def __init__(self) -> None:
        super().__init__(pattern="__kerastl_%s.cache")

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _compiled_templates() -> jinja2.BytecodeCache | None:
    try:
        return _CompiledTemplates()
    except (OSError, RuntimeError):  # no private temporary folder: compile each time
        return None


@functools.cache
def environment() -> jinja2.Environment:
    """The Jinja environment: strict about undefined names, no HTML escaping."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        bytecode_cache=_compiled_templates(),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


def render(spec: Spec) -> str:
    """Returns the black-formatted script for `spec`.

    Raises:
        RenderError: If the output is not valid Python or not stable under black.
    """
    return format_python(script_source(spec))


def script_source(spec: Spec) -> str:
    """The script for `spec` as the templates write it, before black formats
    it (black keeps its syntax tree: it checks that it does)."""
    template = environment().get_template(spec.template_name)
    return template.render(
        spec=spec,
        backbone=spec.backbone,
        family=spec.backbone.family,
        task=spec.task_facts,
        version=__version__,
    )


def format_python(source: str) -> str:
    """Compiles `source` and formats it with black's fixed mode.

    That black leaves its own output unchanged is checked by the tests, for
    every backbone and mode, rather than by a second pass in every render.
    """
    import black  # imported here: `kerastl list` and `info` do not need it

    _compile(source)
    formatted = black.format_str(source, mode=black_mode())
    _compile(formatted)
    return formatted


def black_mode() -> black.Mode:
    """The fixed black mode of generated scripts."""
    import black

    return black.Mode(
        target_versions={black.TargetVersion[PYTHON_TARGET.upper()]},
        line_length=LINE_LENGTH,
    )


def _compile(source: str) -> None:
    try:
        compile(source, "<kerastl script>", "exec", dont_inherit=True)
    except SyntaxError as error:
        raise RenderError(
            f"the templates produced invalid Python (line {error.lineno}: {error.msg})"
        ) from None
