"""The runtime's public API (`__all__`): what the templates call and the docs show."""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INIT = REPO / "kerastl" / "runtime" / "__init__.py"


def public_names() -> list[str]:
    """`__all__` of `kerastl/runtime/__init__.py`, read without importing it."""
    for node in ast.parse(INIT.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__"
            for target in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise AssertionError("kerastl/runtime/__init__.py has no __all__")


def template_names() -> set[str]:
    """Every `runtime.NAME` the templates call."""
    return {
        name
        for template in (REPO / "templates").glob("*.jinja")
        for name in re.findall(r"\bruntime\.(\w+)", template.read_text("utf-8"))
    }


def documented_names() -> set[str]:
    """Every name in the code of the README and of docs/ (spans and blocks)."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]
    names: set[str] = set()
    for page in pages:
        if not page.is_file():
            continue
        text = page.read_text(encoding="utf-8")
        for code in re.findall(r"```.*?```|`[^`\n]+`", text, flags=re.DOTALL):
            names.update(re.findall(r"\b[A-Za-z_]\w*\b", code))
    return names


def imported_names() -> set[str]:
    """The names `kerastl/runtime/__init__.py` imports from its modules."""
    return {
        alias.asname or alias.name
        for node in ast.parse(INIT.read_text(encoding="utf-8")).body
        if isinstance(node, ast.ImportFrom) and node.level == 1
        for alias in node.names
    }


def test_every_name_the_templates_call_is_public() -> None:
    missing = sorted(template_names() - set(public_names()))
    assert not missing, f"templates call runtime names not in __all__: {missing}"


def test_every_public_name_is_called_by_a_template_or_documented() -> None:
    used = template_names() | documented_names()
    unused = sorted(set(public_names()) - used)
    assert not unused, f"in __all__ but neither in a template nor in docs: {unused}"


def test_the_package_exports_exactly_its_public_names() -> None:
    names = public_names()
    assert len(set(names)) == len(names)
    private = (
        imported_names()
        - set(names)
        - {"quiet_start", "unmet_requirement", "import_keras_hub_if_used"}
    )  # used at import
    assert not private, f"imported into kerastl.runtime but not public: {private}"
