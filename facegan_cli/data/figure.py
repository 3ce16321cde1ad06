"""Labelled figures: rows of images with a label on the left and optional captions under each image.

Used for interpolation rows, arithmetic panels, nearest-neighbour rows, `facegan explain` and the numbered
Turing-test contact sheet (latent/, evaluation/, transfer/ all draw them, so they live here, below all
three). Labels are drawn with PIL's built-in font, so no font file has to be present.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.outputs import check_new_file, new_file
from facegan_cli.data.grid import save_png

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True when `path` names an image file (a grid, a figure), False when it names a folder."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


_BACKGROUND = 255
_INK = (0, 0, 0)
_MARGIN = 4


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def _text_size(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont
) -> tuple[int, int]:
    if not text:
        return 0, 0
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return int(right - left), int(bottom - top)


def upscale(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Enlarge N x H x W x 3 images by an integer factor with pixel repetition (no new colours)."""
    if factor <= 1:
        return pixels
    return pixels.repeat(factor, axis=1).repeat(factor, axis=2)


def labelled_grid(
    rows: list[np.ndarray],
    row_labels: list[str] | None = None,
    captions: list[list[str]] | None = None,
    padding: int = 2,
    min_cell: int = 0,
) -> np.ndarray:
    """Tile rows of N_i x H x W x 3 uint8 images into one H' x W' x 3 uint8 figure.

    Rows may differ in length (short rows are left blank at the end). `captions[r][i]` is written under
    image i of row r; `min_cell` enlarges every image by the smallest integer factor that makes it at
    least that many pixels tall, so that tiny images stay visible next to their labels.
    """
    if not rows or any(row.ndim != 4 or row.shape[0] == 0 for row in rows):
        raise ValueError("labelled_grid needs at least one non-empty row of N x H x W x 3 images")
    h, w = rows[0].shape[1:3]
    if any(row.shape[1:] != rows[0].shape[1:] for row in rows):
        raise ValueError("all images of a figure must have one size")
    factor = max(1, -(-min_cell // h)) if min_cell else 1
    rows = [upscale(row, factor) for row in rows]
    h, w = h * factor, w * factor

    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = _font()
    labels = row_labels or [""] * len(rows)
    label_w = max(_text_size(scratch, text, font)[0] for text in labels)
    label_col = label_w + 2 * _MARGIN if label_w else 0
    caption_sizes = [_text_size(scratch, text, font) for row in (captions or []) for text in row]
    caption_h = max((size[1] for size in caption_sizes), default=0)
    caption_row = caption_h + _MARGIN if captions else 0
    cell_w = max([w] + [size[0] + 2 for size in caption_sizes])
    ncol = max(row.shape[0] for row in rows)

    line_h = h + caption_row + padding
    canvas = np.full(
        (padding + len(rows) * line_h, label_col + padding + ncol * (cell_w + padding), 3),
        _BACKGROUND,
        np.uint8,
    )
    for r, row in enumerate(rows):
        y = padding + r * line_h
        for i in range(row.shape[0]):
            x = label_col + padding + i * (cell_w + padding) + (cell_w - w) // 2
            canvas[y : y + h, x : x + w] = row[i]

    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for r, text in enumerate(labels):
        tw, th = _text_size(draw, text, font)
        draw.text((_MARGIN, padding + r * line_h + (h - th) // 2), text, fill=_INK, font=font)
    for r, row_captions in enumerate(captions or []):
        for i, text in enumerate(row_captions):
            tw, _ = _text_size(draw, text, font)
            x = label_col + padding + i * (cell_w + padding) + (cell_w - tw) // 2
            draw.text((x, padding + r * line_h + h + 1), text, fill=_INK, font=font)
    return np.asarray(image)


def check_figure_outputs(
    out: str | os.PathLike[str], force: bool, save_latents_to: str | os.PathLike[str] | None = None
) -> None:
    """Before any work: `out` names a new image file (or one --force may replace), and so does the
    latents file when one is asked for."""
    if not is_image_path(out):
        raise FaceganError(
            f"--out {out} is not an image file name; this command writes one figure.",
            "End --out with .png, .jpg or .webp.",
        )
    check_new_file(out, force)
    if save_latents_to is not None:
        check_new_file(save_latents_to, force, "--save-latents")


def write_figure(figure: np.ndarray, out: str | os.PathLike[str], force: bool = False) -> Path:
    """Write the figure, recorded as facegan's (core.outputs.new_file); returns its path."""
    with new_file(out, force, "figure") as tmp:
        save_png(figure, tmp)
    return Path(out)
