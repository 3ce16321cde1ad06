"""What the step-time benchmarks share: the device's name for the report and the timing of a step function."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

import torch


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(step: Callable[[int], object], device: torch.device, warmup: int, steps: int) -> float:
    """Seconds per step after `warmup` untimed steps (cudnn autotuning, compilation, allocator); `step` is
    called with the iteration index, 0 to warmup + steps - 1."""
    for i in range(warmup):
        step(i)
    _sync(device)
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    _sync(device)
    return (time.perf_counter() - start) / steps
