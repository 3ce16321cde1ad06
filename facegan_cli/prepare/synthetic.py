"""Synthetic cartoon faces with known attributes and exact landmarks (`facegan prepare synthetic`).

Every face is a function of (seed, index, n) alone, so the output is deterministic and can be drawn in
parallel. A face is drawn once, at 2x supersampling, on a canvas that extends the 178x218 aligned
frame on every side; `img_align_celeba/` gets the aligned frame (downsampled 2x2), `img_celeba/` gets
a similarity transform of the extended canvas (rotation, scale, shift), so its 5 landmarks are exactly
the transformed aligned ones (rounded to integers, as CelebA's files are).

`style="painting"` writes the faces as two unpaired domains for image translation instead (junyanz's
layout: trainA/ photos, trainB/ paintings of other faces, testA/, testB/ of held-out identities), plus
truth/, the true other-domain image of every file (truth/testA/NAME is the painting of testA/NAME), so
translation can be scored against ground truth offline. The painting (`paint`) is a fixed, learnable
restyling of the square image: a warm oil palette (contrast curve and colour mix), diagonal brush strokes,
dark outlines where the luminance changes, and an impasto relief.

Coordinates: landmarks are pixel indices as in CelebA's files; pixel i covers [i, i+1) in continuous
coordinates, so its centre is i + 0.5. The in-the-wild landmarks are q = s R(angle) p + t on indices.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from facegan_cli import __version__
from facegan_cli.align.celeba_crop import ALIGNED_SIZE, CELEBA_ALIGNED_POINTS
from facegan_cli.core.atomic import write_json, write_text
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.outputs import make_out_dir, staged_folder
from facegan_cli.core.parallel import ordered_map
from facegan_cli.core.progress import Progress
from facegan_cli.data.crops import apply_crop
from facegan_cli.data.domains import DOMAIN_FOLDERS, TRUTH
from facegan_cli.data.imageio import check_side_option
from facegan_cli.prepare import celeba

# Faces are drawn where img_align_celeba keeps them on average (integer landmarks, as CelebA lists them).
CANONICAL_LANDMARKS = CELEBA_ALIGNED_POINTS.astype(np.int64)
SUPER = 2  # supersampling factor of the drawing
MARGIN = (220, 220, 220, 360)  # left, top, right, bottom of the extended canvas, in aligned pixels

HAIR_COLOURS = {
    "Black_Hair": (28, 22, 20),
    "Brown_Hair": (100, 62, 34),
    "Blond_Hair": (224, 192, 118),
    "Gray_Hair": (168, 168, 170),
}
SKIN_TONES = [
    (252, 228, 214),
    (240, 202, 172),
    (226, 182, 142),
    (198, 146, 106),
    (160, 112, 76),
    (112, 76, 52),
]
EYE_COLOURS = [(70, 45, 25), (40, 90, 140), (60, 110, 70), (95, 70, 45)]
BACKGROUNDS = [
    (200, 210, 225),
    (235, 225, 200),
    (190, 220, 200),
    (225, 200, 210),
    (120, 130, 150),
    (60, 70, 90),
    (240, 240, 240),
    (150, 120, 100),
]
SHIRTS = [(40, 60, 120), (150, 30, 40), (30, 30, 30), (230, 230, 230), (60, 120, 80), (200, 150, 50)]
FACE_SHAPES = {
    "oval": (1.12, 1.55),
    "round": (1.25, 1.40),
    "long": (1.05, 1.70),
}  # half-axes in eye distances
MODELLED_ATTRIBUTES = (
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Gray_Hair",
    "Eyeglasses",
    "Male",
    "Mouth_Slightly_Open",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Smiling",
    "Wearing_Lipstick",
    "Young",
)
PARTITION_SHARES = (0.8, 0.1, 0.1)


def split_sizes(n: int) -> tuple[int, int, int]:
    """CelebA-like contiguous train/valid/test counts (80/10/10)."""
    n_train = int(round(n * PARTITION_SHARES[0]))
    n_valid = int(round(n * PARTITION_SHARES[1]))
    n_valid = min(n_valid, n - n_train)
    return n_train, n_valid, n - n_train - n_valid


def file_name(index: int) -> str:
    return f"{index + 1:06d}.jpg"


@dataclass
class FaceSpec:
    """Everything that decides one face; `face_spec` derives it from (seed, index, n)."""

    index: int
    identity: int
    partition: int
    male: bool
    young: bool
    hair: str
    skin: int
    shape: str
    beard: bool
    long_hair: bool
    smiling: bool
    mouth_open: bool
    eyeglasses: bool
    lipstick: bool
    eye_colour: tuple[int, int, int]
    background: tuple[int, int, int]
    shirt: tuple[int, int, int]
    landmarks: np.ndarray  # 5 x 2 int, aligned image
    scale: float
    angle: float  # degrees, counter-clockwise on screen
    shift: tuple[float, float]
    canvas: tuple[int, int]  # in-the-wild (width, height)

    @property
    def file(self) -> str:
        return file_name(self.index)

    @property
    def matrix(self) -> np.ndarray:
        """The 2x2 part s R of the aligned -> in-the-wild similarity on pixel indices."""
        theta = math.radians(self.angle)
        c, s = math.cos(theta), math.sin(theta)
        # Image y points down, so turning counter-clockwise on screen is x' = c x + s y, y' = -s x + c y.
        return self.scale * np.array([[c, s], [-s, c]])

    def to_wild(self, points: np.ndarray) -> np.ndarray:
        """Aligned pixel indices -> in-the-wild pixel indices (floats)."""
        return np.asarray(points, dtype=np.float64) @ self.matrix.T + np.asarray(self.shift)

    def wild_landmarks(self) -> np.ndarray:
        return np.rint(self.to_wild(self.landmarks)).astype(np.int64)

    def attributes(self) -> dict[str, bool]:
        values = {name: self.hair == name for name in HAIR_COLOURS}
        values.update(
            Eyeglasses=self.eyeglasses,
            Male=self.male,
            Mouth_Slightly_Open=self.mouth_open,
            No_Beard=not self.beard,
            Oval_Face=self.shape == "oval",
            Pale_Skin=self.skin == 0,
            Smiling=self.smiling,
            Wearing_Lipstick=self.lipstick,
            Young=self.young,
        )
        return values

    def attribute_row(self) -> list[int]:
        """All 40 CelebA attributes as +-1; the ones not modelled are -1."""
        values = self.attributes()
        return [1 if values.get(name, False) else -1 for name in celeba.CELEBA_ATTRIBUTES]

    def face_box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of face and hair in aligned coordinates."""
        g = face_geometry(self)
        return g["cx"] - 1.1 * g["a"], g["cy"] - 1.08 * g["b"], g["cx"] + 1.1 * g["a"], g["cy"] + g["b"]

    def wild_bbox(self) -> tuple[int, int, int, int]:
        """CelebA-style x_1, y_1, width, height of the face in the in-the-wild image."""
        x0, y0, x1, y1 = self.face_box()
        corners = self.to_wild(np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]))
        lo = np.clip(np.floor(corners.min(axis=0)), 0, None).astype(int)
        hi = np.minimum(np.ceil(corners.max(axis=0)), np.array(self.canvas) - 1).astype(int)
        return int(lo[0]), int(lo[1]), int(hi[0] - lo[0] + 1), int(hi[1] - lo[1] + 1)


def _identity_traits(seed: int, identity: int) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 7, identity])
    male = bool(rng.random() < 0.45)
    young = bool(rng.random() < 0.75)
    hair_names = list(HAIR_COLOURS)
    # Young people are never grey here, older ones often are: attributes stay correlated as in CelebA.
    probs = [0.4, 0.35, 0.25, 0.0] if young else [0.25, 0.25, 0.1, 0.4]
    return {
        "male": male,
        "young": young,
        "hair": hair_names[int(rng.choice(4, p=probs))],
        "skin": int(rng.integers(len(SKIN_TONES))),
        "shape": list(FACE_SHAPES)[int(rng.integers(3))],
        "beard": male and bool(rng.random() < 0.4),
        "long_hair": bool(rng.random() < (0.1 if male else 0.85)),
        "eye_colour": EYE_COLOURS[int(rng.integers(len(EYE_COLOURS)))],
    }


def _fits(spec_matrix: np.ndarray, shift: np.ndarray, canvas: tuple[int, int]) -> bool:
    """True when every in-the-wild pixel maps back inside the drawn (extended) canvas."""
    w, h = canvas
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], dtype=np.float64)
    back = (corners - shift) @ np.linalg.inv(spec_matrix).T
    left, top, right, bottom = MARGIN
    return bool(
        (back[:, 0] >= -left + 1).all()
        and (back[:, 0] <= ALIGNED_SIZE[0] + right - 2).all()
        and (back[:, 1] >= -top + 1).all()
        and (back[:, 1] <= ALIGNED_SIZE[1] + bottom - 2).all()
    )


def face_spec(seed: int, index: int, n: int) -> FaceSpec:
    """The face at `index` (0-based) of a synthetic set of `n` faces drawn with `seed`."""
    n_train, n_valid, _ = split_sizes(n)
    partition = 0 if index < n_train else (1 if index < n_train + n_valid else 2)
    # Identities never cross partitions, as in CelebA; about four images per identity.
    bounds = [0, n_train, n_train + n_valid, n]
    pools = [max(1, (bounds[k + 1] - bounds[k]) // 4) for k in range(3)]
    rng = np.random.default_rng([seed, index])
    identity = 1 + sum(pools[:partition]) + int(rng.integers(pools[partition]))
    traits = _identity_traits(seed, identity)

    jitter = np.zeros((5, 2), dtype=np.int64)
    eye_dy = int(rng.integers(-2, 3))
    jitter[0] = [rng.integers(-2, 3), eye_dy + rng.integers(-1, 2)]
    jitter[1] = [rng.integers(-2, 3), eye_dy + rng.integers(-1, 2)]
    jitter[2] = [rng.integers(-2, 3), rng.integers(-2, 3)]
    mouth_dy = int(rng.integers(-2, 3))
    jitter[3] = [rng.integers(-2, 2), mouth_dy]
    jitter[4] = [rng.integers(-1, 3), mouth_dy]
    landmarks = CANONICAL_LANDMARKS + jitter

    smiling = bool(rng.random() < 0.5)
    scale = float(rng.uniform(0.9, 1.6))
    angle = float(rng.uniform(-20.0, 20.0))
    theta = math.radians(angle)
    matrix = scale * np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    canvas = (
        int(rng.integers(round(220 * scale), round(330 * scale))),
        int(rng.integers(round(260 * scale), round(380 * scale))),
    )
    anchor = np.array([rng.uniform(0.38, 0.62) * canvas[0], rng.uniform(0.35, 0.55) * canvas[1]])
    centre = np.array([88.5, 128.0])  # the aligned point placed at `anchor`
    shift = anchor - matrix @ centre
    while not _fits(matrix, shift, canvas):
        # Crop the canvas around the face until it only shows what was drawn.
        canvas = (int(canvas[0] * 0.9), int(canvas[1] * 0.9))
        anchor = np.array([0.5 * canvas[0], 0.45 * canvas[1]])
        shift = anchor - matrix @ centre
    return FaceSpec(
        index=index,
        identity=identity,
        partition=partition,
        smiling=smiling,
        mouth_open=bool(rng.random() < (0.5 if smiling else 0.1)),
        eyeglasses=bool(rng.random() < 0.15),
        lipstick=(not traits["male"]) and bool(rng.random() < 0.5),
        background=BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))],
        shirt=SHIRTS[int(rng.integers(len(SHIRTS)))],
        landmarks=landmarks,
        scale=scale,
        angle=angle,
        shift=(float(shift[0]), float(shift[1])),
        canvas=canvas,
        **traits,
    )


def face_geometry(spec: FaceSpec) -> dict[str, float]:
    """Face centre (cx, cy), half-axes (a, b), eye distance d and eye height eye_y, aligned pixels."""
    lm = spec.landmarks.astype(np.float64)
    eye_y = (lm[0, 1] + lm[1, 1]) / 2
    d = lm[1, 0] - lm[0, 0]
    wa, hb = FACE_SHAPES[spec.shape]
    a, b = wa * d, hb * d
    return {"cx": (lm[0, 0] + lm[1, 0]) / 2, "cy": eye_y + 0.15 * b, "a": a, "b": b, "d": d, "eye_y": eye_y}


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(max(0, min(255, round(c * factor)))) for c in colour)  # type: ignore[return-value]


class _Painter:
    """Draws in aligned pixel-index coordinates onto the 2x extended canvas."""

    def __init__(self, image: Image.Image) -> None:
        self.draw = ImageDraw.Draw(image)
        self.ox, self.oy = MARGIN[0], MARGIN[1]

    def _pt(self, x: float, y: float) -> tuple[float, float]:
        # Index i has its centre at continuous i + 0.5; PIL draws index coordinates of the 2x canvas.
        return SUPER * (x + self.ox + 0.5) - 0.5, SUPER * (y + self.oy + 0.5) - 0.5

    def _box(self, cx: float, cy: float, rx: float, ry: float) -> list[float]:
        x, y = self._pt(cx, cy)
        return [x - SUPER * rx + 0.5, y - SUPER * ry + 0.5, x + SUPER * rx - 0.5, y + SUPER * ry - 0.5]

    def ellipse(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        fill: Any = None,
        outline: Any = None,
        width: float = 1,
    ) -> None:
        self.draw.ellipse(self._box(cx, cy, rx, ry), fill=fill, outline=outline, width=round(SUPER * width))

    def chord(self, cx: float, cy: float, rx: float, ry: float, start: float, end: float, fill: Any) -> None:
        self.draw.chord(self._box(cx, cy, rx, ry), start, end, fill=fill)

    def polygon(self, points: list[tuple[float, float]], fill: Any) -> None:
        self.draw.polygon([self._pt(x, y) for x, y in points], fill=fill)

    def line(self, points: list[tuple[float, float]], fill: Any, width: float) -> None:
        self.draw.line(
            [self._pt(x, y) for x, y in points], fill=fill, width=round(SUPER * width), joint="curve"
        )

    def rectangle(self, x0: float, y0: float, x1: float, y1: float, fill: Any) -> None:
        self.draw.rectangle([*self._pt(x0, y0), *self._pt(x1, y1)], fill=fill)


def _curve(p0: np.ndarray, control: np.ndarray, p1: np.ndarray, steps: int = 12) -> list[tuple[float, float]]:
    t = np.linspace(0.0, 1.0, steps)[:, None]
    pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * control + t**2 * p1
    return [(float(x), float(y)) for x, y in pts]


def _draw_face(spec: FaceSpec) -> Image.Image:
    """The face on the extended 2x canvas."""
    left, top, right, bottom = MARGIN
    size = (SUPER * (ALIGNED_SIZE[0] + left + right), SUPER * (ALIGNED_SIZE[1] + top + bottom))
    image = Image.new("RGB", size, spec.background)
    p = _Painter(image)
    g = face_geometry(spec)
    cx, cy, a, b, d, eye_y = g["cx"], g["cy"], g["a"], g["b"], g["d"], g["eye_y"]
    lm = spec.landmarks.astype(np.float64)
    skin = SKIN_TONES[spec.skin]
    hair = HAIR_COLOURS[spec.hair]
    chin = cy + b
    far = ALIGNED_SIZE[1] + bottom  # the bottom edge of the drawn canvas

    # Body and neck first, so everything else covers them.
    p.ellipse(cx, chin + 1.1 * b, 2.3 * a, 0.9 * b, fill=spec.shirt)
    p.rectangle(cx - 2.3 * a, chin + 1.1 * b, cx + 2.3 * a, far, fill=spec.shirt)
    p.rectangle(cx - 0.42 * a, cy, cx + 0.42 * a, chin + 0.35 * b, fill=_shade(skin, 0.85))
    if spec.long_hair:
        p.ellipse(cx, cy - 0.05 * b, 1.2 * a, 1.1 * b, fill=hair)
        p.rectangle(cx - 1.2 * a, cy, cx + 1.2 * a, chin + 0.3 * b, fill=hair)
    else:
        p.ellipse(cx, cy - 0.1 * b, 1.07 * a, 1.0 * b, fill=hair)
    for side in (-1, 1):
        p.ellipse(cx + side * a * 0.98, eye_y + 0.15 * d, 0.17 * a, 0.3 * a, fill=_shade(skin, 0.92))
    p.ellipse(cx, cy, a, b, fill=skin)
    if spec.beard:
        p.chord(cx, cy, a, b, 18, 162, fill=_shade(hair, 0.8))
    hairline = eye_y - (0.62 if spec.long_hair else 0.78) * d
    cap_top = cy - 1.04 * b
    p.chord(cx, hairline, 1.03 * a, hairline - cap_top, 180, 360, fill=hair)
    if not spec.young:
        for k in (0.42, 0.32):
            y = eye_y - k * d
            p.line(
                _curve(
                    np.array([cx - 0.4 * d, y]), np.array([cx, y - 0.05 * d]), np.array([cx + 0.4 * d, y])
                ),
                fill=_shade(skin, 0.78),
                width=1.0,
            )
    brow = _shade(hair, 0.7) if spec.hair != "Black_Hair" else hair
    for k in (0, 1):
        ex, ey = lm[k]
        p.line(
            [(ex - 0.3 * d, ey - 0.26 * d), (ex, ey - 0.33 * d), (ex + 0.3 * d, ey - 0.27 * d)],
            fill=brow,
            width=2.2,
        )
        p.ellipse(ex, ey, 0.2 * d, 0.1 * d, fill=(248, 248, 248))
        p.ellipse(ex, ey, 0.085 * d, 0.085 * d, fill=spec.eye_colour)
        p.ellipse(ex, ey, 0.04 * d, 0.04 * d, fill=(10, 10, 10))
    nx, ny = lm[2]
    nose = _shade(skin, 0.8)
    p.line([(cx, eye_y + 0.12 * d), (nx - 0.04 * d, ny - 0.12 * d), (nx, ny)], fill=nose, width=1.3)
    for side in (-1, 1):
        p.ellipse(nx + side * 0.13 * d, ny + 0.03 * d, 0.055 * d, 0.04 * d, fill=_shade(skin, 0.6))

    left_corner, right_corner = lm[3], lm[4]
    mid = (left_corner + right_corner) / 2
    width = right_corner[0] - left_corner[0]
    lips = (190, 35, 55) if spec.lipstick else _shade((skin[0], int(skin[1] * 0.7), int(skin[2] * 0.7)), 0.8)
    bend = 0.28 * width if spec.smiling else 0.03 * width
    lower = _curve(
        left_corner, mid + np.array([0, bend + (0.35 * width if spec.mouth_open else 0)]), right_corner
    )
    if spec.mouth_open:
        upper = _curve(left_corner, mid + np.array([0, 0.06 * width]), right_corner)
        p.polygon(upper + lower[::-1], fill=(70, 15, 25))
        teeth = _curve(left_corner, mid + np.array([0, 0.2 * width]), right_corner)
        p.polygon(upper + teeth[::-1], fill=(245, 245, 240))
        p.line(upper, fill=lips, width=1.6)
        p.line(lower, fill=lips, width=2.2)
    else:
        p.line(_curve(left_corner, mid + np.array([0, bend]), right_corner), fill=lips, width=2.4)

    if spec.eyeglasses:
        frame = (25, 25, 30)
        for k in (0, 1):
            ex, ey = lm[k]
            p.ellipse(ex, ey, 0.36 * d, 0.25 * d, outline=frame, width=1.6)
        inner = [(lm[0, 0] + 0.36 * d, lm[0, 1] - 0.05 * d), (lm[1, 0] - 0.36 * d, lm[1, 1] - 0.05 * d)]
        p.line(inner, fill=frame, width=1.6)
        p.line(
            [(lm[0, 0] - 0.36 * d, lm[0, 1] - 0.05 * d), (cx - a, eye_y - 0.05 * d)], fill=frame, width=1.4
        )
        p.line(
            [(lm[1, 0] + 0.36 * d, lm[1, 1] - 0.05 * d), (cx + a, eye_y - 0.05 * d)], fill=frame, width=1.4
        )
    return image


def render(spec: FaceSpec) -> tuple[Image.Image, Image.Image]:
    """(aligned 178x218 image, in-the-wild image) of one face."""
    big = _draw_face(spec)
    left, top = SUPER * MARGIN[0], SUPER * MARGIN[1]
    aligned = big.crop((left, top, left + SUPER * ALIGNED_SIZE[0], top + SUPER * ALIGNED_SIZE[1])).reduce(
        SUPER
    )
    # PIL's affine maps output continuous coordinates to input ones. In continuous coordinates
    # q_c = M p_c + t_c with t_c = t + 0.5 - M 0.5; the drawn canvas has P = SUPER * (p_c + margin).
    m = spec.matrix
    inv = np.linalg.inv(m)
    t_c = np.asarray(spec.shift) + 0.5 - m @ np.array([0.5, 0.5])
    a = SUPER * inv
    c = -SUPER * inv @ t_c + SUPER * np.array([MARGIN[0], MARGIN[1]], dtype=np.float64)
    data = (a[0, 0], a[0, 1], c[0], a[1, 0], a[1, 1], c[1])
    wild = big.transform(spec.canvas, Image.AFFINE, data, resample=Image.BILINEAR, fillcolor=spec.background)
    return aligned, wild


def _render_celeba(task: tuple[int, int, int, str, int]) -> dict[str, Any]:
    seed, index, n, root, quality = task
    spec = face_spec(seed, index, n)
    aligned, wild = render(spec)
    aligned.save(Path(root) / celeba.ALIGNED_DIR / spec.file, quality=quality)
    wild.save(Path(root) / celeba.WILD_DIR / spec.file, quality=quality)
    return {
        "file": spec.file,
        "attributes": spec.attribute_row(),
        "aligned": spec.landmarks.reshape(-1).tolist(),
        "wild": spec.wild_landmarks().reshape(-1).tolist(),
        "bbox": list(spec.wild_bbox()),
        "identity": spec.identity,
        "partition": spec.partition,
    }


def _render_folder(task: tuple[int, int, int, str, int, int, str]) -> dict[str, Any]:
    seed, index, n, root, quality, size, fmt = task
    spec = face_spec(seed, index, n)
    aligned, _ = render(spec)
    square = Image.fromarray(apply_crop(aligned, "stargan", size, allow_upscale=True))
    name = f"{index + 1:06d}.{fmt}"
    square.save(Path(root) / name, **({"quality": quality} if fmt == "jpg" else {}))
    values = spec.attributes()
    return {"file": name, "labels": [int(values[k]) for k in MODELLED_ATTRIBUTES]}


# The painting style's palette: a golden, old-varnish colour mix (invertible: condition number 8.3) applied
# after a contrast curve.
PAINT_MIX = np.array([[0.50, 0.55, 0.20], [0.25, 0.50, 0.15], [0.05, 0.15, 0.30]])
PAINT_OFFSET = np.array([0.10, 0.05, 0.0])
DOMAIN_DIRS = {(split, domain): folder for split, pair in DOMAIN_FOLDERS.items() for domain, folder in zip("AB", pair)}
STYLES = ("photo", "painting")


def paint(pixels: np.ndarray) -> np.ndarray:
    """The painting of a square H x W x 3 uint8 image (the same image always gives the same painting).

    Palette: a contrast curve, then each colour a fixed mix of the three (golden brown, little blue). Strokes:
    the mean along the down-right diagonal over max(3, side/16) pixels. Outlines: darker (up to 55%) where
    the luminance gradient is strong. Texture: impasto relief, light where the paint's luminance rises towards
    the upper left and shadow where it falls. Every step is local, so a convolutional translator can learn it.
    """
    x = pixels.astype(np.float64) / 255.0
    n = x.shape[0]
    x = 0.5 + 0.5 * np.tanh(1.8 * (x - 0.5)) / np.tanh(0.9)
    x = x @ PAINT_MIX.T + PAINT_OFFSET
    r = max(3, (n // 16) | 1) // 2
    padded = np.pad(x, ((r, r), (r, r), (0, 0)), mode="edge")
    x = sum(padded[r + k : r + k + n, r + k : r + k + n] for k in range(-r, r + 1)) / (2 * r + 1)
    lum = x @ np.array([0.299, 0.587, 0.114])
    gy, gx = np.gradient(lum)
    strength = np.clip(4.0 * np.sqrt(gx**2 + gy**2) * (n / 64), 0.0, 1.0)
    x = x * (1.0 - 0.55 * strength)[..., None]
    x = x + 0.6 * (gx + gy)[..., None] * (n / 64)
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def domain_of(spec: FaceSpec) -> tuple[str, str]:
    """(split, domain) of a face: held-out identities (the test partition) are the test split; within a
    split, even faces are photos (A), odd ones paintings (B), so the two training domains share no face."""
    return "test" if spec.partition == 2 else "train", "A" if spec.index % 2 == 0 else "B"


def _render_domains(task: tuple[int, int, int, str, int]) -> dict[str, Any]:
    seed, index, n, root, size = task
    spec = face_spec(seed, index, n)
    aligned, _ = render(spec)
    photo = apply_crop(aligned, "stargan", size, allow_upscale=True)
    painting = paint(photo)
    split, domain = domain_of(spec)
    folder = DOMAIN_DIRS[(split, domain)]
    name = f"{index + 1:06d}.png"
    own, other = (photo, painting) if domain == "A" else (painting, photo)
    Image.fromarray(own).save(Path(root) / folder / name)
    Image.fromarray(other).save(Path(root) / TRUTH / folder / name)
    return {"file": name, "folder": folder}


def _table(count: int, header: str, rows: list[str]) -> str:
    return f"{count}\n{header}\n" + "".join(f"{row}\n" for row in rows)


def _write_celeba_annotations(root: Path, records: list[dict[str, Any]]) -> None:
    anno, evaldir = root / "Anno", root / "Eval"
    anno.mkdir(exist_ok=True)
    evaldir.mkdir(exist_ok=True)
    n = len(records)
    # Formats as distributed: "000001.jpg -1  1 ..." (values right-aligned in two columns), a trailing
    # space after the names line, landmark and bbox columns padded with runs of spaces.
    write_text(
        anno / celeba.ATTR_FILE,
        _table(
            n,
            " ".join(celeba.CELEBA_ATTRIBUTES) + " ",
            [r["file"] + " " + " ".join(f"{v:2d}" for v in r["attributes"]) for r in records],
        ),
    )
    landmark_header = " ".join(celeba.LANDMARK_NAMES)
    write_text(
        anno / celeba.LANDMARKS_ALIGN_FILE,
        _table(
            n, landmark_header, [r["file"] + " " + "".join(f"{v:5d}" for v in r["aligned"]) for r in records]
        ),
    )
    write_text(
        anno / celeba.LANDMARKS_FILE,
        _table(
            n, landmark_header, [r["file"] + " " + "".join(f"{v:5d}" for v in r["wild"]) for r in records]
        ),
    )
    write_text(
        anno / celeba.BBOX_FILE,
        _table(
            n,
            "image_id x_1 y_1 width height",
            [r["file"] + " " + "".join(f"{v:5d}" for v in r["bbox"]) for r in records],
        ),
    )
    write_text(anno / celeba.IDENTITY_FILE, "".join(f"{r['file']} {r['identity']}\n" for r in records))
    write_text(evaldir / celeba.PARTITION_FILE, "".join(f"{r['file']} {r['partition']}\n" for r in records))


# The ownership marker's kind: --force replaces only a folder `prepare synthetic` wrote (core.outputs).
SYNTHETIC_KIND = "synthetic"


# Built-in defaults of `facegan prepare synthetic`; a recipe overrides them, command-line options the recipe.
SYNTHETIC_DEFAULTS: dict[str, Any] = {"n": 2000, "layout": "celeba", "seed": 0, "size": 128, "format": "png", "quality": 95,
                                      "style": "photo"}


def prepare_synthetic(out: str | os.PathLike[str], settings: dict[str, Any], **options: Any) -> dict[str, Any]:
    """`write_synthetic` with resolved settings (SYNTHETIC_DEFAULTS' keys); `options`: workers, force."""
    keys = ("n", "seed", "layout", "size", "quality")
    return write_synthetic(out, **{key: settings[key] for key in keys}, fmt=settings["format"],
                           style=settings.get("style", "photo"), **options)


def write_synthetic(
    out: str | os.PathLike[str],
    n: int = 2000,
    seed: int = 0,
    layout: str = "celeba",
    size: int = 128,
    fmt: str = "png",
    quality: int = 95,
    workers: int = 1,
    force: bool = False,
    style: str = "photo",
) -> dict[str, Any]:
    """Write `n` synthetic faces; returns the summary (also saved as OUT/synthetic.json). `style` painting:
    photo and painting domains in junyanz's layout with their true pairs (then `layout` does not apply).

    The tree is built in a marked staging folder beside OUT and renamed to OUT when complete, so OUT never
    holds half a set; --force replaces only a folder this command wrote (core.outputs' marker).
    """
    out = Path(out)
    if n < 1:
        raise UsageProblem(f"--n {n}: at least one face is needed.", "Pass --n 1 or more.")
    check_side_option(size, "--size")  # --size 30000 would ask for 2.7 GB per face before anything is written
    if layout not in ("celeba", "folder"):
        raise FaceganError(f"Unknown --layout {layout!r}.", "Use celeba or folder.")
    if fmt not in ("png", "jpg"):
        raise FaceganError(f"Unknown --format {fmt!r}.", "Use png or jpg.")
    if style not in STYLES:
        raise FaceganError(f"Unknown --style {style!r}.", f"Use one of: {', '.join(STYLES)}.")
    if style == "painting":
        _, _, n_test = split_sizes(n)
        if n - n_test < 2 or n_test < 2:
            raise UsageProblem(f"--n {n} faces leave no photo and painting in each of train and test.",
                               "Pass --n 20 or more.")
    make_out_dir(out.parent)
    with staged_folder(out, force, SYNTHETIC_KIND) as staging:
        if style == "painting":
            summary = _write_domains(staging, out, n, seed, size, workers)
        else:
            summary = _write_into(staging, out, n, seed, layout, size, fmt, quality, workers)
    return summary


def _write_domains(staging: Path, out: Path, n: int, seed: int, size: int, workers: int) -> dict[str, Any]:
    """The photo and painting domains in junyanz's layout and their true pairs under truth/."""
    for folder in DOMAIN_DIRS.values():
        (staging / folder).mkdir()
        (staging / TRUTH / folder).mkdir(parents=True)
    counts = dict.fromkeys(DOMAIN_DIRS.values(), 0)
    with Progress(n, "synthetic photos and paintings", unit="face") as bar:
        for record in ordered_map(_render_domains, [(seed, i, n, str(staging), size) for i in range(n)], workers):
            counts[record["folder"]] += 1
            bar.advance()
    summary = {
        "generator": "facegan prepare synthetic",
        "facegan_version": __version__,
        "out": str(out),
        "layout": "domains",
        "style": "painting",
        "n": n,
        "seed": seed,
        "size": size,
        "format": "png",
        "domains": {"A": "photo", "B": "painting"},
        "counts": counts,
        "truth": f"{TRUTH}/FOLDER/NAME is the other domain's image of FOLDER/NAME (the true translation)",
        "partition": None,
    }
    write_json(staging / "synthetic.json", summary)
    return summary


def _write_into(
    staging: Path, out: Path, n: int, seed: int, layout: str, size: int, fmt: str, quality: int, workers: int
) -> dict[str, Any]:
    """Draw the faces and their annotations into the (marked, empty) staging folder; returns the summary."""
    if layout == "celeba":
        (staging / celeba.ALIGNED_DIR).mkdir()
        (staging / celeba.WILD_DIR).mkdir()
        tasks: list[Any] = [(seed, i, n, str(staging), quality) for i in range(n)]
        fn: Any = _render_celeba
    else:
        tasks = [(seed, i, n, str(staging), quality, size, fmt) for i in range(n)]
        fn = _render_folder
    with Progress(n, f"synthetic {layout}", unit="face") as bar:
        records = []
        for record in ordered_map(fn, tasks, workers):
            records.append(record)
            bar.advance()
    if layout == "celeba":
        _write_celeba_annotations(staging, records)
    else:
        header = "file," + ",".join(MODELLED_ATTRIBUTES)
        write_text(
            staging / "labels.csv",
            header
            + "\n"
            + "".join(r["file"] + "," + ",".join(map(str, r["labels"])) + "\n" for r in records),
        )
    n_train, n_valid, n_test = split_sizes(n)
    summary = {
        "generator": "facegan prepare synthetic",
        "facegan_version": __version__,
        "out": str(out),
        "layout": layout,
        "n": n,
        "seed": seed,
        "size": size if layout == "folder" else list(ALIGNED_SIZE),
        "format": fmt if layout == "folder" else "jpg",
        "modelled_attributes": list(MODELLED_ATTRIBUTES),
        "partition": {"train": n_train, "valid": n_valid, "test": n_test} if layout == "celeba" else None,
    }
    write_json(staging / "synthetic.json", summary)
    return summary
