"""`facegan prepare export`: images of a dataset for other tools.

- png: a flat folder `img00000000.png ...` (what pytorch-fid and clean-fid read), plus `dataset.json`
  when the dataset has labels;
- zip: StyleGAN2-ADA dataset_tool's layout, `00000/img00000000.png` (folder = first five digits of
  the 8-digit index) and `dataset.json` = {"labels": [[name, [0/1, ...]], ...] or null}; facegan also
  stores "label_names" there, which StyleGAN ignores.
Outputs are staged under a temporary name and renamed when complete.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.progress import Progress
from facegan_cli.data.pipeline import ordered_map
from facegan_cli.data.sources import open_image_set

FORMATS = ("png", "zip")
_CHUNK = 512


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of one RGB image; compress level 1 (fast, still lossless)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def archive_name(index: int) -> str:
    """StyleGAN dataset_tool's member name of image `index`."""
    digits = f"{index:08d}"
    return f"{digits[:5]}/img{digits}.png"


def _is_png_export(path: Path) -> bool:
    return all(p.name == "dataset.json" or (p.suffix == ".png" and p.is_file()) for p in path.iterdir())


def _check_out(out: Path, fmt: str, force: bool) -> None:
    if not out.exists():
        return
    if not force:
        raise FaceganError(f"{out} already exists.", "Choose another --out, or pass --force to replace it.")
    if fmt == "zip" and out.is_dir():
        raise FaceganError(
            f"--out {out} is a directory; a zip export needs a file path.", "Use e.g. --out data.zip."
        )
    if fmt == "png" and (not out.is_dir() or not _is_png_export(out)):
        raise FaceganError(
            f"{out} is not a PNG export (it holds other files); refusing to delete it even with --force.",
            "Choose another --out.",
        )


def export_dataset(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    fmt: str = "png",
    split: str = "all",
    resolution: int | None = None,
    workers: int = 1,
    force: bool = False,
) -> dict[str, Any]:
    """Write the images (and labels) of `src` to `out`; returns the summary document."""
    out = Path(out)
    if fmt not in FORMATS:
        raise FaceganError(f"Unknown export format {fmt!r}.", "Use png or zip.")
    images = open_image_set(src, split=split, resolution=resolution, workers=workers)
    _check_out(out, fmt, force)
    staging = out.with_name(f".{out.name}.partial")
    if staging.is_dir():
        shutil.rmtree(staging)
    elif staging.exists():
        staging.unlink()
    labels = images.labels
    label_rows: list[list[Any]] = []
    count = 0
    archive = zipfile.ZipFile(staging, "w", zipfile.ZIP_STORED) if fmt == "zip" else None
    if archive is None:
        staging.mkdir(parents=True)
    try:
        with Progress(len(images), f"export {fmt}", unit="img") as bar:
            for start in range(0, len(images), _CHUNK):
                pixels, kept = images.load_with_indices(np.arange(start, min(start + _CHUNK, len(images))))
                for k, data in enumerate(ordered_map(encode_png, list(pixels), workers)):
                    name = archive_name(count) if archive is not None else f"img{count:08d}.png"
                    if archive is not None:
                        archive.writestr(name, data)
                    else:
                        (staging / name).write_bytes(data)
                    if labels is not None:
                        label_rows.append([name, labels[kept[k]].astype(int).tolist()])
                    count += 1
                bar.advance(len(kept))
        meta = {"labels": label_rows if labels is not None else None, "label_names": images.label_names}
        if archive is not None:
            archive.writestr("dataset.json", json.dumps(meta))
            archive.close()
        elif labels is not None:
            (staging / "dataset.json").write_text(json.dumps(meta))
    except BaseException:
        if archive is not None:
            archive.close()
        raise
    if out.is_dir():
        shutil.rmtree(out)
    os.replace(staging, out)
    return {
        "out": str(out),
        "format": fmt,
        "count": count,
        "resolution": images.resolution,
        "labels": labels is not None,
        "source": images.describe(),
    }
