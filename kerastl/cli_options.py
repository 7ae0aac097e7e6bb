"""The Click options made from the spec's option table, with shell completion."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from click.shell_completion import CompletionItem

from kerastl.spec import OPTIONS, Option


def completer(
    choices: tuple[str, ...],
) -> Callable[[click.Context, click.Parameter, str], list[CompletionItem]]:
    """A shell completion callback offering the `choices` that match."""

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
        shell_complete=completer(option.choices) if option.choices else None,
    )


def spec_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds every option of `kerastl.spec.OPTIONS` to `command`, in order."""
    for name, option in reversed(OPTIONS.items()):
        command = _click_option(name, option)(command)
    return command


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
            shell_complete=completer(option.choices) if option.choices else None,
        )(command)
    return command
