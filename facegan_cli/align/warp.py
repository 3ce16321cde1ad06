"""The crop procedure of CelebA-HQ and FFHQ: shrink, crop, reflect-pad with blur, transform, downsample.

Both references (progressive_growing_of_gans create_celebahq, NVlabs/ffhq-dataset
recreate_aligned_images) run the same steps on an oriented square `quad` (geometry.py):

1. shrink: when the square is more than twice the reference size, downscale the image (antialiased)
   by floor(qsize / reference * 0.5); the reference size is 1024 for CelebA-HQ, the output size for FFHQ;
2. crop to the quad's bounding box widened by border = max(rint(0.1 qsize), 3);
3. where the quad leaves the image by more than border - 4 pixels, pad every side by at least
   rint(0.3 qsize) with reflection, blend the padding towards a Gaussian blur (sigma 0.02 qsize) and
   towards the median colour;
4. transform the quad to transform_size x transform_size (bilinear), then downsample to the output
   size with PIL's antialiasing (Lanczos) filter.

This module produces the same images as those scripts (tests compare it with a PIL-only copy of the
procedure) but faster: the blur is OpenCV's separable Gaussian (the same kernel as scipy's, radius
int(4 sigma + 0.5), same reflection), the mask is built from two 1-D ramps, and the quad transform is
OpenCV's affine warp, which equals PIL's QUAD transform for the parallelograms used here except that it
rounds where PIL truncates (a difference of at most one level before the final downsample).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

PADDING_SLACK = 4  # both references pad only when the quad leaves the image by more than border - 4


@dataclass(frozen=True)
class WarpSettings:
    """How a quad becomes an output image.

    reference_size: the size the shrink rule is relative to (1024 for CelebA-HQ, --size for FFHQ).
    """

    size: int = 1024
    transform_size: int = 4096
    reference_size: int = 1024
    enable_padding: bool = True

    def __post_init__(self) -> None:
        if self.size < 1 or self.transform_size < self.size or self.reference_size < 1:
            raise ValueError(
                f"need 1 <= size <= transform_size, got size {self.size}, transform_size {self.transform_size}"
            )


def _bounds(quad: np.ndarray) -> tuple[int, int, int, int]:
    return (
        int(np.floor(quad[:, 0].min())),
        int(np.floor(quad[:, 1].min())),
        int(np.ceil(quad[:, 0].max())),
        int(np.ceil(quad[:, 1].max())),
    )


def shrink_factor(qsize: float, reference_size: int) -> int:
    """The integer downscale the references apply first (1 when none)."""
    factor = int(np.floor(qsize / reference_size * 0.5))
    return factor if factor > 1 else 1


def gaussian_blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """scipy.ndimage.gaussian_filter(pixels, [sigma, sigma, 0]) (mode reflect, truncate 4) for float32
    H x W x C images, about three times faster."""
    radius = int(4.0 * sigma + 0.5)
    if radius < 1:
        return pixels.copy()
    ksize = 2 * radius + 1
    return cv2.GaussianBlur(pixels, (ksize, ksize), sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def padding_mask(height: int, width: int, pad: tuple[int, int, int, int]) -> np.ndarray:
    """1 - min(x/p0, y/p1, (w-1-x)/p2, (h-1-y)/p3) as H x W float32: >= 0 on the padding, < 0 inside."""
    x = np.arange(width, dtype=np.float32)
    y = np.arange(height, dtype=np.float32)
    across = np.minimum(x / pad[0], (width - 1 - x) / pad[2])
    down = np.minimum(y / pad[1], (height - 1 - y) / pad[3])
    return 1.0 - np.minimum(down[:, None], across[None, :])


def blend_padding(padded: np.ndarray, pad: tuple[int, int, int, int], sigma: float) -> np.ndarray:
    """The references' padding blend on a reflect-padded uint8 image; returns uint8."""
    img = padded.astype(np.float32)
    mask = padding_mask(img.shape[0], img.shape[1], pad)[:, :, None]
    blurred = gaussian_blur(img, sigma)
    blurred -= img
    blurred *= np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    img += blurred
    median = np.median(img.reshape(-1, img.shape[2]), axis=0)
    towards = median - img
    towards *= np.clip(mask, 0.0, 1.0)
    img += towards
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _check_parallelogram(quad: np.ndarray) -> None:
    # The affine warp equals PIL's bilinear QUAD map only when the quad is a parallelogram.
    gap = np.abs((quad[2] - quad[1]) - (quad[3] - quad[0])).max()
    if gap > 1e-6 * max(1.0, float(np.abs(quad).max())):
        raise ValueError("the crop quad must be a parallelogram (an oriented square from geometry.py)")


def quad_affine(quad: np.ndarray, size: int) -> np.ndarray:
    """The 2 x 3 map from output pixel indices to input pixel indices of PIL's QUAD transform with
    data (quad + 0.5), as both references call it (PIL samples output pixel centres)."""
    q = np.asarray(quad, dtype=np.float64) + 0.5
    ax, ay = (q[3] - q[0]) / size
    bx, by = (q[1] - q[0]) / size
    return np.array(
        [
            [ax, bx, q[0, 0] + 0.5 * (ax + bx) - 0.5],
            [ay, by, q[0, 1] + 0.5 * (ay + by) - 0.5],
        ]
    )


def transform_quad(pixels: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resampling of the quad onto a size x size square (PIL QUAD geometry, black outside)."""
    return cv2.warpAffine(
        np.ascontiguousarray(pixels),
        quad_affine(quad, size),
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


@dataclass
class Prepared:
    """The source after shrink, crop and padding: what the quad transform reads."""

    pixels: np.ndarray  # H x W x 3 uint8
    quad: np.ndarray  # 4 x 2, in `pixels` coordinates
    padded: bool


def prepare_source(image: Image.Image, quad: np.ndarray, settings: WarpSettings) -> Prepared:
    """Steps 1-3 of the procedure (shrink, crop, pad and blend)."""
    quad = np.array(quad, dtype=np.float64)
    _check_parallelogram(quad)
    qsize = float(np.hypot(*(quad[3] - quad[0])))

    shrink = shrink_factor(qsize, settings.reference_size)
    if shrink > 1:
        size = (int(np.rint(float(image.size[0]) / shrink)), int(np.rint(float(image.size[1]) / shrink)))
        image = image.resize(size, Image.LANCZOS)
        quad /= shrink
        qsize /= shrink

    border = max(int(np.rint(qsize * 0.1)), 3)
    left, top, right, bottom = _bounds(quad)
    crop = (
        max(left - border, 0),
        max(top - border, 0),
        min(right + border, image.size[0]),
        min(bottom + border, image.size[1]),
    )
    pixels = np.asarray(image, dtype=np.uint8)
    if crop[2] - crop[0] < image.size[0] or crop[3] - crop[1] < image.size[1]:
        pixels = pixels[crop[1] : crop[3], crop[0] : crop[2]]
        quad -= crop[0:2]

    height, width = pixels.shape[:2]
    left, top, right, bottom = _bounds(quad)
    pad = (
        max(-left + border, 0),
        max(-top + border, 0),
        max(right - width + border, 0),
        max(bottom - height + border, 0),
    )
    if settings.enable_padding and max(pad) > border - PADDING_SLACK:
        least = max(int(np.rint(qsize * 0.3)), 1)  # >= 1 keeps the mask finite for tiny quads
        pad = tuple(max(p, least) for p in pad)  # type: ignore[assignment]
        padded = np.pad(pixels, ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), mode="reflect")
        pixels = blend_padding(padded, pad, qsize * 0.02)
        quad += pad[:2]
        return Prepared(pixels, quad, True)
    return Prepared(np.ascontiguousarray(pixels), quad, False)


def finish(prepared: Prepared, settings: WarpSettings) -> np.ndarray:
    """Step 4: the supersampled transform and the antialiased downsample to the output size."""
    big = transform_quad(prepared.pixels, prepared.quad, settings.transform_size)
    if settings.size < settings.transform_size:
        big = np.asarray(Image.fromarray(big).resize((settings.size, settings.size), Image.LANCZOS))
    return np.ascontiguousarray(big, dtype=np.uint8)


def align_crop(image: Image.Image | np.ndarray, quad: np.ndarray, settings: WarpSettings) -> np.ndarray:
    """The aligned size x size x 3 uint8 crop of `quad` (pixel-index coordinates of `image`)."""
    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image, dtype=np.uint8))
    return finish(prepare_source(image, quad, settings), settings)
