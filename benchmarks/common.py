"""What the step-time benchmarks share: the device's name for the report and the timing of a step function."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

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


def _status_kib(pid: int | str, field: str) -> int:
    """A `VmHWM:`-style field of /proc/PID/status, in KiB (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _private_kib(pid: int) -> int:
    """Memory only this process holds (private clean + dirty pages), in KiB: a forked worker's RSS also counts
    the pages it still shares with its parent."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            return sum(int(line.split()[1]) for line in rollup if line.startswith(("Private_Clean:", "Private_Dirty:")))
    except OSError:
        return 0


def peak_memory(device: torch.device | str) -> dict[str, float]:
    """This process's peak resident memory (VmHWM: getrusage's ru_maxrss is inherited from the parent across
    fork + exec, so a side started by a parent holding 800 MiB would report at least 800 MiB), the private
    memory its live child processes (DataLoader workers) hold now, and on CUDA the peak allocated memory."""
    out = {"peak_rss_mib": round(_status_kib("self", "VmHWM") / 1024, 1)}
    children: list[int] = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as listing:
                children += [int(pid) for pid in listing.read().split()]
        except OSError:
            continue
    if children:
        out["workers_private_mib"] = round(sum(_private_kib(pid) for pid in children) / 1024, 1)
    if torch.device(device).type == "cuda":
        out["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def memory_text(side: dict[str, float]) -> str:
    """A side's peak memory (from peak_memory) as the reports print it."""
    text = f"peak RSS {side['peak_rss_mib']:.0f} MiB"
    if side.get("workers_private_mib"):
        text += f" (+ workers' private {side['workers_private_mib']:.0f} MiB)"
    if "peak_cuda_mib" in side:
        text += f"   peak CUDA {side['peak_cuda_mib']:.0f} MiB"
    return text


def report_ratio(result: dict, out: Path | None) -> None:
    """The result as one JSON line, the facegan / reference ratio, and the result to `out` when given."""
    print(json.dumps(result), flush=True)
    print(f"facegan / reference: {result['ratio']:.2f}x", flush=True)
    if out:
        out.write_text(json.dumps(result, indent=2) + "\n")
