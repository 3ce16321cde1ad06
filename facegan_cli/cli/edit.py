"""`facegan edit`: change attributes of face images with a StarGAN / CCA-GAN / StarGAN+SAGAN checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import typer

from facegan_cli.align.celeba_crop import celeba_crop
from facegan_cli.align.geometry import five_points
from facegan_cli.align.landmarks import Detector, open_detector, select_faces
from facegan_cli.cli.common import (
    DebugOpt,
    DeviceOpt,
    FanWeightsOpt,
    ForceOpt,
    JsonOpt,
    QuietOpt,
    S3fdWeightsOpt,
    command,
    emit_json,
    emit_paths,
    read_path_list,
)
from facegan_cli.core.device import resolve_device
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.outputs import check_outside_inputs
from facegan_cli.core.progress import Progress
from facegan_cli.data.grid import grid_array, save_png, to_uint8
from facegan_cli.data.imageio import RejectedImage, is_image_name, open_rgb
from facegan_cli.models.editing import describe_attrs, fit_face, load_editor, parse_assignments
from facegan_cli.models.stargan import apply_edits, create_labels

HELP = (
    "Edit face attributes with a trained attribute editor (stargan, ccagan, stargan-sagan).\n\n"
    "With --set NAME=0|1 and/or --flip NAME, each input is translated to its own attributes with those "
    "changes (setting a hair colour clears the other hair colours) and written as OUT/NAME.png. Without them, "
    "each input gets a StarGAN grid OUT/NAME-grid.png: the input, then one image per attribute target (hair "
    "colours set one at a time, every other attribute flipped). An input's own attributes are predicted by "
    "the checkpoint's discriminator unless --source gives them. Inputs that are not already the model's "
    "square are resized (short side) and centre-cropped like the training data. Photos that are not "
    "CelebA-aligned crops need --align dlib (or face-alignment): the largest face's 5 landmarks are moved "
    "by a similarity to where img_align_celeba keeps them, then cropped as in training (centre 178x178)."
)
EPILOG = (
    "Example: facegan edit --ckpt runs/ccagan --input face.jpg --set Blond_Hair=1 --flip Male --out edited/\n\n"
    "Example: facegan edit --ckpt runs/stargan --input faces/ --out grids/\n\n"
    "Example: facegan edit --ckpt runs/ccagan --input holiday.jpg --align dlib --flip Smiling --out edited/"
)

ALIGN_CHOICES = ("none", "dlib", "face-alignment")


def _aligned_face(path: Path, resolution: int, detector: Detector) -> np.ndarray:
    """The largest face of a photo, CelebA-aligned and cropped as the editors' training data."""
    try:
        image = np.asarray(open_rgb(path), dtype=np.uint8)
    except RejectedImage as exc:
        raise FaceganError(f"Cannot read {path}: {exc.reason}.", "Pass a JPEG/PNG image or a folder of them.") from exc
    faces = detector.detect(image)
    if not faces:
        raise FaceganError(
            f"No face was found in {path} by the {detector.name} landmark backend.",
            "Pass a photo with a visible face, try the other --align backend, or --align none for images "
            "that are already training crops.",
        )
    five = five_points(select_faces(faces)[0].points)
    return celeba_crop(image, five, resolution)



def _inputs(path: Path) -> list[Path]:
    if str(path) == "-":
        files = [Path(line) for line in read_path_list(["-"])]
        if not files:
            raise FaceganError("--input - read no paths from stdin.", "Pipe image paths, one per line.")
        missing = [p for p in files if not p.is_file()]
        if missing:
            raise FaceganError(f"{missing[0]} (read from stdin) is not a file.", "Pipe existing image paths.")
        return files
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and is_image_name(p.name))
        if not found:
            raise FaceganError(f"No images found in {path}.", "Point --input at an image or a folder of images.")
        return found
    if not path.is_file():
        raise FaceganError(f"--input {path} does not exist.", "Point --input at an image or a folder of images.")
    return [path]


@command
def edit(
    ckpt: Annotated[Path, typer.Option("--ckpt", help="Run directory, checkpoints folder or checkpoint file.")],
    input_: Annotated[Path, typer.Option("--input", help="An image file, a folder of images, or - for paths on stdin.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the edited images (created).")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="NAME=0|1, repeatable or comma-separated (e.g. --set Blond_Hair=1).")] = None,
    flip: Annotated[list[str] | None, typer.Option("--flip", help="Attribute to invert, repeatable (e.g. --flip Male).")] = None,
    source: Annotated[str | None, typer.Option(
        "--source", help="The inputs' own attributes, NAME=0|1 comma-separated (default: predicted by D).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")] = 16,
    align: Annotated[str, typer.Option(
        "--align", help=f"Landmark backend that aligns photos first: {', '.join(ALIGN_CHOICES)} (none: resize "
        "and centre-crop only).")] = "none",
    fan_weights: FanWeightsOpt = None,
    s3fd_weights: S3fdWeightsOpt = None,
    force: ForceOpt = False,
    device: DeviceOpt = "auto",
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    if batch_size < 1:
        raise FaceganError(f"--batch-size {batch_size} must be at least 1.", "Use e.g. --batch-size 16.")
    check_outside_inputs(out, [("--input", input_), ("--ckpt", ckpt)])
    if align not in ALIGN_CHOICES:
        raise FaceganError(f"--align {align!r} is not a backend.", f"Use one of: {', '.join(ALIGN_CHOICES)}.")
    editor = load_editor(ckpt, resolve_device(device))
    settings, flips = parse_assignments(set_ or []), [f.strip() for item in flip or [] for f in item.split(",") if f.strip()]
    given = parse_assignments([source]) if source else {}
    unknown = [n for n in [*settings, *flips, *given] if n not in editor.attrs]
    if unknown:
        raise FaceganError(
            f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not among the attributes {editor.path} was "
            f"trained on ({', '.join(editor.attrs)}).",
            "Use those names (as in CelebA's list_attr_celeba.txt).",
        )
    grid_mode = not settings and not flips
    files = _inputs(input_)
    names = [f"{p.stem}-grid.png" if grid_mode else f"{p.stem}.png" for p in files]
    if len(set(names)) != len(names):
        raise FaceganError(f"Two inputs in {input_} share a file name stem, so their outputs would collide.",
                           "Rename one of them or edit them separately.")
    targets_out = [out / n for n in names]
    existing = [p for p in targets_out if p.exists()]
    if existing and not force:
        raise FaceganError(f"{existing[0]} already exists.", "Choose another --out, or pass --force to replace it.")
    own = {"face-alignment-2dfan4": fan_weights, "face-alignment-s3fd": s3fd_weights}
    # A missing or unverifiable model fails here, before any output.
    detector = open_detector(align, device=device, weights=own) if align != "none" else None
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    with Progress(len(files), "edit", unit="img") as bar:
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            faces = [
                fit_face(p, editor.resolution) if detector is None else _aligned_face(p, editor.resolution, detector)
                for p in chunk
            ]
            x = editor.to_tensor(np.stack(faces))
            c_org = editor.predict(x)
            for name, value in given.items():
                c_org[:, editor.attrs.index(name)] = float(value)
            if grid_mode:
                targets = create_labels(c_org, editor.attrs)
                columns = [editor.translate(x, t) for t in targets]
                for i, path in enumerate(chunk):
                    row = torch.stack([x[i], *(col[i] for col in columns)])
                    dest = targets_out[start + i]
                    save_png(grid_array(to_uint8(row, (-1.0, 1.0)), nrow=row.shape[0]), dest)
                    records.append({"input": str(path), "output": str(dest), "source": describe_attrs(editor.attrs, c_org[i]),
                                    "targets": [describe_attrs(editor.attrs, t[i]) for t in targets]})
            else:
                target = apply_edits(c_org, editor.attrs, settings, flips)
                edited = to_uint8(editor.translate(x, target), (-1.0, 1.0))
                for i, path in enumerate(chunk):
                    dest = targets_out[start + i]
                    save_png(edited[i], dest)
                    records.append({"input": str(path), "output": str(dest), "source": describe_attrs(editor.attrs, c_org[i]),
                                    "target": describe_attrs(editor.attrs, target[i])})
            bar.advance(len(chunk))
    if json_:
        emit_json({"checkpoint": str(editor.path), "family": editor.family, "step": editor.step,
                   "attrs": editor.attrs, "source_from": "given+predicted" if given else "predicted",
                   "mode": "grid" if grid_mode else "edit", "edits": records})
        return
    emit_paths([r["output"] for r in records])

