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


class ExamplesGenerator(nn.Module):
    """dcgan/main.py's Generator(ngpu) with nz, ngf, nc as its command-line options (64x64 images)."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.main(input)


class ExamplesDiscriminator(nn.Module):
    """dcgan/main.py's Discriminator(ngpu), sigmoid included."""

    def __init__(self, ndf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.main(input).view(-1, 1).squeeze(1)


def examples_weights_init(m: nn.Module) -> None:
    """main.py's weights_init (conv N(0, 0.02), BatchNorm weight N(1, 0.02), bias 0)."""
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        torch.nn.init.normal_(m.weight, 1.0, 0.02)
        torch.nn.init.zeros_(m.bias)


def examples_samples(netG: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """netG(z) in eval mode (BatchNorm's running statistics), z as N x nz x 1 x 1, mapped to uint8 pixels as
    torchvision's save_image maps (x + 1) / 2: N x H x W x 3."""
    netG.eval()
    with torch.no_grad():
        fake = netG(z.view(z.size(0), -1, 1, 1))
    return ((fake + 1) / 2).mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
