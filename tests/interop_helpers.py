"""Foreign checkpoint files saved as their projects save them (tiny random networks from the transcriptions in
tests/references/), for the import, export and bad-input tests of tests/interop/."""

from __future__ import annotations

from pathlib import Path

import torch
from references.cyclegan_reference import define_networks, save_networks
from references.dcgan_reference import ExamplesDiscriminator, ExamplesGenerator, examples_weights_init
from references.stargan_reference import YunjeyDiscriminator, YunjeyGenerator


def junyanz_folder(root: Path, ngf: int = 8, n_blocks: int = 1, seed: int = 0) -> Path:
    """checkpoints/NAME with latest_net_{G_A,G_B,D_A,D_B}.pth of a tiny CycleGAN."""
    torch.manual_seed(seed)
    folder = root / "checkpoints" / "tiny"
    save_networks(define_networks(ngf=ngf, ndf=8, n_blocks=n_blocks, n_layers_d=2), folder)
    return folder


def yunjey_models(root: Path, c_dim: int = 5, seed: int = 0) -> Path:
    """models/ with 100-G.ckpt and 100-D.ckpt of a tiny 64x64 StarGAN."""
    torch.manual_seed(seed)
    folder = root / "models"
    folder.mkdir(parents=True)
    torch.save(YunjeyGenerator(conv_dim=4, c_dim=c_dim, repeat_num=1).state_dict(), folder / "100-G.ckpt")
    torch.save(YunjeyDiscriminator(image_size=64, conv_dim=4, c_dim=c_dim, repeat_num=6).state_dict(),
               folder / "100-D.ckpt")
    return folder


def examples_outf(root: Path, nz: int = 8, seed: int = 0) -> Path:
    """dcgan/main.py's --outf with netG_epoch_0.pth and netD_epoch_0.pth of a tiny 64x64 DCGAN."""
    torch.manual_seed(seed)
    folder = root / "outf"
    folder.mkdir(parents=True)
    for name, net in (("G", ExamplesGenerator(nz=nz, ngf=2)), ("D", ExamplesDiscriminator(ndf=2))):
        net.apply(examples_weights_init)
        torch.save(net.state_dict(), folder / f"net{name}_epoch_0.pth")
    return folder
