"""The runtime modules as source text: their definitions, and what each one needs.

`kerastl/runtime/*.py` is parsed with `ast`, never imported, so the generator
stays free of TensorFlow. Anything a copy could not carry (a statement that is
not a definition or an import, a comment among the imports) is an
`InlineError`, never silently dropped.
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

from kerastl.errors import KerastlError

RUNTIME_PACKAGE = "kerastl.runtime"
STANDALONE_PACKAGES = ("keras", "numpy", "tensorflow")  # besides the standard library
Import = ast.Import | ast.ImportFrom


class InlineError(KerastlError):
    """The runtime helpers cannot be inlined into a script."""


@dataclass(frozen=True)
class Definition:
    """One top-level function, class or assignment of a runtime module."""

    module: str  # its module, e.g. "kerastl.runtime.data"
    name: str
    source: str  # the module's own lines, with the comments just above
    needs: frozenset[str]  # the names it reads


@dataclass(frozen=True)
class RuntimeModule:
    """A runtime module: its definitions in source order, and its imports."""

    name: str
    description: str  # the first line of its docstring
    definitions: dict[str, Definition]
    imports: dict[str, Import]  # bound name -> the import of that name alone


def read_runtime(runtime_dir: Path) -> dict[str, RuntimeModule]:
    """The modules of `runtime_dir` but `__init__.py`, by dotted name."""
    modules = [
        read_module(path.stem, path.read_text(encoding="utf-8"))
        for path in sorted(runtime_dir.glob("*.py"))
        if path.name != "__init__.py"
    ]
    return {module.name: module for module in modules}


def read_module(stem: str, text: str) -> RuntimeModule:
    """Parses the runtime module `kerastl.runtime.<stem>` from its source text.

    Raises:
        InlineError: If a top-level statement or comment could not be copied.
    """
    name = f"{RUNTIME_PACKAGE}.{stem}"
    lines = text.splitlines()
    comments = comment_lines(text)
    definitions: dict[str, Definition] = {}
    imports: dict[str, Import] = {}
    previous_end = 0
    tree = ast.parse(text)
    for node in tree.body:
        end = node.end_lineno or node.lineno
        own_comments = [line for line in comments if previous_end < line <= end]
        defined = _defined_name(node)
        if defined in definitions:
            raise InlineError(f"{name} defines {defined} twice")
        if defined is not None:
            decorators = getattr(node, "decorator_list", [])
            start = min([node.lineno, *own_comments, *(d.lineno for d in decorators)])
            definitions[defined] = Definition(
                module=name,
                name=defined,
                source="\n".join(lines[start - 1 : end]),
                needs=frozenset(_loaded_names(node)),
            )
        elif own_comments:
            raise InlineError(
                f"{name} line {own_comments[0]}: a comment not above a definition "
                "would be lost"
            )
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.update(_checked_imports(name, node))
        elif node is not tree.body[0] or ast.get_docstring(tree) is None:
            raise InlineError(
                f"{name} line {node.lineno}: cannot inline a top-level "
                f"{type(node).__name__} statement"
            )
        previous_end = end
    if any(line > previous_end for line in comments):
        raise InlineError(f"{name}: a comment after the last definition is lost")
    description = (ast.get_docstring(tree) or "").split("\n")[0].rstrip(".")
    return RuntimeModule(name, description, definitions, imports)


def needed_definitions(
    modules: dict[str, RuntimeModule], names: list[str]
) -> list[Definition]:
    """The definitions of the script's `runtime.<name>`s and all they need.

    Raises:
        InlineError: If a name is unknown or ambiguous, or the definitions
            needed include two of the same name.
    """
    needed: dict[tuple[str, str], Definition] = {}
    pending = [_public_definition(modules, name) for name in names]
    while pending:
        definition = pending.pop()
        if (definition.module, definition.name) not in needed:
            needed[definition.module, definition.name] = definition
            module = modules[definition.module]
            pending += [
                found
                for need in definition.needs
                if (found := _resolve(modules, module, need)) is not None
            ]
    by_name: dict[str, list[str]] = {}
    for owner, name in sorted(needed):
        by_name.setdefault(name, []).append(owner)
    for name, owners in by_name.items():
        if len(owners) > 1:
            raise InlineError(f"the script needs {name} of both {' and '.join(owners)}")
    return list(needed.values())


def needed_imports(
    modules: dict[str, RuntimeModule], definitions: list[Definition]
) -> list[Import]:
    """The imports of the names `definitions` read, one name per statement.

    Raises:
        InlineError: If one is outside the standard library and
            `STANDALONE_PACKAGES`.
    """
    chosen: dict[str, Import] = {}
    for definition in definitions:
        module = modules[definition.module]
        for name in sorted(definition.needs & module.imports.keys()):
            node = module.imports[name]
            if runtime_source(node):
                continue  # inlined instead
            package = imported_package(node)
            if package not in (*sys.stdlib_module_names, *STANDALONE_PACKAGES):
                raise InlineError(
                    f"{module.name} imports {package}, which a standalone script "
                    f"cannot: only the standard library, {', '.join(STANDALONE_PACKAGES)}"
                )
            chosen.setdefault(ast.unparse(node), node)
    return list(chosen.values())


def module_order(modules: dict[str, RuntimeModule], included: set[str]) -> list[str]:
    """`included` with each module before those that import it, ties alphabetical."""
    ordered: list[str] = []

    def visit(name: str, importers: tuple[str, ...] = ()) -> None:
        if name in ordered or name in importers:
            return
        imports = modules[name].imports.values()
        for used in sorted(included & {runtime_source(node) for node in imports}):
            visit(used, (*importers, name))
        ordered.append(name)

    for name in sorted(included):
        visit(name)
    return ordered


def _public_definition(modules: dict[str, RuntimeModule], name: str) -> Definition:
    owners = [module.name for module in modules.values() if name in module.definitions]
    if not owners:
        raise InlineError(f"{RUNTIME_PACKAGE} has no top-level {name}")
    if len(owners) > 1:
        raise InlineError(f"runtime.{name} is ambiguous: {' and '.join(owners)}")
    return modules[owners[0]].definitions[name]


def _resolve(
    modules: dict[str, RuntimeModule], module: RuntimeModule, name: str
) -> Definition | None:
    """The runtime definition `name` means in `module`, if any."""
    if name in module.definitions:
        return module.definitions[name]
    source = runtime_source(module.imports[name]) if name in module.imports else None
    if source is None:
        return None
    if source not in modules or name not in modules[source].definitions:
        raise InlineError(f"{module.name} imports {name} from {source}, not its home")
    return modules[source].definitions[name]


def _checked_imports(module: str, node: Import) -> dict[str, Import]:
    """The names `node` binds, each with its own import; refuses what cannot be copied."""
    bound = bound_imports(node)
    for single in bound.values():
        alias = single.names[0]
        if alias.name == "*" or getattr(single, "level", None):
            raise InlineError(
                f"{module} line {node.lineno}: cannot inline `{ast.unparse(node)}`; "
                "import names by name, absolutely"
            )
        if imported_package(single) == "kerastl" and (
            alias.asname or not runtime_source(single)
        ):
            raise InlineError(
                f"{module} line {node.lineno}: import runtime names as "
                f"`from {RUNTIME_PACKAGE}.<module> import name`"
            )
    return bound


def runtime_source(node: Import) -> str | None:
    """The runtime module `node` imports from, or None if it is not one."""
    module: str = getattr(node, "module", None) or ""
    return module if module.startswith(f"{RUNTIME_PACKAGE}.") else None


def bound_imports(node: Import) -> dict[str, Import]:
    """Each name `node` binds, with an import statement of that name alone."""
    if isinstance(node, ast.Import):
        return {
            (alias.asname or alias.name).split(".")[0]: ast.Import([alias])
            for alias in node.names
        }
    return {
        alias.asname or alias.name: ast.ImportFrom(node.module, [alias], node.level)
        for alias in node.names
    }


def imported_package(node: Import) -> str:
    """The top-level package an import statement imports from."""
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0]
    return node.names[0].name.split(".")[0]


def _defined_name(node: ast.stmt) -> str | None:
    """The name a function, class or single-name assignment defines."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    targets = node.targets if isinstance(node, ast.Assign) else []
    if isinstance(node, ast.AnnAssign):
        targets = [node.target]
    if len(targets) == 1 and isinstance(targets[0], ast.Name):
        return targets[0].id
    return None


def _loaded_names(node: ast.AST) -> set[str]:
    """Names a definition reads (not those it assigns, like class attributes)."""
    return {
        child.id
        for child in ast.walk(node)
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load)
    }


def comment_lines(text: str) -> list[int]:
    """The line numbers of the comments in `text`."""
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return [token.start[0] for token in tokens if token.type == tokenize.COMMENT]
