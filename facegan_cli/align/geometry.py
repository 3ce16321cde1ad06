"""Crop geometry from facial landmarks: the CelebA-HQ and FFHQ oriented squares (specs/datasets.md).

Landmarks are pixel indices, as CelebA's files, dlib and face-alignment give them. Both references build
an oriented square from the eyes and the mouth corners:

    x = eye_to_eye - rot90(eye_to_mouth);  x /= |x|;  x *= max(2 |eye_to_eye|, 1.8 |eye_to_mouth|)
    y = rot90(x);  c = eye_avg + 0.1 eye_to_mouth;  quad = [c-x-y, c-x+y, c+x+y, c+x-y]

with rot90(v) = (-v_y, v_x). CelebA-HQ (progressive_growing_of_gans, create_celebahq) adds 0.5 to the
eye and mouth averages; FFHQ (recreate_aligned_images) does not. The quad's corners are upper-left,
lower-left, lower-right and upper-right of the output: the order PIL's QUAD transform takes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The 68 iBUG points (dlib and face-alignment order) that make CelebA's 5: eye centres, nose tip,
# mouth corners.
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
NOSE_TIP = 30
MOUTH_LEFT = 48
MOUTH_RIGHT = 54

# The half-pixel that create_celebahq adds to the landmark averages (FFHQ adds none).
AVERAGE_OFFSET = {"progan": 0.5, "ffhq": 0.0}
MODES = tuple(AVERAGE_OFFSET)


def rot90(v: np.ndarray) -> np.ndarray:
    """(-v_y, v_x): a quarter turn that maps "right" to "down" in image coordinates."""
    return np.array([-v[1], v[0]], dtype=np.float64)


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """CelebA's 5 points (left eye, right eye, nose, left and right mouth corner) as 5 x 2 float64.

    68-point results are reduced as specs/datasets.md says; 5-point input is returned as floats.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape == (5, 2):
        return points.copy()
    if points.shape != (68, 2):
        raise ValueError(f"expected 5 x 2 or 68 x 2 landmarks, got shape {points.shape}")
    return np.stack(
        [
            points[LEFT_EYE].mean(axis=0),
            points[RIGHT_EYE].mean(axis=0),
            points[NOSE_TIP],
            points[MOUTH_LEFT],
            points[MOUTH_RIGHT],
        ]
    )


@dataclass(frozen=True)
class OrientedSquare:
    """The crop square: centre `c`, half-side vectors `x` (to the right) and `y` (downwards)."""

    c: np.ndarray
    x: np.ndarray
    y: np.ndarray

    @property
    def quad(self) -> np.ndarray:
        """4 x 2 corners: upper-left, lower-left, lower-right, upper-right."""
        c, x, y = self.c, self.x, self.y
        return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])

    @property
    def qsize(self) -> float:
        """The side of the square in source pixels (2|x|)."""
        return float(2.0 * np.hypot(*self.x))

    def shifted(self, offset: np.ndarray) -> OrientedSquare:
        return OrientedSquare(self.c + np.asarray(offset, dtype=np.float64), self.x, self.y)


def oriented_square(landmarks: np.ndarray, mode: str = "progan", rotate_level: bool = True) -> OrientedSquare:
    """The oriented crop square of `mode` (progan: CelebA-HQ, ffhq: FFHQ) from 5 or 68 landmarks.

    `rotate_level=False` keeps the square axis-aligned (FFHQ's rotate_level option) with the same size
    and centre. Raises ValueError for degenerate landmarks (coincident eyes and mouth).
    """
    if mode not in AVERAGE_OFFSET:
        raise ValueError(f"unknown alignment {mode!r}; choose one of {', '.join(MODES)}")
    lm = five_points(landmarks)
    offset = AVERAGE_OFFSET[mode]
    eye_avg = (lm[0] + lm[1]) * 0.5 + offset
    mouth_avg = (lm[3] + lm[4]) * 0.5 + offset
    eye_to_eye = lm[1] - lm[0]
    eye_to_mouth = mouth_avg - eye_avg
    scale = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    direction = eye_to_eye - rot90(eye_to_mouth) if rotate_level else np.array([1.0, 0.0])
    length = np.hypot(*direction)
    if not np.isfinite(scale) or scale <= 0 or length == 0 or not np.isfinite(length):
        raise ValueError("degenerate landmarks: the eyes and mouth do not span a face")
    x = direction / length * scale
    return OrientedSquare(eye_avg + eye_to_mouth * 0.1, x, rot90(x))


def oriented_quad(landmarks: np.ndarray, mode: str = "progan", rotate_level: bool = True) -> np.ndarray:
    """The 4 x 2 quad of `oriented_square` (the formulas of specs/datasets.md)."""
    return oriented_square(landmarks, mode, rotate_level).quad


def random_shift(square: OrientedSquare, amount: float, rng: np.random.Generator) -> OrientedSquare:
    """FFHQ's random_shift: move the centre by qsize * amount * N(0, 1) in each coordinate."""
    if amount == 0:
        return square
    return square.shifted(square.qsize * amount * rng.normal(0.0, 1.0, 2))


def points_inside(points: np.ndarray, width: int, height: int) -> bool:
    """True when every landmark (pixel indices) lies on the image."""
    pts = np.asarray(points, dtype=np.float64)
    return bool(
        np.isfinite(pts).all()
        and (pts[:, 0] >= 0).all()
        and (pts[:, 1] >= 0).all()
        and (pts[:, 0] <= width - 1).all()
        and (pts[:, 1] <= height - 1).all()
    )
