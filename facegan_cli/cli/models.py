"""`facegan models`: the model families, their presets and their exact architectures."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from facegan_cli.cli.common import emit_json, emit_result, result_console, result_table
from facegan_cli.cli.params import OUTPUT_OPTIONS, build_command, group, native
from facegan_cli.cli.shared_options import REPORT, shared_options
from facegan_cli.core.options import Opt
from facegan_cli.models.summary import arch_options, list_families, summarize

SUMMARY_HELP = (
    "Parameter counts of a family's networks (with a per-layer table unless --json). Networks are counted as "
    "the family's paper counts them (a progressive network's full-resolution path); --json also gives "
    "all_parameters where that differs. Options name the families they apply to."
)


@shared_options(*REPORT)
def list_models(json_out: bool) -> None:
    """List the model families, their kinds and presets (the default preset first)."""
    entries = list_families()
    rows = [(e["family"], e["kind"], ", ".join(e["presets"]), e["description"]) for e in entries]
    columns = ("family", "kind", "presets (default first)", "description")
    emit_result({"families": entries}, json_out, lambda _: result_table("facegan model families", columns, rows))


def _render(doc: dict[str, Any]) -> None:
    console = result_console()
    roles = [k for k, v in doc.items() if isinstance(v, dict) and "parameters" in v]
    counts = ", ".join(f"{role} {doc[role]['parameters']:,} parameters" for role in roles)
    console.print(f"{doc['family']} {doc['preset']}: {counts}")
    for role in roles:
        rows = [(name, kind, shape, f"{params:,}") for name, kind, shape, params in doc[role]["layers"]]
        table = result_table(role, ("layer", "type", "output (C x H x W)", "parameters"), rows, left=3)
        table.add_row("total", "", "", f"{doc[role]['parameters']:,}", style="bold")
        console.print(table)


def _summary(values: dict[str, Any]) -> None:
    doc = summarize(values["family"], values["preset"], values, layers=not values["json"])
    if values["json"]:
        emit_json(doc)
    else:
        _render(doc)


def build() -> typer.Typer:
    """The `models` group; `summary`'s options are every registered family's architecture options."""
    app = group("The model families, their presets and parameter counts.")
    app.command("list", epilog="Example: facegan models list --json")(list_models)
    preset = Opt("preset", ("--preset",), str, None, "Preset of the family (default: its default; `facegan models "
                 "list` names them).")
    family = native("family", Annotated[str, typer.Argument(
        help="Model family, e.g. dcgan (see `facegan models list`).")])
    summary = build_command("summary", [family, preset, *arch_options(), *OUTPUT_OPTIONS], _summary)
    app.command("summary", help=SUMMARY_HELP,
                epilog="Example: facegan models summary dcgan --preset heikka32 --depth 4 --d-first-bn --json")(summary)
    return app
