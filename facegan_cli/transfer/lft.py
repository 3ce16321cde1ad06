"""Latent Features Transfer (seed 004 §3.1, §4.2.1, §4.3): its loss, feature synthesis, and measurements.

Features are keyed by translator name (models.feature_translator.feature_keys): "content" (conv3_2 by
default) and "style_conv1_1" ... "style_conv5_1". In the thesis's notation (T:582),

    L = alpha * L_style + beta * L_content,
    L_content = 1/2 sum (F_c - P_c)^2,   L_style = sum_l a_l E_l(Gram(F_l), Gram(P_l)),

with the thesis's E_l (transfer.losses, norm "thesis"), a = (0.5, 1, 1.5, 3, 4) and alpha = 1e-5, beta = 1
(style/content = 1e-5, T:725). The same loss trains the translators (F = T(z(x)), P = z(y)) and drives
synthesis (F = z(x_hat), P = T(z(x)) fixed).

Synthesis (T:590, T:753-779): start from the input plus N(0, noise_std) noise (DEFAULT 0.02 on [0, 1]), the
input, the mean image of the target (or source) domain, or white noise; minimise L over the pixels only, by
DEFAULT with Adam at lr 2 on the 0-255 pixel scale for 100 steps (the thesis: lr 2, 100 steps; 1000 turn the
image greyish), clamped to [0, 255].
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from facegan_cli.core.atomic import write_json
from facegan_cli.core.device import resolve_device
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.naming import output_names
from facegan_cli.core.outputs import check_new_folder, check_outside_inputs, staged_folder
from facegan_cli.core.progress import Progress, log
from facegan_cli.data.crops import center_crop, resize_short_side
from facegan_cli.data.grid import grid_array, save_png, to_uint8
from facegan_cli.data.imageio import RejectedImage, display_name, open_rgb
from facegan_cli.data.sources import open_image_list
from facegan_cli.features.vgg19 import VGG19Extractor, layer_tap, recorded_extractor
from facegan_cli.transfer.names import LFT_INITS as INITS
from facegan_cli.transfer.names import SYNTH_OPTIMIZERS as SYNTH_OPTIMIZERS
from facegan_cli.transfer.optimize import LossTerms, Objective, Optimized, optimize
from facegan_cli.transfer.style_losses import content_error, gram, style_error

FEATURES_KIND = "feature-transfer"  # core.outputs marker of `transfer features` folders
GRID_NAME = "grid.png"  # the contact sheet of --grid (no input's output is ever given this name)


# --- the loss -------------------------------------------------------------------------------------------


def feature_taps(config: Mapping[str, Any]) -> dict[str, str]:
    """Translator name -> VGG19 tap (the configured activation side)."""
    from facegan_cli.models.feature_translator import feature_keys

    return {name: layer_tap(layer, str(config["act"])) for name, layer in feature_keys(dict(config)).items()}


def extract(extractor: VGG19Extractor, images: torch.Tensor, taps: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """{translator name: features} of images (N x 3 x R x R in [0, 1])."""
    found = extractor(images, list(dict.fromkeys(taps.values())))
    return {name: found[tap] for name, tap in taps.items()}


def lft_terms(
    features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], config: Mapping[str, Any],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Unweighted (L_content, {style layer: E_l}) per image between features and target features."""
    content = content_error(features["content"], targets["content"], "thesis")
    style: dict[str, torch.Tensor] = {}
    for layer in config["style_layers"]:
        f, p = features[f"style_{layer}"], targets[f"style_{layer}"]
        style[layer] = style_error(gram(f, "thesis"), gram(p, "thesis"), "thesis", f.shape[-2] * f.shape[-1])
    return content, style


def lft_loss(
    features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], config: Mapping[str, Any],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L, L_content, L_style) per image: L = alpha L_style + beta L_content (see the module docstring)."""
    content, style = lft_terms(features, targets, config)
    weighted = sum((float(a) * style[layer] for layer, a in zip(config["style_layers"], config["style_layer_weights"],
                                                                 strict=True)), torch.zeros_like(content))
    return float(config["alpha"]) * weighted + float(config["beta"]) * content, content, weighted


# --- synthesis ------------------------------------------------------------------------------------------


def synthesis_objective(
    extractor: VGG19Extractor, targets: Mapping[str, torch.Tensor], config: Mapping[str, Any],
) -> Objective:
    """The objective of images towards target features (N per name): the thesis's L as an Objective."""
    taps = feature_taps(config)
    grams = {taps[f"style_{layer}"]: gram(targets[f"style_{layer}"].detach(), "thesis")
             for layer in config["style_layers"]}
    content_tap = taps["content"]
    return Objective(
        extractor, "thesis", [content_tap], [taps[f"style_{layer}"] for layer in config["style_layers"]],
        {content_tap: targets["content"].detach()}, grams, float(config["beta"]), float(config["alpha"]),
        [float(a) for a in config["style_layer_weights"]], list(config["style_layers"]),
    )


def starting_image(
    source: torch.Tensor, init: str, noise_std: float, generator: torch.Generator, mean: torch.Tensor | None = None,
) -> torch.Tensor:
    """The starting image of synthesis in [0, 1]: the input (+ noise), a domain's mean image, or white noise."""
    if init == "input":
        return source.clone()
    if init == "input+noise":
        return (source + noise_std * torch.randn(source.shape, generator=generator).to(source.device)).clamp(0, 1)
    if init == "mean":
        if mean is None:
            raise FaceganError("--init mean needs a mean image.", "Use a checkpoint that trained, or another --init.")
        return mean.to(source.device).expand_as(source).clone()
    if init == "noise":
        return torch.rand(source.shape, generator=generator).to(source.device)
    raise FaceganError(f"--init {init!r} is not a synthesis start.", f"Use one of: {', '.join(INITS)}.")


def synthesize(
    extractor: VGG19Extractor, targets: Mapping[str, torch.Tensor], config: Mapping[str, Any], start: torch.Tensor,
    steps: int = 100, optimizer: str = "adam", lr: float = 2.0, on_eval: Any = None,
) -> Optimized:
    """Images (from `start`, N x 3 x R x R in [0, 1]) whose features approach `targets`: the pixels are
    optimised on the 0-255 scale, the scale of the thesis's learning rate (L-BFGS, which takes no learning
    rate of that kind and whose curvature threshold is absolute, on [0, 1])."""
    objective = synthesis_objective(extractor, targets, config)
    if optimizer == "lbfgs":
        return optimize(objective, start, steps, optimizer, lr, 1.0, None, on_eval)
    return optimize(objective, start * 255.0, steps, optimizer, lr, 255.0, _from_255, on_eval)


def _from_255(x: torch.Tensor) -> torch.Tensor:
    return x / 255.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image between images in [0, 1] (N x 3 x H x W)."""
    mse = (a.float() - b.float()).square().flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp(min=1e-12))


# --- measurements ---------------------------------------------------------------------------------------


def feature_distances(
    extractor: VGG19Extractor, translator: torch.nn.Module, config: Mapping[str, Any], sources: torch.Tensor,
    targets: torch.Tensor, batch_size: int = 16,
) -> dict[str, Any]:
    """How close translated features come to the true targets' features, against the untranslated ones: the
    mean per pair of L, L_content and alpha-free weighted L_style for T(z(x)) vs z(y) and for z(x) vs z(y)."""
    taps = feature_taps(config)
    sums = {kind: np.zeros(3) for kind in ("translated", "untranslated")}
    with torch.no_grad():
        for start in range(0, sources.shape[0], batch_size):
            zs = extract(extractor, sources[start : start + batch_size], taps)
            zt = extract(extractor, targets[start : start + batch_size], taps)
            for kind, feats in (("translated", translator(zs)), ("untranslated", zs)):
                total, content, style = lft_loss(feats, zt, config)
                sums[kind] += [float(total.sum()), float(content.sum()), float(style.sum())]
    n = max(1, sources.shape[0])
    report = {kind: {"loss": v[0] / n, "content": v[1] / n, "style": v[2] / n} for kind, v in sums.items()}
    report["pairs"] = int(sources.shape[0])
    return report


# --- `facegan transfer features` ------------------------------------------------------------------------


def fit_input(path: Path, resolution: int) -> torch.Tensor:
    """An input image as the translator's 1 x 3 x R x R square in [0, 1] (short side resized, centre crop)."""
    try:
        image = open_rgb(path)
        if image.size != (resolution, resolution):  # the resize is bounded (data.imageio.check_work_size)
            image = center_crop(resize_short_side(image, resolution, Image.BICUBIC), resolution)
    except RejectedImage as exc:
        raise FaceganError(f"{display_name(path)} cannot be used as an image: {exc.reason}. Nothing was written.",
                           "Pass JPEG/PNG images (or a folder of them).") from None
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)[None].float() / 255.0


def transfer_features(
    ckpt: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    init: str = "input+noise",
    steps: int = 100,
    optimizer: str = "adam",
    lr: float = 2.0,
    alpha: float | None = None,
    beta: float | None = None,
    noise_std: float = 0.02,
    mean_domain: str = "target",
    batch_size: int = 8,
    seed: int = 0,
    grid: bool = False,
    vgg_weights: str | os.PathLike[str] | None = None,
    device: str = "auto",
    force: bool = False,
) -> dict[str, Any]:
    """`facegan transfer features`: each input translated into the checkpoint's target domain by synthesis
    towards its translated features; writes OUT/NAME.png (and OUT/grid.png: input | result per row)."""
    from facegan_cli.models.feature_translator import load_feature_translator

    if not inputs:
        raise FaceganError("No input image was given.", "Pass image files, folders, or - for paths on stdin.")
    if init not in INITS:
        raise FaceganError(f"--init {init!r} is not a synthesis start.", f"Use one of: {', '.join(INITS)}.")
    if optimizer not in SYNTH_OPTIMIZERS:
        raise FaceganError(f"--optimizer {optimizer!r} is not one of {', '.join(SYNTH_OPTIMIZERS)}.",
                           f"Use one of: {', '.join(SYNTH_OPTIMIZERS)}.")
    if mean_domain not in ("target", "source"):
        raise FaceganError(f"--mean-domain {mean_domain!r} is not target or source.", "Use target or source.")
    for name, value, low in (("--steps", steps, 0), ("--batch-size", batch_size, 1)):
        if value < low:
            raise UsageProblem(f"{name} {value} must be at least {low}.", f"Pass a valid {name}.")
    if not (np.isfinite(lr) and lr > 0) or not (np.isfinite(noise_std) and noise_std >= 0):
        raise UsageProblem("--lr must be positive and --noise-std at least 0.", "Pass valid values.")
    check_outside_inputs(out, [("--ckpt", ckpt), *(("INPUT", i) for i in inputs)])
    check_new_folder(out, force, FEATURES_KIND)
    torch_device = resolve_device(device)
    model = load_feature_translator(ckpt, torch_device)
    config = dict(model.config)
    if alpha is not None:
        config["alpha"] = alpha
    if beta is not None:
        config["beta"] = beta
    files = [Path(entry) for item in inputs for entry in open_image_list(item, option="INPUT").entries]
    # OUT/NAME.png per input, never OUT/grid.png (the contact sheet) nor another input's name.
    names = output_names(files, reserved=(GRID_NAME,) if grid else ())
    pictures = [fit_input(p, model.resolution) for p in files]  # every input decoded before any output
    extractor = trained_extractor(model.config, vgg_weights, torch_device)
    mean = model.mean_image(mean_domain) if init == "mean" else None
    generator = torch.Generator().manual_seed(seed)
    taps = feature_taps(config)
    records: list[dict[str, Any]] = []
    rows: list[np.ndarray] = []
    seconds, evaluations = 0.0, 0
    out = Path(out)
    log(f"latent features transfer ({model.direction}): {len(files)} image(s) at {model.resolution} px, {optimizer} "
        f"lr {lr:g} for {steps} steps from {init}")
    with staged_folder(out, force, FEATURES_KIND) as staging, \
            Progress(steps * ((len(files) + batch_size - 1) // batch_size), "feature transfer", unit="step") as bar:
        for start in range(0, len(files), batch_size):
            source = torch.cat(pictures[start : start + batch_size]).to(torch_device)
            with torch.no_grad():
                targets = model.translate(extract(extractor, source, taps))
            first = starting_image(source, init, noise_std, generator, mean)

            def on_eval(count: int, image: torch.Tensor, terms: LossTerms) -> None:
                bar.advance(1, info=terms.summary() if count % 10 == 0 or count == 1 else None)

            result = synthesize(extractor, targets, config, first, steps, optimizer, lr, on_eval)
            seconds += result.seconds
            evaluations = max(evaluations, result.evaluations)
            pixels = to_uint8(result.images, (0.0, 1.0))
            inputs_u8 = to_uint8(source, (0.0, 1.0))
            for k, path in enumerate(files[start : start + batch_size]):
                name = names[start + k]
                save_png(pixels[k], staging / name)
                rows += [inputs_u8[k], pixels[k]]
                records.append({"input": str(path), "output": str(out / name),
                                "initial": result.initial.record(k), "final": result.final.record(k)})
        if grid:
            save_png(grid_array(np.stack(rows), nrow=2), staging / GRID_NAME)
        doc = {
            "out": str(out), "checkpoint": str(model.path), "step": model.step, "direction": model.direction,
            "resolution": model.resolution,
            "settings": {"init": init, "steps": steps, "optimizer": optimizer, "lr": lr, "noise_std": noise_std,
                         "mean_domain": mean_domain, "alpha": config["alpha"], "beta": config["beta"],
                         "content_layer": config["content_layer"], "style_layers": list(config["style_layers"]),
                         "style_layer_weights": list(config["style_layer_weights"]), "pixel_scale": 255,
                         "seed": seed},
            "vgg19": {"path": str(extractor.weights.path), "sha256": extractor.weights.sha256,
                      "verified": extractor.weights.verified, "pool": config["pool"]},
            "steps": evaluations, "seconds": seconds, "images": records,
            "grid": str(out / GRID_NAME) if grid else None,
        }
        write_json(staging / "result.json", doc)
    return doc


def trained_extractor(
    config: Mapping[str, Any], vgg_weights: str | os.PathLike[str] | None, device: torch.device,
) -> VGG19Extractor:
    """The VGG19 a translator was trained on: the weights must have the SHA-256 its run recorded."""
    return recorded_extractor(vgg_weights, device, str(config["pool"]), config.get("vgg_sha256"),
                              "this translator was trained on", "Pass the training run's VGG19 file with --vgg-weights.")
