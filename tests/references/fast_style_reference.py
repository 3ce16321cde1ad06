"""A transcription of pytorch/examples' fast_neural_style (fast_neural_style/neural_style/: transformer_net.py,
vgg.py, utils.py, neural_style.py), written from reading it: what the fast-style family's parity tests and
benchmarks/bench_fast_style.py compare facegan with.

- TransformerNet: modules named as theirs (conv1/in1 ... res1..res5 ... deconv1..deconv3), so that a state dict
  of this class has their keys: ConvLayer = ReflectionPad2d(k // 2) then Conv2d(k, stride) under `conv2d`;
  ResidualBlock = conv1, in1, ReLU, conv2, in2, plus the input; UpsampleConvLayer = nearest Upsample(x2),
  reflection pad, conv; InstanceNorm2d(affine=True) throughout; no final activation.
- Vgg16: torchvision vgg16 `features` sliced [0:4], [4:9], [9:16], [16:23]: outputs relu1_2, relu2_2,
  relu3_3, relu4_3.
- utils: gram_matrix = bmm(F, F^T) / (ch * h * w) with F = y.view(b, ch, w * h); normalize_batch divides the
  batch by 255 IN PLACE, then (x - mean) / std with ImageNet's mean and std; save_image clamps to 0-255 and
  casts to uint8 (numpy's astype: truncation); load_image opens RGB and optionally resizes.
- train's step: optimizer.zero_grad(); y = transformer(x); y = normalize_batch(y); x = normalize_batch(x);
  features of both; content = content_weight * MSE(features_y.relu2_2, features_x.relu2_2); style = sum
  over the four outputs of MSE(gram(ft_y), gram_style[:n_batch]) (gram_style: the grams of the style image
  repeated batch_size times), times style_weight; (content + style).backward(); optimizer.step().
- stylize: ToTensor() x 255, unsqueeze, torch.load the state dict, delete keys matching
  r'in\\d+\\.running_(mean|var)$', load_state_dict, forward under no_grad, save_image.
"""

from __future__ import annotations

import re
from collections import namedtuple
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ConvLayer(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(cin, cout, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3, 1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3, 1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.in2(self.conv2(self.relu(self.in1(self.conv1(x))))) + x


class UpsampleConvLayer(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int, upsample: int | None = None) -> None:
        super().__init__()
        self.upsample = upsample
        if upsample:
            self.upsample_layer = nn.Upsample(mode="nearest", scale_factor=upsample)
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(cin, cout, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = self.upsample_layer(x)
        return self.conv2d(self.reflection_pad(x))


class TransformerNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvLayer(3, 32, 9, 1)
        self.in1 = nn.InstanceNorm2d(32, affine=True)
        self.conv2 = ConvLayer(32, 64, 3, 2)
        self.in2 = nn.InstanceNorm2d(64, affine=True)
        self.conv3 = ConvLayer(64, 128, 3, 2)
        self.in3 = nn.InstanceNorm2d(128, affine=True)
        self.res1 = ResidualBlock(128)
        self.res2 = ResidualBlock(128)
        self.res3 = ResidualBlock(128)
        self.res4 = ResidualBlock(128)
        self.res5 = ResidualBlock(128)
        self.deconv1 = UpsampleConvLayer(128, 64, 3, 1, upsample=2)
        self.in4 = nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = UpsampleConvLayer(64, 32, 3, 1, upsample=2)
        self.in5 = nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, 9, 1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        for block in (self.res1, self.res2, self.res3, self.res4, self.res5):
            y = block(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


def legacy_state_dict(net: TransformerNet, seed: int = 0) -> dict[str, torch.Tensor]:
    """`net`'s state dict with the InstanceNorm running statistics an old PyTorch saved (as in candy.pth)."""
    g = torch.Generator().manual_seed(seed)
    state = dict(net.state_dict())
    for name, module in net.named_modules():
        if isinstance(module, nn.InstanceNorm2d):
            state[f"{name}.running_mean"] = torch.randn(module.num_features, generator=g)
            state[f"{name}.running_var"] = torch.rand(module.num_features, generator=g) + 0.5
    return state


VggOutputs = namedtuple("VggOutputs", ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])


class Vgg16(nn.Module):
    """Their Vgg16, from torchvision's vgg16 `features` holding `state` (torchvision's file: features.N keys)."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        import torchvision

        features = torchvision.models.vgg16(weights=None).features
        features.load_state_dict({k[len("features."):]: v for k, v in state.items() if k.startswith("features.")})
        self.slice1, self.slice2, self.slice3, self.slice4 = (
            nn.Sequential(*[features[i] for i in range(a, b)]) for a, b in ((0, 4), (4, 9), (9, 16), (16, 23)))
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> VggOutputs:
        h1 = self.slice1(x)
        h2 = self.slice2(h1)
        h3 = self.slice3(h2)
        h4 = self.slice4(h3)
        return VggOutputs(h1, h2, h3, h4)


def gram_matrix(y: torch.Tensor) -> torch.Tensor:
    b, ch, h, w = y.size()
    features = y.view(b, ch, w * h)
    return features.bmm(features.transpose(1, 2)) / (ch * h * w)


def normalize_batch(batch: torch.Tensor) -> torch.Tensor:
    mean = batch.new_tensor(IMAGENET_MEAN).view(-1, 1, 1)
    std = batch.new_tensor(IMAGENET_STD).view(-1, 1, 1)
    batch = batch.div_(255.0)
    return (batch - mean) / std


def style_grams(vgg: Vgg16, style: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Their Gram matrices of the style image (1 x 3 x H x W, 0-255), repeated batch_size times, computed once
    before the loop."""
    return [gram_matrix(y) for y in vgg(normalize_batch(style.repeat(batch_size, 1, 1, 1)))]


def train_step(
    transformer: TransformerNet, optimizer: torch.optim.Optimizer, vgg: Vgg16, x: torch.Tensor,
    gram_style: list[torch.Tensor], content_weight: float = 1e5, style_weight: float = 1e10,
) -> tuple[float, float]:
    """One iteration of their train loop on content batch `x` (0-255): (content loss, style loss) as their log
    line adds them up."""
    mse_loss = nn.MSELoss()
    x = x.clone()
    n_batch = len(x)
    optimizer.zero_grad()
    y = transformer(x)
    y = normalize_batch(y)
    x = normalize_batch(x)
    features_y = vgg(y)
    features_x = vgg(x)
    content_loss = content_weight * mse_loss(features_y.relu2_2, features_x.relu2_2)
    style_loss = 0.0
    for ft_y, gm_s in zip(features_y, gram_style):
        style_loss = style_loss + mse_loss(gram_matrix(ft_y), gm_s[:n_batch, :, :])
    style_loss = style_loss * style_weight
    (content_loss + style_loss).backward()
    optimizer.step()
    return content_loss.item(), float(style_loss.item())


def load_model(path: str | Path) -> TransformerNet:
    """Their stylize's model loading (the file is read with weights_only=True here: tensors only)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    for k in list(state.keys()):
        if re.search(r"in\d+\.running_(mean|var)$", k):
            del state[k]
    model = TransformerNet()
    model.load_state_dict(state)
    return model.eval()


def stylize(model: TransformerNet, image_path: str | Path) -> np.ndarray:
    """Their stylize of one image file: H x W x 3 uint8 as save_image writes it."""
    img = Image.open(image_path).convert("RGB")
    x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255).mul(255)[None]
    with torch.no_grad():
        out = model(x).cpu()
    return out[0].clone().clamp(0, 255).numpy().transpose(1, 2, 0).astype("uint8")


def stylize_file(model_path: str | Path, content_image: str | Path, output_image: str | Path) -> None:
    """Their `neural_style.py eval` for one image, as it runs: read the image, build the network, load and
    clean the state dict, one forward pass under no_grad, save the PNG (a new network per image)."""
    img = Image.open(content_image).convert("RGB")
    x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255).mul(255)[None]
    with torch.no_grad():
        model = load_model(model_path)
        out = model(x).cpu()
    pixels = out[0].clone().clamp(0, 255).numpy().transpose(1, 2, 0).astype("uint8")
    Image.fromarray(pixels).save(output_image)


def train_loop(
    dataset: str | Path, style_image: str | Path, vgg_state: dict[str, torch.Tensor], batches: int,
    image_size: int = 256, batch_size: int = 4, seed: int = 42,
) -> int:
    """Their `train` for `batches` iterations of one epoch: ImageFolder + DataLoader(batch_size) with Resize,
    CenterCrop, ToTensor x 255 per image (no workers), TransformerNet, Adam 1e-3, VGG16, the style image at its
    own size; returns the iterations run."""
    import torchvision
    from torch.utils.data import DataLoader

    torch.manual_seed(seed)
    t = torchvision.transforms
    transform = t.Compose([t.Resize(image_size), t.CenterCrop(image_size), t.ToTensor(), t.Lambda(lambda x: x.mul(255))])
    loader = DataLoader(torchvision.datasets.ImageFolder(str(dataset), transform), batch_size=batch_size)
    transformer = TransformerNet()
    optimizer = torch.optim.Adam(transformer.parameters(), 1e-3)
    vgg = Vgg16(vgg_state)
    style = t.Compose([t.ToTensor(), t.Lambda(lambda x: x.mul(255))])(Image.open(style_image).convert("RGB"))[None]
    grams = style_grams(vgg, style, batch_size)
    transformer.train()
    done = 0
    while done < batches:
        for x, _ in loader:
            train_step(transformer, optimizer, vgg, x, grams)
            done += 1
            if done == batches:
                break
    return done
