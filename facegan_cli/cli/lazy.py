"""Top-level commands that load on use, so `facegan --help` and `--version` import no torch.

The root group lists every command from its `LazyCommand` declaration (name, "module:attribute", the short
help it shows at the top) and imports the command's module only when the command runs, shows its own help
or completes its own arguments.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand


@dataclass(frozen=True)
class LazyCommand:
    """One top-level command of `facegan`, declared without importing it.

    `target` is "module:attribute": a typer.Typer (a group), a function returning one (a group built on
    use, e.g. from the registry), or a command function (a single command, with the help and epilog
    named by `help_from`/`epilog_from`, attributes of the same module). `short` is the line `facegan --help`
    shows; a test checks it is the first paragraph of the command's own help."""

    name: str
    target: str
    short: str
    help_from: str = ""
    epilog_from: str = ""

    def load(self) -> Any:
        """The click command (a group or a single command) this declaration makes."""
        from facegan_cli.cli.common import FaceganTyper  # imported on use: common imports this module's users

        module_name, _, attribute = self.target.partition(":")
        module = importlib.import_module(module_name)
        made = getattr(module, attribute)
        if not isinstance(made, typer.Typer) and (self.help_from or self.epilog_from):
            single = FaceganTyper()
            single.command(self.name, help=getattr(module, self.help_from, None),
                           epilog=getattr(module, self.epilog_from, None))(made)
            made = single
        elif not isinstance(made, typer.Typer):
            made = made()  # a builder
        made._add_completion = False  # the root app alone offers --install-completion
        command = typer.main.get_command(made)
        command.name = self.name
        return command


class Placeholder(TyperCommand):
    """What the root's --help lists for a command not loaded yet: its name and short help."""

    def __init__(self, declared: LazyCommand) -> None:
        super().__init__(name=declared.name, help=declared.short, short_help=declared.short)
        self.declared = declared
