"""How each reference turns decoded uint8 pixels into the FID Inception network's 299x299 input.

Published numbers differ by whole FID points between implementations mostly because of this step, so
every protocol reproduces its reference's arithmetic (same dtype, same operation order) and runs batched
on the device:

- `pytorch-fid`: ToTensor's float32 x / 255, `F.interpolate` bilinear (align_corners=False, no
  antialiasing) to 299, then 2x - 1.
- `torch-fidelity`: float32 pixel values, TensorFlow 1.x's bilinear resize as torch-fidelity writes it
  (source coordinate = destination index x in/out, edge clamped, two lerps), then (x - 128) / 128.
- `clean`: clean-fid's "clean" resize, PIL's bicubic filter applied to float32 channels (antialiased
  when shrinking, never requantised to uint8), clipped to [0, 255], then the (x - 128) / 128 of the
  TensorFlow graph. PIL's filter is torch's antialiased bicubic (a = -0.5); computed in float64 it
  agrees with PIL to float32 rounding (1.6e-5 of a grey level).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from facegan_cli.core.errors import FaceganError
from facegan_cli.features.inception import INPUT_SIZE
from facegan_cli.metrics.settings import DEFAULT_PROTOCOL as DEFAULT_PROTOCOL
from facegan_cli.metrics.settings import PROTOCOL_NAMES

Prepare = Callable[[torch.Tensor], torch.Tensor]


def _pytorch_fid(images: torch.Tensor) -> torch.Tensor:
    x = images.float().div(255)
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2 * x - 1


def _tf1_axis(in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # The scale is a Python double rounded to float32, and the grid a float32 product, as in torch-fidelity.
    scale = torch.tensor(in_size / out_size, dtype=torch.float32, device=device)
    grid = torch.arange(out_size, dtype=torch.float32, device=device) * scale
    lo = grid.long()
    hi = (lo + 1).clamp_max(in_size - 1)
    return lo, hi, grid - lo.float()


def tf1_bilinear_resize(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """TensorFlow 1.x `resize_bilinear(align_corners=False)` of a float N x C x H x W batch."""
    ylo, yhi, dy = _tf1_axis(x.shape[2], size, x.device)
    xlo, xhi, dx = _tf1_axis(x.shape[3], size, x.device)
    top, bottom = x.index_select(2, ylo), x.index_select(2, yhi)
    dx = dx.view(1, 1, 1, size)
    top_left, top_right = top.index_select(3, xlo), top.index_select(3, xhi)
    bottom_left, bottom_right = bottom.index_select(3, xlo), bottom.index_select(3, xhi)
    upper = top_left + (top_right - top_left) * dx
    lower = bottom_left + (bottom_right - bottom_left) * dx
    return upper + (lower - upper) * dy.view(1, 1, size, 1)


def _torch_fidelity(images: torch.Tensor) -> torch.Tensor:
    x = tf1_bilinear_resize(images.float())
    return (x - 128) / 128


def pil_bicubic_resize(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """PIL's `resize(BICUBIC)` of float channels (mode "F"), batched: float32 N x C x size x size."""
    if x.shape[-2:] == (size, size):
        return x.float()  # PIL returns an unchanged copy when the size already matches
    out = F.interpolate(x.double(), size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    return out.float()


def _clean(images: torch.Tensor) -> torch.Tensor:
    x = pil_bicubic_resize(images).clamp_(0, 255)
    return (x - 128) / 128


@dataclass(frozen=True)
class Protocol:
    name: str
    reproduces: str
    input_path: str
    prepare: Prepare  # uint8 N x 3 x H x W on the device -> float32 N x 3 x 299 x 299 network input


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "pytorch-fid", "mseitzer/pytorch-fid 0.3",
            "PIL RGB -> float [0,1] -> bilinear (align_corners=False) to 299 -> 2x-1", _pytorch_fid,
        ),
        Protocol(
            "torch-fidelity", "toshas/torch-fidelity 0.4",
            "uint8 -> TF1-compatible bilinear to 299 -> (x-128)/128", _torch_fidelity,
        ),
        Protocol(
            "clean", "GaParmar/clean-fid 0.1 mode=clean",
            "PIL bicubic of float32 channels to 299, no requantisation -> (x-128)/128", _clean,
        ),
    )
}
# The CLI offers the names declared in protocol_names (without importing torch): they must be these.
assert tuple(PROTOCOLS) == PROTOCOL_NAMES, "metrics/settings.py must list every protocol"


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise FaceganError(f"--protocol {name!r} is not a protocol.", f"Use one of: {', '.join(PROTOCOLS)}.")
    return PROTOCOLS[name]
