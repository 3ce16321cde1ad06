"""apply.whole_image: any-shape inputs padded to the network's multiple and cropped back, tiles blended
without a seam (a fully convolutional translator: a CycleGAN resnet generator with batch norm in eval mode,
random weights), and instance-norm statistics frozen for the tiles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from facegan_cli.apply.whole_image import (
    apply_padded,
    apply_tiled,
    check_tiling,
    pad_to_multiple,
    ramp_weights,
    resolve_tiling,
    tile_starts,
)
from facegan_cli.core.errors import UsageProblem
from facegan_cli.models.cyclegan import ResnetGenerator
from facegan_cli.models.translation import downsampling_multiple

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[2]


def fully_convolutional(seed: int = 0, ngf: int = 8, n_blocks: int = 3) -> nn.Module:
    """CycleGAN's resnet G with its instance norms replaced by batch norms in eval mode (per-channel affine,
    no per-image statistics) and weights drawn with unit gain, so its output spans many levels."""
    torch.manual_seed(seed)
    g = ResnetGenerator(3, 3, ngf, n_blocks)
    for module in list(g.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.InstanceNorm2d):
                bn = nn.BatchNorm2d(child.num_features)
                bn.running_mean.normal_(0, 0.1)
                bn.running_var.uniform_(0.5, 1.5)
                setattr(module, name, bn)
    for m in g.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0, (1.0 / m.weight[0].numel()) ** 0.5)
    return g.eval()


def photo_like(h: int, w: int, seed: int = 1) -> torch.Tensor:
    """1 x 3 x h x w in [-1, 1]: smoothed noise (structure at several scales, like a photo's)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h, w, generator=gen) * 2 - 1
    return nn.functional.avg_pool2d(x, 5, 1, 2)


def levels(t: torch.Tensor) -> torch.Tensor:
    return ((t.clamp(-1, 1) + 1) * 127.5).round()


@pytest.mark.unit
def test_any_shape_is_padded_and_cropped_back() -> None:
    g = fully_convolutional()
    assert downsampling_multiple(g) == 4 and downsampling_multiple(ResnetGenerator(3, 3, 8, 1)) == 4
    x = photo_like(21, 30)
    assert pad_to_multiple(x, 4).shape[-2:] == (24, 32)
    assert pad_to_multiple(x[..., :2, :3], 4).shape[-2:] == (4, 4)  # too small to reflect: replicated
    with torch.no_grad():
        assert apply_padded(g, x, 4).shape == x.shape
        ready = photo_like(24, 32)
        torch.testing.assert_close(apply_padded(g, ready, 4), g(ready), rtol=0, atol=0)  # a right size: as before


@pytest.mark.unit
def test_tile_grid_and_window() -> None:
    assert tile_starts(100, 128, 32) == [0]
    starts = tile_starts(300, 64, 16)
    assert starts[0] == 0 and starts[-1] == 300 - 64 and all(b - a <= 64 - 16 for a, b in zip(starts, starts[1:]))
    assert all(s % 4 == 0 for s in starts)
    inner = ramp_weights(300, 48, 64, 16)
    assert inner[0] > 0 and inner[15] < 1 and torch.all(inner[16:48] == 1) and inner[-1] < inner[-16]
    edge = ramp_weights(300, 0, 64, 16)
    assert edge[0] == 1  # an image edge: nothing to blend with
    for tile, overlap in ((30, 8), (64, 6), (64, 40), (0, 0)):
        with pytest.raises(UsageProblem):
            check_tiling(tile, overlap, 4)
    with pytest.raises(UsageProblem, match="only its training size"):
        check_tiling(64, 16, 0)
    assert resolve_tiling(256, None, 4) == 64 and resolve_tiling(None, None, 4) is None
    with pytest.raises(UsageProblem, match="without --tile"):
        resolve_tiling(None, 16, 4)


@pytest.mark.unit
def test_tiles_blend_without_a_seam() -> None:
    """Tiled vs untiled on a fully convolutional net, 303 x 201: at most 2 levels anywhere (tile borders
    included), where butting tiles (no overlap) differ visibly at their borders."""
    g = fully_convolutional()
    x = photo_like(201, 303)
    with torch.no_grad():
        whole = levels(apply_padded(g, x, 4))
        tiled, info = apply_tiled(g, x, 4, tile=128, overlap=32, batch=4)
        butted, _ = apply_tiled(g, x, 4, tile=128, overlap=0, batch=4)
    assert info["tiles"] == 6 and info["norm_statistics_from"] is None  # no per-image norm: nothing frozen
    assert float(whole.std()) > 8  # the output spans many levels: the comparison can fail
    assert tiled.shape == x.shape and float((levels(tiled) - whole).abs().max()) <= 2
    assert float((levels(butted) - whole).abs().max()) > 2


@pytest.mark.unit
def test_instance_norm_statistics_are_frozen_for_the_tiles() -> None:
    """CycleGAN's own G (instance norm): with the statistics of the whole image frozen, one tile covering the
    image is the untiled pass; tiles at a reduced image's statistics agree with each other (no tile-by-tile
    tone), far closer than tiles normalising themselves."""
    torch.manual_seed(3)
    g = ResnetGenerator(3, 3, 8, 1).eval()
    x = photo_like(64, 96)
    with torch.no_grad():
        whole = levels(apply_padded(g, x, 4))
        one, info = apply_tiled(g, x, 4, tile=128, overlap=32, stats_area=10**9)
        assert info["norm_statistics_from"] == "96x64" and info["tiles"] == 1
        assert float((levels(one) - whole).abs().max()) <= 1
        frozen, _ = apply_tiled(g, x, 4, tile=48, overlap=16, stats_area=10**9)
        own, own_info = apply_tiled(g, x, 4, tile=48, overlap=16, freeze_statistics=False)
    assert own_info["norm_statistics_from"] is None
    assert float((levels(frozen) - whole).abs().mean()) < 0.5 * float((levels(own) - whole).abs().mean())


WORKER = """
import json, resource, sys, numpy as np, torch
sys.path.insert(0, {tests!r})
from test_whole_image import fully_convolutional, photo_like, levels
from facegan_cli.apply.whole_image import apply_padded, apply_tiled
torch.set_num_threads(1)
g = fully_convolutional()
x = photo_like(1500, 2000)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with torch.no_grad():
    y = apply_tiled(g, x, 4, 256)[0] if sys.argv[1] == "tiled" else apply_padded(g, x, 4)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
np.save(sys.argv[2], levels(y)[0].to(torch.uint8).numpy())
print(json.dumps({{"before_mib": before / 1024, "peak_mib": peak / 1024}}))
"""


def measure(mode: str, out: Path) -> dict[str, float]:
    """Translate a 2000 x 1500 image in a fresh process; its peak resident memory before and after (MiB)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = WORKER.format(tests=str(ROOT / "tests" / "apply"))
    proc = subprocess.run([sys.executable, "-c", code, mode, str(out)], capture_output=True, text=True, env=env,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_2000x1500_in_256_tiles_bounds_memory_and_matches(tmp_path: Path) -> None:
    tiled = measure("tiled", tmp_path / "tiled.npy")
    whole = measure("whole", tmp_path / "whole.npy")
    print(f"peak RSS MiB: tiled {tiled}, untiled {whole}")
    tiled_extra, whole_extra = tiled["peak_mib"] - tiled["before_mib"], whole["peak_mib"] - whole["before_mib"]
    assert tiled_extra < 0.5 * whole_extra  # the untiled pass holds full-size activations, the tiled one 256^2
    a, b = np.load(tmp_path / "tiled.npy").astype(int), np.load(tmp_path / "whole.npy").astype(int)
    assert a.shape == b.shape == (3, 1500, 2000) and b.std() > 8
    assert int(np.abs(a - b).max()) <= 2
