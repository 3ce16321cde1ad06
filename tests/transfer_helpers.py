"""Shared material of the style/feature-transfer tests: a random-initialised VGG19 in torchvision's file
format, and small real pictures.

The real vgg19-dcbb9e9d.pth is not on this machine (no network), so the tests build the same network with
seeded random weights, initialised as torchvision initialises VGG (Kaiming normal, fan-out, zero biases:
activations keep their scale through the 16 convolutions, so features of real faces vary as real VGG
features do), and save its state dict under torchvision's keys (`features.N.weight` / `.bias`). The
classifier's keys are left out to keep the file at 80 MB instead of 548 MB: facegan skips them on load, and
a test checks that a file holding them loads too. facegan gets the file through `weights=` /
`--vgg-weights` under a name of its own (used unverified, hashed).

Images are read in place from ../shared/data (never copied into the repository), decoded at reduced size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facegan_cli.features.vgg16 import VGG16
from facegan_cli.features.vgg19 import IMAGENET_MEAN, IMAGENET_STD, VGG19, VGGFeatures

TEST_NAME = "random-vgg19.pth"
OFFICIAL_NAME = "vgg19-dcbb9e9d.pth"
STYLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "styles"

_BUILT: dict[str, Path] = {}


def pink_noise(n: int, side: int, seed: int) -> torch.Tensor:
    """n images N x 3 x side x side in [0, 1] with a 1/f amplitude spectrum, as natural images have."""
    g = torch.Generator().manual_seed(seed)
    freq = torch.fft.fftfreq(side)
    radius = torch.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2).clamp(min=1.0 / side)
    phase = torch.rand(n, 3, side, side, generator=g) * 2 * torch.pi
    images = torch.fft.ifft2(torch.polar(1.0 / radius.expand(n, 3, side, side), phase)).real
    low, high = images.amin(dim=(1, 2, 3), keepdim=True), images.amax(dim=(1, 2, 3), keepdim=True)
    return (images - low) / (high - low)


def random_vgg19(seed: int = 0, pool: str = "max", network: type[VGGFeatures] = VGG19) -> VGGFeatures:
    """VGG19 (or `network`: VGG16) features with torchvision's initialisation (Kaiming normal, fan-out, zero biases), seeded, then
    each convolution scaled so that its post-ReLU activations have an RMS of 1 on 1/f-noise images. Without
    that the activations shrink layer by layer (relu5_1 ends near 0.05 on faces), unlike a trained VGG19's."""
    torch.manual_seed(seed)
    net = network(pool)
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            torch.nn.init.zeros_(module.bias)
    x = pink_noise(8, 64, seed)
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        for layer in net.features:
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.div_(torch.relu(layer(x)).square().mean().sqrt())  # zero bias: scales linearly
            x = layer(x)
    return net.eval()


def vgg_weights_file(base: Path) -> Path:
    """The random VGG19 saved once per session under TEST_NAME in `base`."""
    key = str(base)
    if key not in _BUILT:
        path = base / "vgg" / TEST_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(random_vgg19().state_dict(), path)
        _BUILT[key] = path
    return _BUILT[key]


def vgg16_weights_file(base: Path) -> Path:
    """A random VGG16 (seeded, scaled as `random_vgg19`) saved once per session in torchvision's format, under a
    name of its own (used unverified)."""
    key = f"vgg16:{base}"
    if key not in _BUILT:
        path = base / "vgg" / "random-vgg16.pth"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(random_vgg19(network=VGG16).state_dict(), path)
        _BUILT[key] = path
    return _BUILT[key]


@pytest.fixture(scope="session", name="vgg16_file")
def vgg16_file_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's random VGG16 file (import `vgg16_file_fixture` to use `vgg16_file`)."""
    return vgg16_weights_file(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session", name="vgg_file")
def vgg_file_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's random VGG19 file (import `vgg_file_fixture` into a test module to use `vgg_file`)."""
    return vgg_weights_file(tmp_path_factory.getbasetemp())


def load_image(path: Path, side: int) -> np.ndarray:
    """A picture as side x side x 3 uint8: short side resized (JPEG draft decoding first), centre-cropped."""
    with Image.open(path) as img:
        img.draft("RGB", (side * 2, side * 2))
        img = img.convert("RGB")
        w, h = img.size
        scale = side / min(w, h)
        img = img.resize((max(side, round(w * scale)), max(side, round(h * scale))), Image.Resampling.LANCZOS)
        w, h = img.size
        left, top = (w - side) // 2, (h - side) // 2
        return np.asarray(img.crop((left, top, left + side, top + side)))


def as_tensor(pixels: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """uint8 (N x) H x W x 3 -> float N x 3 x H x W in [0, 1]."""
    array = np.stack(pixels) if isinstance(pixels, list) else pixels
    if array.ndim == 3:
        array = array[None]
    return torch.from_numpy(np.array(array)).permute(0, 3, 1, 2).float() / 255.0


def faces(folder: Path, n: int, side: int) -> torch.Tensor:
    """The first `n` faces of `folder` as float N x 3 x side x side in [0, 1]."""
    return as_tensor([load_image(p, side) for p in sorted(folder.glob("*.jpg"))[:n]])


def style(name: str, side: int) -> torch.Tensor:
    """One of ../shared/data/styles as float 1 x 3 x side x side in [0, 1]."""
    path = STYLES / name
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    return as_tensor(load_image(path, side))


def paint(pixels: np.ndarray) -> np.ndarray:
    """A deterministic restyling of H x W x 3 uint8 pixels, the "painting" of paired test data: a mode filter
    (flat brush areas), 3-bit posterisation and a warm palette."""
    from PIL import ImageFilter, ImageOps

    flat = ImageOps.posterize(Image.fromarray(pixels).filter(ImageFilter.ModeFilter(3)), 3)
    warm = np.asarray(flat, dtype=np.float64) @ np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.2, 0.5]]).T
    return np.clip(warm + [20, 10, 0], 0, 255).astype(np.uint8)


def write_pairs(faces_dir: Path, root: Path, n: int, side: int) -> tuple[Path, Path]:
    """Folders a/ (the first n faces, JPEG) and b/ (their paintings, PNG) under root, paired by name."""
    a, b = root / "a", root / "b"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    for path in sorted(faces_dir.glob("*.jpg"))[:n]:
        face = load_image(path, side)
        Image.fromarray(face).save(a / f"{path.stem}.jpg", quality=95)
        Image.fromarray(paint(face)).save(b / f"{path.stem}.png")
    return a, b


def random_reference_net(seed: int = 0) -> torch.nn.Module:
    """pytorch/examples' TransformerNet (the transcription) with random weights, the InstanceNorms' affine
    parameters drawn too (not 1 and 0), and outputs around mid-grey with a spread of tens of levels, as a
    trained network's (default init: +-1)."""
    from references import fast_style_reference as ref

    torch.manual_seed(seed)
    net = ref.TransformerNet()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.InstanceNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
        net.deconv3.conv2d.weight.mul_(100.0)
        net.deconv3.conv2d.bias.fill_(128.0)
    return net.eval()
