"""`facegan transfer style|features`: neural style transfer, and Latent Features Transfer synthesis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from facegan_cli.cli.common import emit_result
from facegan_cli.cli.params import (
    DEVICE,
    FORCE,
    NAMES_NOTE,
    OUTPUT_NAMES,
    OUTPUT_OPTIONS,
    declared_command,
    group,
    native,
)
from facegan_cli.cli.shared_options import OVERLAP, TILE, VGG_WEIGHTS
from facegan_cli.core.options import Opt
from facegan_cli.features.names import ACTIVATIONS, POOLS
from facegan_cli.transfer.names import LFT_INITS, NORMS, OPTIMIZERS, SYNTH_OPTIMIZERS
from facegan_cli.transfer.names import NST_INITS as INITS
from facegan_cli.transfer.names import NST_PRESETS as PRESETS

app = group("Style and feature transfer: Gatys's neural style transfer and Latent Features Transfer through a "
            "frozen VGG19, and Johnson et al.'s fast style networks.")

INPUTS = native("inputs", Annotated[list[Path], typer.Argument(
    help="Images, folders of images, or - for image paths on stdin.", show_default=False)])
OUT = Opt("out", ("--out", "-o"), Path, ..., "Folder for the results (created; written complete or not at all).")

STYLE_HELP = (
    "Neural style transfer (Gatys et al.): optimise each content image so that its VGG19 features keep the "
    "content's and its Gram matrices match the style image's.\n\n"
    "Presets reproduce a reference's losses exactly: tutorial (PyTorch's tutorial: content conv2_2, style "
    "conv1_1..conv3_1 pre-ReLU, Gram / (C H W), style weight 1e6, max pooling, L-BFGS 300, from the content, "
    "128 px on the CPU and 512 px on a GPU), gatys (Gatys's notebook: relu4_2 / relu1_1..relu5_1, Gram / (H W), "
    "style weights 1e3 / C^2, L-BFGS 500, 512 px) and thesis (seed 004: content conv3_2, style conv1_1..conv5_1 "
    "with weights 1/5, E_l = sum (G - S)^2 / (4 C^2 M^4), 1/2-sum content loss, average pooling, from noise, "
    "64 px). Every option below overrides the preset. --steps counts evaluations of the loss with L-BFGS (as "
    "the references do) and updates with Adam. Content images of the same size (short side --size, aspect "
    "kept) are optimised together on the device, --batch-size at a time. Writes OUT/NAME.png per content "
    "image and OUT/result.json (the --json document); --save-every N adds OUT/steps/NAME-STEP.png." + NAMES_NOTE
)
STYLE_EPILOG = (
    "Example: facegan transfer style --content face.jpg --style starry.jpg --out styled/\n\n"
    "Example: facegan transfer style --content faces/ --style udnie.jpg --preset gatys --size 256 "
    "--preserve-color --out styled/ --json\n\n"
    "Example: facegan transfer style --content face.jpg --style a.jpg --style b.jpg --style-blend 0.7,0.3 "
    "--optimizer adam --steps 500 --save-every 100 --out blend/"
)


# The options that are settings of the style transfer (resolve_settings: the preset's, where not given).
STYLE_SETTINGS = [
    Opt("preset", ("--preset",), str, "tutorial", f"One of: {', '.join(PRESETS)}."),
    Opt("content_weight", ("--content-weight",), float, None, "Weight of the content loss (alpha; default: the preset's)."),
    Opt("style_weight", ("--style-weight",), float, None,
        "Weight of the style loss (beta; tutorial 1e6, gatys 1e3, thesis 1e3)."),
    Opt("layer_weights", ("--layer-weights",), str, None,
        "Per style layer weights, comma-separated, in --style-layers order."),
    Opt("content_layers", ("--content-layers",), str, None, "Content layers, comma-separated (e.g. conv4_2)."),
    Opt("style_layers", ("--style-layers",), str, None,
        "Style layers, comma-separated (e.g. conv1_1,conv2_1,conv3_1,conv4_1,conv5_1)."),
    Opt("act", ("--act",), str, None, f"Which side of a layer's ReLU is measured: {', '.join(ACTIVATIONS)}."),
    Opt("norm", ("--norm",), str, None, f"Loss convention: {', '.join(NORMS)} (weights are comparable within one only)."),
    Opt("pool", ("--pool",), str, None, f"VGG19 pooling: {', '.join(POOLS)}."),
    Opt("optimizer", ("--optimizer",), str, None, f"One of: {', '.join(OPTIMIZERS)}."),
    Opt("lr", ("--lr",), float, None, "Step size (L-BFGS: 1; Adam: 0.02 on [0, 1] pixels)."),
    Opt("steps", ("--steps",), int, None, "Loss evaluations (L-BFGS) or updates (Adam); 0 only measures the initial losses."),
    Opt("init", ("--init",), str, None, f"Starting image: {', '.join(INITS)}."),
    Opt("noise_std", ("--noise-std",), float, None, "Standard deviation of the noise of --init content+noise (on [0, 1])."),
    Opt("size", ("--size",), int, None, "Short side of the content images (default: the preset's for the device)."),
    Opt("preserve_color", ("--preserve-color",), bool, False, "Luminance-only transfer: keep the content's colours."),
    Opt("style_scale", ("--style-scale",), float, None, "Style image's short side as a multiple of the content's."),
    Opt("style_blend", ("--style-blend",), str, None, "Weights of several --style images, comma-separated (default: equal)."),
    Opt("batch_size", ("--batch-size",), int, None, "Content images optimised together (default: 8 on CUDA, 1 on a "
        "CPU, where one at a time is faster)."),
    Opt("seed", ("--seed",), int, 0, "Seed of the noise initialisations."),
]


@declared_command(app, "style", [
    Opt("content", ("--content",), Path, ..., "A content image, a folder of images, or - for image paths on stdin."),
    native("styles", Annotated[list[Path], typer.Option(
        "--style", help="A style image; repeat to blend several (see --style-blend).")]),
    OUT, *STYLE_SETTINGS,
    Opt("save_every", ("--save-every",), int, None, "Also write the images every N steps into OUT/steps/."),
    VGG_WEIGHTS, FORCE, DEVICE, *OUTPUT_OPTIONS,
], help=STYLE_HELP, epilog=STYLE_EPILOG)
def style(values: dict[str, Any]) -> None:
    from facegan_cli.transfer.nst import resolve_settings, transfer_style

    settings = resolve_settings(**{opt.name: values[opt.name] for opt in STYLE_SETTINGS})
    doc = transfer_style(values["content"], values["styles"], values["out"], settings, vgg_weights=values["vgg_weights"],
                         device=values["device"], save_every=values["save_every"], force=values["force"])
    emit_result(doc, values["json"], lambda d: [
        f"{r['output']}  content {r['initial']['content']:.4g} -> {r['final']['content']:.4g}  "
        f"style {r['initial']['style_total']:.4g} -> {r['final']['style_total']:.4g}" for r in d["images"]])


FEATURES_HELP = (
    "Latent Features Transfer (seed 004): translate images into the other domain with a trained feature "
    "translator (`facegan train feature-translator`). Each input (resized and centre-cropped to the "
    "translator's size) gives its VGG19 features, the translator maps them to the target domain, and the "
    "image is optimised so that its own features match the translated ones (the thesis's loss: alpha * "
    "sum a_l E_l + beta * 1/2 sum (F - P)^2), starting from the input plus a little noise (or the input, the "
    "mean image of the training data's target or source domain, or white noise). The thesis's synthesis is "
    "100 steps at learning rate 2 (here Adam on the 0-255 pixel scale); 1000 steps turn the images greyish. "
    "Writes OUT/NAME.png per input and OUT/result.json (the --json document: losses before and after per "
    "image); --grid adds OUT/grid.png (input | result per row)." + NAMES_NOTE
)
FEATURES_EPILOG = (
    "Example: facegan transfer features --ckpt runs/lft-a2b photos/ --out paintings/ --grid\n\n"
    "Example: facegan transfer features --ckpt runs/lft-b2a portrait.png --init mean --out photo/ --json"
)


@declared_command(app, "features", [
    INPUTS,
    Opt("ckpt", ("--ckpt",), Path, ..., "A feature-translator run directory, its checkpoints/ folder or a checkpoint file."),
    OUT,
    Opt("init", ("--init",), str, "input+noise", f"Starting image: {', '.join(LFT_INITS)}."),
    Opt("steps", ("--steps",), int, 100, "Optimisation steps (0 only measures the losses).", min=0),
    Opt("optimizer", ("--optimizer",), str, "adam", f"One of: {', '.join(SYNTH_OPTIMIZERS)}."),
    Opt("lr", ("--lr",), float, 2.0, "Learning rate, on 0-255 pixels (the thesis's 2).", positive=True),
    Opt("alpha", ("--alpha",), float, None, "Style weight (default: the translator's, 1e-5)."),
    Opt("beta", ("--beta",), float, None, "Content weight (default: the translator's, 1)."),
    Opt("noise_std", ("--noise-std",), float, 0.02, "Noise of --init input+noise, on [0, 1].", non_negative=True),
    Opt("mean_domain", ("--mean-domain",), str, "target", "--init mean: the target (default) or the source domain's "
        "mean image."),
    Opt("batch_size", ("--batch-size",), int, 8, "Images optimised together.", min=1),
    Opt("seed", ("--seed",), int, 0, "Seed of the noise."),
    Opt("grid", ("--grid",), bool, False, "Also write OUT/grid.png."),
    VGG_WEIGHTS, FORCE, DEVICE, *OUTPUT_OPTIONS,
], help=FEATURES_HELP, epilog=FEATURES_EPILOG)
def features(values: dict[str, Any]) -> None:
    from facegan_cli.transfer.lft import transfer_features

    doc = transfer_features(**{key: value for key, value in values.items() if key not in OUTPUT_NAMES})
    emit_result(doc, values["json"], lambda d: [
        f"{r['output']}  loss {r['initial']['total']:.4g} -> {r['final']['total']:.4g}" for r in d["images"]])


FAST_HELP = (
    "Fast style transfer (Johnson et al.): stylise images in one pass of a fast style network, trained with "
    "`facegan train fast-style` or made from one of pytorch/examples' fast_neural_style models. Each input keeps "
    "its size and aspect ratio (--size resizes the short side first); images of equal size are stylised "
    "together, --batch-size at a time; the pixels are those of pytorch/examples' stylize (0-255 input, output "
    "clamped and truncated to uint8). --tile N stylises each image in overlapping N x N tiles blended without a "
    "seam, for images larger than memory (the InstanceNorms use statistics gathered once from the whole image "
    "at a reduced size; the output keeps the input's size). Writes OUT/NAME.png per input. "
    "Under torchrun, each process stylises its share into the one OUT." + NAMES_NOTE
)
FAST_EPILOG = (
    "Example: facegan transfer fast --ckpt runs/candy photos/ --out candy-photos/\n\n"
    "Example: find shots -name '*.jpg' | facegan transfer fast --ckpt runs/udnie - --size 512 --out udnie/ --json\n\n"
    "Example: facegan transfer fast --ckpt runs/candy panorama-8000x2000.jpg --tile 512 --out candy-big/"
)


@declared_command(app, "fast", [
    INPUTS,
    Opt("ckpt", ("--ckpt",), Path, ..., "A fast-style run directory, its checkpoints/ folder or a checkpoint file."),
    OUT,
    Opt("size", ("--size",), int, None, "Resize the short side to this first (aspect kept; default: as it is)."),
    Opt("batch_size", ("--batch-size",), int, 4, "Images of equal size (with --tile: tiles) stylised together.",
        min=1),
    TILE, OVERLAP,
    FORCE, DEVICE, *OUTPUT_OPTIONS,
], help=FAST_HELP, epilog=FAST_EPILOG)
def fast(values: dict[str, Any]) -> None:
    from facegan_cli.apply.stylize import stylize_files

    doc = stylize_files(values["ckpt"], values["inputs"], values["out"], size=values["size"],
                        batch_size=values["batch_size"], device=values["device"], force=values["force"],
                        tile=values["tile"], overlap=values["overlap"])
    emit_result(doc, values["json"], lambda d: [r["output"] for r in d["outputs"]])
