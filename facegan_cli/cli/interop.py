"""`facegan import` (other projects' checkpoints -> a facegan run) and `facegan export` (a run's network ->
ONNX / TorchScript): the library's interop/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facegan_cli.cli.common import emit_result
from facegan_cli.cli.shared_options import REPORT, shared_options
from facegan_cli.interop.export import FORMATS, export_run
from facegan_cli.interop.importer import describe_sources, examples, import_models, source_names
from facegan_cli.interop.sources import ImportRequest

IMPORT_HELP = (
    "Import checkpoints released by (or trained with) other projects (junyanz CycleGAN, yunjey StarGAN, "
    "pytorch/examples DCGAN) as a facegan run.\n\n"
    "The run is one that "
    "translate, edit, sample, latent, metrics --ckpt, explain and export use like a trained one, and `train "
    "FAMILY --resume RUN --data ...` fine-tunes (fresh optimisers). The project and the architecture are "
    "read from the file names and tensor shapes; files are read as tensors only (torch.load weights_only), "
    "never unpickled, and a file that needs its project's classes is refused with the reason. config.json "
    "records each file's SHA-256 and what was inferred. Reads: " + describe_sources() + "."
)
IMPORT_EPILOG = "\n\n".join(f"Example: {line}" for line in examples())
EXPORT_HELP = (
    "Export a run's network to ONNX or TorchScript, checked against the network in facegan.\n\n"
    "A generator is exported as z -> image, a translator as image -> image "
    "(one direction, any height and width that are multiples of 4), an editor as (image, target labels) -> "
    "image. The file is loaded back (onnxruntime, torch.jit.load), run on a probe input and compared with the "
    "network in facegan: the largest difference is printed, and above 1e-4 the command fails and leaves no "
    "file. ONNX needs the [export] extra (onnx, onnxruntime)."
)
EXPORT_EPILOG = (
    "Example: facegan export runs/monet --format onnx --out monet.onnx\n\n"
    "Example: facegan export runs/photo2painting --format torchscript --net G_B --out photo.pt\n\n"
    "Example: facegan export runs/dcgan --format onnx --json"
)


@shared_options("force", *REPORT)
def import_(
    force: bool, json_out: bool,
    files: Annotated[list[Path], typer.Argument(help="Checkpoint files, or the folder that holds them.",
                                                show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="The run directory to write (created).")],
    family: Annotated[str | None, typer.Option(
        "--family", help=f"The family (or source project) the files must be: {', '.join(source_names())} "
        "(default: detected).")] = None,
    direction: Annotated[str | None, typer.Option(
        "--direction", help="A one-direction translator (latest_net_G.pth): a2b (default) or b2a.")] = None,
    attrs: Annotated[str | None, typer.Option(
        "--attrs", help="An editor's attribute names in its label order, comma-separated (default: its "
        "project's).")] = None,
    epoch: Annotated[str | None, typer.Option(
        "--epoch", help="Which saved epoch (or iteration) of a folder: latest (default where saved) or N.")] = None,
) -> None:
    request = ImportRequest(family=family, direction=direction, epoch=epoch,
                            attrs=tuple(a.strip() for a in attrs.split(",")) if attrs is not None else None)
    doc = import_models(files, out, request, force)
    emit_result(doc, json_out, lambda d: [d["run"], *(f"note: {n}" for n in d["notes"]), f"use: {d['use']}"])


@shared_options("device", "force", *REPORT)
def export(
    device: str, force: bool, json_out: bool,
    run: Annotated[Path, typer.Argument(help="Run directory, checkpoints/ folder or checkpoint file.")],
    format_: Annotated[str, typer.Option("--format", help=f"{' or '.join(FORMATS)}.")] = "onnx",
    net: Annotated[str | None, typer.Option(
        "--net", help="Which network (default: the sampling G; G_A for a translator; G for an editor).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="The file to write (default: RUN/export/NET.onnx or .pt).")] = None,
) -> None:
    doc = export_run(run, format_, net, out, force=force, device=device)
    emit_result(doc, json_out, lambda d: [d["file"], f"largest difference to eager: {d['max_abs_diff']:.3g}"])
