"""`facegan edit --align`: photos that are not CelebA crops are moved to CelebA's aligned geometry first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from align_helpers import psnr
from PIL import Image

from facegan_cli.align.celeba_crop import CELEBA_ALIGNED_POINTS, STARGAN_BOX, celeba_crop, similarity
from facegan_cli.prepare import celeba


def test_similarity_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 200, (5, 2))
    angle, scale, shift = 0.4, 1.7, np.array([12.0, -30.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = points @ (scale * rotation).T + shift
    np.testing.assert_allclose(similarity(points, moved), np.c_[scale * rotation, shift], atol=1e-9)
    with pytest.raises(ValueError):
        similarity(np.ones((5, 2)), moved)


def test_aligned_landmarks_at_the_mean_give_the_training_crop() -> None:
    """An image whose points are exactly the mean aligned points is cut like StarGAN's CenterCrop(178)."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
    crop = celeba_crop(image, CELEBA_ALIGNED_POINTS, 178)
    x0, y0, x1, y1 = STARGAN_BOX
    np.testing.assert_array_equal(crop, image[y0:y1, x0:x1])


def test_in_the_wild_photos_align_like_their_aligned_versions(synthetic_tree: Path) -> None:
    """The synthetic tree holds each face twice (in the wild and CelebA-aligned) with exact landmarks: both
    must give the same crop."""
    wild_names, wild = celeba.parse_landmarks(synthetic_tree / "Anno" / celeba.LANDMARKS_FILE)
    aligned_names, aligned = celeba.parse_landmarks(synthetic_tree / "Anno" / celeba.LANDMARKS_ALIGN_FILE)
    assert wild_names == aligned_names
    values = []
    for k, name in enumerate(wild_names[:4]):
        photo = np.asarray(Image.open(synthetic_tree / "img_celeba" / name).convert("RGB"))
        crop = np.asarray(Image.open(synthetic_tree / "img_align_celeba" / name).convert("RGB"))
        a = celeba_crop(photo, wild[k], 64)
        b = celeba_crop(crop, aligned[k], 64)
        values.append(psnr(a, b))  # over the central 80%
    print("wild vs aligned PSNR (dB):", [round(v, 1) for v in values])
    assert min(values) >= 25, values


def test_edit_aligns_a_real_photo_and_rejects_an_animal(
    cli, ccagan_run: Path, celebahq_sample: Path, non_faces: Path, tmp_path: Path
) -> None:
    photo = sorted(celebahq_sample.glob("*.jpg"))[0]
    small = tmp_path / "photo.jpg"
    Image.open(photo).convert("RGB").resize((384, 384), Image.LANCZOS).save(small, quality=95)
    out = tmp_path / "out"
    result = cli("edit", "--ckpt", ccagan_run, "--input", small, "--align", "dlib", "--flip", "Male", "--out", out,
                 "--device", "cpu")
    assert result.exit_code == 0, result.output
    edited = np.asarray(Image.open(out / "photo.png"))
    assert edited.shape == (16, 16, 3)
    animal = sorted(non_faces.glob("*.jpg"))[0]
    result = cli("edit", "--ckpt", ccagan_run, "--input", animal, "--align", "dlib", "--flip", "Male", "--out",
                 tmp_path / "animal", "--device", "cpu")
    assert result.exit_code == 1 and "No face was found" in result.stderr and animal.name in result.stderr
    assert "Traceback" not in result.output
    result = cli("edit", "--ckpt", ccagan_run, "--input", small, "--align", "opencv", "--out", tmp_path / "x")
    assert result.exit_code == 1 and "--align" in result.stderr
