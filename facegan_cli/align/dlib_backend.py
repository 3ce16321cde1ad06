"""The dlib landmark backend (extra [dlib]: dlib-bin + face_recognition_models), fully offline.

1. Propose faces with dlib's HOG frontal detector on the image, downscaled to at most 1024 pixels on
   its long side (upsampled once when that side is 640 or less, so faces of ~40 pixels are found).
2. Confirm each proposal with dlib's CNN (MMOD) face detector. HOG alone fires on animal faces (one of
   the dogs in ../shared/data/non-faces); the CNN does not, but it costs seconds per megapixel on a
   CPU, so it only sees a 135 x 135 crop around each proposal, scaled so the box is 90 pixels (just
   above the 80-pixel window of the MMOD model).
3. Predict the 68 points with `shape_predictor_68_face_landmarks.dat`, then refine them twice: rotate
   and scale the face upright (eyes level, 100 pixels apart), detect its box again there, and average
   the predictor over 6 jittered boxes and their mirror images. The predictor starts from a mean shape
   placed in an axis-aligned box, so tilted faces and box jitter move its points by several pixels;
   on the sample faces this refinement makes the CelebA-HQ crop of a rotated, rescaled copy agree with
   the crop of the original to about 35 dB PSNR instead of 20-30 dB.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facegan_cli.align.landmarks import Face
from facegan_cli.core.errors import FaceganError

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
CNN_FILE = "mmod_human_face_detector.dat"
DETECT_MAX_SIDE = 1024  # proposals are searched on the image downscaled to this long side
UPSAMPLE_MAX_SIDE = 640  # ... and upsampled once when it is this small or smaller
VERIFY_BOX = 90  # proposal box side (pixels) in the crop the CNN confirms it on
VERIFY_CROP = 1.5  # crop side / box side
REFINE_EYE_DISTANCE = 100.0  # eye distance of the upright face the points are refined on
REFINE_CANVAS = 5.0  # canvas side of that face, in eye distances
REFINE_PASSES = 2
JITTER_SHIFTS = (-0.05, 0.0, 0.05)  # box centre shifts, in box widths
JITTER_SCALES = (-0.05, 0.05)  # box size changes

# The iBUG 68-point index of each point's mirror image (left and right swap under a horizontal flip).
MIRROR_68 = np.array(
    [*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)


def models_dir() -> Path:
    """face_recognition_models' model folder, found without importing the package (its __init__ needs
    pkg_resources, which recent setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceganError(
            "--landmarks dlib needs the face_recognition_models package (dlib's model files), which is not "
            "installed.",
            "Install the dlib extra: pip install 'facegan[dlib]' (dlib-bin and face_recognition_models).",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError as exc:
        raise FaceganError(
            "--landmarks dlib needs dlib, which is not installed.",
            "Install the dlib extra: pip install 'facegan[dlib]' (dlib-bin and face_recognition_models).",
        ) from exc
    return dlib


def _model(name: str) -> Path:
    path = models_dir() / name
    if not path.is_file():
        raise FaceganError(
            f"dlib model file {path} is missing.",
            "Reinstall face_recognition_models: pip install --force-reinstall face_recognition_models.",
        )
    return path


def _rect(dlib: Any, x0: float, y0: float, x1: float, y1: float) -> Any:
    return dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1)))


def _resize(image: np.ndarray, factor: float) -> np.ndarray:
    height, width = image.shape[:2]
    size = (max(1, int(round(width * factor))), max(1, int(round(height * factor))))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)


class DlibDetector:
    """HOG proposals, CNN confirmation, refined 68-point landmarks (see the module docstring)."""

    name = "dlib"

    def __init__(self) -> None:
        dlib = _import_dlib()
        self._dlib = dlib
        self.predictor_path = _model(PREDICTOR_FILE)
        self.cnn_path = _model(CNN_FILE)
        self._hog = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(self.predictor_path))
        self._cnn = dlib.cnn_face_detection_model_v1(str(self.cnn_path))

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "dlib": getattr(self._dlib, "__version__", "unknown"),
            "models": [str(self.predictor_path), str(self.cnn_path)],
            "detector": "HOG proposals confirmed by the MMOD CNN",
            "refine_passes": REFINE_PASSES,
        }

    # ----- detection --------------------------------------------------------------------------

    def proposals(self, image: np.ndarray) -> list[tuple[float, float, float, float]]:
        """HOG face boxes (x0, y0, x1, y1) in `image` coordinates."""
        factor = min(1.0, DETECT_MAX_SIDE / max(image.shape[:2]))
        small = image if factor == 1.0 else _resize(image, factor)
        upsample = 1 if max(small.shape[:2]) <= UPSAMPLE_MAX_SIDE else 0
        rects, _, _ = self._hog.run(small, upsample, 0.0)
        return [(r.left() / factor, r.top() / factor, r.right() / factor, r.bottom() / factor) for r in rects]

    def confirmed(self, image: np.ndarray, box: tuple[float, float, float, float]) -> bool:
        """True when the CNN detector finds a face at the proposal, on a small crop around it."""
        x0, y0, x1, y1 = box
        side = max(x1 - x0, y1 - y0, 1.0)
        scale = VERIFY_BOX / side
        crop = int(round(VERIFY_BOX * VERIFY_CROP))
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        # Output pixel (u, v) samples the input at centre + (u - crop/2) / scale.
        matrix = np.array([[1 / scale, 0, cx - crop / 2 / scale], [0, 1 / scale, cy - crop / 2 / scale]])
        source = image if scale >= 0.5 else _resize(image, 2 * scale)
        if source is not image:
            matrix = matrix * (2 * scale)
        patch = cv2.warpAffine(
            source,
            matrix,
            (crop, crop),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        half = crop / 2
        for found in self._cnn(patch, 0):
            centre = found.rect.center()
            if abs(centre.x - half) < VERIFY_BOX / 2 and abs(centre.y - half) < VERIFY_BOX / 2:
                return True
        return False

    # ----- landmarks --------------------------------------------------------------------------

    def _shape(self, image: np.ndarray, rect: Any) -> np.ndarray:
        shape = self._predictor(image, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def _ensemble(self, image: np.ndarray, rect: Any) -> np.ndarray:
        """The predictor averaged over jittered boxes and their mirror images."""
        dlib = self._dlib
        width = image.shape[1]
        mirrored = np.ascontiguousarray(image[:, ::-1])
        side = rect.right() - rect.left()
        cx, cy = (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2
        total = np.zeros((68, 2))
        count = 0
        for shift in JITTER_SHIFTS:
            for change in JITTER_SCALES:
                half = side * (1 + change) / 2
                x = cx + shift * side
                total += self._shape(image, _rect(dlib, x - half, cy - half, x + half, cy + half))
                flipped = self._shape(
                    mirrored,
                    _rect(dlib, width - 1 - (x + half), cy - half, width - 1 - (x - half), cy + half),
                )
                flipped[:, 0] = width - 1 - flipped[:, 0]
                total += flipped[MIRROR_68]
                count += 2
        return total / count

    def _refine(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """One pass: warp the face upright at a fixed size, find its box there, predict, map back."""
        left_eye, right_eye = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
        distance = float(np.hypot(*(right_eye - left_eye)))
        if distance < 1.0:
            return points
        angle = math.atan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0])
        scale = REFINE_EYE_DISTANCE / distance
        canvas = int(round(REFINE_CANVAS * REFINE_EYE_DISTANCE))
        cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
        forward = np.array([[cos, sin], [-sin, cos]])  # rotates the eye line to horizontal
        shift = np.array([canvas / 2, canvas / 2]) - forward @ points.mean(axis=0)
        source, matrix, offset = image, forward, shift
        if scale < 0.5:  # antialias strong reductions before the bilinear warp
            source = _resize(image, 2 * scale)
            # cv2.resize maps index p to f (p + 0.5) - 0.5 on each axis (f: the realised factor).
            factors = np.array([source.shape[1] / image.shape[1], source.shape[0] / image.shape[0]])
            matrix = forward / factors[None, :]
            offset = shift - matrix @ (0.5 * (factors - 1))
        warp = np.hstack([matrix, offset[:, None]])
        upright = cv2.warpAffine(
            source, warp, (canvas, canvas), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        rects = self._hog(upright, 0)
        if not rects:
            return points
        rect = min(rects, key=lambda r: (r.center().x - canvas / 2) ** 2 + (r.center().y - canvas / 2) ** 2)
        refined = self._ensemble(upright, rect)
        return (refined - shift) @ np.linalg.inv(forward).T

    def landmarks(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """68 x 2 refined landmarks of the face in `box`."""
        points = self._shape(image, _rect(self._dlib, *box))
        for _ in range(REFINE_PASSES):
            points = self._refine(image, points)
        return points

    def detect(self, image: np.ndarray) -> list[Face]:
        image = np.ascontiguousarray(image, dtype=np.uint8)
        faces = []
        for box in self.proposals(image):
            if self.confirmed(image, box):
                faces.append(Face(self.landmarks(image, box), box))
        return faces

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return [self.detect(image) for image in images]


_SHARED: DlibDetector | None = None


def shared() -> DlibDetector:
    """One detector per process (loading the 100 MB predictor takes a second or two)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = DlibDetector()
    return _SHARED
