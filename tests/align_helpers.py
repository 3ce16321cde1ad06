"""Helpers of the alignment tests: known similarities of real faces, CelebA-style trees, PSNR.

The sample faces (../shared/data/celebahq-sample) are read in place. A face is warped by a known
similarity q = s R p + t onto a larger canvas; its landmarks go through the same map, so the aligned
crop of the warped image must equal the aligned crop of the original.

Coordinates: landmarks are pixel indices (pixel i covers [i, i + 1) in continuous coordinates), as in
CelebA's files. The map on continuous coordinates is q_c = s R p_c + t_c, so on indices
q = s R (p + 0.5) + t_c - 0.5.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from facegan_cli.align.geometry import five_points
from facegan_cli.prepare import celeba


@dataclass(frozen=True)
class Similarity:
    """Rotate by `angle` degrees (counter-clockwise on screen), scale by `scale`, place on a canvas."""

    angle: float
    scale: float
    margin: tuple[int, int, int, int]  # left, top, right, bottom: canvas space around the warped image

    def _parts(self, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """(2x2 matrix, continuous translation, canvas size) for a source of `size` (w, h)."""
        theta = math.radians(self.angle)
        rot = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
        matrix = self.scale * rot
        w, h = size
        corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], dtype=np.float64) @ matrix.T
        low, high = corners.min(axis=0), corners.max(axis=0)
        left, top, right, bottom = self.margin
        shift = np.array([left, top], dtype=np.float64) - low
        canvas = (
            int(math.ceil(high[0] - low[0])) + left + right,
            int(math.ceil(high[1] - low[1])) + top + bottom,
        )
        return matrix, shift, canvas

    def points(self, points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Source pixel indices -> warped pixel indices."""
        matrix, shift, _ = self._parts(size)
        return (np.asarray(points, dtype=np.float64) + 0.5) @ matrix.T + shift - 0.5

    def inverse_points(self, points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Warped pixel indices -> source pixel indices."""
        matrix, shift, _ = self._parts(size)
        return (np.asarray(points, dtype=np.float64) + 0.5 - shift) @ np.linalg.inv(matrix).T - 0.5

    def warp(self, image: Image.Image, fill: tuple[int, int, int] = (118, 124, 131)) -> Image.Image:
        """The warped image on its canvas; areas outside the source get `fill`.

        Downscaling is antialiased (as a camera would not alias): the source is first resized with
        PIL's Lanczos filter when scale < 1, then rotated and placed with bilinear interpolation.
        """
        matrix, shift, canvas = self._parts(image.size)
        pixels = np.asarray(image.convert("RGB"))
        pre = np.ones(2)
        if self.scale < 1:
            w, h = image.size
            pre_size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
            pixels = np.asarray(image.convert("RGB").resize(pre_size, Image.LANCZOS))
            pre = np.array([pre_size[0] / w, pre_size[1] / h])
        # cv2 wants the inverse map on indices of the (pre-scaled) source: p = D M^-1 (q + 0.5 - t) - 0.5.
        inv = np.diag(pre) @ np.linalg.inv(matrix)
        offset = -inv @ (shift - 0.5) - 0.5
        m = np.hstack([inv, offset[:, None]])
        warped = cv2.warpAffine(
            np.ascontiguousarray(pixels),
            m,
            canvas,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=fill,
        )
        return Image.fromarray(warped)


def random_similarities(n: int, seed: int = 0) -> list[Similarity]:
    """Rotations up to 25 degrees, scales 0.5-1.5, shifts: the cases the issue asks for."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        out.append(
            Similarity(
                angle=float(rng.uniform(-25, 25)),
                scale=float(rng.uniform(0.5, 1.5)),
                margin=tuple(int(v) for v in rng.integers(10, 260, 4)),  # type: ignore[arg-type]
            )
        )
    return out


def psnr(a: np.ndarray, b: np.ndarray, central: float = 0.8) -> float:
    """PSNR in dB over the central `central` fraction of two equal-sized images."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    h, w = a.shape[:2]
    dy, dx = int(round(h * (1 - central) / 2)), int(round(w * (1 - central) / 2))
    diff = a[dy : h - dy, dx : w - dx] - b[dy : h - dy, dx : w - dx]
    mse = float(np.mean(diff**2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def write_wild_tree(root: Path, faces: list[tuple[str, Image.Image, np.ndarray]], male: list[int]) -> Path:
    """A CelebA-style in-the-wild tree: img_celeba/, Anno/ (landmarks, attributes), Eval/ (partition).

    `faces` holds (file name, image, 5 x 2 integer landmarks); `male` the Male attribute (0/1) of each.
    """
    (root / celeba.WILD_DIR).mkdir(parents=True, exist_ok=True)
    (root / "Anno").mkdir(exist_ok=True)
    (root / "Eval").mkdir(exist_ok=True)
    header = " ".join(celeba.LANDMARK_NAMES)
    rows = []
    for name, image, points in faces:
        image.save(root / celeba.WILD_DIR / name, quality=95)
        rows.append(name + " " + "".join(f"{int(v):5d}" for v in np.asarray(points).reshape(-1)))
    (root / "Anno" / celeba.LANDMARKS_FILE).write_text(f"{len(rows)}\n{header}\n" + "\n".join(rows) + "\n")
    male_column = celeba.CELEBA_ATTRIBUTES.index("Male")
    attr_rows = []
    for (name, _, _), is_male in zip(faces, male):
        values = [-1] * len(celeba.CELEBA_ATTRIBUTES)
        values[male_column] = 1 if is_male else -1
        attr_rows.append(name + " " + " ".join(f"{v:2d}" for v in values))
    (root / "Anno" / celeba.ATTR_FILE).write_text(
        f"{len(faces)}\n{' '.join(celeba.CELEBA_ATTRIBUTES)} \n" + "\n".join(attr_rows) + "\n"
    )
    (root / "Eval" / celeba.PARTITION_FILE).write_text(
        "".join(f"{name} {k % 3}\n" for k, (name, _, _) in enumerate(faces))
    )
    return root


@functools.cache
def sample_face(path: str) -> tuple[Image.Image, np.ndarray]:
    """A sample face and its 68 dlib landmarks, found once per test process."""
    from facegan_cli.align import dlib_backend

    image = Image.open(path).convert("RGB")
    faces = dlib_backend.shared().detect(np.asarray(image))
    assert len(faces) == 1, f"{path}: expected one face, found {len(faces)}"
    return image, faces[0].points


def warped_tree(root: Path, sample: Path, count: int, seed: int) -> tuple[Path, list[dict]]:
    """`count` sample faces, each warped by a known similarity, as a CelebA in-the-wild tree.

    Returns the tree and, per face: the original image, its similarity, its dlib 68 points, the
    integer 5 points written to list_landmarks_celeba.txt, and those points mapped back onto the
    original (the unwarped face's own landmarks, to the file's precision).
    """
    files = sorted(sample.glob("*.jpg"))[:count]
    faces, records = [], []
    for k, (path, sim) in enumerate(zip(files, random_similarities(count, seed))):
        image, points = sample_face(str(path))
        five = five_points(points)
        written = np.rint(sim.points(five, image.size)).astype(np.int64)
        name = f"{k + 1:06d}.jpg"
        faces.append((name, sim.warp(image), written))
        records.append(
            {
                "name": name,
                "image": image,
                "similarity": sim,
                "points68": points,
                "written": written,
                "unwarped": sim.inverse_points(written, image.size),
            }
        )
    write_wild_tree(root, faces, [k % 2 for k in range(count)])
    return root, records
