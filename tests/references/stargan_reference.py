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
from typing import Any

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


# --- yunjey's model.py and Solver.test(), for the import parity test ---------------------------------------------


class YunjeyResidualBlock(nn.Module):
    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim_in, dim_out, kernel_size=3, stride=1, padding=1, bias=False),
            nn.InstanceNorm2d(dim_out, affine=True, track_running_stats=True), nn.ReLU(inplace=True),
            nn.Conv2d(dim_out, dim_out, kernel_size=3, stride=1, padding=1, bias=False),
            nn.InstanceNorm2d(dim_out, affine=True, track_running_stats=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class YunjeyGenerator(nn.Module):
    """model.py's Generator(conv_dim, c_dim, repeat_num): the labels tiled and concatenated to the image."""

    def __init__(self, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3 + c_dim, conv_dim, kernel_size=7, stride=1, padding=3, bias=False),
                                   nn.InstanceNorm2d(conv_dim, affine=True, track_running_stats=True), nn.ReLU(inplace=True)]
        curr = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(curr, curr * 2, kernel_size=4, stride=2, padding=1, bias=False),
                       nn.InstanceNorm2d(curr * 2, affine=True, track_running_stats=True), nn.ReLU(inplace=True)]
            curr *= 2
        layers += [YunjeyResidualBlock(curr, curr) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(curr, curr // 2, kernel_size=4, stride=2, padding=1, bias=False),
                       nn.InstanceNorm2d(curr // 2, affine=True, track_running_stats=True), nn.ReLU(inplace=True)]
            curr //= 2
        layers += [nn.Conv2d(curr, 3, kernel_size=7, stride=1, padding=3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        c = c.view(c.size(0), c.size(1), 1, 1).repeat(1, 1, x.size(2), x.size(3))
        return self.main(torch.cat([x, c], dim=1))


class YunjeyDiscriminator(nn.Module):
    """model.py's Discriminator(image_size, conv_dim, c_dim, repeat_num): heads conv1 (source), conv2 (classes)."""

    def __init__(self, image_size: int = 128, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, conv_dim, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.01)]
        curr = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(curr, curr * 2, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.01)]
            curr *= 2
        kernel_size = int(image_size / 2**repeat_num)
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(curr, 1, kernel_size=3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(curr, c_dim, kernel_size=kernel_size, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        return self.conv1(h), self.conv2(h).view(h.size(0), -1)


def yunjey_create_labels(c_org: torch.Tensor, selected_attrs: list[str]) -> list[torch.Tensor]:
    """Solver.create_labels for CelebA: a hair colour set (the others cleared), any other attribute flipped."""
    hair = [i for i, name in enumerate(selected_attrs) if name in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")]
    targets = []
    for i in range(len(selected_attrs)):
        c_trg = c_org.clone()
        if i in hair:
            c_trg[:, i] = 1
            for j in hair:
                if j != i:
                    c_trg[:, j] = 0
        else:
            c_trg[:, i] = (c_trg[:, i] == 0).float()
        targets.append(c_trg)
    return targets


def solver_test_pixels(G: nn.Module, image_path: Path, c_org: torch.Tensor, selected_attrs: list[str],
                       image_size: int = 128, crop_size: int = 178, out: Path | None = None) -> Any:
    """What Solver.test() saves for one CelebA image: CenterCrop(178) -> Resize(image_size) -> ToTensor ->
    Normalize(0.5); G never put in eval mode; [x_real, G(x, c) per create_labels target] concatenated along the
    width, denorm ((x + 1) / 2, clamped) and torchvision's save_image (nrow=1, padding=0). Returns the PNG's
    H x W x 3 uint8 pixels."""
    import numpy as np
    import torchvision.transforms as T
    from PIL import Image
    from torchvision.utils import save_image

    transform = T.Compose([T.CenterCrop(crop_size), T.Resize(image_size), T.ToTensor(),
                           T.Normalize(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))])
    with Image.open(image_path) as image:
        x_real = transform(image.convert("RGB")).unsqueeze(0)
    G.train()  # yunjey's solver builds G in training mode and test() never changes it
    with torch.no_grad():
        x_fake_list = [x_real] + [G(x_real, c_trg) for c_trg in yunjey_create_labels(c_org, selected_attrs)]
        x_concat = torch.cat(x_fake_list, dim=3)
    path = out or image_path.with_suffix(".solver-test.png")
    save_image(((x_concat.data.cpu() + 1) / 2).clamp_(0, 1), path, nrow=1, padding=0)
    with Image.open(path) as saved:
        return np.asarray(saved.convert("RGB"))
