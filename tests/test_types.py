"""mypy: the package and the generated scripts type-check (imports of Keras not followed)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MYPY = [
    sys.executable,
    "-m",
    "mypy",
    "--follow-imports=skip",
    "--ignore-missing-imports",
    "--no-error-summary",
]


def mypy(*paths: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MYPY, "--cache-dir", str(cache), *map(str, paths)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


def test_package_type_checks(tmp_path: Path) -> None:
    result = mypy(REPO / "kerastl", cache=tmp_path)
    assert result.returncode == 0, result.stdout


def test_generated_scripts_type_check(tmp_path: Path) -> None:
    """Each golden script checked on its own, as the standalone file a user gets."""
    scripts = [
        *(REPO / "tests" / "golden").glob("*.py"),
        *(REPO / "examples").glob("*.py"),
    ]
    for script in sorted(scripts):
        result = mypy(script, cache=tmp_path)
        assert result.returncode == 0, f"{script.name}:\n{result.stdout}"
