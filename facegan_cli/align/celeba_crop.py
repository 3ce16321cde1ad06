"""CelebA's own alignment for photos that are not CelebA crops: the similarity that puts a face's five
landmarks where img_align_celeba keeps them on average, then the training crop of a model family.

The attribute editors are trained on img_align_celeba (178x218, faces placed by a similarity on 5 points)
centre-cropped to 178x178 (StarGAN's transform). An arbitrary photo goes through the same geometry: a
least-squares similarity (rotation, uniform scale, shift; no reflection) from its 5 points to the mean
aligned points, restricted to the 178x178 square and scaled to the model's size.
"""

from __future__ import annotations

import math

import numpy as np

ALIGNED_SIZE = (178, 218)  # (width, height) of img_align_celeba
# Mean landmarks of img_align_celeba: left eye, right eye, nose, left and right mouth corners.
CELEBA_ALIGNED_POINTS = np.array([[69, 111], [108, 111], [88, 134], [72, 152], [105, 152]], dtype=np.float64)
STARGAN_BOX = (0, 20, 178, 198)  # CenterCrop(178) of an aligned image: left, top, right, bottom


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity matrix M minimising sum |M [p; 1] - q|^2 over point pairs (Umeyama, no reflection)."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, sing, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, 1.0 if np.linalg.det(u @ vt) >= 0 else -1.0])
    rotation = u @ sign @ vt
    variance = (a**2).sum() / len(src)
    if variance <= 0:
        raise ValueError("the landmarks coincide")
    scale = float(np.trace(np.diag(sing) @ sign)) / variance
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mu_d - scale * rotation @ mu_s
    return matrix


def celeba_crop(image: np.ndarray, five: np.ndarray, size: int, box: tuple[int, int, int, int] = STARGAN_BOX) -> np.ndarray:
    """The size x size crop `box` of the CelebA-aligned version of `image` (H x W x 3 uint8), whose face
    has the CelebA-ordered 5 points `five`. Borders are reflected (as the CelebA-HQ/FFHQ crops pad)."""
    import cv2  # imported on use: the CelebA geometry constants are read by commands that never warp

    x0, y0, x1, y1 = box
    factor = size / (x1 - x0)
    target = (CELEBA_ALIGNED_POINTS - [x0, y0]) * [factor, size / (y1 - y0)]
    matrix = similarity(five, target)
    scale = math.hypot(matrix[0, 0], matrix[0, 1])
    # A warp that shrinks the photo by more than 2x would alias: warp at k times the size, then area-average.
    k = max(1, min(8, math.ceil(1.0 / max(scale, 1e-9) / 2)))
    big = matrix * k
    big[:, 2] += (k - 1) / 2  # pixel centres: big pixel j sits at (j + 0.5) / k - 0.5 of the output grid
    warped = cv2.warpAffine(
        np.ascontiguousarray(image), big, (size * k, size * k), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    if k > 1:
        warped = cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA)
    return warped
