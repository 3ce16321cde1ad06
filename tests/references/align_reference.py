"""The alignment procedure as NVIDIA's FFHQ script runs it: one image at a time, PIL, numpy and scipy.

A plain restatement of NVlabs/ffhq-dataset `recreate_aligned_images` (the steps of specs/datasets.md),
used as the speed baseline of benchmarks/bench_align.py and as the reference the tests compare
facegan_cli.align.warp with. `reference_size` selects the shrink rule: the output size (FFHQ) or 1024
(CelebA-HQ's create_celebahq, whose other constants are the same fractions of the quad).
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
from PIL import Image


def reference_quad(lm: np.ndarray) -> np.ndarray:
    """FFHQ's oriented square from 68 iBUG landmarks (eye means, mouth corners 48 and 54) or from
    CelebA's 5 points (eyes, nose, mouth corners), no half-pixel offset; corners upper-left, lower-left,
    lower-right, upper-right."""
    lm = np.asarray(lm, dtype=np.float64)
    if len(lm) == 68:
        eye_left, eye_right = lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)
        mouth_left, mouth_right = lm[48], lm[54]
    else:
        eye_left, eye_right, _, mouth_left, mouth_right = lm
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) * 0.5 - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def reference_align(
    img: Image.Image,
    quad: np.ndarray,
    output_size: int = 1024,
    transform_size: int = 4096,
    reference_size: int | None = None,
    enable_padding: bool = True,
) -> Image.Image:
    quad = np.array(quad, dtype=np.float64)
    qsize = np.hypot(*(quad[3] - quad[0]))
    reference_size = output_size if reference_size is None else reference_size

    # Shrink.
    shrink = int(np.floor(qsize / reference_size * 0.5))
    if shrink > 1:
        rsize = (int(np.rint(float(img.size[0]) / shrink)), int(np.rint(float(img.size[1]) / shrink)))
        img = img.resize(rsize, Image.LANCZOS)
        quad /= shrink
        qsize /= shrink

    # Crop.
    border = max(int(np.rint(qsize * 0.1)), 3)
    crop = (
        int(np.floor(min(quad[:, 0]))),
        int(np.floor(min(quad[:, 1]))),
        int(np.ceil(max(quad[:, 0]))),
        int(np.ceil(max(quad[:, 1]))),
    )
    crop = (
        max(crop[0] - border, 0),
        max(crop[1] - border, 0),
        min(crop[2] + border, img.size[0]),
        min(crop[3] + border, img.size[1]),
    )
    if crop[2] - crop[0] < img.size[0] or crop[3] - crop[1] < img.size[1]:
        img = img.crop(crop)
        quad -= crop[0:2]

    # Pad.
    pad = (
        int(np.floor(min(quad[:, 0]))),
        int(np.floor(min(quad[:, 1]))),
        int(np.ceil(max(quad[:, 0]))),
        int(np.ceil(max(quad[:, 1]))),
    )
    pad = (
        max(-pad[0] + border, 0),
        max(-pad[1] + border, 0),
        max(pad[2] - img.size[0] + border, 0),
        max(pad[3] - img.size[1] + border, 0),
    )
    if enable_padding and max(pad) > border - 4:
        pad = np.maximum(pad, int(np.rint(qsize * 0.3)))
        arr = np.pad(np.float32(img), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), "reflect")
        h, w, _ = arr.shape
        y, x, _ = np.ogrid[:h, :w, :1]
        mask = np.maximum(
            1.0 - np.minimum(np.float32(x) / pad[0], np.float32(w - 1 - x) / pad[2]),
            1.0 - np.minimum(np.float32(y) / pad[1], np.float32(h - 1 - y) / pad[3]),
        )
        blur = qsize * 0.02
        arr += (scipy.ndimage.gaussian_filter(arr, [blur, blur, 0]) - arr) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
        arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(mask, 0.0, 1.0)
        img = Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)), "RGB")
        quad += pad[:2]

    # Transform.
    img = img.transform((transform_size, transform_size), Image.QUAD, (quad + 0.5).flatten(), Image.BILINEAR)
    if output_size < transform_size:
        img = img.resize((output_size, output_size), Image.LANCZOS)
    return img
