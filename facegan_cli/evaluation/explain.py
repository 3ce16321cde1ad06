"""`facegan explain`: what a discriminator's filters respond to, and where an edit changed the colours.

Guided backpropagation (Springenberg et al. 2015), as seed 001's Figure 7 shows it for its DCGAN's
discriminator: the gradient of one filter's response with respect to the input image, where every
rectifier passes back only positive gradients, and only where its input was positive:

    ReLU:       R_in = (x > 0) * max(R_out, 0)
    LeakyReLU:  R_in = (1 if x > 0 else slope) * max(R_out, 0)   (its own derivative, gated by the gradient sign)

A filter's response is the sum of its activation map (`reduce` "sum", DEFAULT) or its largest value ("max")
at the layer named by `layer` (a module of the discriminator, as `named_modules` names it; default: its
last convolution with more than one output channel). The rectifiers are intercepted wherever the network
calls them (nn.ReLU / nn.LeakyReLU modules and the functional F.relu / F.leaky_relu alike), so any
family's discriminator works without changes; the pass stops at the layer. Each gradient is shown as an
image after a min-max rescaling to [0, 1] per image (its colours are the gradient's RGB channels). A
translator whose D is conditional (its declared `conditional_d`, pix2pix) judges an input with its
translation: the D reads (input, G(input)) stacked on the channels, and the gradient shown is the one with
respect to the translation.

The colour-change heat map (seed 000's Figure 7): for an input and its edit(s), the per-pixel colour
distance |edit - input| (Euclidean in RGB, divided by its largest possible value 255 * sqrt(3)) drawn with a
black-red-yellow-white map on one scale for the whole figure (its largest change, or `scale`), so models
put side by side are compared on the same scale. An input larger than its edit is first resized (short side)
and centre-cropped to the edit's size, as `facegan edit` fits it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.overrides import TorchFunctionMode

from facegan_cli.core.checkpoint import load_checkpoint
from facegan_cli.core.device import resolve_device
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.outputs import check_outside_inputs
from facegan_cli.data.crops import center_crop, resize_short_side
from facegan_cli.data.figure import check_figure_outputs, labelled_grid, write_figure
from facegan_cli.data.grid import to_uint8
from facegan_cli.data.imageio import RejectedImage, display_name, open_rgb
from facegan_cli.data.sources import open_image_list
from facegan_cli.models.loading import build_from, family_of, load_model, load_weights, value_range_of

REDUCTIONS = ("sum", "max")


class _GuidedRectifier(torch.autograd.Function):
    """max(x, 0) or leaky_relu(x, slope) forward; backward gated by the input's and the gradient's sign."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, slope: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.slope = slope
        return torch.where(x > 0, x, x * slope)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        local = torch.where(x > 0, torch.ones_like(x), torch.full_like(x, ctx.slope))
        return local * grad.clamp(min=0), None


_RELUS = {F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_, F.relu_}
_LEAKY = {F.leaky_relu, F.leaky_relu_}


class guided_rectifiers(TorchFunctionMode):  # noqa: N801 (used as a context manager, like torch's modes)
    """Inside the block every ReLU and LeakyReLU call backpropagates as guided backpropagation."""

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _RELUS:
            return _GuidedRectifier.apply(args[0], 0.0)
        if func in _LEAKY:
            slope = args[1] if len(args) > 1 else kwargs.get("negative_slope", 0.01)
            return _GuidedRectifier.apply(args[0], float(slope))
        return func(*args, **kwargs)


class _Reached(Exception):
    """Raised by the layer hook: the pass has what it needs."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.output = output


def layer_response(net: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The output of `layer` (N x C x ...) when `net` runs on x; the pass stops there."""

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        raise _Reached(output[0] if isinstance(output, tuple) else output)

    handle = layer.register_forward_hook(hook)
    try:
        net(x)
    except _Reached as reached:
        return reached.output
    finally:
        handle.remove()
    raise FaceganError("The layer was never reached by the network's forward pass.",
                       "Pick a layer the network uses (see the list in the error of an unknown --layer).")


def filter_objective(response: torch.Tensor, channel: int, reduce: str = "sum") -> torch.Tensor:
    """One filter's response per image: the sum (or max) of its activation map."""
    maps = response[:, channel].flatten(1)
    return maps.sum(1) if reduce == "sum" else maps.amax(1)


def guided_gradients(
    net: nn.Module, layer: nn.Module, x: torch.Tensor, filters: Sequence[int], reduce: str = "sum",
    guided: bool = True,
) -> torch.Tensor:
    """F x N x 3 x H x W: the (guided, or plain) gradient of each filter's response w.r.t. the images x."""
    grads = []
    for channel in filters:
        image = x.detach().clone().requires_grad_(True)
        with guided_rectifiers() if guided else torch.enable_grad():
            response = layer_response(net, layer, image)
            if channel >= response.shape[1]:
                raise UsageProblem(f"--filters {channel}: the layer has {response.shape[1]} filters (0 to "
                                   f"{response.shape[1] - 1}).", "Pick filters in that range.")
            objective = filter_objective(response, channel, reduce).sum()
        (grad,) = torch.autograd.grad(objective, image)
        grads.append(grad)
    return torch.stack(grads)


def gradient_image(grad: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W gradients -> images in [0, 1], min-max rescaled per image (flat gradients: grey 0.5)."""
    low = grad.amin(dim=(1, 2, 3), keepdim=True)
    span = grad.amax(dim=(1, 2, 3), keepdim=True) - low
    return torch.where(span > 0, (grad - low) / span.clamp(min=1e-30), torch.full_like(grad, 0.5))


# --- the discriminator of a checkpoint ------------------------------------------------------------------


def load_discriminator(ckpt: str | os.PathLike[str], net_name: str | None, device: torch.device) -> tuple[
    nn.Module, dict[str, Any], str, tuple[float, float], Path]:
    """(D in eval mode, the model configuration, its module name, its input range, the checkpoint file)."""
    checkpoint = load_checkpoint(ckpt)
    family, config = family_of(checkpoint)
    if family.build_discriminator is None:
        raise FaceganError(
            f"{checkpoint.path} is a {family.name} checkpoint, {family.kind_text}, which has no discriminator to "
            "explain.",
            "Pass a checkpoint of a family with a discriminator (dcgan, progan, stargan, ccagan, cycle-gan, ...).",
        )
    candidates = [name for name in checkpoint.modules if name.startswith("D")]
    if net_name is not None and net_name in checkpoint.modules and net_name not in candidates:
        # Its weights are fine; building a discriminator from them is what would fail ("do not fit").
        shown = ", ".join(repr(c) for c in candidates)
        raise UsageProblem(
            f"--net {net_name} is not a discriminator: in {checkpoint.path} it is another of the {family.name} "
            f"networks, and `facegan explain` looks inside discriminators"
            f"{f' (this checkpoint has {shown})' if candidates else ''}.",
            f"Name a discriminator with --net (e.g. --net {candidates[0]})." if candidates
            else "Pass a checkpoint with a discriminator.",
        )
    name = net_name or ("D" if "D" in checkpoint.modules else (candidates[0] if len(candidates) == 1 else None))
    if name is None or name not in checkpoint.modules:
        raise FaceganError(
            f"{checkpoint.path} holds {'no' if not candidates else 'several'} discriminator weights"
            f"{' (' + ', '.join(candidates) + ')' if candidates else ''}"
            f"{'' if net_name is None else f' and no {net_name!r}'}.",
            "Name one with --net (e.g. --net D_A)." if candidates else "Pass a checkpoint with a discriminator.",
        )
    net = load_weights(checkpoint, name, build_from(checkpoint, family.build_discriminator, config, name), family.name)
    return net.to(device).eval(), dict(config), name, value_range_of(checkpoint.meta, config), checkpoint.path


def conditioning(ckpt: str | os.PathLike[str], device: torch.device) -> Any:
    """For a translator whose D is conditional (declared `conditional_d`): x -> (x, G(x)) stacked on the
    channels, what that D judges; None for every other discriminator."""
    family, _ = family_of(load_checkpoint(ckpt))
    if family.kind != "translator":
        return None
    translator = load_model(ckpt, device, kind="translator")
    if not translator.conditional_d:
        return None
    return lambda x: torch.cat([x, translator.translate(x, translator.directions[0]).to(x.dtype)], 1)


def layer_names(net: nn.Module) -> list[str]:
    """Modules of `net` that can be tapped (leaves and containers, not the network itself)."""
    return [name for name, _ in net.named_modules() if name]


def default_layer(net: nn.Module) -> str:
    """The last convolution with more than one output channel (the deepest filters that are still maps)."""
    convs = [name for name, m in net.named_modules() if isinstance(m, nn.Conv2d) and m.out_channels > 1]
    if not convs:
        raise FaceganError("The discriminator has no convolution with several filters.", "Name a layer with --layer.")
    return convs[-1]


def fit_image(path: Path, side: int | None) -> np.ndarray:
    """An image as H x W x 3 uint8; with `side`, resized (short side) and centre-cropped to side x side."""
    try:
        image = open_rgb(path)
    except RejectedImage as exc:
        raise FaceganError(f"{display_name(path)} cannot be used as an image: {exc.reason}.",
                           "Pass JPEG/PNG images (or a folder of them).") from None
    if side is not None and image.size != (side, side):
        try:
            image = center_crop(resize_short_side(image, side, Image.BICUBIC), side)
        except RejectedImage as exc:  # a long thin image: the resize is bounded (data.imageio.check_work_size)
            raise FaceganError(f"{display_name(path)} cannot be used as an image: {exc.reason}.",
                               "Crop it to a less elongated shape.") from None
    return np.asarray(image, dtype=np.uint8)


def _parse_filters(text: str | Sequence[int] | None) -> list[int]:
    if text is None:
        return [0, 1, 2, 3]
    try:
        values = [int(t) for t in (text.split(",") if isinstance(text, str) else text) if str(t).strip()]
    except ValueError:
        raise UsageProblem(f"--filters {text!r} is not a comma-separated list of filter numbers.",
                           "Write it like --filters 0,5,9.") from None
    if not values or min(values) < 0:
        raise UsageProblem(f"--filters {text!r} must list filter numbers from 0.", "Write it like --filters 0,5,9.")
    return values


def guided_backprop_figure(
    ckpt: str | os.PathLike[str],
    input_: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    layer: str | None = None,
    filters: str | Sequence[int] | None = None,
    net_name: str | None = None,
    reduce: str = "sum",
    plain: bool = False,
    device: str = "auto",
    force: bool = False,
) -> dict[str, Any]:
    """One row per input: the input, then each filter's guided gradient (plain gradients with `plain`)."""
    if reduce not in REDUCTIONS:
        raise FaceganError(f"--reduce {reduce!r} is not one of {', '.join(REDUCTIONS)}.", "Use sum or max.")
    chosen = _parse_filters(filters)
    check_outside_inputs(out, [("--input", input_), ("--ckpt", ckpt)])
    check_figure_outputs(out, force)
    torch_device = resolve_device(device)
    net, config, name, value_range, path = load_discriminator(ckpt, net_name, torch_device)
    layer = layer or default_layer(net)
    modules = dict(net.named_modules())
    if layer not in modules or not layer:
        shown = layer_names(net)
        raise FaceganError(
            f"--layer {layer!r} is not a module of the {name} network of {path} (it has "
            f"{', '.join(shown[:12])}{', ...' if len(shown) > 12 else ''}).",
            "Name one of those (e.g. the output of a convolution or of its activation).",
        )
    side = int(config["resolution"]) if config.get("resolution") else None
    files = [Path(p) for p in open_image_list(input_).entries]
    pictures = np.stack([fit_image(p, side) for p in files])
    lo, hi = value_range
    x = torch.from_numpy(pictures).permute(0, 3, 1, 2).float().to(torch_device) / 255.0 * (hi - lo) + lo
    condition = conditioning(ckpt, torch_device)
    if condition is not None:
        with torch.no_grad():
            x = condition(x)
    grads = guided_gradients(net, modules[layer], x, chosen, reduce, guided=not plain)[:, :, -3:]
    rows = []
    for i in range(len(files)):
        shown = [pictures[i], *(to_uint8(gradient_image(grads[f, i : i + 1]), (0.0, 1.0))[0] for f in range(len(chosen)))]
        rows.append(np.stack(shown))
    captions = [["input", *(f"filter {f}" for f in chosen)]] * len(rows)
    figure = labelled_grid(rows, [p.stem for p in files], captions, min_cell=64)
    written = write_figure(figure, out, force=force)
    return {"out": str(written), "checkpoint": str(path), "network": name, "layer": layer, "filters": chosen,
            "reduce": reduce, "method": "plain gradient" if plain else "guided backpropagation",
            "inputs": [str(p) for p in files]}


# --- the colour-change heat map ------------------------------------------------------------------------

_HEAT_STOPS = np.array([[0, 0, 0], [128, 0, 0], [255, 64, 0], [255, 200, 0], [255, 255, 255]], dtype=np.float64)


def heat_colours(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (H x W) -> H x W x 3 uint8 on a black-red-yellow-white map."""
    t = np.clip(values, 0.0, 1.0) * (len(_HEAT_STOPS) - 1)
    low = np.minimum(t.astype(np.int64), len(_HEAT_STOPS) - 2)
    frac = (t - low)[..., None]
    return np.rint(_HEAT_STOPS[low] * (1 - frac) + _HEAT_STOPS[low + 1] * frac).astype(np.uint8)


def colour_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per-pixel RGB distance between two H x W x 3 uint8 images, in [0, 1] (1: black <-> white)."""
    diff = after.astype(np.float64) - before.astype(np.float64)
    return np.sqrt((diff**2).sum(-1)) / (255.0 * np.sqrt(3.0))


def _edit_files(edited: Path, inputs: list[Path], option: str) -> list[Path]:
    """The edit of each input: `edited` itself for one input file, else edited/STEM.png (or any image STEM.*)."""
    if edited.is_file():
        if len(inputs) != 1:
            raise FaceganError(f"{option} {display_name(edited)} is one file for {len(inputs)} inputs.",
                               f"Pass a folder of edits named like the inputs to {option}.")
        return [edited]
    if not edited.is_dir():
        raise FaceganError(f"{option} {display_name(edited)} does not exist.", f"Pass the edit(s) to {option}.")
    found = {p.stem: p for p in sorted(edited.iterdir()) if p.is_file() and p.suffix.lower() in (".png", ".jpg",
                                                                                                   ".jpeg", ".webp")}
    missing = [p.name for p in inputs if p.stem not in found]
    if missing:
        raise FaceganError(f"{option} {display_name(edited)} has no edit of {', '.join(missing[:3])}"
                           f"{' and more' if len(missing) > 3 else ''} (edits are matched by file name).",
                           "Pass the folder `facegan edit --out` wrote for these inputs.")
    return [found[p.stem] for p in inputs]


def _fitted(image: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """An input at an edit's size: a square edit gets the input fitted as `facegan edit` fits it (short side,
    centre crop); another shape, the input resized to it."""
    h, w = size[0], size[1]
    if image.shape[:2] == (h, w):
        return image
    pil = Image.fromarray(image)
    if h == w:
        return np.asarray(center_crop(resize_short_side(pil, h, Image.BICUBIC), h))
    return np.asarray(pil.resize((w, h), Image.BICUBIC))


def _resized(image: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    if image.shape[:2] == tuple(size[:2]):
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BICUBIC))


def _resized_map(values: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    if values.shape == tuple(size[:2]):
        return values
    return np.asarray(Image.fromarray(values.astype(np.float32), mode="F").resize((size[1], size[0]), Image.BILINEAR))


def color_change_figure(
    input_: str | os.PathLike[str],
    edited: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    scale: float | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """One row per input: the input, then for each `edited` source its edit and the heat map of the change."""
    if not edited:
        raise FaceganError("No --edited images were given.", "Pass --edited with the output of `facegan edit`.")
    if scale is not None and not (np.isfinite(scale) and scale > 0):
        raise UsageProblem(f"--scale {scale} must be a positive number.", "Pass e.g. --scale 0.5, or leave it out.")
    check_outside_inputs(out, [("--input", input_), *(("--edited", e) for e in edited)])
    check_figure_outputs(out, force)
    files = [Path(p) for p in open_image_list(input_).entries]
    edits = [_edit_files(Path(e), files, "--edited") for e in edited]
    rows = []
    records = []
    maps: list[list[np.ndarray]] = []
    size: tuple[int, ...] | None = None
    for i, path in enumerate(files):
        source = fit_image(path, None)
        afters = [fit_image(column[i], None) for column in edits]
        row_changes = [colour_change(_fitted(source, after.shape[:2]), after) for after in afters]
        records.append({"input": str(path), "edits": [
            {"edited": str(column[i]), "mean_change": float(c.mean()), "max_change": float(c.max()),
             "changed_share": float((c > 0.1).mean())} for column, c in zip(edits, row_changes, strict=True)]})
        # Every row is shown at the first edit's size (the edits of several models usually share it; one
        # figure needs one cell size even when another input's edits have another).
        size = size or afters[0].shape[:2]
        rows.append([_fitted(source, size), *(_resized(a, size) for a in afters)])
        maps.append([_resized_map(c, size) for c in row_changes])
    top = scale or max(float(c.max()) for row in maps for c in row) or 1.0
    figure_rows = [np.stack([images[0], *(cell for a, c in zip(images[1:], heat, strict=True)
                                          for cell in (a, heat_colours(c / top)))])
                   for images, heat in zip(rows, maps, strict=True)]
    labels = [re.sub(r"\s+", " ", Path(e).name) or str(e) for e in edited]
    captions = [["input", *(c for label in labels for c in (label, "change"))]] * len(rows)
    figure = labelled_grid(figure_rows, [p.stem for p in files], captions, min_cell=64)
    written = write_figure(figure, out, force=force)
    return {"out": str(written), "scale": top, "pairs": records,
            "measure": "per-pixel RGB distance / (255 sqrt 3); changed_share: share of pixels above 0.1"}
