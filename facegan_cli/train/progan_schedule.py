"""ProGAN's training schedule: which resolution, fade weight, minibatch and learning rate after n images.

As the original's TrainingSchedule: 4x4 is trained (stabilised) for one phase, then every higher
resolution gets a fade-in phase (alpha rising linearly from 0 to 1 with the images shown) and a
stabilisation phase, each `phase_kimg` thousand real images long; the target resolution's stabilisation
runs until training ends. A phase's minibatch and learning rate are those of its (new) resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facegan_cli.models.progan import MIN_RESOLUTION, check_resolution, stage_count
from facegan_cli.train.trainer import Phase


@dataclass(frozen=True)
class ProganSchedule:
    resolution: int  # the target
    phase_images: int  # images per fade-in or stabilisation phase
    batch_sizes: dict[int, int]
    lr: float
    lr_by_resolution: dict[int, float]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ProganSchedule:
        resolution = int(config["resolution"])
        check_resolution(resolution)
        phase_images = round(float(config["phase_kimg"]) * 1000)
        if phase_images < 1:
            raise ValueError(f"phase_kimg {config['phase_kimg']} is shorter than one image")
        sizes = {int(r): int(b) for r, b in config["batch_sizes"].items()}
        needed = [MIN_RESOLUTION * 2**k for k in range(stage_count(resolution))]
        missing = [r for r in needed if r not in sizes]
        if missing:
            raise ValueError(f"no minibatch size for resolution(s) {missing}")
        if any(sizes[r] < 1 for r in needed):
            raise ValueError("minibatch sizes must be at least 1")
        lr_by = {int(r): float(v) for r, v in (config.get("lr_by_resolution") or {}).items()}
        return cls(resolution, phase_images, sizes, float(config["lr"]), lr_by)

    @property
    def last_index(self) -> int:
        """Index of the final (open-ended) stabilisation phase: 0 for a 4x4 target, 2 per doubling."""
        return 2 * (stage_count(self.resolution) - 1)

    @property
    def schedule_images(self) -> int:
        """Images until the target resolution has been stabilised for one full phase."""
        return (self.last_index + 1) * self.phase_images

    def phase_at(self, images_seen: int) -> Phase:
        index = self._index(images_seen)
        resolution = self.resolution_of(index)
        kind = "fade-in" if self.is_fading(index) else "stable"
        return Phase(
            index=index, resolution=resolution, batch_size=self.batch_sizes[resolution],
            start=self._start(index), end=None if index == self.last_index else self._start(index + 1),
            name=f"{resolution}x{resolution}-{kind}",
        )

    def _index(self, images_seen: int) -> int:
        quotient, remainder = divmod(images_seen, self.phase_images)
        if self.is_fading(quotient) and remainder == 0:
            # Exactly at a fade-in's start the original is still in the stabilisation before it (its
            # level of detail is still a whole number), so the fade-in begins one image later.
            quotient -= 1
        return min(quotient, self.last_index)

    def _start(self, index: int) -> int:
        """First images-seen count of a phase (fade-ins start one image after their nominal start)."""
        return index * self.phase_images + (1 if self.is_fading(index) else 0)

    @staticmethod
    def resolution_of(index: int) -> int:
        """Phase 0 is 4x4; phases 2k-1 (fade-in) and 2k (stable) are at 4 * 2^k."""
        return MIN_RESOLUTION * 2 ** ((index + 1) // 2)

    @staticmethod
    def is_fading(index: int) -> bool:
        return index % 2 == 1

    def alpha(self, images_seen: int) -> float:
        """The fade-in weight of the newest stage: (images into the fade-in) / phase length, else 1."""
        index = self._index(images_seen)
        if not self.is_fading(index):
            return 1.0
        return min(max((images_seen - index * self.phase_images) / self.phase_images, 0.0), 1.0)

    def learning_rate(self, resolution: int) -> float:
        return self.lr_by_resolution.get(resolution, self.lr)
