"""`facegan metrics ...`: FID, KID, IS, precision/recall, SWD and MS-SSIM, reproducing their references.

Inputs are folders or zips of images, prepared datasets (--split), a generator checkpoint (--ckpt, samples
made on the fly) and, for FID, .npz statistics in pytorch-fid's format. Results go to stdout (a table, or
one JSON document with --json); progress and warnings to stderr. The options the commands share are
declared once, in cli/shared_options.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from facegan_cli.cli.common import emit_result, result_table
from facegan_cli.cli.params import choices, group
from facegan_cli.cli.shared_options import GENERATED, INCEPTION, READING, shared_command
from facegan_cli.metrics.settings import METHODS, METRIC_NAMES, Settings

app = group("FID, KID, IS, precision/recall, SWD and MS-SSIM that reproduce pytorch-fid, torch-fidelity and "
            "clean-fid, and `stats` to precompute reference statistics.")


MatrixSqrt = choices("MatrixSqrt", METHODS)

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
    "report": "Example: facegan metrics report data/celeba64 --ckpt runs/dcgan --n 10000 --metrics fid,kid,is,pr\n\n"
    "Example: ls fakes/*.png | facegan metrics report real/ - --metrics fid,kid,pr --json",
}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.4f}"
    return str(value)


def _table(doc: dict[str, Any]) -> Table:
    rows = [(name, _fmt(value)) for name, value in doc["values"].items()]
    table = result_table(f"{doc['metric']} ({doc.get('protocol', '')})", ("", "value"), rows, left=1)
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
    return table


def _report_table(doc: dict[str, Any]) -> Table:
    table = result_table(f"report ({doc.get('protocol', '')})", ("metric", "", "value", "seconds"), left=2)
    for name, part in doc["results"].items():
        for i, (key, value) in enumerate(part["values"].items()):
            table.add_row(name if i == 0 else "", key, _fmt(value), _fmt(part["seconds"]) if i == 0 else "")
    for i, item in enumerate(doc.get("inputs", []), start=1):
        passes = doc.get("feature_passes", {}).get(item.get("path"), 0)
        table.add_row(f"input {i}", f"{item.get('kind')}: {item.get('path')}", "",
                      f"{passes} Inception pass{'es' if passes != 1 else ''}")
    if doc.get("weights_sha256"):
        mark = "" if doc.get("weights_verified", True) else " (unverified)"
        table.add_row("weights", f"sha256 {doc['weights_sha256'][:16]}...{mark}", "", "")
    table.add_row("total", "", "", _fmt(doc["seconds"]))
    return table


@shared_command(app, "fid", *GENERATED, "dims", *INCEPTION, *READING, epilog=_EXAMPLES["fid"],
                dims=(None, "Feature layer: 2048 (pool3), 768, 192 or 64 (default: 2048, or that of a .npz)."))
def fid(
    settings: Settings, inputs: list[Path] | None, ckpt: Path | None, dims: int | None, json_out: bool,
    matrix_sqrt: Annotated[MatrixSqrt, typer.Option(
        "--matrix-sqrt", help="eig: symmetric eigenvalues (fast); scipy: pytorch-fid's sqrtm with its eps fallback.",
    )] = MatrixSqrt.eig,
) -> None:
    """Frechet Inception Distance between two inputs (images, a prepared split, --ckpt samples or .npz stats)."""
    from facegan_cli.metrics import run

    emit_result(run.compute_fid(settings, inputs or [], ckpt, dims, matrix_sqrt.value), json_out, _table)


@shared_command(app, "kid", *GENERATED, "dims", *INCEPTION, *READING, epilog=_EXAMPLES["kid"])
def kid(
    settings: Settings, inputs: list[Path] | None, ckpt: Path | None, dims: int, json_out: bool,
    subsets: Annotated[int, typer.Option(help="Random subsets the MMD is averaged over.")] = 100,
    subset_size: Annotated[int, typer.Option(help="Samples per subset (capped at the smaller set).")] = 1000,
    subset_seed: Annotated[int, typer.Option(help="Seed of the subset draws (torch-fidelity's default).")] = 2020,
) -> None:
    """Kernel Inception Distance (unbiased MMD^2, cubic polynomial kernel), mean and std over subsets."""
    from facegan_cli.metrics import run

    doc = run.compute_kid(settings, inputs or [], ckpt, dims, subsets, subset_size, subset_seed)
    emit_result(doc, json_out, _table)


@shared_command(app, "is", *GENERATED, *INCEPTION, *READING, epilog=_EXAMPLES["is"])
def is_(
    settings: Settings, inputs: list[Path] | None, ckpt: Path | None, json_out: bool,
    splits: Annotated[int, typer.Option(help="Chunks the score is averaged over.")] = 10,
    shuffle_seed: Annotated[int, typer.Option(help="Seed of the shuffle before splitting (torch-fidelity's default).")] = 2020,
    no_shuffle: Annotated[bool, typer.Option("--no-shuffle", help="Split in input order.")] = False,
) -> None:
    """Inception Score of one input, from the unbiased 1008 logits (as torch-fidelity)."""
    from facegan_cli.metrics import run

    emit_result(run.compute_is(settings, inputs or [], ckpt, splits, shuffle_seed, not no_shuffle), json_out, _table)


@shared_command(app, "pr", *GENERATED, *INCEPTION, *READING, epilog=_EXAMPLES["pr"])
def pr(
    settings: Settings, inputs: list[Path] | None, ckpt: Path | None, json_out: bool,
    k_pr: Annotated[int, typer.Option(help="Neighbourhood size of precision and recall.")] = 3,
    k_dc: Annotated[int, typer.Option(help="Neighbourhood size of density and coverage.")] = 5,
) -> None:
    """Precision / recall (k=3) and density / coverage (k=5) of the second input against the first (real)."""
    from facegan_cli.metrics import run

    emit_result(run.compute_pr(settings, inputs or [], ckpt, k_pr, k_dc), json_out, _table)


ResolutionOpt = Annotated[int | None, typer.Option(
    "--resolution", help="Compare at this size: a level of a --levels prepared dataset, or folders fitted to it "
    "(default: a --ckpt generator's own resolution, read from a prepared dataset's level of that size; else the "
    "inputs' size). A generator is always sampled at its own resolution.", show_default=False)]


@shared_command(app, "swd", *GENERATED, *READING, epilog=_EXAMPLES["swd"],
                n=(16_384, "Images per set (generated with --ckpt; at most this many from a folder)."))
def swd(settings: Settings, inputs: list[Path] | None, ckpt: Path | None, json_out: bool,
        resolution: ResolutionOpt = None) -> None:
    """Sliced Wasserstein distance between Laplacian pyramids (ProGAN), x1e3 per level and averaged."""
    from facegan_cli.metrics import run

    emit_result(run.compute_swd(settings, inputs or [], ckpt, resolution), json_out, _table)


@shared_command(app, "msssim", "inputs", "ckpt", "seed", *READING, epilog=_EXAMPLES["msssim"])
def msssim(
    settings: Settings, inputs: list[Path] | None, ckpt: Path | None, json_out: bool,
    pairs: Annotated[int, typer.Option(help=(
        "Image pairs averaged over. 10,000 is the protocol of ProGAN and MMagic, kept as the default so that "
        "values compare with theirs. It is slow on a CPU at high resolution: about 0.2-0.6 s per pair of "
        "1024x1024 images on two cores (one to two hours), 0.02 s per pair at 256x256, much less on a GPU. The "
        "progress bar on stderr shows the rate and ETA; fewer pairs give a quicker, noisier estimate."
    ))] = 10_000,
) -> None:
    """Mean MS-SSIM of random image pairs (diversity: lower is more diverse), as pytorch-msssim computes it."""
    from facegan_cli.metrics import run

    emit_result(run.compute_msssim(settings, inputs or [], ckpt, pairs), json_out, _table)


@shared_command(app, "report", *GENERATED, "dims", *INCEPTION, *READING, epilog=_EXAMPLES["report"])
def report(
    settings: Settings, inputs: list[Path] | None, ckpt: Path | None, dims: int, json_out: bool,
    metrics: Annotated[str, typer.Option(
        "--metrics", help=f"Comma-separated, from {', '.join(METRIC_NAMES)}. Two-input metrics compare the "
        "first input (the reference) with the second (or the --ckpt samples); is and msssim score the last input.",
    )] = "fid,kid,is,pr",
    matrix_sqrt: Annotated[MatrixSqrt, typer.Option("--matrix-sqrt", help="fid: eig or scipy.")] = MatrixSqrt.eig,
    subsets: Annotated[int, typer.Option(help="kid: random subsets.")] = 100,
    subset_size: Annotated[int, typer.Option(help="kid: samples per subset.")] = 1000,
    splits: Annotated[int, typer.Option(help="is: chunks the score is averaged over.")] = 10,
    k_pr: Annotated[int, typer.Option(help="pr: neighbourhood of precision and recall.")] = 3,
    k_dc: Annotated[int, typer.Option(help="pr: neighbourhood of density and coverage.")] = 5,
    pairs: Annotated[int, typer.Option(help="msssim: image pairs averaged over.")] = 10_000,
    resolution: ResolutionOpt = None,
) -> None:
    """Several metrics at once, every input featurised once for all of them; each value equals its single
    command's (same options) to the last digit."""
    from facegan_cli.metrics import registry, run

    options = registry.Options(dims=dims, matrix_sqrt=matrix_sqrt.value, kid_subsets=subsets,
                               kid_subset_size=subset_size, splits=splits, k_pr=k_pr, k_dc=k_dc, pairs=pairs)
    doc = run.compute_report(settings, inputs or [], ckpt, metrics, options, resolution)
    emit_result(doc, json_out, _report_table)


@shared_command(app, "stats", "dims", *INCEPTION, *READING, "force", epilog=_EXAMPLES["stats"])
def stats(
    settings: Settings, dims: int, json_out: bool, force: bool,
    src: Annotated[Path, typer.Argument(help="A folder or zip of images, or a prepared dataset (see --split).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .npz to write (pytorch-fid's format).")],
) -> None:
    """Precompute FID statistics (mu, sigma) of a real set, readable by pytorch-fid and clean-fid."""
    from facegan_cli.metrics import run

    doc = run.compute_stats(settings, src, out, dims, force)
    emit_result(doc, json_out, lambda _: [out])
