"""`facegan metrics fid|kid|is|pr|swd|msssim|stats`: the standard GAN metrics, reproducing their references.

Inputs are folders or zips of images, prepared datasets (--split), a generator checkpoint (--ckpt, samples
made on the fly) and, for FID, .npz statistics in pytorch-fid's format. Results go to stdout (a table, or
one JSON document with --json); progress and warnings to stderr.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from facegan_cli.cli.common import (
    DebugOpt,
    DeviceOpt,
    ForceOpt,
    JsonOpt,
    QuietOpt,
    command,
    emit_json,
    emit_line,
    result_console,
)
from facegan_cli.metrics import kid as kid_mod
from facegan_cli.metrics import run
from facegan_cli.metrics.frechet import METHODS
from facegan_cli.metrics.protocols import DEFAULT_PROTOCOL, PROTOCOLS

app = typer.Typer(
    help="FID, KID, IS, precision/recall, SWD and MS-SSIM that reproduce pytorch-fid, torch-fidelity and "
    "clean-fid, and `stats` to precompute reference statistics.",
    no_args_is_help=True,
)



class Protocol(str, Enum):
    pytorch_fid = "pytorch-fid"
    torch_fidelity = "torch-fidelity"
    clean = "clean"


class MatrixSqrt(str, Enum):
    eig = "eig"
    scipy = "scipy"


# The choices above are the library's, spelled out for --help; keep them in step.
assert {p.value for p in Protocol} == set(PROTOCOLS) and {m.value for m in MatrixSqrt} == set(METHODS)

_PROTOCOL_HELP = (
    "Which reference to reproduce: pytorch-fid (bilinear, the default), torch-fidelity (TF1 bilinear) or "
    "clean (clean-fid's PIL bicubic). Recorded in every result."
)
InputsArg = Annotated[
    list[Path] | None,
    typer.Argument(
        help="Folders or zips of images, prepared datasets (see --split), or .npz statistics (fid only).",
        show_default=False,
    ),
]
CkptOpt = Annotated[
    Path | None,
    typer.Option("--ckpt", help="Also score a generator: run directory, checkpoints/ folder or .safetensors file."),
]
ProtocolOpt = Annotated[Protocol, typer.Option("--protocol", help=_PROTOCOL_HELP)]
WeightsOpt = Annotated[
    Path | None,
    typer.Option(
        "--inception-weights",
        help="FID Inception weights to use instead of the cached pt_inception-2015-12-05-6726825d.pth. A file "
        "with the official name (or torch-fidelity's) is SHA-256 checked; under any other name it is used as "
        "given, and its SHA-256 is reported.",
    ),
]
BatchOpt = Annotated[
    int | None, typer.Option("--batch-size", help="Images per forward pass (default: 50 on the CPU, 250 on a GPU).")
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Processes decoding images (default: every CPU with a GPU; on the CPU 1, i.e. decoding in the "
        "main process, which leaves the cores to the network).",
    ),
]
SplitOpt = Annotated[str | None, typer.Option("--split", help="Split of prepared datasets: train, valid, test or all.")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Fail on the first unusable image instead of skipping it.")]
NoCacheOpt = Annotated[
    bool, typer.Option("--no-cache", help="Neither read nor write the feature cache under $FACEGAN_HOME/features.")
]
FastOpt = Annotated[
    bool, typer.Option("--fast", help="Allow TF32 on CUDA: faster, but no longer float32-faithful to the references.")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the --ckpt latents (and of the metric's own draws).")]

_EXAMPLES = {
    "fid": "Example: facegan metrics fid data/celebahq-256 samples/ --protocol clean\n\n"
    "Example: facegan metrics fid real.npz --ckpt runs/progan --n 50000 --json",
    "kid": "Example: facegan metrics kid data/celeba64 --split test --ckpt runs/dcgan --n 10000",
    "is": "Example: facegan metrics is --ckpt runs/dcgan --n 50000 --protocol torch-fidelity",
    "pr": "Example: facegan metrics pr data/celeba64 samples/ --json",
    "swd": "Example: facegan metrics swd data/celebahq --ckpt runs/progan --n 16384",
    "msssim": "Example: facegan metrics msssim --ckpt runs/progan --pairs 10000\n\n"
    "Example: facegan metrics msssim data/celebahq-256 --pairs 10000",
    "stats": "Example: facegan metrics stats data/celebahq-256 --out celebahq256.npz --protocol clean",
}


def _settings(
    protocol: Any = DEFAULT_PROTOCOL,
    inception_weights: Path | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    workers: int | None = None,
    strict: bool = False,
    no_cache: bool = False,
    fast: bool = False,
    split: str | None = None,
    n: int = 50_000,
    seed: int = 0,
) -> run.Settings:
    return run.Settings(
        protocol=getattr(protocol, "value", protocol), inception_weights=inception_weights, device=device,
        batch_size=batch_size, workers=workers, strict=strict, cache=not no_cache, fast=fast, split=split,
        n=n, seed=seed,
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.4f}"
    return str(value)


def _render(doc: dict[str, Any], json_out: bool) -> None:
    if json_out:
        emit_json(doc)
        return
    table = Table(title=f"{doc['metric']} ({doc.get('protocol', '')})", show_header=True)
    table.add_column("", justify="left")
    table.add_column("value", justify="right")
    for name, value in doc["values"].items():
        table.add_row(name, _fmt(value))
    for key in ("n1", "n2", "dims", "pairs", "subset_size", "splits"):
        if doc.get(key) is not None:
            table.add_row(key, _fmt(doc[key]))
    for i, item in enumerate(doc.get("inputs", []), start=1):
        cached = " (cached features)" if item.get("cached") else ""
        rejected = f", {item['rejected']} rejected" if item.get("rejected") else ""
        table.add_row(f"input {i}", f"{item.get('kind')}: {item.get('path')}{rejected}{cached}")
    if doc.get("weights_sha256"):
        mark = "" if doc.get("weights_verified", True) else " (unverified)"
        table.add_row("weights sha256", f"{doc['weights_sha256'][:16]}...{mark}")
    table.add_row("seconds", _fmt(doc["seconds"]))
    result_console().print(table)


@app.command("fid", epilog=_EXAMPLES["fid"])
@command
def fid(
    inputs: InputsArg = None,
    ckpt: CkptOpt = None,
    n: Annotated[int, typer.Option("--n", help="Samples to generate with --ckpt.")] = 50_000,
    seed: SeedOpt = 0,
    dims: Annotated[
        int | None, typer.Option("--dims", help="Feature layer: 2048 (pool3), 768, 192 or 64 (default: 2048, or that of a .npz).")
    ] = None,
    matrix_sqrt: Annotated[
        MatrixSqrt,
        typer.Option("--matrix-sqrt", help="eig: symmetric eigenvalues (fast); scipy: pytorch-fid's sqrtm with its eps fallback."),
    ] = MatrixSqrt.eig,
    protocol: ProtocolOpt = Protocol.pytorch_fid,
    inception_weights: WeightsOpt = None,
    split: SplitOpt = None,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = None,
    strict: StrictOpt = False,
    no_cache: NoCacheOpt = False,
    fast: FastOpt = False,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Frechet Inception Distance between two inputs (images, a prepared split, --ckpt samples or .npz stats)."""
    settings = _settings(protocol, inception_weights, device, batch_size, workers, strict, no_cache, fast, split, n, seed)
    _render(run.compute_fid(settings, inputs or [], ckpt, dims, matrix_sqrt.value), json_out)


@app.command("kid", epilog=_EXAMPLES["kid"])
@command
def kid(
    inputs: InputsArg = None,
    ckpt: CkptOpt = None,
    n: Annotated[int, typer.Option("--n", help="Samples to generate with --ckpt.")] = 50_000,
    seed: SeedOpt = 0,
    dims: Annotated[int, typer.Option("--dims", help="Feature layer: 2048, 768, 192 or 64.")] = 2048,
    subsets: Annotated[int, typer.Option("--subsets", help="Random subsets the MMD is averaged over.")] = 100,
    subset_size: Annotated[
        int, typer.Option("--subset-size", help="Samples per subset (capped at the smaller set).")
    ] = 1000,
    subset_seed: Annotated[
        int, typer.Option("--subset-seed", help="Seed of the subset draws (torch-fidelity's default).")
    ] = 2020,
    protocol: ProtocolOpt = Protocol.pytorch_fid,
    inception_weights: WeightsOpt = None,
    split: SplitOpt = None,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = None,
    strict: StrictOpt = False,
    no_cache: NoCacheOpt = False,
    fast: FastOpt = False,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Kernel Inception Distance (unbiased MMD^2, cubic polynomial kernel), mean and std over subsets."""
    kid_mod.check_subsets(subsets, subset_size)  # before minutes of feature extraction, not after
    settings = _settings(protocol, inception_weights, device, batch_size, workers, strict, no_cache, fast, split, n, seed)
    _render(run.compute_kid(settings, inputs or [], ckpt, dims, subsets, subset_size, subset_seed), json_out)


@app.command("is", epilog=_EXAMPLES["is"])
@command
def is_(
    inputs: InputsArg = None,
    ckpt: CkptOpt = None,
    n: Annotated[int, typer.Option("--n", help="Samples to generate with --ckpt.")] = 50_000,
    seed: SeedOpt = 0,
    splits: Annotated[int, typer.Option("--splits", help="Chunks the score is averaged over.")] = 10,
    shuffle_seed: Annotated[
        int, typer.Option("--shuffle-seed", help="Seed of the shuffle before splitting (torch-fidelity's default).")
    ] = 2020,
    no_shuffle: Annotated[bool, typer.Option("--no-shuffle", help="Split in input order.")] = False,
    protocol: ProtocolOpt = Protocol.pytorch_fid,
    inception_weights: WeightsOpt = None,
    split: SplitOpt = None,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = None,
    strict: StrictOpt = False,
    no_cache: NoCacheOpt = False,
    fast: FastOpt = False,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Inception Score of one input, from the unbiased 1008 logits (as torch-fidelity)."""
    settings = _settings(protocol, inception_weights, device, batch_size, workers, strict, no_cache, fast, split, n, seed)
    _render(run.compute_is(settings, inputs or [], ckpt, splits, shuffle_seed, not no_shuffle), json_out)


@app.command("pr", epilog=_EXAMPLES["pr"])
@command
def pr(
    inputs: InputsArg = None,
    ckpt: CkptOpt = None,
    n: Annotated[int, typer.Option("--n", help="Samples to generate with --ckpt.")] = 50_000,
    seed: SeedOpt = 0,
    k_pr: Annotated[int, typer.Option("--k-pr", help="Neighbourhood size of precision and recall.")] = 3,
    k_dc: Annotated[int, typer.Option("--k-dc", help="Neighbourhood size of density and coverage.")] = 5,
    protocol: ProtocolOpt = Protocol.pytorch_fid,
    inception_weights: WeightsOpt = None,
    split: SplitOpt = None,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = None,
    strict: StrictOpt = False,
    no_cache: NoCacheOpt = False,
    fast: FastOpt = False,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Precision / recall (k=3) and density / coverage (k=5) of the second input against the first (real)."""
    settings = _settings(protocol, inception_weights, device, batch_size, workers, strict, no_cache, fast, split, n, seed)
    _render(run.compute_pr(settings, inputs or [], ckpt, k_pr, k_dc), json_out)


@app.command("swd", epilog=_EXAMPLES["swd"])
@command
def swd(
    inputs: InputsArg = None,
    ckpt: CkptOpt = None,
    n: Annotated[
        int, typer.Option("--n", help="Images per set (generated with --ckpt; at most this many from a folder).")
    ] = 16_384,
    seed: SeedOpt = 0,
    split: SplitOpt = None,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = None,
    strict: StrictOpt = False,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Sliced Wasserstein distance between Laplacian pyramids (ProGAN), x1e3 per level and averaged."""
    settings = _settings(device=device, batch_size=batch_size, workers=workers, strict=strict, split=split, n=n, seed=seed)
    _render(run.compute_swd(settings, inputs or [], ckpt), json_out)


@app.command("msssim", epilog=_EXAMPLES["msssim"])
@command
def msssim(
    inputs: InputsArg = None,
    ckpt: CkptOpt = None,
    pairs: Annotated[
        int,
        typer.Option(
            "--pairs",
            help="Image pairs averaged over. 10,000 is the protocol of ProGAN and MMagic, kept as the default "
            "so that values compare with theirs. It is slow on a CPU at high resolution: about 0.2-0.6 s per "
            "pair of 1024x1024 images on two cores (one to two hours), 0.02 s per pair at 256x256, much less "
            "on a GPU. The progress bar on stderr shows the rate and ETA; fewer pairs give a quicker, noisier "
            "estimate.",
        ),
    ] = 10_000,
    seed: SeedOpt = 0,
    split: SplitOpt = None,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = None,
    strict: StrictOpt = False,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Mean MS-SSIM of random image pairs (diversity: lower is more diverse), as pytorch-msssim computes it."""
    settings = _settings(device=device, batch_size=batch_size, workers=workers, strict=strict, split=split, seed=seed)
    _render(run.compute_msssim(settings, inputs or [], ckpt, pairs), json_out)


@app.command("stats", epilog=_EXAMPLES["stats"])
@command
def stats(
    src: Annotated[Path, typer.Argument(help="A folder or zip of images, or a prepared dataset (see --split).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .npz to write (pytorch-fid's format).")],
    dims: Annotated[int, typer.Option("--dims", help="Feature layer: 2048, 768, 192 or 64.")] = 2048,
    protocol: ProtocolOpt = Protocol.pytorch_fid,
    inception_weights: WeightsOpt = None,
    split: SplitOpt = None,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = None,
    strict: StrictOpt = False,
    no_cache: NoCacheOpt = False,
    fast: FastOpt = False,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    force: ForceOpt = False,
) -> None:
    """Precompute FID statistics (mu, sigma) of a real set, readable by pytorch-fid and clean-fid."""
    settings = _settings(protocol, inception_weights, device, batch_size, workers, strict, no_cache, fast, split)
    doc = run.compute_stats(settings, src, out, dims, force)
    if json_out:
        emit_json(doc)
    else:
        emit_line(str(out))
