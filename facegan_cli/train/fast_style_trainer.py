"""Johnson et al.'s fast style transfer trained on the generic loop (`facegan train fast-style`).

One step, as pytorch/examples' fast_neural_style `train` makes it (models/fast_style.py has the network):
the content batch x (0-255 pixels; the loop reads any image folder, zip or prepared dataset, short side
resized to `resolution` and centre-cropped) goes through the network, y = T(x); both go through the frozen
VGG16 after their `normalize_batch` (/255, ImageNet mean and std); the loss is

    content_weight * MSE(relu2_2(y), relu2_2(x)) + style_weight * sum_l MSE(Gram_l(y), Gram_l(style))

over relu1_2, relu2_2, relu3_3 and relu4_3, Gram = F F^T / (C H W), the style image's Gram matrices computed
once (at its own size, or `style_size` square). Adam at `lr`. The run records the style image and the VGG16
file with their SHA-256; a resume reads both again and refuses files that changed.

The sample grids stylise held-out content images: a prepared dataset's test split when training on its train
split, or `--heldout PATH` (any image folder, zip or prepared dataset); without either, the first training
images. Rows are content | stylised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan_cli.core import weights as W
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.options import Opt
from facegan_cli.data.prepared import MANIFEST
from facegan_cli.data.sources import open_image_set
from facegan_cli.features.vgg16 import VGG16Extractor
from facegan_cli.models import registry
from facegan_cli.models.fast_style import FAMILY, NETWORK, TransformerNet
from facegan_cli.models.registry import resolve_config
from facegan_cli.train.spec import DATA_OPTION, RESUMABLE_LR, TrainPlan, TrainSpec
from facegan_cli.train.trainer import TrainContext, Trainer
from facegan_cli.transfer.nst import read_picture
from facegan_cli.transfer.style_losses import ContentTap, StyleTap, gram

HELD_OUT = 4  # content images in a sample grid


def style_pixels(path: str | Path, size: int | None) -> torch.Tensor:
    """The style image as 1 x 3 x H x W float 0-255 (their load_image: RGB, optionally resized to a size x size
    square with LANCZOS, their ANTIALIAS); FaceganError for a file that is not an image."""
    from PIL import Image

    image = read_picture(Path(path), "--style-image")
    if size is not None:
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)[None].float()


def perceptual_loss(
    vgg: VGG16Extractor, x: torch.Tensor, y: torch.Tensor, style_grams: dict[str, torch.Tensor], config: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(content loss, style loss), weighted, of output `y` for content `x` (both 0-255 N x 3 x H x W): their
    MSEs, the batch mean of per-image errors (the MSE of the Gram matrices over N x C x C, of the features over
    N x C x H x W). The losses sit in VGG16's pass at their taps (transfer.style_losses.StyleTap / ContentTap),
    which fuse their gradients into the backward."""
    content_layer, style_layers = str(config["content_layer"]), list(config["style_layers"])
    taps = list(dict.fromkeys([*style_layers, content_layer]))
    with torch.no_grad():
        target = vgg(x / 255.0, [content_layer])[content_layer]
    parts: dict[str, torch.Tensor] = {}

    def at_tap(tap: str, f: torch.Tensor) -> torch.Tensor:
        if tap == content_layer:
            f, parts[""] = ContentTap.apply(f, target, "tutorial", float(config["content_weight"]))
        if tap in style_layers:
            f, parts[tap] = StyleTap.apply(f, style_grams[tap], "tutorial", float(config["style_weight"]))
        return f

    vgg(y / 255.0, taps, at_tap=at_tap)
    return parts[""].mean(), sum(parts[layer].mean() for layer in style_layers)


class FastStyleTrainer(Trainer):
    family = FAMILY
    generator_key = NETWORK
    grid_columns = 2  # content | stylised

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._sample = torch.zeros(0)

    @property
    def value_range(self) -> tuple[float, float]:
        return (0.0, 255.0)  # the network's own scale: their ToTensor x 255

    @property
    def z_dim(self) -> int:
        return 0

    def build(self, ctx: TrainContext) -> None:
        cfg = self.config
        self.vgg = recorded_vgg16(cfg, ctx.device)
        style = recorded_style(cfg).to(ctx.device)
        with torch.no_grad():
            features = self.vgg(style / 255.0, list(cfg["style_layers"]))
            self.style_grams = {layer: gram(f, "tutorial") for layer, f in features.items()}
        net = ctx.precision.module(TransformerNet(cfg))
        self.modules = {NETWORK: net}
        self.net = net
        self.optimizers = {NETWORK: torch.optim.Adam(net.parameters(), lr=float(cfg["lr"]))}
        held = cfg.get("heldout")
        if held:
            pixels = open_image_set(held["path"], split=held.get("split"), resolution=int(cfg["resolution"]))
            array = pixels.load_array(np.arange(min(HELD_OUT, len(pixels))))
            self._sample = torch.from_numpy(array).permute(0, 3, 1, 2).float().to(ctx.device)

    def wrap_networks(self, wrap: Any) -> None:
        self.net = wrap(self.net)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        x = self.precision.tensor(batch["images"].float())
        opt = self.optimizers[NETWORK]
        opt.zero_grad(set_to_none=True)
        with self.precision.autocast():
            y = self.net(x)
        content, style = perceptual_loss(self.vgg, x, y.float(), self.style_grams, self.config)
        total = content + style
        total.backward()
        opt.step()
        return {"loss": total.detach(), "content": content.detach(), "style": style.detach()}

    def set_sample_inputs(self, batch: dict[str, torch.Tensor]) -> None:
        if not self._sample.numel():  # no held-out images: the first training rows
            self._sample = batch["images"][:HELD_OUT].float().clone()

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        net = self.modules[NETWORK]
        was_training = net.training
        net.eval()
        try:
            made = net(self._sample).float().clamp(0, 255)
        finally:
            net.train(was_training)
        return torch.stack([self._sample, made], dim=1).flatten(0, 1)

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "value_range": [0.0, 255.0]}


def recorded_vgg16(config: dict[str, Any], device: torch.device) -> VGG16Extractor:
    """The VGG16 the run trains with; a file whose SHA-256 is not the recorded one is refused."""
    extractor = VGG16Extractor(config.get("vgg_weights"), device)
    recorded = config.get("vgg_sha256")
    if recorded and extractor.weights.sha256 != recorded:
        raise FaceganError(
            f"The VGG16 weights {extractor.weights.path} (SHA-256 {extractor.weights.sha256[:12]}...) are not the ones "
            f"this run trained with (SHA-256 {str(recorded)[:12]}...): its losses would not mean the same.",
            "Pass the run's own file with --vgg-weights, or start a new run.")
    _ = extractor.model
    return extractor


def recorded_style(config: dict[str, Any]) -> torch.Tensor:
    """The run's style image (0-255), refused if the file changed since the run started."""
    path = Path(config["style_image"])
    if not path.is_file() or W.sha256_of(path) != config["style_sha256"]:
        raise FaceganError(
            f"The style image {path} this run trained with is gone or has changed since the run started.",
            "Put the same file back at that path, or start a new run with --style-image.")
    return style_pixels(path, config.get("style_size"))


def configure(values: dict[str, Any]) -> TrainPlan:
    """Option values -> the configuration (with the style image and VGG16 it trains with), the data, the length."""
    config = resolve_config(FAMILY, values.get("preset"), registry.get_family(FAMILY).config.given(values))
    style = values.get("style_image")
    if style is None:
        raise UsageProblem("--style-image is needed: the painting whose style the network learns.",
                           "Example: --style-image styles/candy.jpg")
    style_pixels(style, config.get("style_size"))  # not an image: refused now, before the data is read
    config["style_image"] = str(Path(style).resolve())
    config["style_sha256"] = W.sha256_of(Path(style))
    resolved = W.resolve("vgg16", Path(values["vgg_weights"]) if values.get("vgg_weights") else None)
    config["vgg_weights"] = str(resolved.path.resolve()) if values.get("vgg_weights") else None
    config["vgg_sha256"] = resolved.sha256
    if values.get("data") is None:
        raise UsageProblem("--data is needed: the content images (an image folder, zip or prepared dataset).",
                           "Example: --data data/celebahq256")
    split = values.get("split") or "all"
    config["heldout"] = heldout_of(values, split)
    length = {} if values.get("steps") or values.get("epochs") else {"epochs": float(config["n_epochs"])}
    return TrainPlan(config, {"images": {"path": str(values["data"]), "split": split}}, length)


def heldout_of(values: dict[str, Any], split: str) -> dict[str, str] | None:
    """The sample grids' held-out images: --heldout, else a prepared dataset's test split beside its train split."""
    if values.get("heldout") is not None:
        path = Path(values["heldout"])
        images = open_image_set(path, split="all")
        if not len(images):
            raise FaceganError(f"--heldout {path} holds no images.", "Pass a folder, zip or dataset with images.")
        return {"path": str(path.resolve()), "split": "all"}
    data = Path(values["data"])
    if split == "train" and (data / MANIFEST).is_file():
        return {"path": str(data.resolve()), "split": "test"}
    return None


OPTIONS = (
    DATA_OPTION,
    Opt("split", ("--split",), str, None, "Split of a prepared dataset: train, valid, test or all (default)."),
    Opt("heldout", ("--heldout",), Path, None, "Content images the sample grids stylise (default: a prepared "
        "dataset's test split when training on train, else the first training images)."),
)  # and the options of models.fast_style.FastStyleConfig's fields (--style-image, --vgg-weights, ...)

TRAINING = TrainSpec(
    summary="Train Johnson et al.'s fast style network (pytorch/examples' fast_neural_style) on content images "
    "and one style image.\n\n"
    "TransformerNet (1,679,235 parameters: reflection padding, InstanceNorm, 5 residual blocks, nearest "
    "upsampling), trained with VGG16's perceptual loss: content weight * MSE of relu2_2, style weight * the "
    "MSE of the Gram matrices (F F^T / (C H W)) at relu1_2, relu2_2, relu3_3, relu4_3; Adam. Presets: "
    "examples (their train defaults: 256 px crops, batch 4, 1e5 / 1e10, lr 1e-3, 2 epochs, the style at its "
    "own size) and faces (the default, for portraits: the style at 256 px, style weight 5e9, 4 epochs). "
    "Sample grids show held-out content images stylised. Ctrl-C saves; --resume continues exactly. Use the "
    "result with `facegan transfer fast --ckpt RUN INPUT... --out OUT`.",
    example="facegan train fast-style --data data/celebahq256 --style-image styles/candy.jpg --out runs/candy",
    options=OPTIONS,
    configure=configure,
    trainer=FastStyleTrainer,
    loop_defaults={"log_every": 50, "ckpt_every": 2000, "sample_every": 1000, "keep": 2},
    loop_help={"steps": "(default: the preset's --n-epochs epochs)"},
    resumable=RESUMABLE_LR,
    tiny={"resolution": 32, "batch": 2, "steps": 2},
)
