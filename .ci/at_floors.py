"""Checks that each dependency pyproject.toml declares is installed at its floor.

`.ci/run` calls it in the venv it filled with the lowest versions allowed,
so that the smoke tests after it really run on the floors.
"""

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def main() -> int:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["test"]
    off_floor = []
    for requirement in requirements:
        name, floor = re.fullmatch(r"([\w.-]+)>=([\w.]+).*", requirement).groups()
        found = metadata.version(name)
        print(f"{name} {found} (floor {floor})")
        if found != floor and not found.startswith(f"{floor}."):
            off_floor.append(f"{name} {found}")
    if off_floor:
        print(f"not at their floors: {', '.join(off_floor)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
