"""One device and precision policy for every family.

`auto` picks cuda, then mps, then cpu. On CUDA, training may run under bf16 autocast with
channels_last tensors; parity modes (metrics against reference packages) switch TF32 off so that
float32 matmuls are really float32.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facegan_cli.core.errors import FaceganError

if TYPE_CHECKING:  # torch is imported where a device is used, so option checks (the CLI's) load without it
    import torch

DEVICE_HELP = "Where to run: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps."


_DEVICE_NAME = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device_name(spec: str) -> None:
    """ValueError for a --device that is not a device name at all (a usage error, unlike an unavailable one)."""
    if not _DEVICE_NAME.match(str(spec).strip().lower()):
        raise ValueError(f"{spec!r} is not a device name: use auto, cpu, cuda, cuda:N or mps.")


def resolve_device(spec: str = "auto") -> torch.device:
    """Turn a --device value into a torch.device, failing clearly when it is not available."""
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        local_rank = os.environ.get("LOCAL_RANK")
        if torch.cuda.is_available():
            return torch.device("cuda", int(local_rank) if local_rank is not None else 0)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise FaceganError(
            f"--device {spec!r} is not a device name.", "Use auto, cpu, cuda, cuda:N or mps."
        ) from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise FaceganError(
                f"--device {spec} was asked for but this machine has no usable CUDA GPU.",
                "Use --device cpu (or auto).",
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise FaceganError(
                f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) are visible.",
                "Pick an index below that, or check CUDA_VISIBLE_DEVICES.",
            )
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise FaceganError(f"--device {spec} was asked for but MPS is not available.", "Use --device cpu.")
    return device


@dataclass(frozen=True)
class Precision:
    """How tensors are laid out and which dtype autocast uses on a device."""

    device: torch.device
    amp: bool = False  # bf16 autocast; only honoured on CUDA
    channels_last: bool = False

    @property
    def autocast_enabled(self) -> bool:
        return self.amp and self.device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        import torch

        if self.autocast_enabled:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def channels_last_active(self) -> bool:
        # oneDNN (CPU) and cuDNN both run convolutions faster on NHWC; MPS gains nothing.
        return self.channels_last and self.device.type in ("cuda", "cpu")

    def module(self, module: torch.nn.Module) -> torch.nn.Module:
        import torch

        module = module.to(self.device)
        if self.channels_last_active:
            module = module.to(memory_format=torch.channels_last)
        return module

    def tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        import torch

        if self.channels_last_active and tensor.dim() == 4:
            return tensor.contiguous(memory_format=torch.channels_last)
        return tensor


def configure_backends(device: torch.device, parity: bool = False) -> None:
    """Set cudnn/TF32 switches once per process. Parity mode keeps float32 exact."""
    import torch

    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = not parity
    torch.backends.cuda.matmul.allow_tf32 = not parity
    torch.backends.cudnn.allow_tf32 = not parity


@contextlib.contextmanager
def parity_mode(device: torch.device) -> Iterator[None]:
    """Temporarily switch TF32 off (for numbers that must match a reference to the last digit)."""
    import torch

    if device.type != "cuda":
        yield
        return
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
