"""The attribute classifier's trainer on the generic loop, and its held-out accuracy.

Every step: BCE-with-logits (mean over images and attributes) of the classifier's logits against the
batch's 0/1 labels; Adam (lr 1e-3, weight decay 1e-4) with a cosine decay to 0 over the run, recomputed
from the step so that resume is exact. The loop's mirror flips are the augmentation. Sample grids show
the fixed first training images (a classifier draws nothing); the numbers are in metrics.jsonl (loss,
batch accuracy) and in the held-out accuracy the CLI reports at the end.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from facegan_cli.core.atomic import write_json
from facegan_cli.core.device import resolve_device
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.options import Opt
from facegan_cli.core.ownership import record as record_written
from facegan_cli.core.rundir import RunDir
from facegan_cli.data.device_data import resize_uint8
from facegan_cli.data.prepared import MANIFEST
from facegan_cli.data.sources import open_image_set
from facegan_cli.models import registry
from facegan_cli.models.attr_classifier import (
    CLASSIFIER_DEFAULTS,
    CLASSIFIER_FAMILY,
    LoadedClassifier,
    build_classifier,
    stage_count,
)
from facegan_cli.models.loading import load_model
from facegan_cli.models.stargan import STARGAN_ATTRS
from facegan_cli.train.attribute_options import parse_attrs, protocol_splits
from facegan_cli.train.loop import TrainResult
from facegan_cli.train.spec import DATA_OPTION, RESUMABLE_LR, TrainPlan, TrainSpec
from facegan_cli.train.streams import normalize_data_config
from facegan_cli.train.trainer import Images, Labels, Stream, TrainContext, Trainer


def cosine_lr(base: float, step: int, total: int) -> float:
    if total <= 0:
        return base
    return base * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


class ClassifierTrainer(Trainer):
    generator_key = "C"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.total_steps = int(config.get("steps") or 0)
        self._sample: torch.Tensor | None = None

    @property
    def z_dim(self) -> int:
        return 0

    def streams(self) -> dict[str, Stream]:
        return {"images": Images(), "labels": Labels(of="images", columns=tuple(self.config["attrs"]))}

    def set_run_length(self, steps: int) -> None:
        self.total_steps = int(steps)

    def build(self, ctx: TrainContext) -> None:
        net = ctx.precision.module(build_classifier(self.config))
        self.modules = {"C": net}
        self.net = net
        self.optimizers = {"C": torch.optim.Adam(net.parameters(), lr=float(self.config["lr"]),
                                                 weight_decay=float(self.config["weight_decay"]))}

    def wrap_networks(self, wrap: Any) -> None:
        self.net = wrap(self.net)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        real, labels = batch["images"], batch["labels"]
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

    def set_sample_inputs(self, batch: dict[str, torch.Tensor]) -> None:
        self._sample = batch["images"][:16].clone()

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        if self._sample is None:
            raise FaceganError("No sample images were handed to the trainer.", "This is a facegan bug.")
        return self._sample.float()

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "value_range": [-1.0, 1.0]}


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


def configure(values: dict[str, Any]) -> TrainPlan:
    """`facegan train attr-classifier` option values -> model configuration (with the held-out split), data."""
    data = values["data"]
    if not (Path(data) / MANIFEST).exists():
        raise FaceganError(
            f"{data} is not a prepared dataset; the classifier trains on one split and is measured on another.",
            "Prepare CelebA first: facegan prepare celeba --src CELEBA --out data/celeba-128-attrs "
            "--recipe celeba-128-attrs.",
        )
    train_split, held_split = protocol_splits(data, values.get("split"), values.get("split_protocol", "stargan"))
    held_split = values.get("eval_split") or held_split
    resolution = values.get("resolution") or min(open_image_set(data, split=train_split).resolution, 128)
    try:
        stage_count(resolution)
    except ValueError as exc:
        raise UsageProblem(f"--resolution {resolution}: {exc}.", "Use 32, 64 or 128.") from None
    open_image_set(data, split=held_split)  # fail now, not after training, when the held-out split is empty
    steps = values.get("steps")
    if steps is None and values.get("epochs") is None:
        steps = int(CLASSIFIER_DEFAULTS["steps"])
    config = {**CLASSIFIER_DEFAULTS, **registry.get_family(CLASSIFIER_FAMILY).config.given(values),
              "attrs": parse_attrs(values.get("attrs")) or list(STARGAN_ATTRS), "resolution": resolution,
              "eval_split": held_split, "steps": steps or 0}
    return TrainPlan(config, {"images": {"path": data, "split": train_split}}, {"steps": steps})


def report(result: TrainResult, device: str) -> dict[str, Any]:
    """The finished classifier's accuracy on the held-out split (also written to RUN/heldout.json)."""
    config = RunDir.open(result.run_dir, lock=False).config()
    data = normalize_data_config(config["data"])["images"]["path"]
    split = config["model"]["eval_split"]
    classifier = load_model(result.run_dir, resolve_device(device), kind="classifier")
    images = open_image_set(data, split=split)
    if images.labels is None:
        raise FaceganError(f"{data} has no labels to measure the classifier against.", "Use a prepared CelebA dataset.")
    pixels, rows = images.load_with_indices()
    heldout = {"split": split, **heldout_accuracy(classifier, pixels, images.labels[rows], list(images.label_names))}
    write_json(result.run_dir / "heldout.json", heldout)
    record_written(result.run_dir, written=[result.run_dir / "heldout.json"])  # --force may replace it with the run
    return {"heldout": heldout, "tables": [{
        "title": f"held-out accuracy ({split}, {heldout['n']} images)",
        "columns": ["attribute", "accuracy", "majority rate", "positives"],
        "rows": [[name, "-" if row["accuracy"] is None else f"{row['accuracy']:.3f}", f"{row['majority_rate']:.3f}",
                  str(row["positives"])] for name, row in heldout["attributes"].items()],
    }]}


TRAINING = TrainSpec(
    summary="Train the attribute classifier that judges attribute edits (StarGAN's evaluation protocol).\n\n"
    "A small CNN (conv 3x3 + conv 4x4/2 stages with BatchNorm and ReLU, the width doubling up to 8x, then "
    "global average pooling, dropout and one logit per attribute; BCE loss, Adam 1e-3 with cosine decay to 0, "
    "random horizontal flips. Trains on a prepared dataset's labels (`facegan prepare celeba`) on the same "
    "split protocol as the editors, and reports accuracy per attribute on the held-out split (next to the "
    "majority-class rate) in --json and in RUN/heldout.json. Ctrl-C saves; --resume continues exactly.",
    example="facegan train attr-classifier --data data/celeba-128-attrs --out runs/attr-clf "
    "--attrs Black_Hair,Blond_Hair,Brown_Hair,Male,Young --json",
    options=(
        DATA_OPTION,
        Opt("attrs", ("--attrs",), str, None, "Comma-separated attributes to classify, any of the dataset's "
            "(default: Black_Hair,Blond_Hair,Brown_Hair,Male,Young)."),
        Opt("split_protocol", ("--split-protocol",), str, "stargan", "stargan (train on all but yunjey's 1999 test "
            "images, report on them) or celeba (official train partition, report on the test partition)."),
        Opt("split", ("--split",), str, None, "Explicit training split instead."),
    ),  # and the options of models.attr_classifier.ClassifierConfig's fields
    configure=configure,
    trainer=ClassifierTrainer,
    loop_defaults={"log_every": 100, "ckpt_every": 1000, "sample_every": 1000, "keep": 2, "mirror": True,
                   "tensorboard": False},
    loop_help={"steps": f"(default: {CLASSIFIER_DEFAULTS['steps']})"},
    resumable=RESUMABLE_LR,
    report=report,
    tiny={"width": 8, "batch": 8, "split_protocol": "celeba", "eval_split": "all"},
)
