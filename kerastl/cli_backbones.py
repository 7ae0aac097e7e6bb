"""`kerastl list` and `kerastl info`: the backbone registry on screen."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

import click

from kerastl import backbones, hub, hub_info
from kerastl.cli_options import completer
from kerastl.spec import default_unfreeze

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


@click.command("list")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print every backbone as JSON: the keras.applications ones, then the "
    "KerasHub presets (their 'source' says which).",
)
def list_backbones(as_json: bool) -> None:
    """Show every backbone and its facts."""
    rows = [_facts(entry) for entry in backbones.BACKBONES.values()]
    if as_json:
        presets = [_preset_facts(entry) for entry in hub.presets().values()]
        click.echo(json.dumps(rows + presets, indent=2))
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


@click.command()
@click.argument("backbone", shell_complete=completer(tuple(backbones.BACKBONES)))
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


def _facts(entry: backbones.Backbone) -> dict[str, Any]:
    """The registry's facts about `entry`, its family's flattened in."""
    facts = dataclasses.asdict(entry)
    family = facts.pop("family")
    return {
        "name": facts.pop("name"),
        "source": "keras.applications",
        "family": family.pop("name"),
        **facts,
        "num_blocks": entry.num_blocks,
        **family,
    }


def _preset_facts(entry: hub.HubBackbone) -> dict[str, Any]:
    """A KerasHub preset's facts from KerasHub's preset table."""
    return {
        "name": entry.name,
        "source": "keras_hub",
        "family": entry.family.name,
        "backbone_class": entry.family.backbone_class,
        "default_size": entry.default_size,
        "min_size": entry.min_size,
        "params": entry.params,
        "description": entry.description,
    }
