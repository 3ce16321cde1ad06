"""Optimising images through the frozen VGG19 towards content and style targets (NST and LFT synthesis).

An `Objective` holds, for a batch of N images, the content targets (feature maps) and the style targets
(Gram matrices: one per layer shared by the batch, as NST's style image gives, or one per image, as the
translated features of Latent Features Transfer give), the layers, the loss convention
(transfer.losses) and the weights. `objective(images)` returns the weighted terms per image:

    content = content_weight * sum over content layers of the content error
    style[l] = style_weight * w_l * E_l          (one entry per style layer)
    total   = content + sum_l style[l]

`optimize` minimises the sum of the images' totals (the images are independent problems solved as one
batch) over the pixels, with L-BFGS, Adam or plain SGD, clamping the pixels to their range: before every evaluation
with L-BFGS (as the PyTorch tutorial's closure does) and after every step otherwise, and once at the end.
`steps` counts evaluations of the objective for L-BFGS (the references' `num_steps` / `max_iter` count
closure calls; facegan stops at exactly `steps`) and updates otherwise.

The optimisers minimise the summed total divided by its initial value (a constant): the loss conventions
differ by orders of magnitude (Gatys's weights were set for Caffe-scaled features, and give values around
1e-4 on torchvision's normalisation), and L-BFGS's absolute thresholds (1e-10 on the curvature pairs) or
Adam's epsilon would otherwise stall a well-posed problem; L-BFGS's early exits (its tolerances on the
gradient and the change) are off, so it always makes its `steps` evaluations. The minimiser is the same;
every loss reported is the unscaled one.

The optimised variable may be a view of the image (`to_image`): pixels scaled to 0-255 (LFT synthesis
takes its learning rate on that scale) or one luminance channel (colour preservation).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from facegan_cli.core.errors import FaceganError
from facegan_cli.features.vgg19 import VGG19Extractor
from facegan_cli.transfer.names import OPTIMIZERS as OPTIMIZERS  # where callers import it from
from facegan_cli.transfer.style_losses import ContentTap, StyleTap

LBFGS_MAX_ITER = 20  # torch.optim.LBFGS's default evaluations per step(), as both references use it


@dataclass
class LossTerms:
    """Weighted loss terms, one value per image (float tensors of shape N)."""

    content: torch.Tensor
    style: dict[str, torch.Tensor]
    total: torch.Tensor

    def record(self, i: int) -> dict[str, float | dict[str, float]]:
        """Image i's terms as plain numbers: content, style per layer, their sum, and the total."""
        style = {layer: float(v[i]) for layer, v in self.style.items()}
        return {"content": float(self.content[i]), "style": style, "style_total": float(sum(style.values())),
                "total": float(self.total[i])}

    def summary(self) -> str:
        """Mean per image, for progress bars."""
        style = sum((v.detach() for v in self.style.values()), torch.zeros_like(self.content.detach()))
        return f"content {float(self.content.detach().mean()):.4g} style {float(style.mean()):.4g}"


@dataclass
class Objective:
    """Targets, layers and weights of one batch (see the module docstring).

    `content_targets`: tap -> N x C x H x W (or 1 x ..., shared); `style_targets`: tap -> C x C (shared) or
    N x C x C. `content_layers` / `style_layers` name the reported terms, in the order of the taps.
    """

    extractor: VGG19Extractor
    norm: str
    content_taps: Sequence[str]
    style_taps: Sequence[str]
    content_targets: Mapping[str, torch.Tensor]
    style_targets: Mapping[str, torch.Tensor]
    content_weight: float
    style_weight: float
    layer_weights: Sequence[float]
    style_layers: Sequence[str] = ()
    _taps: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.layer_weights) != len(self.style_taps):
            raise FaceganError(
                f"{len(self.layer_weights)} style layer weights were given for {len(self.style_taps)} style layers.",
                "Give one weight per style layer (--layer-weights 0.2,0.2,...).",
            )
        self.style_layers = tuple(self.style_layers) or tuple(self.style_taps)
        self._taps = list(dict.fromkeys([*self.content_taps, *self.style_taps]))

    def __call__(self, images: torch.Tensor) -> LossTerms:
        # The losses sit in the pass at their taps (style_losses.StyleTap / ContentTap: their gradients fused
        # into the backward, no full-size accumulation at a tap); the pass stops after the deepest tap.
        content_at = set(self.content_taps)
        style_at = {tap: (name, float(weight)) for name, tap, weight in
                    zip(self.style_layers, self.style_taps, self.layer_weights, strict=True)}
        content_terms: dict[str, torch.Tensor] = {}
        style: dict[str, torch.Tensor] = {}

        def at_tap(tap: str, f: torch.Tensor) -> torch.Tensor:
            if tap in content_at:
                f, content_terms[tap] = ContentTap.apply(f, self.content_targets[tap], self.norm,
                                                         float(self.content_weight))
            if tap in style_at:
                name, weight = style_at[tap]
                f, style[name] = StyleTap.apply(f, self.style_targets[tap], self.norm, self.style_weight * weight)
            return f

        self.extractor(images, self._taps, at_tap=at_tap)
        content = sum((content_terms[tap] for tap in self.content_taps), torch.zeros(images.shape[0],
                                                                                     device=images.device))
        style = {name: style[name] for name in self.style_layers}  # in the order of the layers
        total = content + sum(style.values(), torch.zeros_like(content))
        return LossTerms(content, style, total)

    @torch.no_grad()
    def measure(self, images: torch.Tensor) -> LossTerms:
        """The terms without a graph (the final losses)."""
        return detached(self(images))


def detached(terms: LossTerms) -> LossTerms:
    return LossTerms(terms.content.detach(), {k: v.detach() for k, v in terms.style.items()}, terms.total.detach())


@dataclass
class Optimized:
    """What `optimize` returns: the images (in [0, 1], N x 3 x H x W), the terms before and after, the
    objective's evaluations and the seconds spent."""

    images: torch.Tensor
    initial: LossTerms
    final: LossTerms
    evaluations: int
    seconds: float


def optimize(
    objective: Callable[[torch.Tensor], LossTerms],
    variable: torch.Tensor,
    steps: int,
    optimizer: str = "lbfgs",
    lr: float = 1.0,
    limit: float = 1.0,
    to_image: Callable[[torch.Tensor], torch.Tensor] | None = None,
    on_eval: Callable[[int, torch.Tensor, LossTerms], None] | None = None,
) -> Optimized:
    """Minimise the summed totals of `objective(to_image(variable))` over `variable` (clamped to
    [0, limit]); `on_eval(evaluations, image, terms)` is called after every evaluation."""
    if optimizer not in OPTIMIZERS:
        raise FaceganError(f"--optimizer {optimizer!r} is not an optimiser here.", f"Use one of: {', '.join(OPTIMIZERS)}.")
    view = to_image or (lambda v: v)
    # A contiguous variable: its gradient then has the same layout (L-BFGS flattens it with .view).
    x = variable.detach().clone(memory_format=torch.contiguous_format).clamp_(0.0, limit).requires_grad_(True)
    measure = getattr(objective, "measure", None)

    def measured() -> LossTerms:
        if measure is not None:
            return measure(view(x))
        with torch.no_grad():
            return objective(view(x))

    start = time.perf_counter()
    # The first evaluation is at the starting image: its terms are the initial ones (no separate pass), and its
    # total fixes the scale of the minimised sum.
    first_terms: list[LossTerms] = []
    evaluations = 0
    scale = 1.0

    def evaluate() -> torch.Tensor:
        nonlocal evaluations, scale
        with torch.enable_grad():  # the image's gradient is needed even when the caller runs under no_grad
            terms = objective(view(x))
            if not first_terms:
                first_terms.append(detached(terms))
                first = float(terms.total.detach().sum())
                scale = 1.0 / first if np.isfinite(first) and first > 0 else 1.0
            loss = terms.total.sum() * scale
            loss.backward()
        evaluations += 1
        if on_eval is not None:
            on_eval(evaluations, view(x.detach()), terms)
        return loss

    if optimizer == "lbfgs":
        # No early exits: `steps` is the budget, whatever the pixel scale (the default tolerances, 1e-7 on the
        # gradient and 1e-9 on the change, are absolute, and stop at once on 0-255 pixels).
        opt: torch.optim.Optimizer = torch.optim.LBFGS([x], lr=lr, max_iter=LBFGS_MAX_ITER, tolerance_grad=0.0,
                                                       tolerance_change=0.0)

        def closure() -> torch.Tensor:
            with torch.no_grad():
                x.clamp_(0.0, limit)
            opt.zero_grad()
            return evaluate()

        while evaluations < steps:
            # The last call may evaluate fewer times, so that exactly `steps` evaluations are made.
            group = opt.param_groups[0]
            group["max_iter"] = min(LBFGS_MAX_ITER, steps - evaluations)
            group["max_eval"] = group["max_iter"] * 5 // 4
            opt.step(closure)  # type: ignore[arg-type]
    else:
        opt = torch.optim.Adam([x], lr=lr) if optimizer == "adam" else torch.optim.SGD([x], lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            evaluate()
            opt.step()
            with torch.no_grad():
                x.clamp_(0.0, limit)
    with torch.no_grad():
        x.clamp_(0.0, limit)
    final = measured()
    initial = first_terms[0] if first_terms else final
    image = view(x.detach())
    return Optimized(image.clamp(0.0, 1.0), initial, final, evaluations, time.perf_counter() - start)
