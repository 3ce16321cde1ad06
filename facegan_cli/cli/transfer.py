"""`facegan transfer style|features`: neural style transfer, and Latent Features Transfer synthesis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facegan_cli.cli.common import emit_result
from facegan_cli.cli.options import OUTPUT, shared_command
from facegan_cli.cli.params import group
from facegan_cli.features.vgg19 import ACTIVATIONS, POOLS
from facegan_cli.transfer.lft import INITS as LFT_INITS
from facegan_cli.transfer.lft import SYNTH_OPTIMIZERS, transfer_features
from facegan_cli.transfer.losses import NORMS
from facegan_cli.transfer.nst import INITS, PRESETS, resolve_settings, transfer_style
from facegan_cli.transfer.optimize import OPTIMIZERS

app = group("Style and feature transfer through a frozen VGG19: Gatys's neural style transfer, and Latent "
    "Features Transfer with a trained feature translator.")

OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder for the results (created; written complete or not "
                                      "at all).")]

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
    "image and OUT/result.json (the --json document); --save-every N adds OUT/steps/NAME-STEP.png."
)
STYLE_EPILOG = (
    "Example: facegan transfer style --content face.jpg --style starry.jpg --out styled/\n\n"
    "Example: facegan transfer style --content faces/ --style udnie.jpg --preset gatys --size 256 "
    "--preserve-color --out styled/ --json\n\n"
    "Example: facegan transfer style --content face.jpg --style a.jpg --style b.jpg --style-blend 0.7,0.3 "
    "--optimizer adam --steps 500 --save-every 100 --out blend/"
)


@shared_command(app, "style", "vgg_weights", "force", *OUTPUT, help=STYLE_HELP, epilog=STYLE_EPILOG)
def style(
    vgg_weights: Path | None, force: bool, device: str, json_out: bool,
    content: Annotated[Path, typer.Option(
        "--content", help="A content image, a folder of images, or - for image paths on stdin.")],
    style_images: Annotated[list[Path], typer.Option(
        "--style", help="A style image; repeat to blend several (see --style-blend).")],
    out: OutOpt,
    preset: Annotated[str, typer.Option("--preset", help=f"One of: {', '.join(PRESETS)}.")] = "tutorial",
    content_weight: Annotated[float | None, typer.Option(
        "--content-weight", help="Weight of the content loss (alpha; default: the preset's).")] = None,
    style_weight: Annotated[float | None, typer.Option(
        "--style-weight", help="Weight of the style loss (beta; tutorial 1e6, gatys 1e3, thesis 1e3).")] = None,
    layer_weights: Annotated[str | None, typer.Option(
        "--layer-weights", help="Per style layer weights, comma-separated, in --style-layers order.")] = None,
    content_layers: Annotated[str | None, typer.Option(
        "--content-layers", help="Content layers, comma-separated (e.g. conv4_2).")] = None,
    style_layers: Annotated[str | None, typer.Option(
        "--style-layers", help="Style layers, comma-separated (e.g. conv1_1,conv2_1,conv3_1,conv4_1,conv5_1).")] = None,
    act: Annotated[str | None, typer.Option(
        "--act", help=f"Which side of a layer's ReLU is measured: {', '.join(ACTIVATIONS)}.")] = None,
    norm: Annotated[str | None, typer.Option(
        "--norm", help=f"Loss convention: {', '.join(NORMS)} (weights are comparable within one only).")] = None,
    pool: Annotated[str | None, typer.Option("--pool", help=f"VGG19 pooling: {', '.join(POOLS)}.")] = None,
    optimizer: Annotated[str | None, typer.Option("--optimizer", help=f"One of: {', '.join(OPTIMIZERS)}.")] = None,
    lr: Annotated[float | None, typer.Option(
        "--lr", help="Step size (L-BFGS: 1; Adam: 0.02 on [0, 1] pixels).")] = None,
    steps: Annotated[int | None, typer.Option(
        "--steps", help="Loss evaluations (L-BFGS) or updates (Adam); 0 only measures the initial losses.")] = None,
    init: Annotated[str | None, typer.Option("--init", help=f"Starting image: {', '.join(INITS)}.")] = None,
    noise_std: Annotated[float | None, typer.Option(
        "--noise-std", help="Standard deviation of the noise of --init content+noise (on [0, 1]).")] = None,
    size: Annotated[int | None, typer.Option(
        "--size", help="Short side of the content images (default: the preset's for the device).")] = None,
    preserve_color: Annotated[bool, typer.Option(
        "--preserve-color", help="Luminance-only transfer: keep the content's colours.")] = False,
    style_scale: Annotated[float | None, typer.Option(
        "--style-scale", help="Style image's short side as a multiple of the content's.")] = None,
    style_blend: Annotated[str | None, typer.Option(
        "--style-blend", help="Weights of several --style images, comma-separated (default: equal).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Content images optimised together.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the noise initialisations.")] = 0,
    save_every: Annotated[int | None, typer.Option(
        "--save-every", help="Also write the images every N steps into OUT/steps/.")] = None,
) -> None:
    settings = resolve_settings(
        preset, content_weight=content_weight, style_weight=style_weight, layer_weights=layer_weights,
        content_layers=content_layers, style_layers=style_layers, act=act, norm=norm, pool=pool,
        optimizer=optimizer, lr=lr, steps=steps, init=init, noise_std=noise_std, size=size,
        preserve_color=preserve_color, style_scale=style_scale, style_blend=style_blend, batch_size=batch_size,
        seed=seed,
    )
    doc = transfer_style(content, style_images, out, settings, vgg_weights=vgg_weights, device=device,
                         save_every=save_every, force=force)
    emit_result(doc, json_out, lambda d: [
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
    "image); --grid adds OUT/grid.png (input | result per row)."
)
FEATURES_EPILOG = (
    "Example: facegan transfer features --ckpt runs/lft-a2b photos/ --out paintings/ --grid\n\n"
    "Example: facegan transfer features --ckpt runs/lft-b2a portrait.png --init mean --out photo/ --json"
)


@shared_command(app, "features", "vgg_weights", "force", *OUTPUT, help=FEATURES_HELP, epilog=FEATURES_EPILOG)
def features(
    vgg_weights: Path | None, force: bool, device: str, json_out: bool,
    inputs: Annotated[list[Path], typer.Argument(
        help="Images, folders of images, or - for image paths on stdin.", show_default=False)],
    ckpt: Annotated[Path, typer.Option(
        "--ckpt", help="A feature-translator run directory, its checkpoints/ folder or a checkpoint file.")],
    out: OutOpt,
    init: Annotated[str, typer.Option(
        "--init", help=f"Starting image: {', '.join(LFT_INITS)}.")] = "input+noise",
    steps: Annotated[int, typer.Option("--steps", help="Optimisation steps (0 only measures the losses).")] = 100,
    optimizer: Annotated[str, typer.Option(
        "--optimizer", help=f"One of: {', '.join(SYNTH_OPTIMIZERS)}.")] = "adam",
    lr: Annotated[float, typer.Option("--lr", help="Learning rate, on 0-255 pixels (the thesis's 2).")] = 2.0,
    alpha: Annotated[float | None, typer.Option(
        "--alpha", help="Style weight (default: the translator's, 1e-5).")] = None,
    beta: Annotated[float | None, typer.Option(
        "--beta", help="Content weight (default: the translator's, 1).")] = None,
    noise_std: Annotated[float, typer.Option(
        "--noise-std", help="Noise of --init input+noise, on [0, 1].")] = 0.02,
    mean_domain: Annotated[str, typer.Option(
        "--mean-domain", help="--init mean: the target (default) or the source domain's mean image.")] = "target",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images optimised together.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the noise.")] = 0,
    grid: Annotated[bool, typer.Option("--grid", help="Also write OUT/grid.png.")] = False,
) -> None:
    doc = transfer_features(
        ckpt, inputs, out, init=init, steps=steps, optimizer=optimizer, lr=lr, alpha=alpha, beta=beta,
        noise_std=noise_std, mean_domain=mean_domain, batch_size=batch_size, seed=seed, grid=grid,
        vgg_weights=vgg_weights, device=device, force=force,
    )
    emit_result(doc, json_out, lambda d: [
        f"{r['output']}  loss {r['initial']['total']:.4g} -> {r['final']['total']:.4g}" for r in d["images"]])
