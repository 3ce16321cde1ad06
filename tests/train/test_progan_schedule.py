"""ProGAN's schedule (resolution, alpha, minibatch after n images) and the loop's data-by-images-seen order."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facegan_cli.data.crops import box_downsample
from facegan_cli.data.device_data import ImageStream
from facegan_cli.data.levels import box_halvings
from facegan_cli.models.registry import resolve_config
from facegan_cli.train.progan_schedule import ProganSchedule


def _schedule(preset: str = "v2", resolution: int = 1024, phase_kimg: float | None = None) -> ProganSchedule:
    config = resolve_config("progan", preset, {"resolution": resolution, "phase_kimg": phase_kimg})
    return ProganSchedule.from_config(config)


def _original_lod(kimg: float, resolution: int, training_kimg: float, transition_kimg: float) -> float:
    """The original TrainingSchedule's level of detail, transcribed from the spec's description."""
    phase_dur = training_kimg + transition_kimg
    phase_idx = math.floor(kimg / phase_dur)
    phase_kimg = kimg - phase_idx * phase_dur
    lod = math.log2(resolution) - 2 - phase_idx
    lod -= max(phase_kimg - training_kimg, 0.0) / transition_kimg
    return max(lod, 0.0)


@pytest.mark.unit
def test_schedule_by_hand() -> None:
    s = _schedule(resolution=16)  # v2: 600 kimg per phase
    expected = [  # images seen -> (resolution, fading, alpha, batch)
        (0, 4, False, 1.0, 128),
        (600_000, 4, False, 1.0, 128),  # the original fades in from the next image on
        (600_001, 8, True, 1 / 600_000, 128),
        (900_000, 8, True, 0.5, 128),
        (1_200_000, 8, False, 1.0, 128),
        (1_800_000, 8, False, 1.0, 128),
        (1_800_006, 16, True, 1e-5, 128),
        (1_950_000, 16, True, 0.25, 128),
        (2_400_000, 16, False, 1.0, 128),
        (50_000_000, 16, False, 1.0, 128),  # the target's stabilisation runs to the end of training
    ]
    for images, res, fading, alpha, batch in expected:
        phase = s.phase_at(images)
        assert (phase.resolution, s.is_fading(phase.index), s.alpha(images), phase.batch_size) == (
            res, fading, alpha, batch), images
    last = s.phase_at(10**9)
    assert last.end is None and last.name == "16x16-stable" and last.index == 4
    fade = s.phase_at(600_001)
    assert (fade.name, fade.start, fade.end) == ("8x8-fade-in", 600_001, 1_200_000)
    assert s.phase_at(0).end == 600_001 and s.phase_at(1_200_000).end == 1_800_001
    assert s.schedule_images == 3_000_000


@pytest.mark.unit
@pytest.mark.parametrize(("preset", "phase_kimg"), [("v2", 600), ("paper", 800)])
def test_schedule_agrees_with_the_original_level_of_detail(preset: str, phase_kimg: int) -> None:
    s = _schedule(preset)
    assert s.phase_images == phase_kimg * 1000
    boundaries = [k * phase_kimg * 1000 + d for k in range(18) for d in (-1, 0, 1)]
    for images in np.linspace(0, 16_000_000, 397).astype(int).tolist() + boundaries[1:]:
        lod = _original_lod(images / 1000, 1024, phase_kimg, phase_kimg)
        phase = s.phase_at(images)
        assert phase.resolution == 2 ** (10 - math.floor(lod)), images
        assert s.alpha(images) == pytest.approx(1 - (lod - math.floor(lod)), abs=1e-9), images


@pytest.mark.unit
def test_minibatch_and_learning_rate_presets() -> None:
    v2, paper = _schedule("v2"), _schedule("paper")
    assert [v2.batch_sizes[r] for r in (4, 8, 16, 32, 64, 128, 256, 512, 1024)] == [
        128, 128, 128, 64, 32, 16, 8, 4, 4]
    assert [paper.batch_sizes[r] for r in (4, 8, 16, 32, 64, 128, 256, 512, 1024)] == [
        16, 16, 16, 16, 16, 16, 14, 6, 3]
    assert v2.learning_rate(512) == 1e-3 and v2.learning_rate(1024) == 1.5e-3
    assert paper.learning_rate(1024) == 1e-3
    # The fade-in into a resolution already uses that resolution's minibatch (as the original).
    assert v2.phase_at(5 * 600_000 + 1).batch_size == 64 and v2.phase_at(5 * 600_000 + 1).resolution == 32
    assert paper.schedule_images == 17 * 800_000


@pytest.mark.unit
def test_schedule_rejects_bad_configs() -> None:
    with pytest.raises(ValueError, match="shorter than one image"):
        _schedule(phase_kimg=0.0001)
    config = resolve_config("progan", "v2", {"resolution": 16})
    config["batch_sizes"] = {"4": 8, "8": 8}
    with pytest.raises(ValueError, match="16"):
        ProganSchedule.from_config(config)


@pytest.mark.unit
def test_image_stream_is_a_function_of_images_seen() -> None:
    stream = ImageStream(10, seed=4)
    whole = stream.indices(0, 40)
    for epoch in range(4):  # each epoch is a permutation of the rows
        assert sorted(whole[epoch * 10 : (epoch + 1) * 10].tolist()) == list(range(10))
    assert not torch.equal(whole[:10], whole[10:20])
    # Any split into batches (across epoch ends too), by a fresh stream (a resumed run), gives the same.
    fresh = ImageStream(10, seed=4)
    pieces = torch.cat([fresh.indices(s, n) for s, n in ((0, 3), (3, 8), (11, 9), (20, 20))])
    assert torch.equal(pieces, whole)
    flips = stream.flips(0, 40)
    assert torch.equal(torch.cat([fresh.flips(25, 15), fresh.flips(0, 25)]), torch.cat([flips[25:], flips[:25]]))
    assert 0 < int(flips.sum()) < 40
    assert not torch.equal(ImageStream(10, seed=5).indices(0, 10), whole[:10])


@pytest.mark.unit
def test_box_halvings_equal_the_prepared_levels() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 16, 16, 3), dtype=np.uint8)
    for factor in (1, 2, 4, 8):
        expected = np.stack([box_downsample(img, factor) for img in images])
        np.testing.assert_array_equal(box_halvings(images, factor), expected)
