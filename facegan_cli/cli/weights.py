"""`facegan weights list|fetch|import|verify`: the pretrained files some commands need."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from facegan_cli.cli.common import DebugOpt, JsonOpt, QuietOpt, command, emit_json, emit_line, result_console
from facegan_cli.core import weights as W

app = typer.Typer(help="Manage pretrained weights (FID Inception, VGG19, face-alignment).", no_args_is_help=True)

KeyArg = Annotated[str, typer.Argument(help=f"One of: {', '.join(W.KNOWN)}.")]


@app.command("list", epilog="Example: facegan weights list --json")
@command
def list_(json_: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False) -> None:
    """List known weights, their file names, URLs and where a local copy was found."""
    doc = W.listing()
    if json_:
        emit_json(doc)
        return
    table = Table("key", "file", "local copy", "used by")
    for r in doc["weights"]:
        table.add_row(r["key"], r["file"], r["path"] or "[red]missing[/red]", r["used_by"])
    result_console().print(table)


@app.command("fetch", epilog="Example: facegan weights fetch fid-inception")
@command
def fetch(key: KeyArg, json_: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False) -> None:
    """Download weights into $FACEGAN_HOME/weights (reusing a torch hub copy if present) and verify them."""
    path = W.require(key)
    emit_json({"key": key, "path": str(path)}) if json_ else emit_line(str(path))


@app.command("import", epilog="Example: facegan weights import fid-inception ~/Downloads/pt_inception-2015-12-05-6726825d.pth")
@command
def import_(
    key: KeyArg,
    path: Annotated[Path, typer.Argument(help="A downloaded copy of the file.")],
    json_: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
) -> None:
    """Verify a downloaded file's SHA-256 prefix and copy it into the cache."""
    target = W.import_file(W.get(key), path)
    emit_json({"key": key, "path": str(target)}) if json_ else emit_line(str(target))


@app.command("verify", epilog="Example: facegan weights verify fid-inception")
@command
def verify(
    key: KeyArg,
    path: Annotated[Path | None, typer.Argument(help="File to check (default: the cached copy).")] = None,
    json_: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
) -> None:
    """Check that a weights file is the expected one (SHA-256 prefix); exit 1 if not."""
    target, sha = W.check(key, path)
    emit_json({"key": key, "path": str(target), "sha256": sha, "ok": True}) if json_ else emit_line(f"{target} {sha}")
