"""The command line: `kerastl new`, `update`, `list`, `info`, `compare`, `predict`."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from click.shell_completion import CompletionItem

from kerastl import __version__, backbones, hub, hub_info
from kerastl.errors import KerastlError
from kerastl.files import write_atomic
from kerastl.runtime_copy import COPY_NAME, installed, plan_copy
from kerastl.spec import OPTIONS, Option, SpecError, default_unfreeze, make_spec
from kerastl.update import write_base

#: The columns of `kerastl list`: heading, fact, and how the fact is shown.
LIST_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("name", "name", str),
    ("family", "family", str),
    ("size", "default_size", str),
    ("min", "min_size", str),
    ("preprocessing", "preprocessing", str),
    ("features", "feature_dim", str),
    ("params", "params", lambda params: f"{params / 1e6:.1f}M"),
    ("blocks", "num_blocks", str),
)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]}, no_args_is_help=True
)
@click.version_option(__version__, prog_name="kerastl")
def cli() -> None:
    """Generate readable Keras transfer-learning scripts for keras.applications."""


def _completer(
    choices: tuple[str, ...],
) -> Callable[[click.Context, click.Parameter, str], list[CompletionItem]]:
    def complete(
        ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        prefix = incomplete.lower()
        return [
            CompletionItem(choice)
            for choice in choices
            if choice.lower().startswith(prefix)
        ]

    return complete


def _click_option(name: str, option: Option) -> Callable[[Any], Any]:
    """The `click.option` decorator for one option of the table."""
    return click.option(
        *option.flags,
        name,
        metavar=option.metavar,
        is_flag=option.is_flag,
        multiple=option.multiple,
        default=option.default,
        show_default=option.show_default,
        help=option.help,
        shell_complete=_completer(option.choices) if option.choices else None,
    )


def spec_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds every option of `kerastl.spec.OPTIONS` to `command`, in order."""
    for name, option in reversed(OPTIONS.items()):
        command = _click_option(name, option)(command)
    return command


@cli.command()
@spec_options
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--stdout", is_flag=True, help="Print the script instead of writing it.")
@click.pass_context
def new(ctx: click.Context, force: bool, stdout: bool, **options: Any) -> None:
    """Write a training (or prediction) script for one backbone and mode."""
    from kerastl.render import render  # Jinja and black load only for `new`

    try:
        spec = make_spec(**options)
    except SpecError as error:
        param = next(
            param for param in ctx.command.params if param.name == error.option
        )
        raise click.BadParameter(error.detail, ctx=ctx, param=param) from None
    text = render(spec)
    if stdout:
        click.echo(text, nl=False)
        if spec.standalone:
            click.echo(
                f"kerastl: printed the script only; it imports {COPY_NAME}, which "
                "kerastl new --standalone -o FILE writes beside FILE",
                err=True,
            )
        return
    script = Path(spec.output)
    copy = plan_copy(script, force=force, refresh=False) if spec.standalone else None
    with installed(copy):
        status = write_atomic(script, text, force=force)
    write_base(script, text)
    also = f", {copy.status} {copy.folder}{os.sep}" if copy else ""
    click.echo(f"{status} {spec.output}{also}; run it: {spec.run_command()}")


def update_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the options of `kerastl new` but the output, none with a default.

    A switch also gets its negation (`--standalone/--no-standalone`).
    """
    for name, option in reversed(OPTIONS.items()):
        if name == "output":
            continue
        flags = option.flags
        if option.is_flag:
            long = flags[-1].removeprefix("--")
            negation = (
                long.removeprefix("no-") if long.startswith("no-") else f"no-{long}"
            )
            flags = (*flags[:-1], f"{flags[-1]}/--{negation}")
        command = click.option(
            *flags,
            name,
            metavar=option.metavar,
            is_flag=option.is_flag or None,
            multiple=option.multiple,
            default=None,
            help=option.help.split("  [default:")[0],
            shell_complete=_completer(option.choices) if option.choices else None,
        )(command)
    return command


@cli.command()
@click.argument("script", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@update_options
@click.option("--dry-run", is_flag=True, help="Print the unified diff; write nothing.")
@click.option(
    "--force", is_flag=True, help=f"Replace a {COPY_NAME}/ beside SCRIPT you edited."
)
@click.pass_context
def update(
    ctx: click.Context, script: Path, dry_run: bool, force: bool, **options: Any
) -> None:
    """Re-render SCRIPT with today's templates and merge your edits in.

    The script's header gives the options, which the options given here
    change; `.kerastl/SCRIPT.base` beside it, kept by `kerastl new`, holds the
    render it started from. Edits that conflict with the new render are
    written between conflict markers, and the command exits 1. A standalone
    script's kerastl_runtime/ is refreshed unless you edited it.
    """
    from kerastl import update as updating  # Jinja and black load only here

    overrides = {
        name: value
        for name, value in options.items()
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    }
    try:
        plan = updating.plan(script, overrides, force=force)
    except SpecError as error:
        param = next(
            param for param in ctx.command.params if param.name == error.option
        )
        detail = error.detail
        if error.option not in overrides:
            detail += f" (recorded in {script}; give {param.opts[0]} to change it)"
        raise click.BadParameter(detail, ctx=ctx, param=param) from None
    conflicts = plan.merged.conflicts
    copy = plan.copy
    if dry_run:
        click.echo(plan.diff() or f"{script} is up to date\n", nl=False)
        if copy and copy.status != "unchanged":
            click.echo(f"kerastl: would write {copy.folder}{os.sep}", err=True)
        if conflicts:
            click.echo(
                f"kerastl: {script} would have {_conflicts(len(conflicts))} "
                f"({plan.conflict_lines()}); nothing written",
                err=True,
            )
            ctx.exit(1)
        return
    status = updating.apply(plan)
    if conflicts:
        click.echo(
            f"kerastl: conflict: {script} has {_conflicts(len(conflicts))} "
            f"({plan.conflict_lines()}) between your edits and the new render: "
            "resolve the <<<<<<< ... >>>>>>> blocks",
            err=True,
        )
        ctx.exit(1)
    if copy and copy.status != "unchanged":
        click.echo(f"{copy.status} {copy.folder}{os.sep}")
    if status == "unchanged":
        click.echo(f"{script} is up to date")
    else:
        click.echo(f"updated {script}; run it: {plan.spec.run_command()}")


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
def list_backbones(as_json: bool) -> None:
    """Show every backbone and its facts."""
    rows = [_facts(entry) for entry in backbones.BACKBONES.values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = [tuple(heading for heading, _, _ in LIST_COLUMNS)] + [
        tuple(show(row[fact]) for _, fact, show in LIST_COLUMNS) for row in rows
    ]
    _echo_table(table)
    click.echo(
        f"\nKerasHub image presets (KerasHub {hub.keras_hub_version()}'s preset "
        "table, nothing downloaded; also: hf:// or kaggle:// handles, preset folders):"
    )
    _echo_table(
        [("NAME", "FAMILY", "SIZE", "PARAMS")]
        + [
            (name, entry.family.name, str(entry.default_size), f"{entry.params:,}")
            for name, entry in hub.presets().items()
        ]
    )


def _echo_table(table: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
        )


@cli.command()
@click.argument("backbone", shell_complete=_completer(tuple(backbones.BACKBONES)))
@click.pass_context
def info(ctx: click.Context, backbone: str) -> None:
    """Show the facts kerastl knows about BACKBONE."""
    if hub.is_hub_preset(backbone):
        try:
            hub_facts = hub_info.facts(hub.resolve(backbone))
        except hub.HubPresetError as error:
            param = ctx.command.params[0]
            raise click.BadParameter(str(error), ctx=ctx, param=param) from None
        width = max(map(len, hub_facts))
        for key, value in hub_facts.items():
            click.echo(f"{key.replace('_', ' '):<{width}}  {value}")
        return
    try:
        entry = backbones.get(backbone)
    except backbones.UnknownBackboneError as error:
        param = ctx.command.params[0]
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None
    facts: dict[str, object] = _facts(entry)
    facts["module"] = f"keras.applications.{entry.module}"
    facts["preprocessing"] = (
        f"{entry.family.preprocessing} ({entry.preprocessing_rule})"
    )
    facts["params"] = f"{entry.params:,}"
    facts["default_unfreeze"] = (
        f"top {default_unfreeze(entry)} of {entry.num_blocks} blocks"
    )
    starts = backbones.block_starts(entry.name)
    facts["block_starts"] = f"{starts[0]} ... {starts[-1]}"
    width = max(map(len, facts))
    for key, value in facts.items():
        click.echo(f"{key.replace('_', ' '):<{width}}  {value}")


@cli.command()
@click.argument(
    "run_dirs",
    nargs=-1,
    required=True,
    metavar="RUN_DIR...",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "-o",
    "--output",
    default="compare.png",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The figure to write: validation loss and accuracy of every run.",
)
@click.pass_context
def compare(ctx: click.Context, run_dirs: tuple[Path, ...], output: Path) -> None:
    """Compare training runs side by side.

    Prints the settings that differ between the RUN_DIRs, then each shipped
    model's validation (and test) figures, best epoch and training time, and
    draws their validation loss and accuracy over epochs into one PNG.
    """
    from kerastl import compare as comparing  # matplotlib loads only to draw

    folders, output_param = ctx.command.params[0], ctx.command.params[1]
    if len(run_dirs) < 2:
        raise click.BadParameter(
            f"only one run folder ({run_dirs[0]}); give two or more to compare",
            ctx=ctx,
            param=folders,
        )
    if not output.parent.is_dir():
        raise click.BadParameter(
            f"folder {output.parent} does not exist", ctx=ctx, param=output_param
        )
    try:
        names = comparing.column_names(run_dirs)
        runs = [comparing.read_run(folder) for folder in run_dirs]
    except comparing.RunFolderError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=folders) from None
    for line in comparing.table_lines(runs, names):
        click.echo(line)
    if comparing.plot_runs(runs, names, output) is not None:
        click.echo(f"wrote {output}")


@cli.command()
@click.argument(
    "run_dir",
    metavar="RUN_DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.argument(
    "paths", nargs=-1, required=True, metavar="PATH...", type=click.Path(path_type=Path)
)
@click.option(
    "--model",
    type=click.Path(path_type=Path),
    help="Another model than the shipped one: best.keras, model.keras, or an "
    "exported artifact (export/saved_model, export/model.tflite, export/model.onnx, "
    "export/model.xml).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the predictions to this CSV file (the as-is script's columns).",
)
@click.option(
    "--top-k",
    type=click.IntRange(1, 1000),
    help="Classes per image.  [default: 1 on screen, 5 in the file]",
)
@click.option(
    "--sheet",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw the images with their predicted class into this PNG.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 4096),
    default=32,
    show_default=True,
    help="Images per batch.",
)
@click.option(
    "--tta",
    is_flag=True,
    help="Test-time augmentation: average each image's prediction with its "
    "mirror image's (the run's metrics.json has its figures with --tta).",
)
@click.option(
    "--explain",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each image with the Grad-CAM heatmap of its top class into "
    "this folder (PNG; --sheet then shows them). Needs a .keras model.",
)
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@click.pass_context
def predict(
    ctx: click.Context,
    run_dir: Path,
    paths: tuple[Path, ...],
    model: Path | None,
    output: Path | None,
    top_k: int | None,
    sheet: Path | None,
    batch_size: int,
    tta: bool,
    explain: Path | None,
    force: bool,
) -> None:
    """Classify images with a trained run's model.

    RUN_DIR is a finished run's output folder (its metrics.json names the
    shipped model, labels.json the classes); each PATH is an image or a folder
    searched for images. Prints the top class of each image. An image that
    cannot be read is named, skipped, and makes the command exit 1.
    """
    from kerastl import predict as predicting  # TensorFlow loads only to predict

    try:
        request = predicting.check_request(
            run_dir,
            paths,
            model=model,
            output=output,
            sheet=sheet,
            top_k=top_k,
            batch_size=batch_size,
            force=force,
            tta=tta,
            explain=explain,
        )
        ctx.exit(predicting.predict(request))
    except predicting.PredictUsageError as error:
        param = next(param for param in ctx.command.params if param.name == error.param)
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None


def _conflicts(count: int) -> str:
    return f"{count} conflict" + ("s" if count > 1 else "")


def _facts(entry: backbones.Backbone) -> dict[str, Any]:
    """The registry's facts about `entry`, its family's flattened in."""
    facts = dataclasses.asdict(entry)
    family = facts.pop("family")
    return {
        "name": facts.pop("name"),
        "family": family.pop("name"),
        **facts,
        "num_blocks": entry.num_blocks,
        **family,
    }


def main(argv: list[str] | None = None) -> None:
    """Runs the CLI.

    A usage error (a bad option or value) shows Click's usage and exits 2; any
    other bad request exits 1 with one line on stderr.
    """
    try:
        code = cli.main(args=argv, prog_name="kerastl", standalone_mode=False)
    except click.UsageError as error:
        error.show()
        sys.exit(error.exit_code)
    except click.ClickException as error:
        click.echo(f"kerastl: error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except click.Abort:
        click.echo("kerastl: aborted", err=True)
        sys.exit(1)
    except (KerastlError, OSError) as error:
        click.echo(f"kerastl: error: {error}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
