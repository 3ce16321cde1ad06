"""`facegan prepare` commands: build prepared datasets, synthetic faces, and exports for other tools.

Each command parses its options, makes one library call (prepare.commands.run_prepare, prepare.export,
prepare.recipes) and renders the summary it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from facegan_cli.align.geometry import MODES
from facegan_cli.align.landmarks import BACKENDS, DETECTORS
from facegan_cli.cli.common import (
    DebugOpt,
    FanWeightsOpt,
    ForceOpt,
    JsonOpt,
    QuietOpt,
    S3fdWeightsOpt,
    command,
    emit_json,
    emit_line,
)
from facegan_cli.data.crops import CROPS
from facegan_cli.data.prepared import SPLIT_CODES
from facegan_cli.prepare.commands import run_prepare
from facegan_cli.prepare.export import FORMATS, export_dataset
from facegan_cli.prepare.recipes import describe_recipes
from facegan_cli.prepare.synthetic import STYLES as SYNTHETIC_STYLES

app = typer.Typer(
    help="Prepare datasets: CelebA crops, CelebA-HQ and FFHQ-style aligned faces, synthetic faces, exports for other tools.",
    no_args_is_help=True,
)


def _choices(name: str, values: Iterable[str]) -> Any:
    """A choice type for Typer whose members are `values`, spelled as on the command line."""
    return Enum(name, {value.replace("-", "_"): value for value in values}, type=str)


Crop = _choices("Crop", CROPS)
Split = _choices("Split", (*SPLIT_CODES, "all"))
Layout = _choices("Layout", ("celeba", "folder"))
ImageFormat = _choices("ImageFormat", ("png", "jpg"))
SyntheticStyle = _choices("SyntheticStyle", SYNTHETIC_STYLES)
ExportFormat = _choices("ExportFormat", FORMATS)
Landmarks = _choices("Landmarks", BACKENDS)
Detect = _choices("Detect", DETECTORS)
AlignHQ = _choices("AlignHQ", MODES)
AlignFaces = _choices("AlignFaces", ("ffhq", "progan", "none"))


# ----- options more than one command takes ------------------------------------------------------------

OutOpt = Annotated[Path, typer.Option("--out", help="Directory to write the prepared dataset to.")]
RecipeOpt = Annotated[
    str,
    typer.Option(
        "--recipe",
        help="Dataset recipe in data_recipes/ giving the defaults below (`facegan prepare recipes` lists "
        "them), or a .toml path.",
    ),
]
AttrsOpt = Annotated[
    str | None,
    typer.Option("--attrs", help="Attributes to keep: all, none, or names like Male,Young. (default: recipe; all)"),
]
SplitOpt = Annotated[
    Split | None, typer.Option("--split", help="Partition to keep (list_eval_partition). (default: recipe; all)")
]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="Keep only the first N images (quick tries).")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Dataset name in the manifest. (default: OUT's name)")]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", "-j", min=1, help="Worker processes. (default: the CPUs available)")
]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", help="Continue an interrupted prepare in OUT without redoing finished work.")
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Fail (exit 1) on the first unusable image.")]
DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device",
        help="Where the face-alignment networks run: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps.",
    ),
]
ShardOpt = Annotated[
    str | None,
    typer.Option(
        "--shard",
        help="Prepare only block i of n (0 <= i < n) of the inputs, e.g. 0/4 on one machine, 1/4 on the "
        "next; each shard is a dataset of its own, in input order.",
    ),
]
TransformOpt = Annotated[
    int | None,
    typer.Option(
        "--transform-size",
        min=4,
        help="Side of the supersampled quad transform before the antialiased reduction to --size; "
        "smaller is faster and a little softer. (default: recipe; 4096 as the originals)",
    ),
]
PaddingOpt = Annotated[
    bool | None,
    typer.Option(
        "--padding/--no-padding",
        help="Reflect-pad (with blur and median blend) where the crop leaves the image, as the "
        "originals; without it such areas are black (FFHQ's enable_padding). (default: on)",
    ),
]
MinFaceOpt = Annotated[
    float | None,
    typer.Option(
        "--min-face", min=0, help="Reject faces whose crop square is smaller than this many source pixels. (default: 32)"
    ),
]


# ----- rendering -----------------------------------------------------------------------------------------


def _render(summary: Any, json_output: bool, lines: Callable[[Any], list[str]]) -> None:
    """The summary as one JSON document, or as result lines on stdout (the output path first)."""
    if json_output:
        emit_json(summary)
        return
    for line in lines(summary):
        emit_line(line)


def _dataset_lines(summary: dict[str, Any]) -> list[str]:
    splits, faces = summary["splits"], summary.get("faces") or {}
    lines = [
        summary["out"],
        f"images: {summary['count']} ({' '.join(f'{r}x{r}' for r in summary['resolutions'])})",
        f"splits: train {splits['train']}, valid {splits['valid']}, test {splits['test']}",
        f"labels: {len(summary['label_names'])} attributes",
        f"rejected: {summary['rejected']} (listed in {summary['rejects_file']})",
        f"fingerprint: {summary['fingerprint']}",
    ]
    if "several_faces" in faces:
        lines.append(f"several faces: {faces['several_faces']} images (the largest face kept unless --all-faces)")
    return lines


def _synthetic_lines(summary: dict[str, Any]) -> list[str]:
    lines = [summary["out"], f"faces: {summary['n']} ({summary['layout']} layout, seed {summary['seed']})"]
    if summary.get("counts"):
        lines.append("domains: " + ", ".join(f"{folder} {count}" for folder, count in summary["counts"].items()))
    if summary["partition"]:
        part = summary["partition"]
        lines.append(f"partition: train {part['train']}, valid {part['valid']}, test {part['test']}")
    return lines


def _export_lines(summary: dict[str, Any]) -> list[str]:
    res = summary["resolution"]
    return [summary["out"], f"images: {summary['count']} ({res}x{res}, {summary['format']})"]


def _recipe_lines(rows: list[dict[str, Any]]) -> list[str]:
    return [f"{row['name']}\tprepare {row['command']}\t{row['description']}" for row in rows]


# ----- commands --------------------------------------------------------------------------------------------


@app.command(
    "celeba",
    epilog="Example: facegan prepare celeba --src ~/data/CelebA --out data/celeba-64 --crop dcgan --size 64",
)
@command
def celeba_command(
    src: Annotated[
        Path, typer.Option("--src", help="CelebA folder: img_align_celeba/, Anno/, Eval/ (or flattened).")
    ],
    out: OutOpt,
    recipe: RecipeOpt = "celeba-64",
    size: Annotated[int | None, typer.Option("--size", help="Output size in pixels. (default: recipe; 64)")] = None,
    crop: Annotated[
        Crop | None,
        typer.Option(
            "--crop",
            help="dcgan: Resize+CenterCrop (pytorch/examples); stargan: CenterCrop 178 then "
            "Resize; progan: the 128 box at (89,121) then down; none: resize square images. "
            " (default: recipe; dcgan)",
        ),
    ] = None,
    crop_size: Annotated[
        int | None,
        typer.Option(
            "--crop-size",
            help="Square taken before the final resize to --size (dcgan: --size; "
            "stargan: 178; progan: 128). celeba-32 uses 64.",
        ),
    ] = None,
    attrs: AttrsOpt = None,
    split: SplitOpt = None,
    levels: Annotated[
        bool | None,
        typer.Option(
            "--levels/--no-levels",
            help="Also write every 2x2 box-average level down to 4x4 (ProGAN). (default: recipe; off)",
        ),
    ] = None,
    allow_upscale: Annotated[
        bool | None,
        typer.Option(
            "--allow-upscale/--no-allow-upscale",
            help="Enlarge inputs smaller than the output instead of rejecting them. (default: off)",
        ),
    ] = None,
    images: Annotated[
        Path | None, typer.Option("--images", help="Folder of the images. (default: SRC/img_align_celeba)")
    ] = None,
    limit: LimitOpt = None,
    name: NameOpt = None,
    workers: WorkersOpt = None,
    resume: ResumeOpt = False,
    force: ForceOpt = False,
    strict: StrictOpt = False,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Crop and resize aligned CelebA into a prepared dataset (uint8 arrays, labels, partitions).

    Unusable images (corrupt, truncated, not an image, too small) are skipped and listed in OUT/rejects.tsv; the command fails only when none is usable, or at the first one with --strict. Options left out take the recipe's value.
    """
    given = dict(size=size, crop=crop, crop_size=crop_size, attrs=attrs, split=split, levels=levels,
                 allow_upscale=allow_upscale, images=images, limit=limit)  # fmt: skip
    summary = run_prepare("celeba", out, src=src, inputs=[("--images", images)], recipe=recipe, given=given,
                          workers=workers, resume=resume, force=force, strict=strict, name=name)  # fmt: skip
    _render(summary, json_output, _dataset_lines)


@app.command(
    "synthetic",
    epilog="Example: facegan prepare synthetic --out data/synthetic && "
    "facegan prepare celeba --src data/synthetic --out data/synthetic-64 --crop dcgan --size 64",
)
@command
def synthetic_command(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the faces to.")],
    n: Annotated[int | None, typer.Option("--n", min=1, help="Number of faces. (default: recipe; 2000)")] = None,
    layout: Annotated[
        Layout | None,
        typer.Option(
            "--layout",
            help="celeba: the full CelebA tree (aligned and in-the-wild JPEGs, Anno/, Eval/); "
            "folder: square images + labels.csv. (default: recipe; celeba)",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed; equal seeds give equal files. (default: 0)")
    ] = None,
    size: Annotated[int | None, typer.Option("--size", min=4, help="Image size of --layout folder. (default: 128)")] = None,
    image_format: Annotated[
        ImageFormat | None, typer.Option("--format", help="Image format of --layout folder. (default: png)")
    ] = None,
    quality: Annotated[int | None, typer.Option("--quality", min=1, max=100, help="JPEG quality. (default: 95)")] = None,
    style: Annotated[
        SyntheticStyle | None,
        typer.Option(
            "--style",
            help="photo: the faces as they are; painting: two unpaired domains for translation in junyanz's "
            "layout (trainA/ photos, trainB/ paintings of other faces, testA/ testB/ of held-out identities, "
            "truth/ the true other-domain image of each file; --layout does not apply). (default: photo)",
        ),
    ] = None,
    recipe: RecipeOpt = "synthetic",
    workers: WorkersOpt = None,
    force: ForceOpt = False,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Draw deterministic cartoon faces with known attributes and exact 5-point landmarks.

    Modelled attributes: hair colour (Black/Blond/Brown/Gray_Hair, exclusive), Male (short hair, beards), Young, Smiling, Mouth_Slightly_Open, Eyeglasses, No_Beard, Oval_Face, Pale_Skin, Wearing_Lipstick; the other CelebA attributes are written as -1.
    """
    given = dict(n=n, layout=layout, seed=seed, size=size, format=image_format, quality=quality, style=style)
    summary = run_prepare("synthetic", out, recipe=recipe, given=given, workers=workers, force=force)
    _render(summary, json_output, _synthetic_lines)


@app.command("export", epilog="Example: facegan prepare export data/celeba-64 --out celeba-64.zip --format zip")
@command
def export_command(
    dataset: Annotated[Path, typer.Argument(help="Prepared dataset directory (or a folder / zip of images).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (png) or .zip file (zip).")],
    export_format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="png: flat folder img00000000.png (pytorch-fid); zip: StyleGAN "
            "dataset_tool layout 00000/img00000000.png + dataset.json.",
        ),
    ] = ExportFormat.png,
    split: Annotated[Split, typer.Option("--split", help="Partition to export.")] = Split.all,
    res: Annotated[int | None, typer.Option("--res", help="Resolution level to export. (default: the largest)")] = None,
    workers: WorkersOpt = None,
    force: ForceOpt = False,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write a dataset's images (and labels) as PNG files or a StyleGAN-style zip."""
    summary = export_dataset(dataset, out, export_format.value, split.value, res, workers, force)
    _render(summary, json_output, _export_lines)


@app.command("recipes", epilog="Example: facegan prepare recipes --json")
@command
def recipes_command(json_output: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False) -> None:
    """List the dataset recipes (data_recipes/*.toml) and their settings."""
    _render(describe_recipes(), json_output, _recipe_lines)


@app.command(
    "celeba-hq",
    epilog="Example: facegan prepare celeba-hq --src ~/data/CelebA --out data/celeba-hq "
    "--mapping ~/data/CelebAMask-HQ/CelebA-HQ-to-CelebA-mapping.txt --size 1024 --levels",
)
@command
def celeba_hq_command(
    src: Annotated[
        Path,
        typer.Option(
            "--src",
            help="In-the-wild CelebA (img_celeba/, Anno/, Eval/; or flattened), or CelebAMask-HQ "
            "(CelebA-HQ-img/, CelebA-HQ-to-CelebA-mapping.txt) whose images are already aligned.",
        ),
    ],
    out: OutOpt,
    recipe: RecipeOpt = "celeba-hq",
    size: Annotated[int | None, typer.Option("--size", help="Output size in pixels. (default: recipe; 1024)")] = None,
    levels: Annotated[
        bool | None,
        typer.Option(
            "--levels/--no-levels",
            help="Also write every 2x2 box-average level down to 4x4, as ProGAN reads them. (default: recipe; on)",
        ),
    ] = None,
    landmarks: Annotated[
        Landmarks | None,
        typer.Option(
            "--landmarks",
            help="celeba: the 5 points of list_landmarks_celeba.txt; face-alignment or dlib: detect 68 "
            "points (largest face) and reduce them to those 5. (default: recipe; celeba)",
        ),
    ] = None,
    align: Annotated[
        AlignHQ | None,
        typer.Option(
            "--align",
            help="progan: the CelebA-HQ oriented crop; ffhq: FFHQ's (no half-pixel offset, shrink relative "
            "to --size). (default: recipe; progan)",
        ),
    ] = None,
    transform_size: TransformOpt = None,
    padding: PaddingOpt = None,
    min_face: MinFaceOpt = None,
    fan_weights: FanWeightsOpt = None,
    s3fd_weights: S3fdWeightsOpt = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--mapping",
            help="CelebA-HQ-to-CelebA-mapping.txt (header optional): prepare the 30,000 CelebA-HQ images in "
            "its order instead of all of CelebA. With CelebAMask-HQ it is read from --src by default.",
        ),
    ] = None,
    images: Annotated[
        Path | None,
        typer.Option("--images", help="Folder of the images. (default: SRC/img_celeba or SRC/CelebA-HQ-img)"),
    ] = None,
    celeba_dir: Annotated[
        Path | None,
        typer.Option(
            "--celeba",
            help="With CelebAMask-HQ: the CelebA folder whose attributes and partitions are attached "
            "through the mapping (default: CelebAMask-HQ-attribute-anno.txt, all train).",
        ),
    ] = None,
    attrs: AttrsOpt = None,
    split: SplitOpt = None,
    limit: LimitOpt = None,
    name: NameOpt = None,
    workers: WorkersOpt = None,
    shard: ShardOpt = None,
    device: DeviceOpt = "auto",
    resume: ResumeOpt = False,
    force: ForceOpt = False,
    strict: StrictOpt = False,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Align in-the-wild CelebA with the CelebA-HQ geometry (or resize CelebAMask-HQ) into a prepared dataset.

    Each image is cropped to the oriented square of Karras et al. from its landmarks: shrunk when large, reflect-padded with blur and median blend where the square leaves the photo, transformed at --transform-size and reduced with antialiasing; --levels adds ProGAN's 2x2 box-average pyramid. Attributes and partitions are carried over; every face's crop quad and landmarks are saved (quads.npy, landmarks.npy). Unusable inputs (corrupt, no face, landmarks outside the image, face too small) are listed in OUT/rejects.tsv; the command fails only when none is usable, or at the first with --strict.

    Not reproduced: the original CelebA-HQ adds encrypted per-image "delta" files to this geometry (JPEG-artifact removal and a super-resolution network's output); decoding them needs the exact bytes of its Pillow 3.1.1 / libjpeg 8d pipeline and 2^k pre-padding upscale, so facegan reproduces the geometry, not those bytes. --src CelebAMask-HQ uses the published images themselves.
    """
    given = dict(size=size, levels=levels, landmarks=landmarks, align=align, transform_size=transform_size,
                 enable_padding=padding, min_face=min_face, mapping=mapping, fan_weights=fan_weights,
                 s3fd_weights=s3fd_weights, images=images, celeba=celeba_dir, attrs=attrs, split=split, limit=limit)  # fmt: skip
    inputs = [("--images", images), ("--mapping", mapping), ("--celeba", celeba_dir)]
    summary = run_prepare("celeba-hq", out, src=src, inputs=inputs, recipe=recipe, given=given, workers=workers,
                          device=device, shard=shard, resume=resume, force=force, strict=strict, name=name)  # fmt: skip
    _render(summary, json_output, _dataset_lines)


@app.command(
    "faces",
    epilog="Example: facegan prepare faces --src ~/photos --out data/faces-256 --size 256 --align ffhq "
    "--landmarks dlib --all-faces",
)
@command
def faces_command(
    src: Annotated[
        Path, typer.Option("--src", help="Folder of face photos (searched recursively; labels.csv used if present).")
    ],
    out: OutOpt,
    recipe: RecipeOpt = "faces-ffhq",
    size: Annotated[int | None, typer.Option("--size", help="Output size in pixels. (default: recipe; 1024)")] = None,
    align: Annotated[
        AlignFaces | None,
        typer.Option(
            "--align",
            help="ffhq: FFHQ's crop (recreate_aligned_images); progan: CelebA-HQ's; none: no landmarks, "
            "short side resized and centre-cropped (already aligned folders). (default: recipe; ffhq)",
        ),
    ] = None,
    landmarks: Annotated[
        Detect | None,
        typer.Option(
            "--landmarks",
            help="face-alignment: S3FD + 2D-FAN (weights from the torch hub cache; batched on --device); "
            "dlib: HOG + CNN check + 68-point predictor, offline (extra \\[dlib]). (default: recipe; face-alignment)",
        ),
    ] = None,
    all_faces: Annotated[
        bool | None,
        typer.Option(
            "--all-faces/--largest-face",
            help="Keep every face of a photo (rows NAME#0, NAME#1, ... largest first) instead of the largest. (default: largest)",
        ),
    ] = None,
    transform_size: TransformOpt = None,
    padding: PaddingOpt = None,
    rotate_level: Annotated[
        bool | None,
        typer.Option(
            "--rotate-level/--no-rotate-level",
            help="Rotate the crop so the eyes are level (FFHQ's rotate_level); off keeps it axis-aligned. (default: on)",
        ),
    ] = None,
    random_shift: Annotated[
        float | None,
        typer.Option(
            "--random-shift",
            min=0.0,
            help="Move each crop centre by this fraction of its size times N(0,1) (FFHQ's random_shift; "
            "seeded by --seed and the image's position). (default: 0)",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of --random-shift. (default: 0)")] = None,
    min_face: MinFaceOpt = None,
    fan_weights: FanWeightsOpt = None,
    s3fd_weights: S3fdWeightsOpt = None,
    levels: Annotated[
        bool | None,
        typer.Option("--levels/--no-levels", help="Also write every 2x2 box-average level down to 4x4. (default: off)"),
    ] = None,
    limit: LimitOpt = None,
    name: NameOpt = None,
    workers: WorkersOpt = None,
    shard: ShardOpt = None,
    device: DeviceOpt = "auto",
    resume: ResumeOpt = False,
    force: ForceOpt = False,
    strict: StrictOpt = False,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Detect faces in any folder of photos and align them like FFHQ (or CelebA-HQ) into a prepared dataset.

    The largest face of each photo is kept (--all-faces keeps every one); its 68 landmarks give the oriented square, which is shrunk, padded with blur where it leaves the photo, transformed at --transform-size and reduced with antialiasing. Photos without a face (animals included), with landmarks outside the image, or unreadable are listed in OUT/rejects.tsv; the command fails only when none is usable, or at the first with --strict.
    """
    given = dict(size=size, align=align, landmarks=landmarks, all_faces=all_faces, transform_size=transform_size,
                 enable_padding=padding, rotate_level=rotate_level, random_shift=random_shift, seed=seed,
                 min_face=min_face, levels=levels, limit=limit, fan_weights=fan_weights, s3fd_weights=s3fd_weights)  # fmt: skip
    summary = run_prepare("faces", out, src=src, recipe=recipe, given=given, workers=workers, device=device,
                          shard=shard, resume=resume, force=force, strict=strict, name=name)  # fmt: skip
    _render(summary, json_output, _dataset_lines)


@app.command(
    "pairs",
    epilog="Example: facegan prepare pairs --a photos/ --b paintings/ --out data/pairs --size 64 --test 30",
)
@command
def pairs_command(
    a: Annotated[Path, typer.Option("--a", help="Folder of side A (e.g. photos).")],
    b: Annotated[Path, typer.Option("--b", help="Folder of side B (e.g. their paintings), the same file names.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the pairs to (created).")],
    size: Annotated[int | None, typer.Option(
        "--size", min=1, help="Resize (short side) and centre-crop both images to N x N. (default: keep them)")] = None,
    test: Annotated[int | None, typer.Option(
        "--test", min=0, help="Held-out pairs (testA/ testB/). (default: 10%)")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the train/test draw.")] = 0,
    workers: WorkersOpt = None,
    strict: StrictOpt = False,
    force: ForceOpt = False,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Pair two folders by file name (a/NAME.jpg with b/NAME.png) for supervised translation (Latent Features
    Transfer): PNGs in junyanz's layout (trainA/ trainB/ testA/ testB/, the same names on both sides), pairs.json
    and rejects.tsv. Files without a partner are listed, pairs with an unusable file skipped (--strict: stop)."""
    from facegan_cli.prepare.pairs import prepare_pairs  # imported on use, as the other jobs

    summary = prepare_pairs(a, b, out, size=size, test=test, seed=seed, workers=workers, strict=strict, force=force)
    _render(summary, json_output, lambda s: [
        s["out"], f"pairs: {s['pairs']} (train {s['train']}, test {s['test']}), rejected {s['rejected']}, unmatched "
        f"{len(s['unmatched']['a'])} in --a and {len(s['unmatched']['b'])} in --b"])
