"""The README, docs/ and CONTRIBUTING.md say only what is true of kerastl.

Every `kerastl` command in a shell block parses with the CLI (`new`, `update`,
`list` and `info` run); every relative link resolves, anchors included; every
`runtime.NAME` is public; and (slow: it runs the scripts' `--help`) every
option a page names is an option of kerastl or of the generated scripts.
"""

import ast
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kerastl.cli import cli
from tests.conftest import script_env

REPO = Path(__file__).resolve().parent.parent
PAGES = [
    REPO / "README.md",
    REPO / "CONTRIBUTING.md",
    *sorted((REPO / "docs").glob("*.md")),
]
# The run folders the pages' `kerastl` examples read, made in a workspace.
EXAMPLE_RUNS = ["runs/first", "runs/photos", "runs/photos-mixup", "runs/tags"]
# Public names that branches of issue 23 add to kerastl.runtime; remove once
# merged (the test then checks them like the others).
OPTION = re.compile(r"--[a-z][a-z0-9-]*")


def name(page: Path) -> str:
    return page.relative_to(REPO).as_posix()


def code_blocks(page: Path, language: str) -> list[str]:
    """The page's fenced code blocks in `language` ("" for plain blocks)."""
    blocks, current = [], None
    for line in page.read_text().splitlines():
        if current is None and line.startswith("```"):
            current = [] if line[3:].strip() == language else None
            if current is None:  # another language: skip to its end
                current = False
        elif line.startswith("```"):
            if current is not False:
                blocks.append("\n".join(current) + "\n")
            current = None
        elif current not in (None, False):
            current.append(line)
    return blocks


@dataclass(frozen=True)
class Command:
    page: str
    words: list[str]

    def __str__(self) -> str:
        return f"{self.page}: {shlex.join(self.words)}"


def shell_lines(page: Path) -> list[str]:
    """Each command of the page's bash blocks: continuations joined, comments
    dropped, `a && b` split."""
    lines = []
    for block in code_blocks(page, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                lines += [part.strip() for part in line.split("&&")]
    return lines


def shell_commands(page: Path) -> list[Command]:
    """The page's shell commands as words, but those with a `...` or `[...]`
    placeholder."""
    return [
        Command(name(page), shlex.split(line))
        for line in shell_lines(page)
        if "..." not in line and "[" not in line
    ]


def kerastl_commands() -> list[Command]:
    return [
        command
        for page in PAGES
        for command in shell_commands(page)
        if Path(command.words[0]).name == "kerastl"
    ]


KERASTL_COMMANDS = kerastl_commands()


def test_the_pages_show_every_kerastl_command() -> None:
    shown = {command.words[1] for command in KERASTL_COMMANDS}
    assert shown == set(cli.commands)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding what the examples name: run folders, examples/, and
    the script `train.py` that `kerastl update` updates."""
    for folder in EXAMPLE_RUNS:
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "examples").symlink_to(REPO / "examples")
    monkeypatch.chdir(tmp_path)
    new = ["new", "--mode", "fine-tune", "--backbone", "ResNet50V2", "-o", "train.py"]
    assert CliRunner().invoke(cli, new).exit_code == 0
    return tmp_path


@pytest.mark.parametrize("command", KERASTL_COMMANDS, ids=str)
def test_each_kerastl_command_is_valid(command: Command, workspace: Path) -> None:
    subcommand, *args = command.words[1:]
    if subcommand in ("new", "update", "list", "info"):  # quick: they run
        if subcommand == "new":
            args.append("--stdout")
        result = CliRunner().invoke(cli, [subcommand, *args])
        assert result.exit_code == 0, (str(command), result.output)
        return
    # The others read finished runs: their arguments parse and convert.
    with click.Context(cli, info_name="kerastl") as parent:
        cli.commands[subcommand].make_context(subcommand, args, parent=parent)


def headings(page: Path) -> set[str]:
    """The anchors GitHub makes of the page's headings."""
    return {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in page.read_text().splitlines()
        if line.startswith("#") and not line.startswith("#!")
    }


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_each_link_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (anchor and anchor not in headings(linked)):
            broken.append(target)
    assert broken == []


def public_runtime_names() -> set[str]:
    """`kerastl.runtime.__all__`, read without importing TensorFlow."""
    tree = ast.parse((REPO / "kerastl" / "runtime" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(target, "id", None) == "__all__" for target in node.targets
        ):
            return set(ast.literal_eval(node.value))
    raise AssertionError("kerastl/runtime/__init__.py has no __all__")


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_each_runtime_name_is_public(page: Path) -> None:
    # `runtime.NAME`, not `kerastl.runtime.unfreeze` (a module) or `runtime.md`.
    named = set(re.findall(r"(?<![\w/.])runtime\.(?!md\b)(\w+)", page.read_text()))
    known = public_runtime_names()
    assert named - known == set()


def is_script(word: str) -> bool:
    """Whether `word` names a generated script (`train.py`, `runs/predict.py`)."""
    return word.endswith(".py") and Path(word).name.startswith(("train", "predict"))


def argument_lists(block: str) -> list[list[str]]:
    """The lists of a Python block that hold a script's options (`["--epochs", "5"]`)."""
    lists = []
    for node in ast.walk(ast.parse(block)):
        if isinstance(node, ast.List) and all(
            isinstance(item, ast.Constant) and isinstance(item.value, str)
            for item in node.elts
        ):
            arguments = ast.literal_eval(node)
            if any(OPTION.fullmatch(argument) for argument in arguments):
                lists.append(arguments)
    return lists


def script_runs(page: Path) -> list[tuple[str, list[str]]]:
    """The options of each run of a generated script the page shows, with the
    script: `python SCRIPT ...` in bash blocks, `%run SCRIPT ...`, and the lists
    of options in Python blocks that call a script's `main()`."""
    runs = []
    for line in shell_lines(page):
        words = line.split()
        if Path(words[0]).name.startswith("python") and is_script(words[1]):
            runs.append((words[1], OPTION.findall(line)))
    for line in page.read_text().splitlines():
        if line.startswith("%run "):
            runs.append((line.split()[1], OPTION.findall(line)))
    for block in code_blocks(page, "python"):
        if "main(" in block:
            for arguments in argument_lists(block):
                runs.append(("train.py", [a for a in arguments if OPTION.fullmatch(a)]))
    return runs


HELP_DRIVER = """
import runpy, sys
for path in sys.argv[1:]:
    try:
        runpy.run_path(path)["main"](["--help"])
    except SystemExit:
        pass
    print("\\0", flush=True)
"""


@pytest.fixture(scope="module")
def script_options(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """The options in the `--help` of a generated script of each mode."""
    folder = tmp_path_factory.mktemp("scripts")
    modes = ["fine-tune", "feature-extraction", "as-is", "lora"]
    for mode in modes:
        result = CliRunner().invoke(
            cli, ["new", "--mode", mode, "--backbone", "MobileNetV3Small", "--stdout"]
        )
        assert result.exit_code == 0, result.output
        (folder / f"{mode}.py").write_text(result.output)
    helps = subprocess.run(
        [sys.executable, "-c", HELP_DRIVER, *(str(folder / f"{m}.py") for m in modes)],
        capture_output=True,
        text=True,
        check=True,
        env=script_env(PYTHONPATH=str(REPO)),
        timeout=300,
    ).stdout.split("\0")
    return {mode: set(OPTION.findall(text)) for mode, text in zip(modes, helps)}


def kerastl_options() -> set[str]:
    """Every long option of every `kerastl` command."""
    return {
        option
        for command in cli.commands.values()
        for param in command.params
        for option in [*param.opts, *param.secondary_opts]
        if option.startswith("--")
    }


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=name)
def test_each_option_a_page_names_exists(
    page: Path, script_options: dict[str, set[str]]
) -> None:
    training = (
        script_options["fine-tune"]
        | script_options["feature-extraction"]
        | script_options["lora"]
    )
    unknown = [
        f"{script} {option}"
        for script, options in script_runs(page)
        for option in options
        if option not in (script_options["as-is"] if "predict" in script else training)
    ]
    if page.name != "CONTRIBUTING.md":  # it names pytest's options too
        everything = training | script_options["as-is"] | kerastl_options()
        named = set(re.findall(r"`(--[a-z][a-z0-9-]*)", page.read_text()))
        unknown += sorted(named - everything)
    assert unknown == []


def test_contributing_shows_how_to_run_each_benchmark() -> None:
    text = (REPO / "CONTRIBUTING.md").read_text()
    named = set(re.findall(r"benchmarks/(\w+\.py)", text))
    present = {path.name for path in (REPO / "benchmarks").glob("bench_*.py")}
    assert named == present
