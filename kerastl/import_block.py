"""Merge import statements into one block in isort's order."""

from __future__ import annotations

import ast
import sys


def import_block(nodes: list[ast.Import | ast.ImportFrom]) -> str:
    """One import block: `__future__`, then the standard library, then the rest.

    Within a section, `import x` lines come before `from x import y` lines;
    each kind is sorted by module, and the names of a `from` import by isort's
    type order. Duplicates merge.
    """
    plain: set[tuple[str, str]] = set()
    from_imports: dict[str, set[str]] = {}
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            from_imports.setdefault(node.module or "", set()).update(
                map(_alias, node.names)
            )
        else:
            plain.update((alias.name, _alias(alias)) for alias in node.names)
    sections: dict[int, list[str]] = {}
    for module, text in sorted(plain, key=lambda item: (item[0].lower(), item[1])):
        sections.setdefault(_section(module), []).append(f"import {text}")
    for module, names in sorted(from_imports.items(), key=lambda item: item[0].lower()):
        joined = ", ".join(sorted(names, key=_name_order))
        sections.setdefault(_section(module), []).append(
            f"from {module} import {joined}"
        )
    return "\n\n".join("\n".join(sections[key]) for key in sorted(sections)) + "\n"


def _section(module: str) -> int:
    top = module.split(".")[0]
    if top == "__future__":
        return 0
    return 1 if top in sys.stdlib_module_names else 2


def _name_order(name: str) -> tuple[int, str]:
    """isort's order by type: CONSTANTS, then Classes, then everything else."""
    if name.isupper() and len(name) > 1:
        return 0, name
    return (1 if name[:1].isupper() else 2), name.lower()


def _alias(alias: ast.alias) -> str:
    return f"{alias.name} as {alias.asname}" if alias.asname else alias.name
