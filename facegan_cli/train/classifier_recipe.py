"""The attribute classifier's recipe on the generic loop, and its held-out accuracy.

Every step: BCE-with-logits (mean over images and attributes) of the classifier's logits against the
batch's 0/1 labels; Adam (lr 1e-3, weight decay 1e-4) with a cosine decay to 0 over the run, recomputed
from the step so that resume is exact. The loop's mirror flips are the augmentation. Sample grids show
the fixed first training images (a classifier draws nothing); the numbers are in metrics.jsonl (loss,
batch accuracy) and in the held-out accuracy the CLI reports at the end.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from facegan_cli.core.errors import FaceganError
from facegan_cli.data.device_data import resize_uint8
from facegan_cli.models.attr_classifier import CLASSIFIER_FAMILY, LoadedClassifier, build_classifier
from facegan_cli.train.recipe import Recipe, TrainContext


def cosine_lr(base: float, step: int, total: int) -> float:
    if total <= 0:
        return base
    return base * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


class ClassifierRecipe(Recipe):
    family = CLASSIFIER_FAMILY
    generator_key = "C"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.total_steps = int(config.get("steps") or 0)
        self._sample: torch.Tensor | None = None

    @property
    def z_dim(self) -> int:
        return 0

    def label_names(self) -> list[str]:
        return list(self.config["attrs"])

    def set_run_length(self, steps: int) -> None:
        self.total_steps = int(steps)

    def build(self, ctx: TrainContext) -> None:
        net = ctx.precision.module(build_classifier(self.config))
        self.precision = ctx.precision
        self.modules = {"C": net}
        self.net = net
        self.optimizers = {"C": torch.optim.Adam(net.parameters(), lr=float(self.config["lr"]),
                                                 weight_decay=float(self.config["weight_decay"]))}

    def wrap_networks(self, wrap: Any) -> None:
        self.net = wrap(self.net)

    def train_step(self, real: torch.Tensor, labels: torch.Tensor | None, step: int) -> dict[str, torch.Tensor]:
        if labels is None:
            raise FaceganError("The attribute classifier needs labels with every batch.", "Train on labelled data.")
        opt = self.optimizers["C"]
        for group in opt.param_groups:
            group["lr"] = cosine_lr(float(self.config["lr"]), step, self.total_steps)
        with self.precision.autocast():
            logits = self.net(self.precision.tensor(real)).float()
        loss = F.binary_cross_entropy_with_logits(logits, labels.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        accuracy = ((logits.detach() > 0).float() == labels).float().mean()
        return {"loss": loss.detach(), "accuracy": accuracy}

    def set_sample_inputs(self, images: torch.Tensor, labels: torch.Tensor | None) -> None:
        self._sample = images[:16].clone()

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        if self._sample is None:
            raise FaceganError("No sample images were handed to the recipe.", "This is a facegan bug.")
        return self._sample.float()

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "value_range": [-1.0, 1.0]}


def make_recipe(config: dict[str, Any]) -> Recipe:
    return ClassifierRecipe(config)


def heldout_accuracy(
    classifier: LoadedClassifier, pixels: np.ndarray, labels: np.ndarray, label_names: list[str]
) -> dict[str, Any]:
    """Per-attribute accuracy of `classifier` on N x H x W x 3 uint8 images with 0/1 `labels` (columns named
    by `label_names`), next to the majority-class rate (what always answering the commoner value scores)."""
    columns = [label_names.index(a) for a in classifier.attrs]
    truth = torch.from_numpy(np.asarray(labels, dtype=np.float32)[:, columns])
    images = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2)
    if images.shape[-1] != classifier.resolution:
        images = resize_uint8(images, classifier.resolution)
    predicted = classifier.predict(images.float() / 127.5 - 1.0).cpu()
    correct = (predicted == truth).float()
    per_attr = {}
    for i, name in enumerate(classifier.attrs):
        positive = float(truth[:, i].mean()) if len(truth) else 0.0
        per_attr[name] = {"accuracy": float(correct[:, i].mean()) if len(truth) else None,
                          "majority_rate": max(positive, 1.0 - positive), "positives": int(truth[:, i].sum())}
    return {"n": int(len(truth)), "mean_accuracy": float(correct.mean()) if len(truth) else None,
            "attributes": per_attr}
