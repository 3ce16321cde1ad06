"""`facegan latent`: interpolation, vector arithmetic and nearest training images of a generator.

Latents are named by references: with --latents z.npy a plain number is a row of that file, without
it a plain number is a seed; `s42` is always seed 42 (the latent `facegan sample --seed 42 --n 1` draws).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import typer

from facegan_cli.cli.common import (
    DebugOpt,
    DeviceOpt,
    ForceOpt,
    JsonOpt,
    QuietOpt,
    SeedOpt,
    command,
    emit_json,
    emit_line,
    emit_paths,
)
from facegan_cli.core.device import resolve_device
from facegan_cli.core.errors import FaceganError
from facegan_cli.data.grid import save_png
from facegan_cli.latent.arithmetic import jitter, vector_arithmetic
from facegan_cli.latent.figure import labelled_grid
from facegan_cli.latent.images import open_real_images, square_resize
from facegan_cli.latent.interpolate import interpolate as interpolate_path
from facegan_cli.latent.latents import draw_latents, load_latents, resolve_latents, save_latents
from facegan_cli.latent.nearest import SPACES, Neighbours, nearest_neighbours
from facegan_cli.latent.outputs import check_new_file, is_image_path
from facegan_cli.models.loading import LoadedGenerator, load_generator

app = typer.Typer(
    help="Explore a generator's latent space: interpolation, vector arithmetic, nearest training images.",
    no_args_is_help=True,
)

REF_HELP = "With --latents a plain number is a row of that file, otherwise a seed; s42 is always seed 42."

CkptOpt = Annotated[
    Path,
    typer.Option("--ckpt", help="Run directory, its checkpoints/ folder or a .safetensors checkpoint file."),
]
LatentsOpt = Annotated[
    Path | None, typer.Option("--latents", help="A z.npy written by `facegan sample --save-latents`.")
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="The figure to write (.png, .jpg or .webp).")]
SaveLatentsOpt = Annotated[
    Path | None,
    typer.Option("--save-latents", help="Also write the figure's latents, row by row, as an N x z_dim .npy."),
]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Images generated per forward pass.")]


class Method(str, Enum):
    lerp = "lerp"
    slerp = "slerp"


def _check_figure_path(out: Path, force: bool) -> None:
    if not is_image_path(out):
        raise FaceganError(
            f"--out {out} is not an image file name; this command writes one figure.",
            "End --out with .png, .jpg or .webp.",
        )
    check_new_file(out, force)


def _open(ckpt: Path, latents: Path | None, device: str) -> tuple[LoadedGenerator, torch.Tensor | None]:
    generator = load_generator(ckpt, resolve_device(device))
    saved = load_latents(latents, generator.z_dim) if latents is not None else None
    return generator, saved


def _refs(text: str, option: str) -> list[str]:
    refs = [part.strip() for part in text.split(",") if part.strip()]
    if not refs:
        raise FaceganError(
            f"{option} is empty.", f"Write it like {option} 3,17,22 (indices) or s1,s2 (seeds)."
        )
    return refs


def _pairs(values: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for text in values:
        for item in (part.strip() for part in text.split(",")):
            ends = item.split(":")
            if len(ends) != 2 or not all(end.strip() for end in ends):
                raise FaceganError(
                    f"--pairs item {item!r} is not START:END.",
                    "Write pairs like --pairs 0:5,3:9 or --pairs s1:s2.",
                )
            pairs.append((ends[0].strip(), ends[1].strip()))
    if not pairs:
        raise FaceganError("--pairs names no pair.", "Write pairs like --pairs 0:5,3:9.")
    return pairs


def _finish(out: Path, save_to: Path | None, z: torch.Tensor) -> list[Path]:
    written = [out]
    if save_to is not None:
        written.append(save_latents(z, save_to))
    return written


@app.command(
    "interpolate",
    epilog="Example: facegan latent interpolate --ckpt runs/dcgan --latents z.npy --pairs 0:5,3:9 "
    "--steps 10 --method slerp --out interp.png",
)
@command
def interpolate(
    ckpt: CkptOpt,
    pairs: Annotated[
        list[str],
        typer.Option("--pairs", help=f"Endpoint pairs START:END, comma-separated or repeated. {REF_HELP}"),
    ],
    out: OutOpt,
    latents: LatentsOpt = None,
    steps: Annotated[int, typer.Option("--steps", help="Images per row, both endpoints included.")] = 10,
    method: Annotated[
        Method,
        typer.Option("--method", help="lerp (seed 001) or slerp (great circle, better for Gaussian z)."),
    ] = Method.lerp,
    save_latents_to: SaveLatentsOpt = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    force: ForceOpt = False,
) -> None:
    """Walk between latents, one figure row per pair."""
    pair_refs = _pairs(pairs)
    _check_figure_path(out, force)
    if save_latents_to is not None:
        check_new_file(save_latents_to, force, "--save-latents")
    generator, saved = _open(ckpt, latents, device)
    paths = []
    for start, end in pair_refs:
        ends = resolve_latents([start, end], generator.z_dim, saved, "--pairs")
        paths.append(interpolate_path(ends[0], ends[1], steps, method.value))
    z = torch.cat(paths)
    pixels = generator.pixels(z, batch_size, "interpolating")
    rows = [pixels[i * steps : (i + 1) * steps] for i in range(len(pair_refs))]
    save_png(labelled_grid(rows, row_labels=[f"{a} -> {b}" for a, b in pair_refs]), out)
    written = _finish(out, save_latents_to, z)
    if json_out:
        emit_json(
            {
                "checkpoint": generator.path,
                "method": method.value,
                "steps": steps,
                "pairs": [list(pair) for pair in pair_refs],
                "out": out,
                "files": written,
            }
        )
    else:
        emit_paths(written)


@app.command(
    "arithmetic",
    epilog="Example: facegan latent arithmetic --ckpt runs/dcgan --latents z.npy --a 3,17,22,40 "
    "--b 5,9,11,30 --c 2,8,13,19 --out bald-woman.png",
)
@command
def arithmetic(
    ckpt: CkptOpt,
    a: Annotated[str, typer.Option("--a", help=f"Group a, comma-separated (e.g. bald men). {REF_HELP}")],
    b: Annotated[str, typer.Option("--b", help="Group b, subtracted as its mean (e.g. neutral men).")],
    c: Annotated[str, typer.Option("--c", help="Group c, added as its mean (e.g. neutral women).")],
    out: OutOpt,
    latents: LatentsOpt = None,
    average_a: Annotated[
        bool,
        typer.Option(
            "--average-a", help="Radford et al.: one result mean(a) - mean(b) + mean(c) instead of one per a."
        ),
    ] = False,
    jitter_scale: Annotated[
        float,
        typer.Option(
            "--jitter", help="Add variations: uniform noise in [-J, J] on each result (Radford used 0.25)."
        ),
    ] = 0.0,
    variations: Annotated[
        int, typer.Option("--variations", help="Noisy variations per result with --jitter.")
    ] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --jitter noise.")] = 0,
    save_latents_to: Annotated[
        Path | None,
        typer.Option(
            "--save-latents", help="Also write the results' latents (then every variation) as .npy."
        ),
    ] = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    force: ForceOpt = False,
) -> None:
    """Vector arithmetic: z - mean(b) + mean(c) for each z in a (seed 001), or on mean(a) (--average-a)."""
    groups = {"a": _refs(a, "--a"), "b": _refs(b, "--b"), "c": _refs(c, "--c")}
    _check_figure_path(out, force)
    if save_latents_to is not None:
        check_new_file(save_latents_to, force, "--save-latents")
    generator, saved = _open(ckpt, latents, device)
    za, zb, zc = (resolve_latents(groups[g], generator.z_dim, saved, f"--{g}") for g in "abc")
    results = vector_arithmetic(za, zb, zc, average_a)

    # One batch through the generator: exemplars, group means, results, then variations.
    means = torch.stack([za.mean(0), zb.mean(0), zc.mean(0)])
    parts = [za, zb, zc, means, results]
    varied = jitter(results, jitter_scale, variations, seed) if jitter_scale > 0 else None
    if varied is not None:
        parts.append(varied.reshape(-1, generator.z_dim))
    pixels = generator.pixels(torch.cat(parts), batch_size, "arithmetic")
    sizes = [len(za), len(zb), len(zc), 3, len(results)]
    chunks = np.split(pixels[: sum(sizes)], np.cumsum(sizes)[:-1])
    ia, ib, ic, im, ir = chunks

    rows = [
        np.concatenate([ia, im[0:1]]) if average_a else ia,
        np.concatenate([ib, im[1:2]]),
        np.concatenate([ic, im[2:3]]),
    ]
    captions = [groups["a"] + (["mean"] if average_a else []), groups["b"] + ["mean"], groups["c"] + ["mean"]]
    labels = ["a", "b", "c", "mean(a) - mean(b) + mean(c)" if average_a else "a - mean(b) + mean(c)"]
    rows.append(ir)
    captions.append(["result"] if average_a else [f"from {ref}" for ref in groups["a"]])
    if varied is not None:
        pv = pixels[sum(sizes) :].reshape(len(results), variations, *pixels.shape[1:])
        for i in range(len(results)):
            rows.append(pv[i])
            labels.append(f"+/-{jitter_scale:g} noise")
            captions.append([""] * variations)
    save_png(labelled_grid(rows, row_labels=labels, captions=captions), out)
    # Saved: the results, then (with --jitter) every variation, result by result.
    saved_z = results if varied is None else torch.cat([results, varied.reshape(-1, generator.z_dim)])
    written = _finish(out, save_latents_to, saved_z)
    if json_out:
        emit_json(
            {
                "checkpoint": generator.path,
                "mode": "average-a" if average_a else "per-exemplar",
                "a": groups["a"],
                "b": groups["b"],
                "c": groups["c"],
                "results": len(results),
                "jitter": jitter_scale,
                "variations": variations if varied is not None else 0,
                "out": out,
                "files": written,
            }
        )
    else:
        emit_paths(written)


def _neighbour_report(refs: list[str], names: list[str], found: Neighbours) -> list[dict[str, Any]]:
    return [
        {
            "latent": ref,
            "neighbours": [
                {"index": int(idx), "source": names[int(idx)], "distance": float(dist)}
                for idx, dist in zip(found.indices[q], found.distances[q])
            ],
        }
        for q, ref in enumerate(refs)
    ]


@app.command(
    "nearest",
    epilog="Example: facegan latent nearest --ckpt runs/dcgan --data data/celeba64 --n 8 -k 5 --out nearest.png\n\n"
    "Example: facegan latent nearest --ckpt runs/dcgan --data data/celeba64 --space inception --out nn.png",
)
@command
def nearest(
    ckpt: CkptOpt,
    data: Annotated[
        Path, typer.Option("--data", help="Training images: a prepared dataset or a folder of images.")
    ],
    out: OutOpt,
    k: Annotated[int, typer.Option("-k", "--k", help="Nearest training images per sample.")] = 5,
    n: Annotated[
        int,
        typer.Option("--n", help="Samples to check, drawn with --seed (without --indices and --latents)."),
    ] = 8,
    seed: SeedOpt = 0,
    latents: LatentsOpt = None,
    indices: Annotated[
        str | None, typer.Option("--indices", help=f"Which latents to check, comma-separated. {REF_HELP}")
    ] = None,
    space: Annotated[
        str,
        typer.Option(
            "--space",
            help=f"Where distances are measured: {', '.join(SPACES)} (inception: FID Inception pool3 features).",
        ),
    ] = "pixel",
    inception_weights: Annotated[
        Path | None,
        typer.Option(
            "--inception-weights",
            help="With --space inception: FID Inception weights instead of the cached official file (as the metrics).",
        ),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option("--size", help="Side length images are compared at (default: the generator's)."),
    ] = None,
    batch_size: BatchOpt = 256,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    force: ForceOpt = False,
) -> None:
    """The k nearest training images of generated samples (the memorisation check), one row per sample.

    Pixel distances are mean squared differences of pixel values in [0, 1] (0 = identical image);
    inception distances are mean squared differences of the 2048 pool3 features.
    """
    _check_figure_path(out, force)
    if space not in SPACES:
        raise FaceganError(f"--space {space!r} is not a feature space.", f"Use one of: {', '.join(SPACES)}.")
    generator, saved = _open(ckpt, latents, device)
    if indices is not None:
        refs = _refs(indices, "--indices")
        z = resolve_latents(refs, generator.z_dim, saved, "--indices")
    elif saved is not None:
        refs, z = [str(i) for i in range(saved.shape[0])], saved
    else:
        if n < 1:
            raise FaceganError(f"--n {n} must be at least 1.", "Use e.g. --n 8.")
        refs, z = [f"{i}" for i in range(n)], draw_latents(n, generator.z_dim, seed)
    side = size or generator.resolution
    queries = generator.pixels(z, batch_size, "sampling")
    training = open_real_images(data, side)
    options = {"weights": inception_weights} if space == "inception" else {}
    found = nearest_neighbours(
        queries, training.batches(batch_size), k, space, side, generator.device, total=len(training),
        space_options=options,
    )
    rows, captions = [], []
    for q in range(len(refs)):
        neighbours, _ = training.load(found.indices[q])
        rows.append(np.concatenate([_fit(queries[q : q + 1], side), neighbours]))
        captions.append(["sample"] + [f"{d:.3g}" for d in found.distances[q]])
    save_png(labelled_grid(rows, row_labels=[f"z {ref}" for ref in refs], captions=captions), out)
    report = _neighbour_report(refs, training.names, found)
    if json_out:
        emit_json(
            {
                "checkpoint": generator.path,
                "data": data,
                "seed": seed if indices is None and saved is None else None,
                "space": space,
                "size": side,
                "searched": found.searched,
                "k": k,
                "out": out,
                "queries": report,
            }
        )
        return
    emit_paths([out])
    for entry in report:
        best = ", ".join(f"{nb['index']} ({nb['distance']:.4g})" for nb in entry["neighbours"])
        emit_line(f"z {entry['latent']}: {best}")


def _fit(pixels: np.ndarray, side: int) -> np.ndarray:
    """Samples shown at the comparison size, so that a figure row holds images of one size."""
    return np.stack([square_resize(p, side) for p in pixels])
