"""The command line: `kerastl new`, `update`, `list`, `info`, `compare`, `predict`."""

from __future__ import annotations

import sys

import click

from kerastl import __version__
from kerastl.cli_backbones import info, list_backbones
from kerastl.cli_runs import compare, predict
from kerastl.cli_scripts import new, update
from kerastl.errors import KerastlError


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]}, no_args_is_help=True
)
@click.version_option(__version__, prog_name="kerastl")
def cli() -> None:
    """Generate readable Keras transfer-learning scripts for keras.applications."""


for _command in (new, update, list_backbones, info, compare, predict):
    cli.add_command(_command)


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
