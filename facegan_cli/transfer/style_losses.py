"""The content and style losses of neural style transfer, in the three conventions facegan reproduces.

Every function works on a batch and returns one value per image (images of a batch are independent
problems optimised together). F is a layer's N x C x H x W feature map, HW = H * W its positions.

| norm       | Gram G                 | style error E_l per layer          | content error          |
| ---------- | ---------------------- | ---------------------------------- | ---------------------- |
| `tutorial` | F F^T / (C H W)        | mean over C x C of (G - S)^2       | mean over C H W (MSE)  |
| `gatys`    | F F^T / (H W)          | mean over C x C of (G - S)^2       | mean over C H W (MSE)  |
| `thesis`   | F F^T                  | sum (G - S)^2 / (4 C^2 (H W)^2)    | 1/2 sum (F - P)^2      |

- `tutorial`: the PyTorch tutorial (advanced_source/neural_style_tutorial.py): gram_matrix divides by
  a*b*c*d with batch a = 1, StyleLoss and ContentLoss are F.mse_loss.
- `gatys`: Gatys's own notebook (leongatys/PytorchNeuralStyleTransfer): GramMatrix divides by h*w,
  GramMSELoss and the content loss are nn.MSELoss.
- `thesis`: seed 004's E_l (its eq. for E_l with M_l^4 = (H W)^2, the feature map being M x M) and
  L_content = 1/2 sum (F - P)^2, which are Gatys et al. 2016's.

They are the same quantities up to constant factors (`style_factor`, `content_factor`):
E_tutorial = (4 / C^2) E_thesis, E_gatys = 4 E_thesis, MSE content = (2 / (C H W)) * 1/2 sum. Loss weights
are therefore only comparable within one convention.

In `tutorial` and `gatys` a style image of any size gives a Gram matrix on the same scale (it is divided
by its positions); the thesis's raw F F^T is not, so its E_l compares images of the same feature size
only (`check_style_size`).
"""

from __future__ import annotations

from typing import Any

import torch

from facegan_cli.transfer.names import NORMS as NORMS  # where callers import it from


def _check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"loss convention {norm!r} is not one of {', '.join(NORMS)}")


def gram(features: torch.Tensor, norm: str) -> torch.Tensor:
    """N x C x H x W -> N x C x C Gram matrices, normalised as `norm` has it (float32)."""
    _check_norm(norm)
    n, c, h, w = features.shape
    flat = features.float().reshape(n, c, h * w)
    g = torch.bmm(flat, flat.transpose(1, 2))
    if norm == "tutorial":
        return g / (c * h * w)
    if norm == "gatys":
        return g / (h * w)
    return g


def style_error(g: torch.Tensor, target: torch.Tensor, norm: str, positions: int) -> torch.Tensor:
    """E_l per image between Gram matrices `g` (N x C x C) and `target` (C x C or N x C x C) of a layer
    whose maps have `positions` = H * W entries (used by `thesis` only)."""
    _check_norm(norm)
    c = g.shape[-1]
    squared = (g - target).square().sum(dim=(1, 2))
    if norm == "thesis":
        return squared / (4.0 * c * c * float(positions) ** 2)
    return squared / (c * c)


def content_error(features: torch.Tensor, target: torch.Tensor, norm: str) -> torch.Tensor:
    """The content loss per image between N x C x H x W feature maps (target broadcast if 1 x ...)."""
    _check_norm(norm)
    squared = (features.float() - target.float()).square().flatten(1).sum(dim=1)
    if norm == "thesis":
        return 0.5 * squared
    return squared / features[0].numel()


def style_factor(norm: str, channels: int) -> float:
    """E_l in convention `norm` divided by the thesis's E_l, for a layer of `channels` channels."""
    _check_norm(norm)
    return {"tutorial": 4.0 / channels**2, "gatys": 4.0, "thesis": 1.0}[norm]


def content_factor(norm: str, elements: int) -> float:
    """The content loss in `norm` divided by the thesis's 1/2 sum, for maps of `elements` = C H W values."""
    _check_norm(norm)
    return 1.0 if norm == "thesis" else 2.0 / elements


def check_style_size(norm: str, style_positions: int, image_positions: int) -> bool:
    """Whether a style target measured on `style_positions` can be compared with an image's Gram of
    `image_positions` in convention `norm` (only the thesis's unnormalised Gram needs equal sizes)."""
    return norm != "thesis" or style_positions == image_positions


# --- the losses as layers of the pass, with their gradient fused into it ---------------------------------------
#
# Written as plain autograd, a loss on a tapped layer gives that layer two gradients (from the loss and from
# the layers after it) that autograd adds as a full-size tensor, and a Gram matrix's backward is two matrix
# products (one per factor of F F^T). These functions stand where the tap is in the pass (VGG's `at_tap`):
# they pass the features on unchanged, return the weighted loss per image, and in the backward add their own
# gradient to the one coming from the layers after them in one fused product: for the style,
# dE/dF = 4 / (q z) (G - S) F with G = F F^T / z and E = sum (G - S)^2 / q (G and S symmetric), one batched
# product that also accumulates (baddbmm); for the content, dE/dF = 2 (F - P) / (C H W) (thesis: F - P), one
# addcmul. The values are those of `gram`, `style_error` and `content_error` above.


def _gram_scale(norm: str, c: int, h: int, w: int) -> tuple[float, float]:
    """(z, q) of a convention: G = F F^T / z, E = sum (G - S)^2 / q."""
    _check_norm(norm)
    if norm == "thesis":
        return 1.0, 4.0 * c * c * float(h * w) ** 2
    return (float(c * h * w) if norm == "tutorial" else float(h * w)), float(c * c)


class StyleTap(torch.autograd.Function):
    """(features, weight * E_l per image) for the Gram target `target` (C x C or N x C x C)."""

    @staticmethod
    def forward(ctx: Any, features: torch.Tensor, target: torch.Tensor, norm: str, weight: float) -> Any:
        n, c, h, w = features.shape
        z, q = _gram_scale(norm, c, h, w)
        flat = features.float().reshape(n, c, h * w)
        diff = torch.bmm(flat, flat.transpose(1, 2)).div_(z).sub_(target)
        error = diff.square().sum(dim=(1, 2)).div_(q).mul_(weight)
        ctx.save_for_backward(features, diff)
        ctx.scale = 4.0 * weight / (q * z)
        return features.view_as(features), error

    @staticmethod
    def backward(ctx: Any, grad_features: torch.Tensor | None, grad_error: torch.Tensor | None) -> Any:
        features, diff = ctx.saved_tensors
        if grad_error is None:
            return grad_features, None, None, None
        n, c, h, w = features.shape
        flat = features.float().reshape(n, c, h * w)
        diff = diff * (grad_error.float() * ctx.scale).view(n, 1, 1)
        if grad_features is None:  # the deepest tap: nothing after it
            grad = torch.bmm(diff, flat)
        else:
            grad = torch.baddbmm(grad_features.float().reshape(n, c, h * w), diff, flat)
        return grad.view(n, c, h, w).to(features.dtype), None, None, None


class ContentTap(torch.autograd.Function):
    """(features, weight * content error per image) against `target` (N x ... or 1 x ..., broadcast)."""

    @staticmethod
    def forward(ctx: Any, features: torch.Tensor, target: torch.Tensor, norm: str, weight: float) -> Any:
        _check_norm(norm)
        diff = features.float() - target.float()
        squared = diff.square().flatten(1).sum(dim=1)
        per = 0.5 if norm == "thesis" else 1.0 / features[0].numel()
        ctx.save_for_backward(diff)
        ctx.scale = 2.0 * per * weight
        return features.view_as(features), squared.mul_(per * weight)

    @staticmethod
    def backward(ctx: Any, grad_features: torch.Tensor | None, grad_error: torch.Tensor | None) -> Any:
        (diff,) = ctx.saved_tensors
        if grad_error is None:
            return grad_features, None, None, None
        coef = (grad_error.float() * ctx.scale).view(-1, *([1] * (diff.dim() - 1)))
        if grad_features is None:
            return diff * coef, None, None, None
        return torch.addcmul(grad_features.float(), diff, coef), None, None, None
