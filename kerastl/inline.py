"""`--standalone`: copy the runtime helpers a script uses into the script.

The helpers are read as source text from `kerastl/runtime/*.py` (never
imported, so the generator stays free of TensorFlow). Each top-level definition
a script reaches through `runtime.<name>` is copied with the definitions and
imports it needs; `runtime.<name>` becomes `<name>`.
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from kerastl import __version__
from kerastl.errors import KerastlError

RUNTIME_DIR = Path(__file__).parent / "runtime"
RUNTIME_IMPORT = "from kerastl import runtime"
RUNTIME_PACKAGE = "kerastl.runtime"
MAIN_GUARD = 'if __name__ == "__main__":'


class InlineError(KerastlError):
    """The runtime helpers cannot be inlined into a script."""


@dataclass
class _Definition:
    name: str
    source: str
    position: tuple[int, int]  # (module order, line): the order of output
    needs: set[str] = field(default_factory=set)  # names it refers to


@dataclass
class _Runtime:
    definitions: dict[str, _Definition]
    imports: dict[str, ast.Import | ast.ImportFrom]  # bound name -> its import


def inline_runtime(source: str) -> str:
    """Returns `source` with its `runtime.<name>` helpers defined in the file.

    The helpers go at the end, before the `__main__` guard, so the settings
    and the steps stay at the top; `from __future__ import annotations` lets
    the script's annotations name them before they are defined.

    Raises:
        InlineError: If the script does not import the runtime as expected, or
            a helper is unknown or clashes with a name of the script.
    """
    runtime = _read_runtime()
    if RUNTIME_IMPORT not in source.splitlines() or MAIN_GUARD not in source:
        raise InlineError(
            f"the script must contain {RUNTIME_IMPORT!r} and {MAIN_GUARD!r}"
        )
    used = sorted(set(_runtime_references(source)))
    unknown = sorted(set(used) - runtime.definitions.keys())
    if unknown:
        raise InlineError(f"kerastl.runtime has no top-level {', '.join(unknown)}")
    ordered = _with_dependencies(used, runtime)
    tree = ast.parse(source)
    clashes = sorted(_top_level_names(tree) & {item.name for item in ordered})
    if clashes:
        raise InlineError(
            f"script names clash with runtime helpers: {', '.join(clashes)}"
        )
    script_imports = [
        node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    needed = _needed_imports(ordered, runtime)
    block = _import_block([*script_imports, *needed, _FUTURE_ANNOTATIONS])
    lines = _strip_references(source).splitlines(keepends=True)
    first, last = script_imports[0].lineno, script_imports[-1].end_lineno or 0
    body = "".join([*lines[: first - 1], block, *lines[last:]])
    helpers = "\n\n\n".join(item.source for item in ordered)
    banner = f"# Helpers copied from kerastl.runtime {__version__} by `kerastl new --standalone`."
    head, guard, tail = body.rpartition(MAIN_GUARD)
    return f"{head.rstrip()}\n\n\n{banner}\n\n\n{helpers}\n\n\n{guard}{tail}"


_FUTURE_ANNOTATIONS = ast.parse("from __future__ import annotations").body[0]


def _import_block(nodes: list[ast.stmt]) -> str:
    """One import block in isort's order: future, standard library, third party."""
    plain: set[tuple[str, str]] = set()
    from_imports: dict[str, set[str]] = {}
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.module == "kerastl" and [a.name for a in node.names] == ["runtime"]:
                continue  # replaced by the inlined helpers
            from_imports.setdefault(node.module or "", set()).update(
                map(_alias, node.names)
            )
        elif isinstance(node, ast.Import):
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


def _read_runtime() -> _Runtime:
    definitions: dict[str, _Definition] = {}
    imports: dict[str, ast.Import | ast.ImportFrom] = {}
    for order, path in enumerate(sorted(RUNTIME_DIR.glob("*.py"))):
        if path.name == "__init__.py":
            continue
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    RUNTIME_PACKAGE
                ):
                    continue  # another runtime module: its definitions are inlined instead
                for name in _bound_names(node):
                    if name in imports and ast.dump(imports[name]) != ast.dump(node):
                        imports[name] = _merge_from_imports(imports[name], node, name)
                    else:
                        imports.setdefault(name, node)
                continue
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue  # the module docstring
            for name in _defined_names(node):
                if name in definitions:
                    raise InlineError(f"{name} is defined twice in kerastl.runtime")
                definitions[name] = _Definition(
                    name=name,
                    source=_segment(text, node),
                    position=(order, node.lineno),
                    needs=_loaded_names(node) - {name},
                )
    return _Runtime(definitions, imports)


def _loaded_names(node: ast.AST) -> set[str]:
    """Names a definition reads (not those it assigns, like class attributes)."""
    return {
        child.id
        for child in ast.walk(node)
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load)
    }


def _merge_from_imports(
    first: ast.Import | ast.ImportFrom, second: ast.Import | ast.ImportFrom, name: str
) -> ast.Import | ast.ImportFrom:
    same_source = (
        isinstance(first, ast.ImportFrom)
        and isinstance(second, ast.ImportFrom)
        and first.module == second.module
    )
    if not same_source:
        raise InlineError(f"{name} is imported differently by two runtime modules")
    return first


def _segment(text: str, node: ast.stmt) -> str:
    lines = text.splitlines()
    start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return "\n".join(lines[start - 1 : node.end_lineno])


def _defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    raise InlineError(
        f"unsupported top-level statement in kerastl.runtime: {ast.dump(node)[:60]}"
    )


def _bound_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    return [(alias.asname or alias.name).split(".")[0] for alias in node.names]


def _top_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _with_dependencies(names: list[str], runtime: _Runtime) -> list[_Definition]:
    """The definitions of `names` and all they need, each after its needs."""
    ordered: list[_Definition] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        definition = runtime.definitions[name]
        for need in sorted(definition.needs & runtime.definitions.keys()):
            visit(need)
        ordered.append(definition)

    for name in sorted(names, key=lambda n: runtime.definitions[n].position):
        visit(name)
    return ordered


def _needed_imports(ordered: list[_Definition], runtime: _Runtime) -> list[ast.stmt]:
    """The runtime's imports of the names the inlined definitions use, one name each."""
    names = sorted(
        {name for item in ordered for name in item.needs & runtime.imports.keys()}
    )
    statements: list[ast.stmt] = []
    for name in names:
        node = runtime.imports[name]
        aliases = [a for a in node.names if (a.asname or a.name).split(".")[0] == name]
        if isinstance(node, ast.ImportFrom):
            statements.append(
                ast.ImportFrom(module=node.module, names=aliases, level=0)
            )
        else:
            statements.append(ast.Import(names=aliases))
    return statements


def _alias(alias: ast.alias) -> str:
    return f"{alias.name} as {alias.asname}" if alias.asname else alias.name


def _runtime_references(source: str) -> list[str]:
    """Names `X` the script uses as `runtime.X`."""
    return [name for name, _, _ in _reference_positions(source)]


def _reference_positions(
    source: str,
) -> list[tuple[str, tuple[int, int], tuple[int, int]]]:
    tokens = [
        token
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type not in (tokenize.NL, tokenize.COMMENT)
    ]
    found = []
    for index, token in enumerate(tokens[:-2]):
        before = tokens[index - 1].string if index else ""
        if (
            token.type == tokenize.NAME
            and token.string == "runtime"
            and before != "."
            and tokens[index + 1].string == "."
            and tokens[index + 2].type == tokenize.NAME
        ):
            found.append(
                (tokens[index + 2].string, token.start, tokens[index + 2].start)
            )
    return found


def _strip_references(source: str) -> str:
    """Rewrites `runtime.X` as `X`."""
    lines = source.splitlines(keepends=True)
    for _, (row, column), (_, name_column) in reversed(_reference_positions(source)):
        line = lines[row - 1]
        lines[row - 1] = line[:column] + line[name_column:]
    return "".join(lines)
