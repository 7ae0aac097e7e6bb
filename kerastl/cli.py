"""The command line: `kerastl new`, `kerastl list`, `kerastl info`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from kerastl import __version__, backbones
from kerastl.errors import KerastlError
from kerastl.files import write_atomic
from kerastl.spec import MODES, WEIGHTS, default_unfreeze, make_spec


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kerastl")
def cli() -> None:
    """Generate readable Keras transfer-learning scripts for keras.applications."""


@cli.command()
@click.option(
    "--mode",
    metavar="MODE",
    default="fine-tune",
    show_default=True,
    help=" | ".join(MODES),
)
@click.option(
    "--backbone",
    metavar="NAME",
    default="EfficientNetV2B0",
    show_default=True,
    help="Any keras.applications model, case-insensitive (see `kerastl list`).",
)
@click.option(
    "--image-size",
    metavar="N",
    help="Input size in pixels.  [default: the backbone's native size]",
)
@click.option(
    "--num-classes",
    metavar="N",
    help="Number of classes.  [default: counted in the data]",
)
@click.option(
    "--weights",
    metavar="WEIGHTS",
    default="imagenet",
    show_default=True,
    help="The script's default: " + " | ".join(WEIGHTS),
)
@click.option(
    "--unfreeze",
    metavar="STAGE",
    multiple=True,
    help="A fine-tuning stage: top N blocks, 'all', or a layer name. Repeat for gradual unfreezing.",
)
@click.option(
    "--data-dir",
    metavar="PATH",
    help="The script's default data folder (as-is: images).",
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="File to write.  [default: train_<backbone>_<mode>.py]",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--stdout", is_flag=True, help="Print the script instead of writing it.")
@click.option("--standalone", is_flag=True, help="Inline the kerastl.runtime helpers.")
def new(
    mode: str,
    backbone: str,
    image_size: str | None,
    num_classes: str | None,
    weights: str,
    unfreeze: tuple[str, ...],
    data_dir: str | None,
    output: str | None,
    force: bool,
    stdout: bool,
    standalone: bool,
) -> None:
    """Write a training (or prediction) script for one backbone and mode."""
    from kerastl.render import render  # Jinja and black load only for `new`

    spec = make_spec(
        mode=mode,
        backbone=backbone,
        image_size=image_size,
        num_classes=num_classes,
        weights=weights,
        unfreeze=unfreeze,
        data_dir=data_dir,
        output=output,
        standalone=standalone,
    )
    text = render(spec)
    if stdout:
        click.echo(text, nl=False)
        return
    status = write_atomic(Path(spec.output), text, force=force)
    click.echo(f"{status} {spec.output}; run it: {spec.run_command()}")


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
def list_backbones(as_json: bool) -> None:
    """Show every backbone and its facts."""
    rows = [_facts(entry) for entry in backbones.BACKBONES.values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    columns = (
        "name",
        "family",
        "size",
        "min",
        "preprocessing",
        "features",
        "params",
        "blocks",
    )
    table = [columns] + [
        (
            row["name"],
            row["family"],
            str(row["default_size"]),
            str(row["min_size"]),
            row["preprocessing"],
            str(row["feature_dim"]),
            f"{row['params'] / 1e6:.1f}M",
            str(row["num_blocks"]),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
        )


@cli.command()
@click.argument("backbone")
def info(backbone: str) -> None:
    """Show the facts kerastl knows about BACKBONE."""
    entry = backbones.get(backbone)
    facts = _facts(entry)
    facts["preprocessing"] = f"{facts['preprocessing']} ({entry.preprocessing_rule})"
    facts["params"] = f"{entry.params:,}"
    facts["default_unfreeze"] = (
        f"top {default_unfreeze(entry)} of {entry.num_blocks} blocks"
    )
    width = max(map(len, facts))
    for key, value in facts.items():
        click.echo(f"{key.replace('_', ' '):<{width}}  {value}")


def _facts(entry: backbones.Backbone) -> dict:
    family = entry.family
    return {
        "name": entry.name,
        "family": family.name,
        "module": f"keras.applications.{entry.module}",
        "default_size": entry.default_size,
        "min_size": entry.min_size,
        "preprocessing": family.preprocessing,
        "feature_dim": entry.feature_dim,
        "params": entry.params,
        "num_blocks": entry.num_blocks,
        "block_pattern": family.block_pattern,
        "optimizer": family.optimizer,
        "head_learning_rate": family.head_learning_rate,
        "fine_tune_learning_rate": family.fine_tune_learning_rate,
    }


def main(argv: list[str] | None = None) -> None:
    """Runs the CLI; a bad request exits non-zero with one line on stderr."""
    try:
        code = cli.main(args=argv, prog_name="kerastl", standalone_mode=False)
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
