"""`facegan weights list|fetch|import|verify`: the pretrained files some commands need."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facegan_cli.cli.common import emit_result, result_table
from facegan_cli.cli.params import group
from facegan_cli.cli.shared_options import REPORT, shared_command
from facegan_cli.core import weights as W

app = group("Manage pretrained weights (FID Inception, VGG19, face-alignment).")

KeyArg = Annotated[str, typer.Argument(help=f"One of: {', '.join(W.KNOWN)}.")]


@shared_command(app, "list", *REPORT, epilog="Example: facegan weights list --json")
def list_(json_out: bool) -> None:
    """List known weights, their file names, URLs and where a local copy was found."""
    doc = W.listing()
    rows = [(r["key"], r["file"], r["path"] or "[red]missing[/red]", r["used_by"]) for r in doc["weights"]]
    emit_result(doc, json_out, lambda _: result_table(None, ("key", "file", "local copy", "used by"), rows))


@shared_command(app, "fetch", *REPORT, epilog="Example: facegan weights fetch fid-inception")
def fetch(json_out: bool, key: KeyArg) -> None:
    """Download weights into $FACEGAN_HOME/weights (reusing a torch hub copy if present) and verify them."""
    path = W.require(key)
    emit_result({"key": key, "path": str(path)}, json_out, lambda _: [path])


@shared_command(app, "import", *REPORT, epilog="Example: facegan weights import fid-inception ~/Downloads/pt_inception-2015-12-05-6726825d.pth")
def import_(
    json_out: bool, key: KeyArg, path: Annotated[Path, typer.Argument(help="A downloaded copy of the file.")]
) -> None:
    """Verify a downloaded file's SHA-256 prefix and copy it into the cache."""
    target = W.import_file(W.get(key), path)
    emit_result({"key": key, "path": str(target)}, json_out, lambda _: [target])


@shared_command(app, "verify", *REPORT, epilog="Example: facegan weights verify fid-inception")
def verify(
    json_out: bool, key: KeyArg,
    path: Annotated[Path | None, typer.Argument(help="File to check (default: the cached copy).")] = None,
) -> None:
    """Check that a weights file is the expected one (SHA-256 prefix); exit 1 if not."""
    target, sha = W.check(key, path)
    emit_result({"key": key, "path": str(target), "sha256": sha, "ok": True}, json_out, lambda _: [f"{target} {sha}"])
