"""What the metric commands' options declare, without torch (so `facegan metrics --help` loads none): the
settings every metric command shares, the names of the FID input protocols (protocols.py checks it defines
exactly these) and of the Frechet distance's matrix square roots (frechet.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROTOCOL_NAMES = ("pytorch-fid", "torch-fidelity", "clean")
DEFAULT_PROTOCOL = "pytorch-fid"
METHODS = ("eig", "scipy")  # frechet.frechet_distance's matrix square roots
METRIC_NAMES = ("fid", "kid", "is", "pr", "swd", "msssim")  # registry.METRICS' names (a unit test checks)


@dataclass
class Settings:
    """What every metric command shares (the common CLI options)."""

    protocol: str = DEFAULT_PROTOCOL
    inception_weights: Path | None = None
    device: str = "auto"
    batch_size: int | None = None  # None: 50 on the CPU (pytorch-fid's), 250 on a GPU
    workers: int | None = None  # None: see Session.workers
    strict: bool = False
    cache: bool = True
    fast: bool = False
    split: str | None = None
    n: int = 50_000
    seed: int = 0
    translate: Path | None = None  # with a translator --ckpt: the images it translates
    direction: str | None = None  # None: the translator's default direction
