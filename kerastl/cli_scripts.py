"""`kerastl new` and `kerastl update`: write a script, or re-render and merge one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from kerastl.cli_options import spec_options, update_options
from kerastl.files import write_atomic
from kerastl.runtime_copy import COPY_NAME, installed, plan_copy
from kerastl.script_base import write_base
from kerastl.spec import SpecError, make_spec


@click.command()
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


@click.command()
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


def _conflicts(count: int) -> str:
    return f"{count} conflict" + ("s" if count > 1 else "")
