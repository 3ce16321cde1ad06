"""A literal transcription of pytorch/examples dcgan/main.py's training step and data pipeline.

Used as the reference side of bench_dcgan_train.py and by tests/train/test_dcgan_recipe.py to show that
facegan's step computes the same update. (The sigmoid of netD is folded into BCEWithLogitsLoss, which is
the numerically stable form of the same loss.)
"""

from __future__ import annotations

import torch
from torch import nn


def examples_step(netG: nn.Module, netD: nn.Module, optG: torch.optim.Optimizer, optD: torch.optim.Optimizer,
                  real: torch.Tensor, nz: int) -> tuple[float, float]:
    criterion = nn.BCEWithLogitsLoss()
    device = real.device
    netD.zero_grad()
    b = real.size(0)
    label = torch.full((b,), 1.0, device=device)
    output = netD(real).view(-1)
    errD_real = criterion(output, label)
    errD_real.backward()
    noise = torch.randn(b, nz, 1, 1, device=device)
    fake = netG(noise)
    label.fill_(0.0)
    output = netD(fake.detach()).view(-1)
    errD_fake = criterion(output, label)
    errD_fake.backward()
    optD.step()
    netG.zero_grad()
    label.fill_(1.0)
    output = netD(fake).view(-1)
    errG = criterion(output, label)
    errG.backward()
    optG.step()
    return errD_real + errD_fake, errG


def examples_loader(root: str, image_size: int, batch_size: int, workers: int) -> torch.utils.data.DataLoader:
    """ImageFolder + PIL decoding + Resize/CenterCrop/ToTensor/Normalize in DataLoader workers."""
    import torchvision.datasets as dset
    import torchvision.transforms as transforms

    dataset = dset.ImageFolder(
        root=root,
        transform=transforms.Compose([
            transforms.Resize(image_size),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ]),
    )
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                       drop_last=True)
