"""`facegan train FAMILY`: one command per registered family, built from the family's TrainSpec.

The command's options are the family's own (declared beside its trainer), the shared loop options
(declared once, train/spec.py) with the family's defaults, and the run options every command has.
Nothing here names a family. Describing the group (`train --help`, `train FAMILY --help`, completion)
reads the declarations snapshot (cli.declarations) where it is current, so it imports no torch; the
commands that run are always built from the real declarations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from facegan_cli.cli import declarations
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

if TYPE_CHECKING:
    from facegan_cli.models import registry
    from facegan_cli.train.spec import TrainSpec

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
    from facegan_cli.train.spec import command_options

    preset = Opt("preset", ("--preset",), str, family.default_preset,
                 f"Settings of one source: {', '.join(family.presets)}.")
    return [preset, *command_options(family, spec), OUT, *spec.loop_options(), RESUME, DATA_CHANGED_OK, FORCE, DEVICE, *OUTPUT_OPTIONS]


def _runner(name: str) -> Any:
    def run(values: dict[str, Any]) -> None:
        from facegan_cli.train.spec import resume_family, train_family

        if values.get("resume") is not None:
            doc = resume_family(name, values["resume"], given_on_command_line(), values["device"], values)
        else:
            doc = train_family(name, values)
        render(doc, values["json"])

    return run


def _families() -> list[tuple[str, str, str, list[Opt]]]:
    """Each trained family's command: name, help, epilog and options, from the real declarations."""
    from facegan_cli.models import registry
    from facegan_cli.train.spec import training_spec

    found = []
    for name, family in sorted(registry.families().items()):
        spec = training_spec(name)
        if spec is not None:
            found.append((name, spec.summary, f"Example: {spec.example}", options_of(family, spec)))
    return found


def declared() -> list[dict[str, Any]]:
    """The group's part of the declarations snapshot."""
    return [{"name": name, "help": help, "epilog": epilog, "options": [declarations.encode_opt(o) for o in options]}
            for name, help, epilog, options in _families()]


def _live_command(name: str) -> Any:
    made = typer.main.get_command(build_live())
    return getattr(made, "commands", {name: made})[name]  # Typer makes a lone command no group


def build_described(snapshot: list[dict[str, Any]]) -> typer.Typer:
    """The group as the snapshot describes it: the same help; a command that runs loads the real one."""
    app = group(HELP)
    for entry in snapshot:
        name = entry["name"]
        options = [declarations.decode_opt(doc) for doc in entry["options"]]
        loader = declarations.described(lambda name=name: _live_command(name))
        app.command(name, help=entry["help"], epilog=entry["epilog"], cls=loader)(
            build_command(f"train_{name}", options, _runner(name))
        )
    return app


def build_live() -> typer.Typer:
    """The `train` group with a command for every family registered now."""
    app = group(HELP)
    for name, help, epilog, options in _families():
        app.command(name, help=help, epilog=epilog)(build_command(f"train_{name}", options, _runner(name)))
    return app


def build() -> typer.Typer:
    """The `train` group: from the declarations snapshot where it is current, else from the registry."""
    return declarations.build("train", build_described, build_live)
