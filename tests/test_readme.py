"""The README: two set-up commands first, CI runs the second one, and it stays short.

tests/test_docs.py checks its other commands and links, with those of docs/.
"""

import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def setup_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return block.strip().splitlines()


def test_readme_starts_with_two_setup_commands() -> None:
    commands = setup_commands()
    assert len(commands) == 2
    assert "kerastl new" in commands[0] and "examples/data/digits" in commands[0]
    assert commands[1].endswith("pytest")


def test_readme_first_command_names_files_that_exist() -> None:
    paths = [
        word
        for word in shlex.split(setup_commands()[0])
        if word.startswith("examples/")
    ]
    assert paths
    assert [path for path in paths if not (REPO / path).exists()] == []


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert setup_commands()[1] in ci


def test_readme_is_short_and_links_to_every_docs_page() -> None:
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    pages = sorted((REPO / "docs").glob("*.md"))
    assert pages
    assert [page.name for page in pages if f"(docs/{page.name})" not in text] == []
    assert "(CONTRIBUTING.md)" in text
