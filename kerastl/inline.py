"""`--standalone`: copy the runtime definitions a script uses into the script.

Each `runtime.<name>` of the script becomes `<name>`, defined before the
`__main__` guard with all it needs: grouped by runtime module, each group
under a banner, in source order. Their imports join the script's import block.
"""

from __future__ import annotations

import ast
from pathlib import Path

from kerastl import __version__
from kerastl.import_block import import_block
from kerastl.runtime_source import (
    Definition,
    Import,
    InlineError,
    RuntimeModule,
    bound_imports,
    comment_lines,
    imported_package,
    module_order,
    needed_definitions,
    needed_imports,
    read_runtime,
)

RUNTIME_DIR = Path(__file__).parent / "runtime"
RUNTIME_IMPORT = "from kerastl import runtime"
MAIN_GUARD = 'if __name__ == "__main__":'
COMMAND = "`kerastl new --standalone`"
FUTURE_ANNOTATIONS = ast.ImportFrom("__future__", [ast.alias("annotations")], 0)


def inline_runtime(source: str, runtime_dir: Path = RUNTIME_DIR) -> str:
    """Returns `source` with its `runtime.<name>` helpers defined in the file.

    The helpers go at the end, before the `__main__` guard, so the settings
    and the steps stay at the top; `from __future__ import annotations` lets
    the script's annotations name them before they are defined.

    Args:
        source: A script that imports `from kerastl import runtime`.
        runtime_dir: The folder of the runtime modules to copy from.

    Raises:
        InlineError: If the script or a runtime module holds anything the copy
            would lose or break, or the script's names clash with the helpers.
    """
    tree = ast.parse(source)
    imports = _script_imports(tree, source)
    references = _runtime_references(tree)
    modules = read_runtime(runtime_dir)
    definitions = needed_definitions(modules, sorted({ref.attr for ref in references}))
    kept = [node for node in imports if ast.unparse(node) != RUNTIME_IMPORT]
    added = needed_imports(modules, definitions)
    _check_names(tree, definitions, [*kept, *added])
    lines = _strip_references(source, references).split("\n")
    block = import_block([*kept, *added, FUTURE_ANNOTATIONS]).rstrip("\n")
    first, last = imports[0].lineno, imports[-1].end_lineno or 0
    body = "\n".join([*lines[: first - 1], block, *lines[last:]])
    head, guard, tail = body.rpartition(MAIN_GUARD)
    helpers = _helpers(modules, definitions)
    return f"{head.rstrip()}\n\n\n{helpers}\n\n\n{guard}{tail}"


def _script_imports(tree: ast.Module, source: str) -> list[Import]:
    """The script's top-level imports, checked to hold nothing else."""
    imported = [
        index
        for index, node in enumerate(tree.body)
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    block = tree.body[imported[0] : imported[-1] + 1] if imported else []
    if MAIN_GUARD not in source or RUNTIME_IMPORT not in map(ast.unparse, block):
        raise InlineError(f"the script must have {RUNTIME_IMPORT!r} and {MAIN_GUARD!r}")
    kerastl_imports = [
        node
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and imported_package(node) == "kerastl"
    ]
    if len(kerastl_imports) > 1:
        raise InlineError(f"the script may import kerastl only as {RUNTIME_IMPORT!r}")
    for node in block:
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            raise InlineError(
                f"script line {node.lineno}: only imports may go among imports"
            )
    comments = comment_lines(source)
    if any(block[0].lineno <= line <= (block[-1].end_lineno or 0) for line in comments):
        raise InlineError("the script's imports hold a comment that would be lost")
    return [node for node in block if isinstance(node, (ast.Import, ast.ImportFrom))]


def _runtime_references(tree: ast.Module) -> list[ast.Attribute]:
    """The script's `runtime.<name>` expressions, checked to be its only `runtime`s."""
    references = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "runtime"
        and node.lineno == node.end_lineno
    ]
    names = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and node.id == "runtime"
    ]
    if len(names) != len(references):
        raise InlineError("the script must use the runtime only as runtime.<name>")
    return references


def _strip_references(source: str, references: list[ast.Attribute]) -> str:
    """Rewrites each `runtime.X` as `X` (AST columns count UTF-8 bytes)."""
    lines = [line.encode() for line in source.split("\n")]
    for node in sorted(
        references, key=lambda n: (n.lineno, n.col_offset), reverse=True
    ):
        line = lines[node.lineno - 1]
        attr_start = (node.end_col_offset or 0) - len(node.attr.encode())
        lines[node.lineno - 1] = line[: node.col_offset] + line[attr_start:]
    return "\n".join(line.decode() for line in lines)


def _check_names(
    tree: ast.Module, definitions: list[Definition], imports: list[Import]
) -> None:
    """The script's names and the helpers' imports must not clash with the helpers."""
    bindings: dict[str, str] = {}
    for node in imports:
        for name, single in bound_imports(node).items():
            if bindings.setdefault(name, ast.unparse(single)) != ast.unparse(single):
                raise InlineError(
                    f"{name} is imported twice: `{bindings[name]}` and "
                    f"`{ast.unparse(single)}`"
                )
    script_names = {
        name.id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        for name in ast.walk(target)
        if isinstance(name, ast.Name)
    } | {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    helper_names = {definition.name for definition in definitions} | bindings.keys()
    if clashes := sorted(script_names & helper_names):
        raise InlineError(
            f"script names clash with runtime helpers: {', '.join(clashes)}"
        )


def _helpers(modules: dict[str, RuntimeModule], definitions: list[Definition]) -> str:
    """The definitions, grouped by module under a banner each, in source order."""
    wanted = set(definitions)
    groups = [f"# Helpers copied from kerastl.runtime {__version__} by {COMMAND}."]
    for name in module_order(modules, {definition.module for definition in wanted}):
        module = modules[name]
        about = f": {module.description}" if module.description else ""
        groups.append(f"# --- {name}{about} ---")
        groups += [
            item.source for item in module.definitions.values() if item in wanted
        ]
    return "\n\n\n".join(groups)
