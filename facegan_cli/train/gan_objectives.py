"""Losses more than one family trains with: the WGAN-GP gradient penalty and the GAN objectives (junyanz's
GANLoss modes for the translation families, the non-saturating BCE pair for the others)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from facegan_cli.models.layers import at_least_fp32


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], mixed: torch.Tensor) -> torch.Tensor:
    """Per-image (||d sum(critic(x)) / dx at x = mixed||_2 - 1)^2 (WGAN-GP, Gulrajani et al.), differentiable.

    `mixed` is the interpolate between real and fake images (each family draws its own mixing weights);
    `critic` maps images to scores of any shape (ProGAN's one score, StarGAN's PatchGAN map), whose sum
    is differentiated. Half-precision gradients are summed in float32.
    """
    if not mixed.requires_grad:
        mixed = mixed.detach().requires_grad_(True)
    scores = at_least_fp32(critic(mixed))
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = at_least_fp32(grad).flatten(1).square().sum(1).sqrt()
    return (norms - 1.0).square()


def bce_real(logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating GAN loss towards "real" (label 1), with logits."""
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def bce_fake(logits: torch.Tensor) -> torch.Tensor:
    """GAN loss towards "fake" (label 0), with logits."""
    return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))



def gan_loss(prediction: torch.Tensor, target_is_real: bool, mode: str) -> torch.Tensor:
    """J's GANLoss: lsgan = MSE to 1 or 0, vanilla = BCE with logits, wgangp = -mean (real) / mean (fake)."""
    prediction = prediction.float()
    if mode == "lsgan":
        return F.mse_loss(prediction, torch.full_like(prediction, 1.0 if target_is_real else 0.0))
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(prediction, torch.full_like(prediction, 1.0 if target_is_real else 0.0))
    if mode == "wgangp":
        return -prediction.mean() if target_is_real else prediction.mean()
    raise ValueError(f"unknown gan mode {mode!r}")
