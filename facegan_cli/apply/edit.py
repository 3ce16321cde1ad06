"""Edit face attributes of images with a trained attribute editor (`facegan edit`).

Each input becomes the model's square (resized and centre-cropped like the training data, or, with a
landmark backend, CelebA-aligned from its largest face) and is translated to its own attributes with
the requested changes, or (no changes asked) to every attribute target as a StarGAN grid. The outputs go
to a new folder, staged and marked as facegan's (core.outputs), so nothing of the user's is overwritten.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan_cli.apply.photos import PhotoOptions, face
from facegan_cli.core.device import resolve_device
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.naming import output_names
from facegan_cli.core.outputs import check_new_folder, check_outside_inputs, staged_folder
from facegan_cli.core.progress import Progress
from facegan_cli.data.grid import grid_array, save_png, to_uint8
from facegan_cli.data.sources import open_image_list
from facegan_cli.models.editing import describe_attrs, load_editor, parse_assignments
from facegan_cli.models.stargan import apply_edits, create_labels

EDITS_KIND = "edits"  # core.outputs marker: --force replaces only a folder `facegan edit` wrote


def edit(
    ckpt: Path,
    input_: Path,
    out: Path,
    set_: list[str] | None = None,
    flip: list[str] | None = None,
    source: str | None = None,
    photos: PhotoOptions = PhotoOptions(),
) -> dict[str, Any]:
    """Edit (or grid) every input; returns the result document (checkpoint, mode, one record per input)."""
    photos.check()
    check_outside_inputs(out, [("--input", input_), ("--ckpt", ckpt)])
    check_new_folder(out, photos.force, EDITS_KIND)
    editor = load_editor(ckpt, resolve_device(photos.device))
    settings = parse_assignments(set_ or [])
    flips = [f.strip() for item in flip or [] for f in item.split(",") if f.strip()]
    given = parse_assignments([source]) if source else {}
    unknown = [n for n in [*settings, *flips, *given] if n not in editor.attrs]
    if unknown:
        raise FaceganError(
            f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not among the attributes {editor.path} was "
            f"trained on ({', '.join(editor.attrs)}).",
            "Use those names (as in CelebA's list_attr_celeba.txt).",
        )
    grid_mode = not settings and not flips
    files = [Path(entry) for entry in open_image_list(input_).entries]
    names = output_names(files, "-grid.png" if grid_mode else ".png")  # distinct whatever the inputs are called
    detector = photos.detector(photos.device)
    records: list[dict[str, Any]] = []
    with staged_folder(out, photos.force, EDITS_KIND) as staging, \
            Progress(len(files), "edit", unit="img") as bar:
        for start in range(0, len(files), photos.batch_size):
            chunk = files[start : start + photos.batch_size]
            faces = [face(p, editor.resolution, detector, getattr(editor, "input_fit", None)) for p in chunk]
            x = editor.to_tensor(np.stack(faces))
            # Without a discriminator (an imported G alone) the inputs' attributes must all be given.
            c_org = torch.zeros(x.shape[0], len(editor.attrs), device=x.device) \
                if editor.D is None and set(given) == set(editor.attrs) else editor.predict(x)
            for name, value in given.items():
                c_org[:, editor.attrs.index(name)] = float(value)
            if grid_mode:
                targets = create_labels(c_org, editor.attrs)
                columns = [editor.translate(x, t) for t in targets]
                for i, path in enumerate(chunk):
                    row = torch.stack([x[i], *(col[i] for col in columns)])
                    save_png(grid_array(to_uint8(row, (-1.0, 1.0)), nrow=row.shape[0]), staging / names[start + i])
                    records.append({"input": str(path), "output": str(out / names[start + i]),
                                    "source": describe_attrs(editor.attrs, c_org[i]),
                                    "targets": [describe_attrs(editor.attrs, t[i]) for t in targets]})
            else:
                target = apply_edits(c_org, editor.attrs, settings, flips)
                edited = to_uint8(editor.translate(x, target), (-1.0, 1.0))
                for i, path in enumerate(chunk):
                    save_png(edited[i], staging / names[start + i])
                    records.append({"input": str(path), "output": str(out / names[start + i]),
                                    "source": describe_attrs(editor.attrs, c_org[i]),
                                    "target": describe_attrs(editor.attrs, target[i])})
            bar.advance(len(chunk))
    return {"checkpoint": str(editor.path), "family": editor.family, "step": editor.step, "attrs": editor.attrs,
            "source_from": "given+predicted" if given else "predicted", "mode": "grid" if grid_mode else "edit",
            "edits": records}
