"""The CelebA crops of specs/datasets.md, each matching the code it reproduces.

- dcgan (pytorch/examples): torchvision Resize(crop_size) + CenterCrop(crop_size) on a PIL image.
- stargan (yunjey/stargan): CenterCrop(178) then Resize(size).
- progan (create_celeba): img[cy-64:cy+64, cx-64:cx+64] with cx=89, cy=121, then down to `size`.
- none: the whole image resized to size x size (square inputs only, e.g. CelebA-HQ).

`crop_size` is the square taken before the final resize to `size` (dcgan: its Resize/CenterCrop size,
default `size`; stargan: the centre box, default 178; progan: the box, default 128).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from facegan_cli.data.imageio import RejectedImage, check_work_size

CROPS = ("dcgan", "stargan", "progan", "none")
DEFAULT_CROP_SIZE = {"stargan": 178, "progan": 128}
PROGAN_CENTER = (89, 121)  # (cx, cy) of create_celeba in progressive_growing_of_gans/dataset_tool.py


def _as_pil(image: Image.Image | np.ndarray) -> Image.Image:
    return image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))


def resize_short_side(img: Image.Image, size: int, resample: int = Image.BILINEAR) -> Image.Image:
    """torchvision.transforms.Resize(size) on a PIL image: the short side becomes `size`, the long side
    int(size * long / short) (truncated), and an image already that size is returned unchanged."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    new_w, new_h = (size, new_long) if w <= h else (new_long, size)
    if (new_w, new_h) == (w, h):
        return img
    # Before PIL allocates it: a long thin image multiplies its pixels here (RejectedImage, see imageio).
    check_work_size((new_w, new_h), f"{w}x{h} resized to short side {size}")
    return img.resize((new_w, new_h), resample)


def center_crop(img: Image.Image, size: int) -> Image.Image:
    """torchvision.transforms.CenterCrop(size) on a PIL image (offsets rounded with Python's round)."""
    w, h = img.size
    if size > w or size > h:
        # torchvision pads with zeros here; callers reject such inputs first, so reaching it is a bug.
        raise ValueError(f"center_crop: {w}x{h} is smaller than {size}")
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def box_downsample(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Average factor x factor blocks and round half to even, in exact integer arithmetic.

    This equals ProGAN's TFRecordExporter, which halves in float32 level after level (exactly, as the
    values are dyadic) and quantises each level with np.rint: every level is the rounded mean of the
    block of the top level, not of the already-rounded level above.
    """
    if factor == 1:
        return pixels
    h, w, c = pixels.shape
    blocks = pixels.reshape(h // factor, factor, w // factor, factor, c).astype(np.int64)
    total = blocks.sum(axis=(1, 3))
    area = factor * factor
    quotient, remainder = np.divmod(total, area)
    round_up = (2 * remainder > area) | ((2 * remainder == area) & (quotient % 2 == 1))
    return (quotient + round_up).astype(np.uint8)


def min_input_size(crop: str, size: int, crop_size: int | None = None) -> tuple[int, int]:
    """(width, height) an input needs so that the crop box fits; smaller inputs are rejected."""
    box = crop_size or DEFAULT_CROP_SIZE.get(crop, size)
    if crop == "progan":
        cx, cy = PROGAN_CENTER
        half = box // 2
        return cx + (box - half), cy + (box - half)
    if crop == "stargan":
        return box, box
    return 1, 1


def _final_resize(img: Image.Image, box: int, size: int, allow_upscale: bool, resample: int) -> Image.Image:
    if size > box and not allow_upscale:
        raise RejectedImage(f"too small: crop {box}x{box} < {size} (pass --allow-upscale to enlarge)")
    if size == box:
        return img
    return img.resize((size, size), resample)


def apply_crop(
    image: Image.Image | np.ndarray,
    crop: str,
    size: int,
    crop_size: int | None = None,
    allow_upscale: bool = False,
) -> np.ndarray:
    """Crop and resize one RGB image to `size` x `size` uint8; RejectedImage when it cannot be done."""
    if crop not in CROPS:
        raise ValueError(f"unknown crop {crop!r}; choose one of {', '.join(CROPS)}")
    img = _as_pil(image)
    w, h = img.size
    need_w, need_h = min_input_size(crop, size, crop_size)
    if w < need_w or h < need_h:
        raise RejectedImage(f"too small: {w}x{h} < {need_w}x{need_h} needed by the {crop} crop")

    if crop == "dcgan":
        box = crop_size or size
        if min(w, h) < box and not allow_upscale:
            raise RejectedImage(f"too small: {w}x{h} < {box} (pass --allow-upscale to enlarge)")
        out = center_crop(resize_short_side(img, box), box)
        # A further resize (celeba-32: 64 crops resized to 32) is torchvision Resize again: bilinear.
        out = _final_resize(out, box, size, allow_upscale, Image.BILINEAR)
        return np.asarray(out, dtype=np.uint8)

    if crop == "stargan":
        box = crop_size or DEFAULT_CROP_SIZE["stargan"]
        out = _final_resize(center_crop(img, box), box, size, allow_upscale, Image.BILINEAR)
        return np.asarray(out, dtype=np.uint8)

    if crop == "progan":
        box = crop_size or DEFAULT_CROP_SIZE["progan"]
        cx, cy = PROGAN_CENTER
        half = box // 2
        pixels = np.asarray(img, dtype=np.uint8)[cy - half : cy - half + box, cx - half : cx - half + box]
        factor = box // size if size <= box else 0
        if factor and box == size * factor and factor & (factor - 1) == 0:
            # Power-of-two reductions are ProGAN's own pyramid levels.
            return np.ascontiguousarray(box_downsample(pixels, factor))
        out = _final_resize(Image.fromarray(pixels), box, size, allow_upscale, Image.BILINEAR)
        return np.asarray(out, dtype=np.uint8)

    # none: already-aligned square faces; a non-square input would be distorted, so it is rejected.
    if w != h:
        raise RejectedImage(f"not square: {w}x{h} (the 'none' crop needs square images)")
    out = _final_resize(img, w, size, allow_upscale, Image.LANCZOS)
    return np.asarray(out, dtype=np.uint8)


# How a model's test-time inputs are fitted to its square when its own project fits them otherwise than
# facegan's default (short side resized with Lanczos, centre crop): checkpoint metadata "input_fit" (imported
# models carry their project's), each key one step of a torchvision pipeline on a PIL image.
INPUT_FIT_CHOICES: dict[str, tuple[str, ...]] = {
    "crop": ("none", "center-square"),  # center-square: CenterCrop(short side) first
    "resize": ("square", "short-side"),  # square: Resize([s, s]) (aspect not kept); short-side: Resize(s) + CenterCrop(s)
    "filter": ("bicubic", "bilinear", "lanczos"),
}
_FILTERS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "lanczos": Image.LANCZOS}


def input_fit_problem(fit: object) -> str:
    """What is wrong with an "input_fit" record ("" when nothing)."""
    if not isinstance(fit, dict):
        return f"input_fit is {fit!r}, not an object"
    for key, choices in INPUT_FIT_CHOICES.items():
        if fit.get(key) not in choices:
            return f"input_fit.{key} is {fit.get(key)!r}, not one of {', '.join(choices)}"
    extra = sorted(set(fit) - set(INPUT_FIT_CHOICES))
    return f"input_fit has the unknown key {extra[0]!r}" if extra else ""


def fit_filter(fit: dict[str, str] | None) -> int:
    """The resampling filter a model's `fit` names (LANCZOS, facegan's, without one)."""
    return Image.LANCZOS if fit is None else _FILTERS[fit["filter"]]


def fit_square(image: Image.Image, side: int, fit: dict[str, str]) -> Image.Image:
    """`image` as side x side the way `fit` (see INPUT_FIT_CHOICES) says, torchvision's steps exactly."""
    resample = _FILTERS[fit["filter"]]
    if fit["crop"] == "center-square":
        image = center_crop(image, min(image.size))
    if fit["resize"] == "square":
        check_work_size((side, side), f"{image.size[0]}x{image.size[1]} resized to {side}x{side}")
        return image.resize((side, side), resample)
    image = resize_short_side(image, side, resample)
    return image if image.size == (side, side) else center_crop(image, side)
