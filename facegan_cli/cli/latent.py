"""`facegan latent`: interpolation, vector arithmetic and nearest training images of a generator.

Latents are named by references: with --latents z.npy a plain number is a row of that file, without
it a plain number is a seed; `s42` is always seed 42 (the latent `facegan sample --seed 42 --n 1` draws).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facegan_cli.cli.common import emit_result
from facegan_cli.cli.params import choices, group
from facegan_cli.cli.shared_options import (
    OUTPUT,
    FigureOpt,
    GeneratedBatchOpt,
    GeneratorOpt,
    SeedOpt,
    shared_command,
)
from facegan_cli.latent.names import SPACE_NAMES

app = group("Explore a generator's latent space: interpolation, vector arithmetic, nearest training images.")

REF_HELP = "With --latents a plain number is a row of that file, otherwise a seed; s42 is always seed 42."
LatentsOpt = Annotated[Path | None, typer.Option("--latents", help="A z.npy written by `facegan sample --save-latents`.")]
SaveLatentsOpt = Annotated[Path | None, typer.Option(
    "--save-latents", help="Also write the figure's latents, row by row, as an N x z_dim .npy.")]

_EXAMPLES = {
    "interpolate": "Example: facegan latent interpolate --ckpt runs/dcgan --latents z.npy --pairs 0:5,3:9 --steps 10 "
    "--method slerp --out interp.png",
    "arithmetic": "Example: facegan latent arithmetic --ckpt runs/dcgan --latents z.npy --a 3,17,22,40 --b 5,9,11,30 "
    "--c 2,8,13,19 --out bald-woman.png",
    "nearest": "Example: facegan latent nearest --ckpt runs/dcgan --data data/celeba64 --n 8 -k 5 --out nearest.png"
    "\n\nExample: facegan latent nearest --ckpt runs/dcgan --data data/celeba64 --space inception --out nn.png",
}


Method = choices("Method", ("lerp", "slerp"))


@shared_command(app, "interpolate", *OUTPUT, "force", epilog=_EXAMPLES["interpolate"])
def interpolate(
    device: str, json_out: bool, force: bool,
    ckpt: GeneratorOpt,
    pairs: Annotated[list[str], typer.Option(
        "--pairs", help=f"Endpoint pairs START:END, comma-separated or repeated. {REF_HELP}")],
    out: FigureOpt,
    latents: LatentsOpt = None,
    steps: Annotated[int, typer.Option("--steps", help="Images per row, both endpoints included.")] = 10,
    method: Annotated[Method, typer.Option(
        "--method", help="lerp (seed 001) or slerp (great circle, better for Gaussian z).")] = Method.lerp,
    save_latents_to: SaveLatentsOpt = None,
    batch_size: GeneratedBatchOpt = 64,
) -> None:
    """Walk between latents, one figure row per pair."""
    from facegan_cli.latent.interpolate import interpolation_figure
    from facegan_cli.latent.latents import parse_pairs

    doc = interpolation_figure(
        ckpt, parse_pairs(pairs), out, latents=latents, steps=steps, method=method.value,
        save_latents_to=save_latents_to, batch_size=batch_size, device=device, force=force,
    )
    emit_result(doc, json_out, lambda d: d["files"])


@shared_command(app, "arithmetic", *OUTPUT, "force", epilog=_EXAMPLES["arithmetic"])
def arithmetic(
    device: str, json_out: bool, force: bool,
    ckpt: GeneratorOpt,
    a: Annotated[str, typer.Option("--a", help=f"Group a, comma-separated (e.g. bald men). {REF_HELP}")],
    b: Annotated[str, typer.Option("--b", help="Group b, subtracted as its mean (e.g. neutral men).")],
    c: Annotated[str, typer.Option("--c", help="Group c, added as its mean (e.g. neutral women).")],
    out: FigureOpt,
    latents: LatentsOpt = None,
    average_a: Annotated[bool, typer.Option(
        "--average-a", help="Radford et al.: one result mean(a) - mean(b) + mean(c) instead of one per a.")] = False,
    jitter_scale: Annotated[float, typer.Option(
        "--jitter", help="Add variations: uniform noise in [-J, J] on each result (Radford used 0.25).")] = 0.0,
    variations: Annotated[int, typer.Option("--variations", help="Noisy variations per result with --jitter.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --jitter noise.")] = 0,
    save_latents_to: Annotated[Path | None, typer.Option(
        "--save-latents", help="Also write the results' latents (then every variation) as .npy.")] = None,
    batch_size: GeneratedBatchOpt = 64,
) -> None:
    """Vector arithmetic: z - mean(b) + mean(c) for each z in a (seed 001), or on mean(a) (--average-a)."""
    from facegan_cli.latent.arithmetic import arithmetic_figure
    from facegan_cli.latent.latents import parse_refs

    a_refs, b_refs, c_refs = parse_refs(a, "--a"), parse_refs(b, "--b"), parse_refs(c, "--c")
    doc = arithmetic_figure(
        ckpt, a_refs, b_refs, c_refs, out, latents=latents, average_a=average_a, jitter_scale=jitter_scale,
        variations=variations, seed=seed, save_latents_to=save_latents_to, batch_size=batch_size, device=device,
        force=force,
    )
    emit_result(doc, json_out, lambda d: d["files"])


@shared_command(app, "nearest", *OUTPUT, "force", epilog=_EXAMPLES["nearest"])
def nearest(
    device: str, json_out: bool, force: bool,
    ckpt: GeneratorOpt,
    data: Annotated[Path, typer.Option("--data", help="Training images: a prepared dataset or a folder of images.")],
    out: FigureOpt,
    k: Annotated[int, typer.Option("-k", "--k", help="Nearest training images per sample.")] = 5,
    n: Annotated[int, typer.Option(
        "--n", help="Samples to check, drawn with --seed (without --indices and --latents).")] = 8,
    seed: SeedOpt = 0,
    latents: LatentsOpt = None,
    indices: Annotated[str | None, typer.Option(
        "--indices", help=f"Which latents to check, comma-separated. {REF_HELP}")] = None,
    space: Annotated[str, typer.Option("--space", help=f"Where distances are measured: {', '.join(SPACE_NAMES)} "
                                       "(inception: FID Inception pool3 features).")] = "pixel",
    inception_weights: Annotated[Path | None, typer.Option("--inception-weights", help="With --space inception: FID "
                                 "Inception weights instead of the cached official file (as the metrics).")] = None,
    size: Annotated[int | None, typer.Option(
        "--size", help="Side length images are compared at (default: the generator's).")] = None,
    batch_size: GeneratedBatchOpt = 256,
) -> None:
    """The k nearest training images of generated samples (the memorisation check), one row per sample.

    Pixel distances are mean squared differences of pixel values in [0, 1] (0 = identical image);
    inception distances are mean squared differences of the 2048 pool3 features.
    """
    from facegan_cli.latent.latents import parse_refs
    from facegan_cli.latent.nearest import nearest_figure

    refs = parse_refs(indices, "--indices") if indices is not None else None
    doc = nearest_figure(
        ckpt, data, out, k=k, n=n, seed=seed, latents=latents, indices=refs, space=space,
        inception_weights=inception_weights, size=size, batch_size=batch_size, device=device, force=force,
    )
    emit_result(doc, json_out, lambda d: [out, *(
        f"z {entry['latent']}: " + ", ".join(f"{nb['index']} ({nb['distance']:.4g})" for nb in entry["neighbours"])
        for entry in d["queries"])])
