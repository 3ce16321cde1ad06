"""yunjey/stargan's CelebA training iteration as its solver.py runs it: plain fp32, eager, NCHW.

The reference side of bench_stargan.py, written from the solver's behaviour (not copied):

- data: a DataLoader over img_align_celeba JPEGs decoded with PIL in worker processes (yunjey's default is
  one), RandomHorizontalFlip -> CenterCrop(178) -> Resize(128) -> ToTensor -> Normalize(0.5, 0.5), with
  the attribute rows of list_attr_celeba.txt as 0/1 floats, batches moved to the device every iteration;
- every iteration: targets = the batch's labels in a random permutation; D on the real batch, G(x, c_trg),
  D on the detached fake, the gradient penalty on a per-image interpolation (`autograd.grad` with
  `create_graph`), one Adam step of D; every n_critic-th iteration G's step (adversarial, classification
  and reconstruction losses) through an unfrozen D, both optimisers' gradients zeroed first;
- the loss values are read with `.item()` every iteration, as the solver does for its log dict.

The networks are facegan's StarGAN modules (the same layer structure and parameter count as yunjey's
model.py, asserted in tests/models/test_stargan_models.py), kept in the default NCHW memory format.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def classification_loss(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logit, target, reduction="sum") / logit.size(0)


def gradient_penalty(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    weight = torch.ones_like(y)
    dydx = torch.autograd.grad(outputs=y, inputs=x, grad_outputs=weight, retain_graph=True, create_graph=True,
                               only_inputs=True)[0]
    norm = torch.sqrt(torch.sum(dydx.view(dydx.size(0), -1) ** 2, dim=1))
    return torch.mean((norm - 1) ** 2)


def solver_iteration(
    G: nn.Module, D: nn.Module, g_opt: torch.optim.Optimizer, d_opt: torch.optim.Optimizer,
    x_real: torch.Tensor, label_org: torch.Tensor, i: int, n_critic: int = 5,
    lambda_cls: float = 1.0, lambda_rec: float = 10.0, lambda_gp: float = 10.0,
) -> dict[str, float]:
    """One iteration `i` (0-based) of yunjey's Solver.train for CelebA."""
    device = x_real.device
    label_trg = label_org[torch.randperm(label_org.size(0))]
    c_org, c_trg = label_org.clone().to(device), label_trg.clone().to(device)
    label_org, label_trg = label_org.to(device), label_trg.to(device)

    out_src, out_cls = D(x_real)
    d_loss_real = -torch.mean(out_src)
    d_loss_cls = classification_loss(out_cls, label_org)
    x_fake = G(x_real, c_trg)
    out_src, _ = D(x_fake.detach())
    d_loss_fake = torch.mean(out_src)
    alpha = torch.rand(x_real.size(0), 1, 1, 1, device=device)
    x_hat = (alpha * x_real.data + (1 - alpha) * x_fake.data).requires_grad_(True)
    out_src, _ = D(x_hat)
    d_loss_gp = gradient_penalty(out_src, x_hat)
    d_loss = d_loss_real + d_loss_fake + lambda_cls * d_loss_cls + lambda_gp * d_loss_gp
    g_opt.zero_grad()
    d_opt.zero_grad()
    d_loss.backward()
    d_opt.step()
    log = {"D/loss_real": d_loss_real.item(), "D/loss_fake": d_loss_fake.item(), "D/loss_cls": d_loss_cls.item(),
           "D/loss_gp": d_loss_gp.item()}

    if (i + 1) % n_critic == 0:
        x_fake = G(x_real, c_trg)
        out_src, out_cls = D(x_fake)
        g_loss_fake = -torch.mean(out_src)
        g_loss_cls = classification_loss(out_cls, label_trg)
        x_reconst = G(x_fake, c_org)
        g_loss_rec = torch.mean(torch.abs(x_real - x_reconst))
        g_loss = g_loss_fake + lambda_rec * g_loss_rec + lambda_cls * g_loss_cls
        g_opt.zero_grad()
        d_opt.zero_grad()
        g_loss.backward()
        g_opt.step()
        log.update({"G/loss_fake": g_loss_fake.item(), "G/loss_rec": g_loss_rec.item(),
                    "G/loss_cls": g_loss_cls.item()})
    return log


class CelebAJpegs(torch.utils.data.Dataset):
    """img_align_celeba/*.jpg with the chosen attributes of list_attr_celeba.txt, as yunjey's CelebA class."""

    def __init__(self, root: Path, attrs: list[str], transform: object) -> None:
        lines = (root / "Anno" / "list_attr_celeba.txt").read_text().splitlines()
        names = lines[1].split()
        index = [names.index(a) for a in attrs]
        self.items = []
        for line in lines[2:]:
            parts = line.split()
            if parts:
                values = parts[1:]
                self.items.append((parts[0], [float(values[k] == "1") for k in index]))
        self.root, self.transform = root / "img_align_celeba", transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image

        name, label = self.items[i]
        with Image.open(self.root / name) as image:
            return self.transform(image.convert("RGB")), torch.tensor(label)  # type: ignore[operator]


def yunjey_loader(root: Path, attrs: list[str], batch_size: int, image_size: int = 128, crop_size: int = 178,
                  workers: int = 1) -> torch.utils.data.DataLoader:
    import torchvision.transforms as T

    transform = T.Compose([T.RandomHorizontalFlip(), T.CenterCrop(crop_size), T.Resize(image_size), T.ToTensor(),
                           T.Normalize(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))])
    return torch.utils.data.DataLoader(CelebAJpegs(root, attrs, transform), batch_size=batch_size, shuffle=True,
                                       num_workers=workers, drop_last=True)
