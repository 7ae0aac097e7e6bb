"""`inline_runtime` on small fake runtimes: what it copies, and what it refuses."""

import textwrap
from pathlib import Path

import pytest

from kerastl.inline import InlineError, inline_runtime
from kerastl.render import format_python
from tests.quality import ruff_check

ERRORS = '''\
"""Errors of a script."""


class ScriptError(Exception):
    """Shown as one line."""
'''

DATA = '''\
"""Read data.

More about data.
"""

import json

from kerastl.runtime.errors import ScriptError

LIMIT = 3


def unused() -> None:
    """Not needed by the script."""


# Why load checks the limit.
# A second line of it.
def load(path: str) -> dict:
    """Loads a file."""
    if len(path) > LIMIT:
        raise ScriptError(path)
    return json.loads(path)
'''


def make_runtime(folder: Path, **modules: str) -> Path:
    """A fake runtime package in `folder`; `__init__.py` must never be copied."""
    folder.mkdir(exist_ok=True)
    (folder / "__init__.py").write_text("import this_is_never_copied\n")
    for name, text in modules.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(text))
    return folder


def script(*calls: str, imports: str = "import argparse\n", extra: str = "") -> str:
    body = "".join(f"    runtime.{call}\n" for call in calls) or "    pass\n"
    return (
        f'"""A script."""\n\n{imports}\nfrom kerastl import runtime\n\n{extra}'
        f"\ndef main(args: argparse.Namespace | None = None) -> None:\n{body}"
        '\n\nif __name__ == "__main__":\n    main()\n'
    )


def inline_error(source: str, runtime_dir: Path) -> str:
    with pytest.raises(InlineError) as caught:
        inline_runtime(source, runtime_dir)
    message = str(caught.value)
    assert message and "\n" not in message
    return message


def test_copies_what_the_script_needs_grouped_by_module(tmp_path: Path) -> None:
    runtime_dir = make_runtime(tmp_path / "rt", data=DATA, errors=ERRORS)
    text = format_python(inline_runtime(script('load("x")'), runtime_dir))
    helpers = text[text.index("# Helpers copied from kerastl.runtime") :]
    assert helpers.index("# --- kerastl.runtime.errors: Errors of a script ---") < (
        helpers.index("class ScriptError")
    )
    assert helpers.index("class ScriptError") < helpers.index(
        "# --- kerastl.runtime.data: Read data ---"
    )
    assert helpers.index("LIMIT = 3") < helpers.index("# Why load checks the limit.")
    assert "# A second line of it.\ndef load(path: str) -> dict:" in helpers
    assert "def unused" not in text and "this_is_never_copied" not in text
    assert '    load("x")\n' in text and "runtime." not in text.replace(
        "kerastl.runtime", ""
    )
    assert text.index(
        "from __future__ import annotations\n\nimport argparse\nimport json\n"
    )
    assert text.index("# Helpers copied") < text.index('if __name__ == "__main__":')
    ruff_check({"standalone.py": text})


def test_modules_follow_the_modules_they_import_ties_alphabetical(
    tmp_path: Path,
) -> None:
    runtime_dir = make_runtime(
        tmp_path / "rt",
        errors=ERRORS,
        data=DATA,
        alpha='"""Alpha."""\n\n\ndef first() -> int:\n    return 1\n',
    )
    text = inline_runtime(script('load("x")', "first()"), runtime_dir)
    banners = [line for line in text.splitlines() if line.startswith("# --- ")]
    assert [banner.split(":")[0] for banner in banners] == [
        "# --- kerastl.runtime.alpha",
        "# --- kerastl.runtime.errors",
        "# --- kerastl.runtime.data",
    ]


def test_a_name_two_modules_define_is_fine_when_one_is_needed(tmp_path: Path) -> None:
    helper = '"""{0}."""\n\n\ndef _helper() -> int:\n    return 1\n\n\ndef {0}() -> int:\n    return _helper()\n'
    runtime_dir = make_runtime(
        tmp_path / "rt", a=helper.format("a"), b=helper.format("b")
    )
    assert "def a() -> int:" in inline_runtime(script("a()"), runtime_dir)
    message = inline_error(script("a()", "b()"), runtime_dir)
    assert "_helper" in message and "kerastl.runtime.a" in message


def test_a_statement_among_the_script_imports_is_refused(tmp_path: Path) -> None:
    runtime_dir = make_runtime(tmp_path / "rt", errors=ERRORS)
    source = script(imports="import argparse\n\nDEBUG = True\n\nimport json\n")
    assert "script line 5" in inline_error(source, runtime_dir)


def test_a_comment_among_the_script_imports_is_refused(tmp_path: Path) -> None:
    runtime_dir = make_runtime(tmp_path / "rt", errors=ERRORS)
    source = script(imports="import argparse  # for main\nimport json\n")
    assert "comment" in inline_error(source, runtime_dir)


@pytest.mark.parametrize(
    "statement", ["print('hello')", "if True:\n    X = 1", "A, B = 1, 2"]
)
def test_an_unexpected_runtime_statement_is_refused(
    tmp_path: Path, statement: str
) -> None:
    module = f'"""Odd."""\n\n{statement}\n\n\ndef f() -> None:\n    pass\n'
    runtime_dir = make_runtime(tmp_path / "rt", odd=module)
    assert "kerastl.runtime.odd line 3" in inline_error(script("f()"), runtime_dir)


def test_a_runtime_comment_that_would_be_lost_is_refused(tmp_path: Path) -> None:
    module = '"""M."""\n\nimport json  # needed below\n\n\ndef f() -> None:\n    json.dumps(1)\n'
    runtime_dir = make_runtime(tmp_path / "rt", m=module)
    assert "kerastl.runtime.m line 3" in inline_error(script("f()"), runtime_dir)


def test_a_star_import_of_a_runtime_module_is_refused(tmp_path: Path) -> None:
    module = '"""M."""\n\nfrom kerastl.runtime.errors import *\n\n\ndef f() -> None:\n    pass\n'
    runtime_dir = make_runtime(tmp_path / "rt", errors=ERRORS, m=module)
    assert "cannot inline `from kerastl.runtime.errors import *`" in inline_error(
        script("f()"), runtime_dir
    )


def test_a_runtime_import_a_standalone_script_lacks_is_refused(tmp_path: Path) -> None:
    module = (
        '"""M."""\n\nimport requests\n\n\ndef f() -> None:\n    requests.get("x")\n'
    )
    runtime_dir = make_runtime(tmp_path / "rt", m=module)
    message = inline_error(script("f()"), runtime_dir)
    assert "kerastl.runtime.m imports requests" in message


def test_a_script_name_that_clashes_with_a_helper_is_refused(tmp_path: Path) -> None:
    runtime_dir = make_runtime(tmp_path / "rt", data=DATA, errors=ERRORS)
    source = script('load("x")', extra="LIMIT = 10\n\n")
    assert "LIMIT" in inline_error(source, runtime_dir)


def test_an_unknown_helper_is_refused(tmp_path: Path) -> None:
    runtime_dir = make_runtime(tmp_path / "rt", errors=ERRORS)
    assert "no top-level missing" in inline_error(script("missing()"), runtime_dir)


def test_the_runtime_used_other_than_as_runtime_dot_name_is_refused(
    tmp_path: Path,
) -> None:
    runtime_dir = make_runtime(tmp_path / "rt", errors=ERRORS)
    source = script(extra="HELPERS = runtime\n\n")
    assert "runtime.<name>" in inline_error(source, runtime_dir)
