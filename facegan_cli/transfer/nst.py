"""Gatys et al.'s neural style transfer with the presets of three references (`facegan transfer style`).

`PRESETS` reproduce their reference's layers, activation side, loss convention (transfer.losses), weights,
pooling, optimiser, length, initialisation and size:

- `tutorial`: the PyTorch tutorial (advanced_source/neural_style_tutorial.py): content conv_4 = conv2_2,
  style conv_1..conv_5 = conv1_1, conv1_2, conv2_1, conv2_2, conv3_1, all pre-ReLU (its ReLUs are replaced
  by out-of-place ones and the losses sit after the convolutions); style weight 1e6, content 1; max
  pooling; L-BFGS (lr 1, 20 evaluations per step) for 300 evaluations, clamping to [0, 1] in every
  closure; initialised from the content image; 512 px on a GPU, 128 px on the CPU.
- `gatys`: Gatys's notebook (leongatys/PytorchNeuralStyleTransfer): content r42 (relu4_2), style r11, r21,
  r31, r41, r51 (post-ReLU); weights 1e3/C^2 per style layer (here style weight 1e3, layer weights 1/C^2),
  content 1; `VGG()`'s default max pooling; L-BFGS for 500 evaluations from the content image; 512 px.
  The notebook feeds Caffe-preprocessed images to bethgelab's converted weights; facegan uses torchvision's
  weights, so it keeps their ImageNet normalisation (the losses are Gatys's exactly, the features are
  torchvision's).
- `thesis`: seed 004 (T:169-203, after Gatys et al. 2016): content conv3_2 (the thesis's choice over the
  paper's conv4_2), style conv1_1..conv5_1 with w_l = 1/5, post-ReLU, E_l = sum (G - S)^2 / (4 C^2 M^4),
  L_content = 1/2 sum (F - P)^2, L = alpha L_content + beta L_style with alpha/beta = 1e-3 (the paper's
  range is 1e-3 to 1e-4; the thesis gives no value: DEFAULT), average pooling, L-BFGS for 300 evaluations
  (DEFAULT) from white noise (the paper), 64 px (the thesis's images).

Every preset value can be overridden (`resolve_settings`). Content images are resized so that the short
side is `size` (aspect kept); images of the same resulting size are optimised together, `batch_size` at
a time. Each style image is resized so that its short side is `style_scale` times the content's; several
style images blend their Gram matrices (`style_blend` weights, equal by default). With `preserve_color`
the transfer works on luminance only (Gatys et al. 2016, "Preserving colour in neural artistic style
transfer"): the style's luminance is matched to the content's mean and standard deviation, one luminance
channel is optimised (shown to VGG19 as grey RGB), and the result keeps the content's chrominance (YIQ).
Initialisations: `content`, `noise` (uniform white noise in [0, 1]), `mean` (the per-pixel mean of the
content images optimised together) and `content+noise` (content plus N(0, noise_std), clamped).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
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
from facegan_cli.data.crops import resize_short_side
from facegan_cli.data.grid import save_png, to_uint8
from facegan_cli.data.imageio import RejectedImage, check_side_option, display_name, open_rgb
from facegan_cli.data.sources import open_image_list
from facegan_cli.features.vgg19 import ACTIVATIONS, POOLS, TAP_CHANNELS, VGG19Extractor, layer_tap
from facegan_cli.transfer.names import NST_INITS as INITS
from facegan_cli.transfer.names import NST_PRESETS
from facegan_cli.transfer.optimize import OPTIMIZERS, Objective, Optimized, optimize
from facegan_cli.transfer.style_losses import NORMS, check_style_size, gram

GATYS_STYLE = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
STYLE_KIND = "style-transfer"  # core.outputs marker of `transfer style` folders


@dataclass(frozen=True)
class NSTSettings:
    """Everything that decides a style transfer (a preset's values, then the user's overrides)."""

    preset: str
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    act: str  # post_relu | pre_relu
    norm: str  # tutorial | gatys | thesis
    content_weight: float
    style_weight: float
    layer_weights: tuple[float, ...]
    pool: str
    optimizer: str
    lr: float
    steps: int
    init: str
    size: int | None  # None: the preset's size for the device
    noise_std: float = 0.02
    preserve_color: bool = False
    style_scale: float = 1.0
    style_blend: tuple[float, ...] | None = None
    batch_size: int | None = None  # None: the device's (batch_on)
    seed: int = 0
    # How content and style images are resized: "bilinear" is torchvision's Resize(imsize) on a PIL image (PIL's
    # antialiased bilinear filter), as the tutorial's image_loader; "bicubic" otherwise.
    resample: str = "bicubic"

    def batch_on(self, device: torch.device) -> int:
        """Content images optimised together: 8 on CUDA; on a CPU one at a time, which is faster there (measured
        at 256 px on 2 cores: 8 images in 41 s one by one, 60 s as one batch of 8)."""
        if self.batch_size is not None:
            return self.batch_size
        return 8 if device.type == "cuda" else 1

    def size_on(self, device: torch.device) -> int:
        if self.size is not None:
            return self.size
        return PRESET_SIZES[self.preset][0 if device.type == "cuda" else 1]


PRESETS: dict[str, NSTSettings] = {
    "tutorial": NSTSettings(
        "tutorial", ("conv2_2",), ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"), "pre_relu", "tutorial",
        1.0, 1e6, (1.0,) * 5, "max", "lbfgs", 1.0, 300, "content", None, resample="bilinear",
    ),
    "gatys": NSTSettings(
        "gatys", ("conv4_2",), GATYS_STYLE, "post_relu", "gatys", 1.0, 1e3,
        tuple(1.0 / TAP_CHANNELS[layer] ** 2 for layer in GATYS_STYLE), "max", "lbfgs", 1.0, 500, "content", None,
    ),
    "thesis": NSTSettings(
        "thesis", ("conv3_2",), GATYS_STYLE, "post_relu", "thesis", 1.0, 1e3, (0.2,) * 5, "avg", "lbfgs", 1.0, 300,
        "noise", None,
    ),
}
assert tuple(PRESETS) == NST_PRESETS, "transfer/names.py must name every preset"
# (GPU, CPU) default sizes: the tutorial's imsize rule; Gatys's img_size; the thesis's 64x64 images.
PRESET_SIZES = {"tutorial": (512, 128), "gatys": (512, 512), "thesis": (64, 64)}
ADAM_LR = 0.02  # Adam's default step on [0, 1] pixels when --lr is not given (L-BFGS: 1, as the references)


def _layers(text: str | Sequence[str] | None, option: str) -> tuple[str, ...] | None:
    if text is None:
        return None
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if not items:
        raise FaceganError(f"{option} is empty.", f"Name VGG19 layers, e.g. {option} conv1_1,conv2_1.")
    for item in items:
        try:
            layer_tap(item)
        except ValueError as exc:
            raise FaceganError(f"{option}: {exc}.", "Name layers like conv3_2 (conv1_1 ... conv5_4).") from None
    return tuple(items)


def _floats(text: str | Sequence[float] | None, option: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(t) for t in (text.split(",") if isinstance(text, str) else text))
    except ValueError:
        raise UsageProblem(f"{option} {text!r} is not a comma-separated list of numbers.",
                           f"Write it like {option} 0.5,1,1.5.") from None
    if not values or any(not np.isfinite(v) or v < 0 for v in values):
        raise UsageProblem(f"{option} {text!r} must list finite numbers >= 0.", f"Write it like {option} 0.5,1,1.5.")
    return values


def _choice(value: str, choices: Sequence[str], option: str) -> str:
    if value not in choices:
        raise FaceganError(f"{option} {value!r} is not one of {', '.join(choices)}.", f"Use one of: {', '.join(choices)}.")
    return value


def resolve_settings(preset: str = "tutorial", **given: Any) -> NSTSettings:
    """The preset's settings with the options given (None: keep the preset's); checked."""
    if preset not in PRESETS:
        raise FaceganError(f"Unknown style-transfer preset {preset!r}.", f"Use one of: {', '.join(PRESETS)}.")
    base = PRESETS[preset]
    changes = {k: v for k, v in given.items() if v is not None}
    if "content_layers" in changes:
        changes["content_layers"] = _layers(changes["content_layers"], "--content-layers")
    if "style_layers" in changes:
        changes["style_layers"] = _layers(changes["style_layers"], "--style-layers")
    for key, option in (("layer_weights", "--layer-weights"), ("style_blend", "--style-blend")):
        if key in changes:
            changes[key] = _floats(changes[key], option)
    settings = replace(base, **changes)
    if "style_layers" in changes and "layer_weights" not in changes:
        # Other style layers: the preset's rule for their weights (1/C^2 for gatys, equal otherwise).
        if preset == "gatys":
            weights = tuple(1.0 / TAP_CHANNELS[layer_tap(x)] ** 2 for x in settings.style_layers)
        else:
            weights = (base.layer_weights[0] * len(base.style_layers) / len(settings.style_layers),) * len(
                settings.style_layers) if preset == "thesis" else (1.0,) * len(settings.style_layers)
        settings = replace(settings, layer_weights=weights)
    if "optimizer" in changes and changes["optimizer"] == "adam" and "lr" not in changes:
        settings = replace(settings, lr=ADAM_LR)
    _choice(settings.act, ACTIVATIONS, "--act")
    _choice(settings.norm, NORMS, "--norm")
    _choice(settings.pool, POOLS, "--pool")
    _choice(settings.optimizer, OPTIMIZERS, "--optimizer")
    _choice(settings.init, INITS, "--init")
    if len(settings.layer_weights) != len(settings.style_layers):
        raise UsageProblem(
            f"--layer-weights gives {len(settings.layer_weights)} weights for {len(settings.style_layers)} style "
            f"layers ({', '.join(settings.style_layers)}).",
            "Give one weight per style layer, in the order of --style-layers.",
        )
    for name, value in (("--steps", settings.steps), ("--batch-size", 0 if settings.batch_size is None else settings.batch_size - 1)):
        if value < 0:
            raise UsageProblem(f"{name} must be at least {0 if name == '--steps' else 1}.", f"Pass a valid {name}.")
    if settings.size is not None and settings.size < 16:
        raise UsageProblem(f"--size {settings.size} is too small for VGG19's five poolings.", "Use --size 16 or more.")
    if settings.size is not None:
        check_side_option(settings.size, "--size")
    for name, value in (("--lr", settings.lr), ("--style-scale", settings.style_scale)):
        if not (np.isfinite(value) and value > 0):
            raise UsageProblem(f"{name} {value} must be a positive number.", f"Pass a positive {name}.")
    for name, value in (("--content-weight", settings.content_weight), ("--style-weight", settings.style_weight),
                        ("--noise-std", settings.noise_std)):
        if not (np.isfinite(value) and value >= 0):
            raise UsageProblem(f"{name} {value} must be a number >= 0.", f"Pass {name} 0 or more.")
    return settings


# --- pictures in --------------------------------------------------------------------------------------


def read_picture(path: Path, option: str) -> Image.Image:
    """One image file through the one decode path; anything unusable is the user's paragraph."""
    if not path.is_file():
        raise FaceganError(f"{option} {display_name(path)} does not exist or is not a file.",
                           f"Pass an image file to {option}.")
    try:
        return open_rgb(path)
    except RejectedImage as exc:
        raise FaceganError(f"{option} {display_name(path)} cannot be used as an image: {exc.reason}.",
                           f"Pass a JPEG/PNG image to {option}.") from None


def to_unit(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> float 1 x 3 x H x W in [0, 1]."""
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)[None].float() / 255.0


RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def style_extractor(weights: str | os.PathLike[str] | None, device: torch.device, pool: str) -> VGG19Extractor:
    """The VGG19 of the optimisation, built (weights that do not fit fail now). NCHW on a CPU: with one image
    at a time, oneDNN's channels_last convolutions gain less there than the layout changes around the Gram
    products cost (measured in benchmarks/RESULTS.md); channels_last on CUDA."""
    extractor = VGG19Extractor(weights, device, pool=pool, channels_last=device.type == "cuda")
    _ = extractor.model
    return extractor


def read_contents(content: str | os.PathLike[str], size: int, resample: str = "bicubic") -> list[tuple[Path, torch.Tensor]]:
    """The content images (a file, a folder's images, or '-' for paths on stdin), short side `size`. Every
    file is decoded before any work: one unusable file stops the command, naming it (and the others)."""
    files = [Path(entry) for entry in open_image_list(content, option="--content").entries]
    pictures: list[tuple[Path, torch.Tensor]] = []
    broken: list[str] = []
    for path in files:
        try:
            image = open_rgb(path)
            # The resize is bounded too (check_work_size): a long thin file would multiply its pixels.
            pictures.append((path, to_unit(resize_short_side(image, size, RESAMPLE[resample]))))
        except RejectedImage as exc:
            broken.append(f"{display_name(path)} ({exc.reason})")
            continue
    if broken:
        shown = "; ".join(broken[:3]) + (f"; and {len(broken) - 3} more" if len(broken) > 3 else "")
        raise FaceganError(
            f"{len(broken)} of the {len(files)} content images cannot be read: {shown}. Nothing was written.",
            "Remove or replace those files (or point --content at the good ones) and run again.",
        )
    return pictures


# --- colour preservation ------------------------------------------------------------------------------

_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", _RGB_TO_YIQ.to(x.device), x)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB_TO_YIQ).to(x.device), x)


def matched_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The style's luminance with the content's mean and standard deviation (Gatys et al. 2016), as grey RGB."""
    ys, yc = rgb_to_yiq(style)[:, :1], rgb_to_yiq(content)[:, :1]
    matched = (ys - ys.mean()) * (yc.std() / ys.std().clamp(min=1e-8)) + yc.mean()
    return matched.clamp(0, 1).expand(-1, 3, -1, -1)


# --- targets and runs ---------------------------------------------------------------------------------


def check_blend(weights: Sequence[float], styles: int) -> None:
    """--style-blend: one weight per style image, and not all zero (each style's share is weight / sum)."""
    if len(weights) != styles:
        raise UsageProblem(f"--style-blend gives {len(weights)} weights for {styles} style images.",
                           "Give one weight per --style, in the same order.")
    if sum(weights) <= 0:
        raise UsageProblem(
            f"--style-blend {','.join(f'{w:g}' for w in weights)}: the weights must not all be zero (each style "
            "counts by its weight over their sum).",
            "Give at least one style a positive weight, e.g. --style-blend 1,0 for the first style alone.",
        )


def style_grams(
    extractor: VGG19Extractor, styles: Sequence[torch.Tensor], taps: Sequence[str], norm: str,
    blend: Sequence[float] | None,
) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """The blended Gram target per tap (C x C) of the style images, and each tap's positions (H*W)."""
    weights = list(blend) if blend is not None else [1.0] * len(styles)
    check_blend(weights, len(styles))
    total = sum(weights)
    targets: dict[str, torch.Tensor] = {}
    positions: dict[str, int] = {}
    with torch.no_grad():
        for style, weight in zip(styles, weights, strict=True):
            feats = extractor(style.to(extractor.device), list(taps))
            for tap in taps:
                part = gram(feats[tap], norm)[0] * (weight / total)
                targets[tap] = targets[tap] + part if tap in targets else part
                positions[tap] = feats[tap].shape[-2] * feats[tap].shape[-1]
    return targets, positions


def initial_image(content: torch.Tensor, init: str, noise_std: float, generator: torch.Generator) -> torch.Tensor:
    """The starting image of a batch (see the module docstring)."""
    if init == "content":
        return content.clone()
    if init == "noise":
        return torch.rand(content.shape, generator=generator).to(content.device)
    if init == "mean":
        return content.mean(dim=0, keepdim=True).expand_as(content).clone()
    noise = torch.randn(content.shape, generator=generator).to(content.device) * noise_std
    return (content + noise).clamp(0, 1)


def build_objective(
    extractor: VGG19Extractor, settings: NSTSettings, content: torch.Tensor, styles: Sequence[torch.Tensor],
) -> tuple[Objective, torch.Tensor]:
    """The objective of a batch of same-size content images (N x 3 x H x W in [0, 1], on the device) and
    style images (each 1 x 3 x h x w in [0, 1], already at their scale), and the content as VGG19 sees it
    (its grey luminance with `preserve_color`)."""
    content_taps = [layer_tap(x, settings.act) for x in settings.content_layers]
    style_taps = [layer_tap(x, settings.act) for x in settings.style_layers]
    seen_content = content
    seen_styles = [s.to(content.device) for s in styles]
    if settings.preserve_color:
        seen_content = rgb_to_yiq(content)[:, :1].expand(-1, 3, -1, -1)
        seen_styles = [matched_luminance(s, content) for s in seen_styles]
    grams, positions = style_grams(extractor, seen_styles, style_taps, settings.norm, settings.style_blend)
    with torch.no_grad():
        content_targets = extractor(seen_content, content_taps)
        image_feats = extractor(seen_content[:1], style_taps)
    for tap in style_taps:
        here = image_feats[tap].shape[-2] * image_feats[tap].shape[-1]
        if not check_style_size(settings.norm, positions[tap], here):
            raise FaceganError(
                f"A style image has another size than the content ({content.shape[-1]}x{content.shape[-2]}) at "
                f"--style-scale {settings.style_scale:g}: the thesis convention compares unnormalised Gram "
                "matrices (E_l = sum (G - S)^2 / (4 C^2 M^4)), which needs the same feature size.",
                "Crop the style image to the content's aspect ratio and keep --style-scale 1, or use --norm "
                "tutorial or gatys (Gram matrices normalised by size).",
            )
    objective = Objective(
        extractor, settings.norm, content_taps, style_taps, content_targets, grams, settings.content_weight,
        settings.style_weight, settings.layer_weights, settings.style_layers,
    )
    return objective, seen_content


def transfer_batch(
    extractor: VGG19Extractor,
    settings: NSTSettings,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    generator: torch.Generator | None = None,
    on_eval: Any = None,
) -> Optimized:
    """Style transfer of one batch of same-size content images (see `build_objective`); `on_eval(count,
    image, terms)` after every evaluation."""
    generator = generator or torch.Generator().manual_seed(settings.seed)
    objective, seen_content = build_objective(extractor, settings, content, styles)
    start = initial_image(seen_content, settings.init, settings.noise_std, generator)
    if settings.preserve_color:
        variable = start[:, :1]
        to_image = _grey
    else:
        variable, to_image = start, None
    shown = on_eval
    if settings.preserve_color and on_eval is not None:
        def shown(count: int, image: torch.Tensor, terms: Any) -> None:
            on_eval(count, with_chroma(image, content), terms)

    result = optimize(objective, variable, settings.steps, settings.optimizer, settings.lr, 1.0, to_image, shown)
    if settings.preserve_color:
        result.images = with_chroma(result.images, content)
    return result


def _grey(y: torch.Tensor) -> torch.Tensor:
    return y.expand(-1, 3, -1, -1)


def with_chroma(grey: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The luminance of `grey` (its first channel) with the chrominance (I, Q) of `content`, as RGB in [0, 1]."""
    return yiq_to_rgb(torch.cat([grey[:, :1], rgb_to_yiq(content)[:, 1:]], dim=1)).clamp(0, 1)


def fit_style(style: Image.Image, short_side: int, name: str = "", resample: str = "bicubic") -> torch.Tensor:
    """A style picture at its scale: short side `short_side`, aspect kept, as float 1 x 3 x h x w in [0, 1]."""
    try:
        return to_unit(resize_short_side(style, max(1, short_side), RESAMPLE[resample]))
    except RejectedImage as exc:  # bounded like the content (check_work_size)
        raise FaceganError(f"The --style image {name or ''} cannot be used at this scale: {exc.reason}.".replace("  ", " "),
                           "Crop the style image to a less elongated shape, or use a smaller --size or "
                           "--style-scale.") from None


def transfer_style(
    content: str | os.PathLike[str],
    styles: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    settings: NSTSettings,
    *,
    vgg_weights: str | os.PathLike[str] | None = None,
    device: str = "auto",
    save_every: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """`facegan transfer style`: every content image with the style(s), into the new folder `out` (one PNG
    per input, `steps/` with the intermediate images when `save_every`); returns the result document."""
    if not styles:
        raise FaceganError("No --style image was given.", "Pass --style IMAGE (repeat it to blend several styles).")
    if settings.style_blend is not None:
        check_blend(settings.style_blend, len(styles))  # before any work, not after the network is loaded
    if save_every is not None and save_every < 1:
        raise UsageProblem(f"--save-every {save_every} must be at least 1.", "Pass e.g. --save-every 50.")
    check_outside_inputs(out, [("--content", content), *(("--style", s) for s in styles)])
    check_new_folder(out, force, STYLE_KIND)
    style_pictures = [read_picture(Path(s), "--style") for s in styles]
    torch_device = resolve_device(device)
    size = settings.size_on(torch_device)
    pictures = read_contents(content, size, settings.resample)
    extractor = style_extractor(vgg_weights, torch_device, settings.pool)  # weights that do not fit fail here
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (_, tensor) in enumerate(pictures):
        groups.setdefault(tuple(tensor.shape[-2:]), []).append(i)
    per_batch = settings.batch_on(torch_device)
    chunks = [rows[i : i + per_batch] for rows in groups.values() for i in range(0, len(rows), per_batch)]
    # The style images at the scale of each content size, checked before any output.
    scaled: dict[tuple[int, int], list[torch.Tensor]] = {}
    for shape in groups:
        scaled[shape] = [fit_style(s, round(min(shape) * settings.style_scale), display_name(name), settings.resample)
                         for s, name in zip(style_pictures, styles, strict=True)]
        for path, tensor in zip(styles, scaled[shape], strict=True):
            if settings.norm == "thesis" and tuple(tensor.shape[-2:]) != shape:
                raise FaceganError(
                    f"The style image {display_name(path)} is {tensor.shape[-1]}x{tensor.shape[-2]} at --style-scale "
                    f"{settings.style_scale:g} and the content {shape[1]}x{shape[0]}: another size, which the thesis "
                    "convention cannot compare (its E_l = sum (G - S)^2 / (4 C^2 M^4) takes unnormalised Gram "
                    "matrices of maps of the same size).",
                    "Crop the style image to the content's aspect ratio and keep --style-scale 1, or use --norm "
                    "tutorial or gatys (Gram matrices normalised by size).",
                )
    generator = torch.Generator().manual_seed(settings.seed)
    # OUT/NAME.png per content image and OUT/steps/NAME-STEP.png: distinct whatever the inputs are called.
    stems = [name.removesuffix(".png") for name in output_names([path for path, _ in pictures])]
    records: list[dict[str, Any] | None] = [None] * len(pictures)
    evaluations = 0
    seconds = 0.0
    out = Path(out)
    log(f"style transfer: {len(pictures)} image(s) at short side {size}, preset {settings.preset}, "
        f"{settings.optimizer} for {settings.steps} steps on {torch_device}")
    with staged_folder(out, force, STYLE_KIND) as staging, \
            Progress(settings.steps * len(chunks), "style transfer", unit="step") as bar:
        for rows in chunks:
            batch = torch.cat([pictures[i][1] for i in rows]).to(torch_device)
            style_tensors = scaled[tuple(batch.shape[-2:])]
            chunk_stems = [stems[i] for i in rows]

            def on_eval(count: int, image: torch.Tensor, terms: Any, chunk_stems: list[str] = chunk_stems) -> None:
                bar.advance(1, info=terms.summary() if count % 10 == 0 or count == 1 else None)
                if save_every and count % save_every == 0:
                    (staging / "steps").mkdir(exist_ok=True)
                    pixels = to_uint8(image, (0.0, 1.0))
                    for stem, pix in zip(chunk_stems, pixels, strict=True):
                        save_png(pix, staging / "steps" / f"{stem}-{count:05d}.png")

            result = transfer_batch(extractor, settings, batch, style_tensors, generator, on_eval)
            evaluations = max(evaluations, result.evaluations)
            seconds += result.seconds
            pixels = to_uint8(result.images, (0.0, 1.0))
            for k, i in enumerate(rows):
                path = pictures[i][0]
                save_png(pixels[k], staging / f"{stems[i]}.png")
                records[i] = {"input": str(path), "output": str(out / f"{stems[i]}.png"),
                              "size": [int(batch.shape[-1]), int(batch.shape[-2])],
                              "initial": result.initial.record(k), "final": result.final.record(k)}
        doc = {
            "out": str(out), "preset": settings.preset, "settings": _settings_doc(settings, size, per_batch),
            "styles": [str(s) for s in styles], "device": str(torch_device),
            "vgg19": {"path": str(extractor.weights.path), "sha256": extractor.weights.sha256,
                      "verified": extractor.weights.verified, "pool": settings.pool},
            "steps": evaluations, "seconds": seconds, "images": records,
        }
        write_json(staging / "result.json", doc)
    return doc


def _settings_doc(settings: NSTSettings, size: int, batch: int) -> dict[str, Any]:
    doc = asdict(settings)
    doc["size"], doc["batch_size"] = size, batch
    return doc
