"""`facegan explain`: guided backpropagation of a discriminator's filters, or the colour-change heat map of
edits (with --edited)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facegan_cli.cli.common import emit_result
from facegan_cli.cli.shared_options import REPORT, FigureOpt, shared_options
from facegan_cli.core.errors import UsageProblem
from facegan_cli.evaluation.explain import REDUCTIONS, color_change_figure, guided_backprop_figure

HELP = (
    "Look inside a model: guided backpropagation of a discriminator's filters (--ckpt), or the colour-change "
    "heat map of edits (--edited).\n\n"
    "With --ckpt: guided backpropagation (Springenberg et al.) of the discriminator's "
    "filters, as seed 001's Figure 7: one row per input, the input beside each filter's guided gradient (the "
    "gradient of the filter's summed response w.r.t. the image, every ReLU/LeakyReLU passing back only positive "
    "gradients where its input was positive), rescaled to [0, 1] per image. Works for any family with a "
    "discriminator; inputs are resized (short side) and centre-cropped to its resolution. --layer names a module "
    "of D (default: its last convolution with several filters; an unknown name lists them). With --edited: seed "
    "000's colour-change heat map, one row per input: the input, then each edit and the per-pixel colour "
    "change |edit - input| on one scale for the whole figure (--scale fixes it)."
)
EPILOG = (
    "Example: facegan explain --ckpt runs/heikka32 --input faces/ --layer main.5 --filters 0,5,9 --out grid.png\n\n"
    "Example: facegan explain --input faces/ --edited stargan-blond/ --edited ccagan-blond/ --out heat.png"
)


@shared_options("device", "force", *REPORT)
def explain(
    device: str, force: bool, json_out: bool,
    input_: Annotated[Path, typer.Option("--input", help="An image, a folder of images, or - for paths on stdin.")],
    out: FigureOpt,
    ckpt: Annotated[Path | None, typer.Option(
        "--ckpt", help="Run directory, checkpoints folder or checkpoint file whose discriminator is explained.")] = None,
    layer: Annotated[str | None, typer.Option("--layer", help="Module of the discriminator (e.g. main.5).")] = None,
    filters: Annotated[str | None, typer.Option(
        "--filters", help="Filters of the layer, comma-separated (default: 0,1,2,3).")] = None,
    net: Annotated[str | None, typer.Option(
        "--net", help="Which discriminator of the checkpoint (default: D; e.g. D_A for CycleGAN).")] = None,
    reduce: Annotated[str, typer.Option(
        "--reduce", help=f"A filter's response: the sum or the max of its map ({', '.join(REDUCTIONS)}).")] = "sum",
    plain: Annotated[bool, typer.Option(
        "--plain", help="Plain gradients instead of guided backpropagation (for comparison).")] = False,
    edited: Annotated[list[Path] | None, typer.Option(
        "--edited", help="Edits of the inputs (a file, or a folder named like `facegan edit` writes); repeat to "
        "compare models. Draws the colour-change heat map instead.")] = None,
    scale: Annotated[float | None, typer.Option(
        "--scale", help="Heat map: the change drawn as white (default: the figure's largest).")] = None,
) -> None:
    if edited:
        if ckpt is not None or layer is not None or filters is not None or net is not None or plain:
            raise UsageProblem("--edited draws the colour-change heat map; --ckpt, --layer, --filters, --net and "
                               "--plain belong to guided backpropagation.", "Use one or the other.")
        doc = color_change_figure(input_, edited, out, scale=scale, force=force)
    else:
        if ckpt is None:
            raise UsageProblem("`facegan explain` needs --ckpt (guided backpropagation) or --edited (heat map).",
                               f"{EPILOG.splitlines()[0]}")
        if scale is not None:
            raise UsageProblem("--scale belongs to the heat map (--edited).", "Leave --scale out.")
        doc = guided_backprop_figure(ckpt, input_, out, layer=layer, filters=filters, net_name=net, reduce=reduce,
                                     plain=plain, device=device, force=force)
    emit_result(doc, json_out, lambda d: [d["out"]])
