"""junyanz/pytorch-CycleGAN-and-pix2pix's CycleGAN, as its code behaves: plain fp32, eager, NCHW.

Written from the behaviour of models/networks.py, models/cycle_gan_model.py, util/image_pool.py and
data/unaligned_dataset.py + data/base_dataset.py (not copied), for the parity tests and bench_cyclegan.py:

- networks: define_G('resnet_9blocks' / 'resnet_6blocks', norm 'instance', no dropout) and define_D('basic'
  or 'n_layers'), built as junyanz's module trees (attribute names `model`, `conv_block`, so state dicts
  line up), then init_weights('normal', 0.02) applied module by module;
- ImagePool(50) with Python's `random` (uniform, then randint for the slot);
- GANLoss: lsgan MSE to an expanded 1/0 target, vanilla BCE with logits, wgangp -mean/+mean;
- optimize_parameters: forward (fake_B, rec_A, fake_A, rec_B); G step with requires_grad off on both Ds,
  identity terms first, the sum in J's order, one backward; D step: D_A on real_B and the pooled fake_B
  (0.5 * (real + fake), its own backward), then D_B likewise; one Adam per pair (itertools.chain);
- the linear lr rule (LambdaLR, stepped after every epoch);
- data: UnalignedDataset (A[i % |A|], B at a random index, epoch = max(|A|, |B|)), each image decoded with
  PIL, Resize([load, load], bicubic) -> RandomCrop(crop) -> RandomHorizontalFlip -> ToTensor -> Normalize(0.5).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        block = []
        for last in (False, True):
            block += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True), _norm(dim)]
            if not last:
                block += [nn.ReLU(True)]
        self.conv_block = nn.Sequential(*block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9) -> None:
        super().__init__()
        seq: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=True),
                                _norm(ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2**i
            seq += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=True),
                    _norm(ngf * mult * 2), nn.ReLU(True)]
        for _ in range(n_blocks):
            seq.append(ResnetBlock(ngf * 4))
        for i in range(2):
            mult = 2 ** (2 - i)
            seq += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, kernel_size=3, stride=2, padding=1,
                                       output_padding=1, bias=True),
                    _norm(ngf * mult // 2), nn.ReLU(True)]
        seq += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """J's 'basic' PatchGAN. His normalised convolutions have a bias only with instance norm (use_bias), so
    pix2pix's batch-norm D passes `norm` and bias=False."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: Any = _norm,
                 bias: bool = True) -> None:
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            seq += [nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=stride, padding=1, bias=bias),
                    norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        seq += [nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    def init(m: nn.Module) -> None:
        name = m.__class__.__name__
        if hasattr(m, "weight") and (name.find("Conv") != -1 or name.find("Linear") != -1):
            nn.init.normal_(m.weight.data, 0.0, gain)
            if getattr(m, "bias", None) is not None:
                nn.init.constant_(m.bias.data, 0.0)
        elif name.find("BatchNorm2d") != -1:
            nn.init.normal_(m.weight.data, 1.0, gain)
            nn.init.constant_(m.bias.data, 0.0)

    net.apply(init)
    return net


def define_networks(ngf: int = 64, ndf: int = 64, n_blocks: int = 9, n_layers_d: int = 3) -> dict[str, nn.Module]:
    """G_A, G_B, D_A, D_B, each built then initialised, in the order CycleGANModel.__init__ does it."""
    nets: dict[str, nn.Module] = {}
    nets["G_A"] = init_weights(ResnetGenerator(3, 3, ngf, n_blocks))
    nets["G_B"] = init_weights(ResnetGenerator(3, 3, ngf, n_blocks))
    nets["D_A"] = init_weights(NLayerDiscriminator(3, ndf, n_layers_d))
    nets["D_B"] = init_weights(NLayerDiscriminator(3, ndf, n_layers_d))
    return nets


class ImagePool:
    def __init__(self, pool_size: int) -> None:
        self.pool_size = pool_size
        self.num_imgs = 0
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.pool_size == 0:
            return images
        chosen = []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if self.num_imgs < self.pool_size:
                self.num_imgs += 1
                self.images.append(image)
                chosen.append(image)
            elif random.uniform(0, 1) > 0.5:
                slot = random.randint(0, self.pool_size - 1)
                previous = self.images[slot].clone()
                self.images[slot] = image
                chosen.append(previous)
            else:
                chosen.append(image)
        return torch.cat(chosen, 0)


class GANLoss(nn.Module):
    def __init__(self, gan_mode: str) -> None:
        super().__init__()
        self.register_buffer("real_label", torch.tensor(1.0))
        self.register_buffer("fake_label", torch.tensor(0.0))
        self.gan_mode = gan_mode
        self.loss = {"lsgan": nn.MSELoss(), "vanilla": nn.BCEWithLogitsLoss(), "wgangp": None}[gan_mode]

    def __call__(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        if self.gan_mode in ("lsgan", "vanilla"):
            target = (self.real_label if target_is_real else self.fake_label).expand_as(prediction)
            return self.loss(prediction, target)
        return -prediction.mean() if target_is_real else prediction.mean()


class CycleGANModel:
    """The training side of junyanz's CycleGANModel around given networks (copies of facegan's, in the tests)."""

    def __init__(self, nets: dict[str, nn.Module], lr: float = 2e-4, beta1: float = 0.5, gan_mode: str = "lsgan",
                 lambda_A: float = 10.0, lambda_B: float = 10.0, lambda_identity: float = 0.5,
                 pool_size: int = 50) -> None:
        self.netG_A, self.netG_B, self.netD_A, self.netD_B = (nets[k] for k in ("G_A", "G_B", "D_A", "D_B"))
        self.lambda_A, self.lambda_B, self.lambda_idt = lambda_A, lambda_B, lambda_identity
        self.fake_A_pool = ImagePool(pool_size)
        self.fake_B_pool = ImagePool(pool_size)
        self.criterionGAN = GANLoss(gan_mode)
        self.criterionCycle = nn.L1Loss()
        self.criterionIdt = nn.L1Loss()
        self.optimizer_G = torch.optim.Adam(itertools.chain(self.netG_A.parameters(), self.netG_B.parameters()),
                                            lr=lr, betas=(beta1, 0.999))
        self.optimizer_D = torch.optim.Adam(itertools.chain(self.netD_A.parameters(), self.netD_B.parameters()),
                                            lr=lr, betas=(beta1, 0.999))
        self.losses: dict[str, torch.Tensor] = {}

    def set_input(self, real_A: torch.Tensor, real_B: torch.Tensor) -> None:
        self.real_A, self.real_B = real_A, real_B

    def forward(self) -> None:
        self.fake_B = self.netG_A(self.real_A)
        self.rec_A = self.netG_B(self.fake_B)
        self.fake_A = self.netG_B(self.real_B)
        self.rec_B = self.netG_A(self.fake_A)

    @staticmethod
    def set_requires_grad(nets: Sequence[nn.Module], flag: bool) -> None:
        for net in nets:
            for p in net.parameters():
                p.requires_grad = flag

    def backward_D_basic(self, netD: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        loss = (self.criterionGAN(netD(real), True) + self.criterionGAN(netD(fake.detach()), False)) * 0.5
        loss.backward()
        return loss

    def backward_G(self) -> None:
        if self.lambda_idt > 0:
            self.idt_A = self.netG_A(self.real_B)
            loss_idt_A = self.criterionIdt(self.idt_A, self.real_B) * self.lambda_B * self.lambda_idt
            self.idt_B = self.netG_B(self.real_A)
            loss_idt_B = self.criterionIdt(self.idt_B, self.real_A) * self.lambda_A * self.lambda_idt
        else:
            loss_idt_A = loss_idt_B = 0
        loss_G_A = self.criterionGAN(self.netD_A(self.fake_B), True)
        loss_G_B = self.criterionGAN(self.netD_B(self.fake_A), True)
        loss_cycle_A = self.criterionCycle(self.rec_A, self.real_A) * self.lambda_A
        loss_cycle_B = self.criterionCycle(self.rec_B, self.real_B) * self.lambda_B
        self.loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
        self.loss_G.backward()
        self.losses.update(G_A=loss_G_A, G_B=loss_G_B, cycle_A=loss_cycle_A, cycle_B=loss_cycle_B)

    def optimize_parameters(self) -> None:
        self.forward()
        self.set_requires_grad([self.netD_A, self.netD_B], False)
        self.optimizer_G.zero_grad()
        self.backward_G()
        self.optimizer_G.step()
        self.set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad()
        self.losses["D_A"] = self.backward_D_basic(self.netD_A, self.real_B, self.fake_B_pool.query(self.fake_B))
        self.losses["D_B"] = self.backward_D_basic(self.netD_B, self.real_A, self.fake_A_pool.query(self.fake_A))
        self.optimizer_D.step()


def linear_rule(n_epochs: int, n_epochs_decay: int, epoch_count: int = 1) -> Any:
    """The multiplier junyanz's LambdaLR applies after `epoch` scheduler steps."""
    return lambda epoch: 1.0 - max(0, epoch + epoch_count - n_epochs) / float(n_epochs_decay + 1)


# --- the data pipeline (for the benchmark) --------------------------------------------------------------


class UnalignedDataset(torch.utils.data.Dataset):
    """Two folders of images; item i = (A[i % |A|], B at a random index), each freshly decoded and jittered."""

    def __init__(self, dir_A: Path, dir_B: Path, load_size: int, crop_size: int) -> None:
        import torchvision.transforms as T

        suffixes = {".jpg", ".jpeg", ".png"}
        self.A = sorted(p for p in Path(dir_A).iterdir() if p.suffix.lower() in suffixes)
        self.B = sorted(p for p in Path(dir_B).iterdir() if p.suffix.lower() in suffixes)
        self.transform = T.Compose([
            T.Resize([load_size, load_size], T.InterpolationMode.BICUBIC), T.RandomCrop(crop_size),
            T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ])

    def __len__(self) -> int:
        return max(len(self.A), len(self.B))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from PIL import Image

        a = Image.open(self.A[index % len(self.A)]).convert("RGB")
        b = Image.open(self.B[random.randint(0, len(self.B) - 1)]).convert("RGB")
        return {"A": self.transform(a), "B": self.transform(b)}


# --- test.py: the test-time path of a saved generator ------------------------------------------------------------


def save_networks(nets: dict[str, nn.Module], folder: Path, epoch: str = "latest") -> list[Path]:
    """BaseModel.save_networks: `{epoch}_net_{name}.pth`, the plain state dict of each network (junyanz saves
    `net.module` of its DataParallel wrapper, so the keys carry no `module.`)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, net in nets.items():
        path = folder / f"{epoch}_net_{name}.pth"
        torch.save(net.cpu().state_dict(), path)
        paths.append(path)
    return paths


def add_legacy_instance_norm_keys(state: dict[str, torch.Tensor], net: nn.Module) -> dict[str, torch.Tensor]:
    """A state dict as code before PyTorch 0.4 wrote it: every InstanceNorm with running_mean, running_var
    (and num_batches_tracked), which junyanz's load_networks drops."""
    out = dict(state)
    for name, module in net.named_modules():
        if isinstance(module, nn.InstanceNorm2d):
            c = module.num_features
            out[f"{name}.running_mean"] = torch.zeros(c)
            out[f"{name}.running_var"] = torch.ones(c)
            out[f"{name}.num_batches_tracked"] = torch.tensor(0)
    return out


def junyanz_test_pixels(netG: nn.Module, image_path: Path, crop_size: int = 256) -> Any:
    """What junyanz's test.py writes for one image: the single/unaligned dataset's get_transform at test time
    (load_size = crop_size: Resize([s, s], bicubic), RandomCrop(s) a no-op, no flip, ToTensor, Normalize(0.5)),
    netG without eval() (InstanceNorm keeps no statistics, so the mode does not matter), util.tensor2im
    ((x + 1) / 2 * 255, truncated to uint8) and save_image (PIL, aspect ratio 1). Returns H x W x 3 uint8."""
    import numpy as np
    import torchvision.transforms as T
    from PIL import Image

    transform = T.Compose([T.Resize([crop_size, crop_size], T.InterpolationMode.BICUBIC), T.RandomCrop(crop_size),
                           T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    with Image.open(image_path) as image:
        real = transform(image.convert("RGB")).unsqueeze(0)
    with torch.no_grad():
        fake = netG(real)
    image_numpy = (np.transpose(fake[0].cpu().float().numpy(), (1, 2, 0)) + 1) / 2.0 * 255.0
    return image_numpy.astype(np.uint8)
