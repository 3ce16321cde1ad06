"""`facegan prepare` commands: build prepared datasets, synthetic faces, and exports for other tools.

Each command is a list of option declarations (the options several commands take are declared once, below)
and a function that makes one library call (prepare.commands.run_prepare, prepare.export, prepare.pairs,
prepare.recipes) with the parsed values and renders the summary it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

from facegan_cli.align.geometry import MODES
from facegan_cli.align.landmarks import BACKENDS, DETECTORS
from facegan_cli.cli.common import emit_result
from facegan_cli.cli.params import (
    FORCE,
    OUTPUT_NAMES,
    OUTPUT_OPTIONS,
    choices,
    declared_command,
    group,
    native,
)
from facegan_cli.cli.shared_options import FAN_WEIGHTS, S3FD_WEIGHTS
from facegan_cli.core.options import Opt
from facegan_cli.data.crops import CROPS
from facegan_cli.data.prepared import SPLIT_CODES
from facegan_cli.prepare.commands import run_prepare
from facegan_cli.prepare.export import FORMATS, export_dataset
from facegan_cli.prepare.recipes import describe_recipes
from facegan_cli.prepare.synthetic import STYLES as SYNTHETIC_STYLES

app = group("Prepare datasets: CelebA crops, CelebA-HQ and FFHQ-style aligned faces, synthetic faces, exports for other tools.")


Split = choices("Split", (*SPLIT_CODES, "all"))
ExportFormat = choices("ExportFormat", FORMATS)

# ----- options more than one command takes ------------------------------------------------------------

OUT = Opt("out", ("--out",), Path, ..., "Directory to write the prepared dataset to.")
RECIPE = Opt("recipe", ("--recipe",), str, None, "Dataset recipe in data_recipes/ giving the defaults below "
             "(`facegan prepare recipes` lists them), or a .toml path.")
ATTRS = Opt("attrs", ("--attrs",), str, None, "Attributes to keep: all, none, or names like Male,Young. "
            "(default: recipe; all)")
SPLIT = Opt("split", ("--split",), Split, None, "Partition to keep (list_eval_partition). (default: recipe; all)")
LIMIT = Opt("limit", ("--limit",), int, None, "Keep only the first N images (quick tries).", min=1)
NAME = Opt("name", ("--name",), str, None, "Dataset name in the manifest. (default: OUT's name)")
WORKERS = Opt("workers", ("--workers", "-j"), int, None, "Worker processes. (default: the CPUs available)", min=1)
RESUME = Opt("resume", ("--resume",), bool, False,
             "Continue an interrupted prepare in OUT without redoing finished work.")
STRICT = Opt("strict", ("--strict",), bool, False, "Fail (exit 1) on the first unusable image.")
DEVICE = Opt("device", ("--device",), str, "auto",
             "Where the face-alignment networks run: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps.")
SHARD = Opt("shard", ("--shard",), str, None, "Prepare only block i of n (0 <= i < n) of the inputs, e.g. 0/4 on "
            "one machine, 1/4 on the next; each shard is a dataset of its own, in input order.")
TRANSFORM_SIZE = Opt("transform_size", ("--transform-size",), int, None, "Side of the supersampled quad transform "
                     "before the antialiased reduction to --size; smaller is faster and a little softer. (default: "
                     "recipe; 4096 as the originals)", min=4)
PADDING = Opt("enable_padding", ("--padding/--no-padding",), bool, None, "Reflect-pad (with blur and median "
              "blend) where the crop leaves the image, as the originals; without it such areas are black (FFHQ's "
              "enable_padding). (default: on)")
MIN_FACE = Opt("min_face", ("--min-face",), float, None,
               "Reject faces whose crop square is smaller than this many source pixels. (default: 32)", min=0)
# The options of the run (where, how, how to report) rather than settings of the dataset; JOB's go to the job.
JOB = ("name", "device", "shard", "resume", "force", "strict")
RUN = ("out", "src", "recipe", "workers", *JOB, *OUTPUT_NAMES)


def _size(default: str) -> Opt:
    return Opt("size", ("--size",), int, None, f"Output size in pixels. (default: recipe; {default})")


def _levels(text: str) -> Opt:
    return Opt("levels", ("--levels/--no-levels",), bool, None, f"Also write every 2x2 box-average level down to 4x4{text}")


def _choice(name: str, flag: str, values: Iterable[str], text: str) -> Opt:
    return Opt(name, (flag,), choices(name.title(), values), None, text)


# ----- rendering -----------------------------------------------------------------------------------------


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


def _prepare(job: str, values: dict[str, Any], inputs: tuple[str, ...] = (),
             lines: Callable[[Any], list[str]] = _dataset_lines) -> None:
    """Run a `run_prepare` job: the options that are not about the run are the job's settings (None: not
    given); `inputs` name the options besides --src that are input paths (the output must keep clear of them)."""
    given = {key: value for key, value in values.items() if key not in RUN}
    summary = run_prepare(job, values["out"], src=values.get("src"), recipe=values["recipe"], given=given,
                          inputs=[(f"--{key}", values[key]) for key in inputs], workers=values["workers"],
                          **{key: values[key] for key in JOB if key in values})
    emit_result(summary, values["json"], lines)


# ----- commands --------------------------------------------------------------------------------------------


@declared_command(app, "celeba", [
    Opt("src", ("--src",), Path, ..., "CelebA folder: img_align_celeba/, Anno/, Eval/ (or flattened)."),
    OUT, RECIPE.with_default("celeba-64"), _size("64"),
    _choice("crop", "--crop", CROPS, "dcgan: Resize+CenterCrop (pytorch/examples); stargan: CenterCrop 178 then "
            "Resize; progan: the 128 box at (89,121) then down; none: resize square images.  (default: recipe; dcgan)"),
    Opt("crop_size", ("--crop-size",), int, None, "Square taken before the final resize to --size (dcgan: --size; "
        "stargan: 178; progan: 128). celeba-32 uses 64."),
    ATTRS, SPLIT, _levels(" (ProGAN). (default: recipe; off)"),
    Opt("allow_upscale", ("--allow-upscale/--no-allow-upscale",), bool, None,
        "Enlarge inputs smaller than the output instead of rejecting them. (default: off)"),
    Opt("images", ("--images",), Path, None, "Folder of the images. (default: SRC/img_align_celeba)"),
    LIMIT, NAME, WORKERS, RESUME, FORCE, STRICT, *OUTPUT_OPTIONS,
], epilog="Example: facegan prepare celeba --src ~/data/CelebA --out data/celeba-64 --crop dcgan --size 64")
def celeba(values: dict[str, Any]) -> None:
    """Crop and resize aligned CelebA into a prepared dataset (uint8 arrays, labels, partitions).

    Unusable images (corrupt, truncated, not an image, too small) are skipped and listed in OUT/rejects.tsv; the command fails only when none is usable, or at the first one with --strict. Options left out take the recipe's value.
    """
    _prepare("celeba", values, inputs=("images",))


@declared_command(app, "synthetic", [
    OUT.with_default(..., "Directory to write the faces to."),
    Opt("n", ("--n",), int, None, "Number of faces. (default: recipe; 2000)", min=1),
    _choice("layout", "--layout", ("celeba", "folder"), "celeba: the full CelebA tree (aligned and in-the-wild "
            "JPEGs, Anno/, Eval/); folder: square images + labels.csv. (default: recipe; celeba)"),
    Opt("seed", ("--seed",), int, None, "Random seed; equal seeds give equal files. (default: 0)"),
    Opt("size", ("--size",), int, None, "Image size of --layout folder. (default: 128)", min=4),
    _choice("format", "--format", ("png", "jpg"), "Image format of --layout folder. (default: png)"),
    native("quality", Annotated[int | None, typer.Option(
        "--quality", min=1, max=100, help="JPEG quality. (default: 95)")], None),
    _choice("style", "--style", SYNTHETIC_STYLES, "photo: the faces as they are; painting: two unpaired domains "
            "for translation in junyanz's layout (trainA/ photos, trainB/ paintings of other faces, testA/ testB/ "
            "of held-out identities, truth/ the true other-domain image of each file; --layout does not apply). "
            "(default: photo)"),
    RECIPE.with_default("synthetic"), WORKERS, FORCE, *OUTPUT_OPTIONS,
], epilog="Example: facegan prepare synthetic --out data/synthetic && "
   "facegan prepare celeba --src data/synthetic --out data/synthetic-64 --crop dcgan --size 64")
def synthetic(values: dict[str, Any]) -> None:
    """Draw deterministic cartoon faces with known attributes and exact 5-point landmarks.

    Modelled attributes: hair colour (Black/Blond/Brown/Gray_Hair, exclusive), Male (short hair, beards), Young, Smiling, Mouth_Slightly_Open, Eyeglasses, No_Beard, Oval_Face, Pale_Skin, Wearing_Lipstick; the other CelebA attributes are written as -1.
    """
    _prepare("synthetic", values, lines=_synthetic_lines)


@declared_command(app, "export", [
    native("dataset", Annotated[Path, typer.Argument(
        help="Prepared dataset directory (or a folder / zip of images).")]),
    OUT.with_default(..., "Output folder (png) or .zip file (zip)."),
    Opt("format", ("--format",), ExportFormat, ExportFormat.png, "png: flat folder img00000000.png (pytorch-fid); "
        "zip: StyleGAN dataset_tool layout 00000/img00000000.png + dataset.json."),
    Opt("split", ("--split",), Split, Split.all, "Partition to export."),
    Opt("res", ("--res",), int, None, "Resolution level to export. (default: the largest)"),
    WORKERS, FORCE, *OUTPUT_OPTIONS,
], epilog="Example: facegan prepare export data/celeba-64 --out celeba-64.zip --format zip")
def export(values: dict[str, Any]) -> None:
    """Write a dataset's images (and labels) as PNG files or a StyleGAN-style zip."""
    summary = export_dataset(values["dataset"], values["out"], values["format"].value, values["split"].value,
                             values["res"], values["workers"], values["force"])
    emit_result(summary, values["json"], lambda s: [s["out"], f"images: {s['count']} ({s['resolution']}x"
                                                    f"{s['resolution']}, {s['format']})"])


@declared_command(app, "recipes", OUTPUT_OPTIONS, epilog="Example: facegan prepare recipes --json")
def recipes(values: dict[str, Any]) -> None:
    """List the dataset recipes (data_recipes/*.toml) and their settings."""
    emit_result(describe_recipes(), values["json"],
                lambda rows: [f"{row['name']}\tprepare {row['command']}\t{row['description']}" for row in rows])


@declared_command(app, "celeba-hq", [
    Opt("src", ("--src",), Path, ..., "In-the-wild CelebA (img_celeba/, Anno/, Eval/; or flattened), or CelebAMask-HQ "
        "(CelebA-HQ-img/, CelebA-HQ-to-CelebA-mapping.txt) whose images are already aligned."),
    OUT, RECIPE.with_default("celeba-hq"), _size("1024"),
    _levels(", as ProGAN reads them. (default: recipe; on)"),
    _choice("landmarks", "--landmarks", BACKENDS, "celeba: the 5 points of list_landmarks_celeba.txt; "
            "face-alignment or dlib: detect 68 points (largest face) and reduce them to those 5. (default: recipe; "
            "celeba)"),
    _choice("align", "--align", MODES, "progan: the CelebA-HQ oriented crop; ffhq: FFHQ's (no half-pixel offset, "
            "shrink relative to --size). (default: recipe; progan)"),
    TRANSFORM_SIZE, PADDING, MIN_FACE, FAN_WEIGHTS, S3FD_WEIGHTS,
    Opt("mapping", ("--mapping",), Path, None, "CelebA-HQ-to-CelebA-mapping.txt (header optional): prepare the "
        "30,000 CelebA-HQ images in its order instead of all of CelebA. With CelebAMask-HQ it is read from --src "
        "by default."),
    Opt("images", ("--images",), Path, None, "Folder of the images. (default: SRC/img_celeba or SRC/CelebA-HQ-img)"),
    Opt("celeba", ("--celeba",), Path, None, "With CelebAMask-HQ: the CelebA folder whose attributes and partitions "
        "are attached through the mapping (default: CelebAMask-HQ-attribute-anno.txt, all train)."),
    ATTRS, SPLIT, LIMIT, NAME, WORKERS, SHARD, DEVICE, RESUME, FORCE, STRICT, *OUTPUT_OPTIONS,
], epilog="Example: facegan prepare celeba-hq --src ~/data/CelebA --out data/celeba-hq "
   "--mapping ~/data/CelebAMask-HQ/CelebA-HQ-to-CelebA-mapping.txt --size 1024 --levels")
def celeba_hq(values: dict[str, Any]) -> None:
    """Align in-the-wild CelebA with the CelebA-HQ geometry (or resize CelebAMask-HQ) into a prepared dataset.

    Each image is cropped to the oriented square of Karras et al. from its landmarks: shrunk when large, reflect-padded with blur and median blend where the square leaves the photo, transformed at --transform-size and reduced with antialiasing; --levels adds ProGAN's 2x2 box-average pyramid. Attributes and partitions are carried over; every face's crop quad and landmarks are saved (quads.npy, landmarks.npy). Unusable inputs (corrupt, no face, landmarks outside the image, face too small) are listed in OUT/rejects.tsv; the command fails only when none is usable, or at the first with --strict.

    Not reproduced: the original CelebA-HQ adds encrypted per-image "delta" files to this geometry (JPEG-artifact removal and a super-resolution network's output); decoding them needs the exact bytes of its Pillow 3.1.1 / libjpeg 8d pipeline and 2^k pre-padding upscale, so facegan reproduces the geometry, not those bytes. --src CelebAMask-HQ uses the published images themselves.
    """
    _prepare("celeba-hq", values, inputs=("images", "mapping", "celeba"))


@declared_command(app, "faces", [
    Opt("src", ("--src",), Path, ..., "Folder of face photos (searched recursively; labels.csv used if present)."),
    OUT, RECIPE.with_default("faces-ffhq"), _size("1024"),
    _choice("align", "--align", ("ffhq", "progan", "none"), "ffhq: FFHQ's crop (recreate_aligned_images); progan: "
            "CelebA-HQ's; none: no landmarks, short side resized and centre-cropped (already aligned folders). "
            "(default: recipe; ffhq)"),
    _choice("landmarks", "--landmarks", DETECTORS, "face-alignment: S3FD + 2D-FAN (weights from the torch hub cache; "
            "batched on --device); dlib: HOG + CNN check + 68-point predictor, offline (extra \\[dlib]). (default: "
            "recipe; face-alignment)"),
    Opt("all_faces", ("--all-faces/--largest-face",), bool, None, "Keep every face of a photo (rows NAME#0, NAME#1, "
        "... largest first) instead of the largest. (default: largest)"),
    TRANSFORM_SIZE, PADDING,
    Opt("rotate_level", ("--rotate-level/--no-rotate-level",), bool, None, "Rotate the crop so the eyes are level "
        "(FFHQ's rotate_level); off keeps it axis-aligned. (default: on)"),
    Opt("random_shift", ("--random-shift",), float, None, "Move each crop centre by this fraction of its size times "
        "N(0,1) (FFHQ's random_shift; seeded by --seed and the image's position). (default: 0)", min=0.0),
    Opt("seed", ("--seed",), int, None, "Seed of --random-shift. (default: 0)"),
    MIN_FACE, FAN_WEIGHTS, S3FD_WEIGHTS, _levels(". (default: off)"),
    LIMIT, NAME, WORKERS, SHARD, DEVICE, RESUME, FORCE, STRICT, *OUTPUT_OPTIONS,
], epilog="Example: facegan prepare faces --src ~/photos --out data/faces-256 --size 256 --align ffhq "
   "--landmarks dlib --all-faces")
def faces(values: dict[str, Any]) -> None:
    """Detect faces in any folder of photos and align them like FFHQ (or CelebA-HQ) into a prepared dataset.

    The largest face of each photo is kept (--all-faces keeps every one); its 68 landmarks give the oriented square, which is shrunk, padded with blur where it leaves the photo, transformed at --transform-size and reduced with antialiasing. Photos without a face (animals included), with landmarks outside the image, or unreadable are listed in OUT/rejects.tsv; the command fails only when none is usable, or at the first with --strict.
    """
    _prepare("faces", values)


@declared_command(app, "pairs", [
    Opt("a", ("--a",), Path, ..., "Folder of side A (e.g. photos)."),
    Opt("b", ("--b",), Path, ..., "Folder of side B (e.g. their paintings), the same file names."),
    OUT.with_default(..., "Folder to write the pairs to (created)."),
    Opt("size", ("--size",), int, None, "Resize (short side) and centre-crop both images to N x N. (default: keep "
        "them)", min=1),
    Opt("test", ("--test",), int, None, "Held-out pairs (testA/ testB/). (default: 10%)", min=0),
    Opt("seed", ("--seed",), int, 0, "Seed of the train/test draw."), WORKERS, STRICT, FORCE, *OUTPUT_OPTIONS,
], epilog="Example: facegan prepare pairs --a photos/ --b paintings/ --out data/pairs --size 64 --test 30")
def pairs(values: dict[str, Any]) -> None:
    """Pair two folders by file name (a/NAME.jpg with b/NAME.png) for supervised translation (Latent Features
    Transfer): PNGs in junyanz's layout (trainA/ trainB/ testA/ testB/, the same names on both sides), pairs.json
    and rejects.tsv. Files without a partner are listed, pairs with an unusable file skipped (--strict: stop)."""
    from facegan_cli.prepare.pairs import prepare_pairs  # imported on use, as the other jobs

    summary = prepare_pairs(**{key: values[key] for key in ("a", "b", "out", "size", "test", "seed", "workers",
                                                            "strict", "force")})
    emit_result(summary, values["json"], lambda s: [
        s["out"], f"pairs: {s['pairs']} (train {s['train']}, test {s['test']}), rejected {s['rejected']}, unmatched "
        f"{len(s['unmatched']['a'])} in --a and {len(s['unmatched']['b'])} in --b"])
