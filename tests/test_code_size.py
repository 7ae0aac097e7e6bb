"""The package stays readable: no class over 250 lines, no method over 60."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kerastl"
MAX_CLASS_LINES = 250
MAX_METHOD_LINES = 60


def lines(node: ast.AST) -> int:
    return node.end_lineno - node.lineno + 1  # type: ignore[attr-defined]


def oversized(package: Path) -> list[str]:
    """Each class and method in `package` over its limit, with its lines."""
    found = []
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package.parent)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ClassDef):
                continue
            if lines(node) > MAX_CLASS_LINES:
                found.append(f"{where}: class {node.name}, {lines(node)} lines")
            for item in node.body:
                is_method = isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                if is_method and lines(item) > MAX_METHOD_LINES:
                    found.append(
                        f"{where}: {node.name}.{item.name}, {lines(item)} lines"
                    )
    return found


def test_no_class_or_method_is_oversized() -> None:
    assert oversized(PACKAGE) == []


def test_the_check_finds_an_oversized_class_and_method(tmp_path: Path) -> None:
    package = tmp_path / "package"
    package.mkdir()
    long_method = "    def long(self):\n" + "        pass\n" * 60
    short_methods = "".join(f"    def m{i}(self):\n        pass\n" for i in range(95))
    (package / "big.py").write_text(f"class Big:\n{long_method}{short_methods}")
    (package / "small.py").write_text(
        "class Small:\n    def short(self):\n" + "        pass\n" * 59
    )
    assert oversized(package) == [
        "package/big.py: class Big, 252 lines",
        "package/big.py: Big.long, 61 lines",
    ]
