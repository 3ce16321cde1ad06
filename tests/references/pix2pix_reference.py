"""junyanz/pytorch-CycleGAN-and-pix2pix's pix2pix, as its code behaves: plain fp32, eager, NCHW.

Written from the behaviour of models/networks.py (UnetGenerator, UnetSkipConnectionBlock, NLayerDiscriminator
with get_norm_layer('batch')) and models/pix2pix_model.py (not copied), for the parity tests; the GAN loss,
the image pool and init_weights are cyclegan_reference's (the same code in junyanz's repository):

- norm 'batch' is functools.partial(BatchNorm2d, affine=True, track_running_stats=True), so use_bias is
  False: every conv followed by a norm has no bias (the outermost up-convolution and D's first and last
  convs keep theirs);
- UnetGenerator(input_nc, output_nc, num_downs, ngf, norm, use_dropout): the innermost block, num_downs - 5
  ngf*8 blocks with dropout, then ngf*4, ngf*2, ngf and the outermost block; a block's forward concatenates
  its input with its model's output (the outermost returns the output);
- D: define_D(input_nc + output_nc, ndf, 'basic') = NLayerDiscriminator(6, ndf, 3, batch norm);
- optimize_parameters: forward (fake_B = G(real_A)); D step (requires_grad on): fake pair from the pool
  (pool_size 0 in pix2pix: the pair itself) through D detached -> GAN(., False), real pair -> GAN(., True),
  0.5 * sum, backward, step; G step (D's requires_grad off): GAN(D(real_A, fake_B), True) +
  lambda_L1 * L1(fake_B, real_B), backward, step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from references.cyclegan_reference import GANLoss, ImagePool, NLayerDiscriminator, init_weights


def _batch_norm(channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)


class UnetSkipConnectionBlock(nn.Module):
    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None, submodule: nn.Module | None = None,
                 outermost: bool = False, innermost: bool = False, use_dropout: bool = False) -> None:
        super().__init__()
        self.outermost = outermost
        use_bias = False  # batch norm
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = _batch_norm(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = _batch_norm(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model = model + [nn.Dropout(0.5)]
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    def __init__(self, input_nc: int = 3, output_nc: int = 3, num_downs: int = 8, ngf: int = 64,
                 use_dropout: bool = True) -> None:
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)



def define_networks(num_downs: int = 8, ngf: int = 64, ndf: int = 64, n_layers_d: int = 3) -> dict[str, nn.Module]:
    """G then D, each built then initialised, in the order Pix2PixModel.__init__ does it."""
    return {"G": init_weights(UnetGenerator(3, 3, num_downs, ngf)),
            "D": init_weights(NLayerDiscriminator(6, ndf, n_layers_d, norm=_batch_norm, bias=False))}


class Pix2PixModel:
    """The training side of junyanz's Pix2PixModel around given networks (copies of facegan's, in the tests)."""

    def __init__(self, nets: dict[str, nn.Module], lr: float = 2e-4, beta1: float = 0.5, gan_mode: str = "vanilla",
                 lambda_L1: float = 100.0, pool_size: int = 0, direction: str = "AtoB") -> None:
        self.netG, self.netD = nets["G"], nets["D"]
        self.lambda_L1, self.direction = lambda_L1, direction
        self.fake_AB_pool = ImagePool(pool_size)
        self.criterionGAN = GANLoss(gan_mode)
        self.criterionL1 = nn.L1Loss()
        self.optimizer_G = torch.optim.Adam(self.netG.parameters(), lr=lr, betas=(beta1, 0.999))
        self.optimizer_D = torch.optim.Adam(self.netD.parameters(), lr=lr, betas=(beta1, 0.999))
        self.losses: dict[str, torch.Tensor] = {}

    def set_input(self, A: torch.Tensor, B: torch.Tensor) -> None:
        AtoB = self.direction == "AtoB"
        self.real_A, self.real_B = (A, B) if AtoB else (B, A)

    @staticmethod
    def set_requires_grad(nets: Sequence[nn.Module], flag: bool) -> None:
        for net in nets:
            for p in net.parameters():
                p.requires_grad = flag

    def forward(self) -> None:
        self.fake_B = self.netG(self.real_A)

    def backward_D(self) -> None:
        fake_AB = self.fake_AB_pool.query(torch.cat((self.real_A, self.fake_B), 1))
        loss_D_fake = self.criterionGAN(self.netD(fake_AB.detach()), False)
        real_AB = torch.cat((self.real_A, self.real_B), 1)
        loss_D_real = self.criterionGAN(self.netD(real_AB), True)
        loss_D = (loss_D_fake + loss_D_real) * 0.5
        loss_D.backward()
        self.losses.update(D_fake=loss_D_fake, D_real=loss_D_real)

    def backward_G(self) -> None:
        fake_AB = torch.cat((self.real_A, self.fake_B), 1)
        loss_G_GAN = self.criterionGAN(self.netD(fake_AB), True)
        loss_G_L1 = self.criterionL1(self.fake_B, self.real_B) * self.lambda_L1
        loss_G = loss_G_GAN + loss_G_L1
        loss_G.backward()
        self.losses.update(G_GAN=loss_G_GAN, G_L1=loss_G_L1, loss_G=loss_G)

    def optimize_parameters(self) -> None:
        self.forward()
        self.set_requires_grad([self.netD], True)
        self.optimizer_D.zero_grad()
        self.backward_D()
        self.optimizer_D.step()
        self.set_requires_grad([self.netD], False)
        self.optimizer_G.zero_grad()
        self.backward_G()
        self.optimizer_G.step()


