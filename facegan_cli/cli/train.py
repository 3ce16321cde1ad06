"""`facegan train FAMILY`: one command per registered family, built from the family's TrainSpec.

The command's options are the family's own (declared beside its trainer), the shared loop options
(declared once, train/spec.py) with the family's defaults, and the run options every command has.
Nothing here names a family.
"""

from __future__ import annotations

from typing import Any

import typer

from facegan_cli.cli.common import emit_json, emit_line, result_console, result_table
from facegan_cli.cli.params import (
    DEVICE,
    FORCE,
    OUT,
    OUTPUT_OPTIONS,
    RESUME,
    build_command,
    given_on_command_line,
    group,
)
from facegan_cli.core.options import Opt
from facegan_cli.models import registry
from facegan_cli.train.spec import TrainSpec, command_options, resume_family, train_family, training_spec

HELP = "Train a model family (one command per family; `facegan models list` names them)."
DATA_CHANGED_OK = Opt(
    "data_changed_ok", ("--data-changed-ok",), bool, False,
    "With --resume: continue although the dataset changed since the run started (recorded in config.json); "
    "without it such a resume is refused.",
)


def render(doc: dict[str, Any], as_json: bool) -> None:
    """A training result: paths on stdout (and the family's tables), or the one JSON document."""
    if doc.get("rank", 0) != 0:
        return  # under torchrun only rank 0 reports
    tables = doc.pop("tables", [])
    if as_json:
        emit_json(doc)
        return
    for key in ("run_dir", "checkpoint", "sample_grid"):
        if doc.get(key):
            emit_line(str(doc[key]))
    for spec in tables:
        result_console().print(result_table(spec["title"], spec["columns"], spec["rows"], left=1))


def options_of(family: registry.Family, spec: TrainSpec) -> list[Opt]:
    preset = Opt("preset", ("--preset",), str, family.default_preset,
                 f"Settings of one source: {', '.join(family.presets)}.")
    return [preset, *command_options(family, spec), OUT, *spec.loop_options(), RESUME, DATA_CHANGED_OK, FORCE, DEVICE, *OUTPUT_OPTIONS]


def _runner(name: str) -> Any:
    def run(values: dict[str, Any]) -> None:
        if values.get("resume") is not None:
            doc = resume_family(name, values["resume"], given_on_command_line(), values["device"], values)
        else:
            doc = train_family(name, values)
        render(doc, values["json"])

    return run


def build() -> typer.Typer:
    """The `train` group with a command for every family registered now."""
    app = group(HELP)
    for name, family in sorted(registry.families().items()):
        spec = training_spec(name)
        if spec is None:
            continue
        app.command(name, help=spec.summary, epilog=f"Example: {spec.example}")(
            build_command(f"train_{name}", options_of(family, spec), _runner(name))
        )
    return app
