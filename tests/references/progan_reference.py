"""A plain fp32 eager ProGAN training step, written the textbook way, for tests and benchmarks.

It runs the same networks (facegan's ProGenerator/ProDiscriminator, whose phase is set beforehand) as
a typical PyTorch port would: contiguous NCHW fp32, whole networks, D's weight gradients computed in the
G update and thrown away, the gradient penalty through torch.autograd.grad with grad_outputs, the real
images faded by hand, Adam over every parameter and the EMA as a Python loop over parameters.

The tests use it as an independent statement of the update (losses, penalty, drift, EMA); the benchmark
uses it as the "plain" side of the step-time comparison.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def plain_fade_reals(real: torch.Tensor, alpha: float) -> torch.Tensor:
    blurred = F.interpolate(F.avg_pool2d(real, 2), scale_factor=2, mode="nearest")
    return alpha * real + (1 - alpha) * blurred


def plain_gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    x_hat = (real + t * (fake - real)).detach().requires_grad_(True)
    scores = D(x_hat)
    (grad,) = torch.autograd.grad(scores, x_hat, grad_outputs=torch.ones_like(scores), create_graph=True)
    return (grad.reshape(grad.shape[0], -1).norm(2, dim=1) - 1) ** 2


def plain_step(
    G: nn.Module, D: nn.Module, G_ema: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
    real: torch.Tensor, alpha: float, fading: bool, z_dim: int,
    gp_lambda: float = 10.0, drift: float = 0.001, beta: float = 0.999,
) -> dict[str, torch.Tensor]:
    """One D update and one G update, then the EMA; draws z, the mixing factors, then z' (as facegan)."""
    device = real.device
    if fading:
        real = plain_fade_reals(real, alpha)
    n = real.shape[0]
    z = torch.randn(n, z_dim, device=device)
    fake = G(z).detach()
    t = torch.rand(n, 1, 1, 1, device=device)
    d_real, d_fake = D(real), D(fake)
    gp = plain_gradient_penalty(D, real, fake, t)
    loss_d = d_fake.mean() - d_real.mean() + gp_lambda * gp.mean() + drift * (d_real**2).mean()
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()

    loss_g = -D(G(torch.randn(n, z_dim, device=device))).mean()
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    with torch.no_grad():
        for p_ema, p in zip(G_ema.parameters(), G.parameters()):
            p_ema.copy_(beta * p_ema + (1 - beta) * p)
    return {"loss_D": loss_d.detach(), "loss_G": loss_g.detach(), "gp": gp.detach().mean()}
