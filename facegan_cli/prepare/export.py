"""`facegan prepare export`: images of a dataset for other tools.

- png: a flat folder `img00000000.png ...` (what pytorch-fid and clean-fid read), plus `dataset.json`
  when the dataset has labels;
- zip: StyleGAN2-ADA dataset_tool's layout, `00000/img00000000.png` (folder = first five digits of
  the 8-digit index) and `dataset.json` = {"labels": [[name, [0/1, ...]], ...] or null}; facegan also
  stores "label_names" there, which StyleGAN ignores.
Outputs are staged under a temporary name and renamed when complete. `--force` replaces only what facegan
exported: a PNG folder carrying core.outputs' marker (kind "png-export") that holds nothing but
img%08d.png and dataset.json, or a zip whose archive comment carries facegan's tag; a folder of the
user's own PNGs or the user's own zip is refused even with --force. The output may not be, contain or lie
inside the source.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facegan_cli import __version__
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.outputs import (
    check_new_file,
    check_new_folder,
    check_outside_inputs,
    make_out_dir,
    new_file,
    staged_folder,
)
from facegan_cli.core.parallel import default_workers, ordered_map
from facegan_cli.core.progress import Progress
from facegan_cli.data.sources import ImageSource, open_image_set

FORMATS = ("png", "zip")
_CHUNK = 512
# The ownership marker's kind of a PNG export folder (core.outputs).
PNG_EXPORT_KIND = "png-export"
# The archive comment of facegan's zips starts with this tag: the only sign that a zip is facegan's.
ZIP_TAG = b"facegan prepare export"


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of one RGB image; compress level 1 (fast, still lossless)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def archive_name(index: int) -> str:
    """StyleGAN dataset_tool's member name of image `index`."""
    digits = f"{index:08d}"
    return f"{digits[:5]}/img{digits}.png"


def is_facegan_zip(path: Path) -> bool:
    """True when `path` is a zip whose archive comment carries facegan's export tag."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.comment.startswith(ZIP_TAG)
    except (OSError, zipfile.BadZipFile):
        return False


def _check_zip_out(out: Path, force: bool) -> None:
    if out.is_symlink() and not out.exists():
        raise FaceganError(f"--out {out} is a broken symbolic link.", "Choose another --out.")
    if out.is_dir():
        raise FaceganError(
            f"--out {out} is a directory; a zip export needs a file path.", "Use e.g. --out data.zip."
        )
    check_new_file(out, force)


def _write(images: ImageSource, target: Path, archive: zipfile.ZipFile | None, workers: int) -> int:
    """Encode every image of `images` into the folder `target` or into `archive`; returns the count."""
    labels = images.labels
    label_rows: list[list[Any]] = []
    count = 0
    with Progress(len(images), f"export {'zip' if archive is not None else 'png'}", unit="img") as bar:
        for start in range(0, len(images), _CHUNK):
            pixels, kept = images.load_with_indices(np.arange(start, min(start + _CHUNK, len(images))))
            for k, data in enumerate(ordered_map(encode_png, list(pixels), workers)):
                name = archive_name(count) if archive is not None else f"img{count:08d}.png"
                if archive is not None:
                    archive.writestr(name, data)
                else:
                    (target / name).write_bytes(data)
                if labels is not None:
                    label_rows.append([name, labels[kept[k]].astype(int).tolist()])
                count += 1
            bar.advance(len(kept))
    meta = {"labels": label_rows if labels is not None else None, "label_names": images.label_names}
    if archive is not None:
        archive.writestr("dataset.json", json.dumps(meta))
    elif labels is not None:
        (target / "dataset.json").write_text(json.dumps(meta))
    return count


def export_dataset(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    fmt: str = "png",
    split: str = "all",
    resolution: int | None = None,
    workers: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Write the images (and labels) of `src` to `out` (`workers`: default the CPUs available); returns the
    summary document."""
    out = Path(out)
    workers = workers or default_workers()
    if fmt not in FORMATS:
        raise FaceganError(f"Unknown export format {fmt!r}.", "Use png or zip.")
    # An export into (or around) its own source would replace the images it is reading.
    check_outside_inputs(out, [("DATASET", src)])
    # The output is checked before the source is read: a refusal should not wait for a large dataset.
    if fmt == "png":
        check_new_folder(out, force, PNG_EXPORT_KIND)
    else:
        _check_zip_out(out, force)
    make_out_dir(out.parent)
    images = open_image_set(src, split=split, resolution=resolution, workers=workers)
    if fmt == "png":
        with staged_folder(out, force, PNG_EXPORT_KIND) as staging:
            count = _write(images, staging, None, workers)
    else:
        with new_file(out, force, "zip-export") as staging, \
                zipfile.ZipFile(staging, "w", zipfile.ZIP_STORED) as archive:
            archive.comment = ZIP_TAG + f" {__version__}".encode()
            count = _write(images, staging, archive, workers)
    return {
        "out": str(out),
        "format": fmt,
        "count": count,
        "resolution": images.resolution,
        "labels": images.labels is not None,
        "source": _provenance(images),
    }


def _provenance(images: ImageSource) -> dict[str, Any]:
    """The source as the summary records it: absolute path, and no pass count (export reads at random)."""
    source = {**images.describe(), "path": str(images.path.resolve())}
    source.pop("used")
    return source
