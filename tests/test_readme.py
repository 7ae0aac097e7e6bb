"""The README's set-up commands: exactly two, and CI runs the second one."""

import shlex
from pathlib import Path

from click.testing import CliRunner

from kerastl.cli import cli

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


def test_readme_generator_examples_are_valid(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = (REPO / "README.md").read_text()
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    commands = [
        line for line in lines if line.startswith("kerastl new") and "..." not in line
    ]
    assert len(commands) >= 4
    for command in commands:
        args = shlex.split(command)[1:]
        result = CliRunner().invoke(cli, [*args, "--stdout"])
        assert result.exit_code == 0, (command, result.output)
