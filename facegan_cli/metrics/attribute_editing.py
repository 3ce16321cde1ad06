"""Seed 000's Table 1 and StarGAN's own measures for attribute editors (`facegan eval attributes`).

For every editing checkpoint and every target:

- the test images are translated to the target (`create_labels` of yunjey's test: a hair colour is set
  and the other hair colours cleared, any other attribute flipped; or an explicit NAME=0|1 / NAME=flip),
  starting from their ground-truth labels, with per-image instance statistics as yunjey's test();
- FID and KID (the metrics' own code, protocol and Inception file) between the translated images and the
  real test images that have the target attribute value (NAME=v: the real images with NAME = v; a flip
  produces both values, so its reference is the whole real test set);
- with a classifier (`facegan train attr-classifier`), the edit success rate: the fraction of translated
  images the classifier reads with the target value of the edited attribute; next to it the same rate for
  the untouched inputs (what doing nothing scores: the baseline an edit must beat);
- preservation: the mean absolute pixel difference (0..1 units, all channels) between input and output
  outside the central face square (side `face_fraction` x the image side, centred), and inside it.

Both the translated and the real images pass through the same uint8 quantisation at the editor's
resolution, so FID compares like with like.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.progress import Progress
from facegan_cli.data.device_data import resize_uint8
from facegan_cli.data.grid import to_uint8
from facegan_cli.data.sources import Batch, ImageSource, open_image_set
from facegan_cli.metrics import registry
from facegan_cli.metrics.kid import check_subsets
from facegan_cli.metrics.run import Session, Settings
from facegan_cli.metrics.stats import gaussian_stats
from facegan_cli.models.attr_classifier import LoadedClassifier, load_classifier
from facegan_cli.models.editing import AttributeEditor, load_editor
from facegan_cli.models.stargan import HAIR_COLOURS, apply_edits

DEFAULT_FACE_FRACTION = 0.625
TAP = registry.POOL3


class ArraySource(ImageSource):
    """In-memory uint8 N x H x W x 3 images (translated outputs): no fingerprint, so never cached."""

    kind = "array"

    def __init__(self, pixels: np.ndarray, label: str) -> None:
        super().__init__(label)
        self.pixels = pixels

    def __len__(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def resolution(self) -> int:
        return int(self.pixels.shape[1])

    def batches(self, batch_size: int, native: bool = True, description: str = "images") -> Iterator[Batch]:
        self.used = 0
        for start in range(0, len(self), batch_size):
            chunk = self.pixels[start : start + batch_size]
            self.used += len(chunk)
            yield chunk


@dataclass(frozen=True)
class Target:
    """One column of the table: attribute `name` set to `value` (0/1) or flipped (`value` None)."""

    name: str
    value: int | None

    @property
    def key(self) -> str:
        return f"{self.name}={'flip' if self.value is None else self.value}"

    def labels(self, c_org: torch.Tensor, attrs: Sequence[str]) -> torch.Tensor:
        if self.value is None:
            return apply_edits(c_org, attrs, {}, [self.name])
        return apply_edits(c_org, attrs, {self.name: self.value}, [])


def default_targets(attrs: Sequence[str]) -> list[Target]:
    """yunjey's create_labels, one target per attribute: hair colours set to 1, the others flipped."""
    return [Target(a, 1) if a in HAIR_COLOURS else Target(a, None) for a in attrs]


def parse_targets(text: str) -> list[Target]:
    """'Black_Hair,Male=flip,Young=0' -> targets; a bare name means its create_labels target."""
    out: list[Target] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, value = (s.strip() for s in part.partition("="))
        if not sep:
            out.extend(default_targets([name]))
        elif value in ("0", "1"):
            out.append(Target(name, int(value)))
        elif value == "flip":
            out.append(Target(name, None))
        else:
            raise FaceganError(f"--targets item {part!r} is not NAME, NAME=0, NAME=1 or NAME=flip.",
                               "Write e.g. --targets Black_Hair,Blond_Hair,Brown_Hair,Male=flip,Young=0.")
    if not out:
        raise FaceganError("--targets is empty.", "Write e.g. --targets Black_Hair,Male=flip.")
    return list(dict.fromkeys(out))


def face_region_mask(resolution: int, fraction: float = DEFAULT_FACE_FRACTION) -> torch.Tensor:
    """H x W bool, True on the centred square of side round(fraction * resolution)."""
    if not 0.0 <= fraction < 1.0:
        raise UsageProblem(f"--face-fraction {fraction} must be in [0, 1).", "Use e.g. 0.625.")
    side = int(round(fraction * resolution))
    start = (resolution - side) // 2
    mask = torch.zeros(resolution, resolution, dtype=torch.bool)
    mask[start : start + side, start : start + side] = True
    return mask


def masked_l1(inputs: np.ndarray | torch.Tensor, outputs: np.ndarray | torch.Tensor, region: torch.Tensor) -> float:
    """Mean |input - output| over the pixels where `region` (H x W) is True and all channels, in 0..1 units,
    for N x H x W x 3 uint8 arrays."""
    a = torch.as_tensor(np.asarray(inputs)).float() / 255.0
    b = torch.as_tensor(np.asarray(outputs)).float() / 255.0
    if a.shape != b.shape or a.dim() != 4 or a.shape[1:3] != region.shape:
        raise ValueError(f"shapes {tuple(a.shape)}, {tuple(b.shape)} and region {tuple(region.shape)} do not fit")
    if not bool(region.any()):
        return float("nan")
    diff = (a - b).abs()[:, region]  # N x pixels x 3
    return float(diff.mean())


def success_rate(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of images whose predicted 0/1 value of the edited attribute equals the target value."""
    if predicted.shape != target.shape or predicted.numel() == 0:
        raise ValueError(f"{tuple(predicted.shape)} predictions for {tuple(target.shape)} targets")
    return float((predicted.float() == target.float()).float().mean())


@dataclass
class TestSet:
    pixels: np.ndarray  # N x H x W x 3 uint8 at the data's resolution
    labels: np.ndarray  # N x A 0/1
    label_names: list[str]
    split: str
    path: Path
    _resized: dict[int, np.ndarray] = field(default_factory=dict)

    def at(self, resolution: int) -> np.ndarray:
        if self.pixels.shape[1] == resolution:
            return self.pixels
        if resolution not in self._resized:
            t = torch.from_numpy(np.ascontiguousarray(self.pixels)).permute(0, 3, 1, 2)
            self._resized[resolution] = resize_uint8(t, resolution).permute(0, 2, 3, 1).contiguous().numpy()
        return self._resized[resolution]

    def columns(self, attrs: Sequence[str], what: str) -> list[int]:
        missing = [a for a in attrs if a not in self.label_names]
        if missing:
            raise FaceganError(
                f"The test data {self.path} has no label column {', '.join(missing)}, which {what} uses.",
                "Evaluate on the dataset the model was trained on (prepared with these attributes).",
            )
        return [self.label_names.index(a) for a in attrs]


def load_test_set(data: Path, split: str, limit: int | None) -> TestSet:
    images = open_image_set(data, split=split)
    if images.labels is None:
        raise FaceganError(f"{data} has no attribute labels.", "Evaluate on a prepared CelebA dataset (with attributes).")
    n = len(images) if limit is None else min(limit, len(images))
    if n < 2:
        raise FaceganError(f"Split {split!r} of {data} has {n} image(s); FID and KID need at least 2.",
                           "Use a larger split (--split test or stargan-test).")
    pixels, rows = images.load_with_indices(np.arange(n))
    return TestSet(pixels, np.asarray(images.labels[rows], dtype=np.int64), list(images.label_names), split, data)


def _warn_once(session: Session, message: str) -> None:
    if message not in session.warnings:
        session.warn(message)


def _translate(editor: AttributeEditor, pixels: np.ndarray, targets: torch.Tensor, batch_size: int,
               description: str) -> np.ndarray:
    parts = []
    with Progress(len(pixels), description, unit="img") as bar:
        for start in range(0, len(pixels), batch_size):
            x = editor.to_tensor(pixels[start : start + batch_size])
            parts.append(to_uint8(editor.translate(x, targets[start : start + batch_size]), (-1.0, 1.0)))
            bar.advance(len(x))
    return np.concatenate(parts)


def _predict(classifier: LoadedClassifier, pixels: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return classifier.predict(x).cpu()


@dataclass
class AttributeEvaluation:
    settings: Settings
    data: Path
    split: str = "test"
    targets: list[Target] | None = None  # None: each checkpoint's create_labels targets
    classifier: Path | None = None
    face_fraction: float = DEFAULT_FACE_FRACTION
    limit: int | None = None
    batch_size: int = 16
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    kid_seed: int = 2020

    def run(self, ckpts: Sequence[Path], names: Sequence[str] | None = None) -> dict[str, Any]:
        if self.limit is not None and self.limit < 2:
            raise UsageProblem(f"--limit {self.limit} must be at least 2.", "Leave it out to use the whole split.")
        if not ckpts:
            raise FaceganError("No --ckpt given.", "Pass one --ckpt per model to compare (repeat the option).")
        if names and len(names) != len(ckpts):
            raise FaceganError(f"{len(names)} --name for {len(ckpts)} --ckpt.", "Give one --name per --ckpt, or none.")
        if self.batch_size < 1:
            raise UsageProblem(f"--batch-size {self.batch_size} must be at least 1.", "Use e.g. --batch-size 16.")
        check_subsets(self.kid_subsets, self.kid_subset_size, prefix="--kid-")  # before any work, as named here
        started = time.perf_counter()
        session = Session(self.settings)
        test = load_test_set(self.data, self.split, self.limit)
        clf = load_classifier(self.classifier, session.device) if self.classifier is not None else None
        real_features: dict[int, np.ndarray] = {}
        rows, all_keys = [], []
        for i, ckpt in enumerate(ckpts):
            editor = load_editor(ckpt, session.device)
            label = names[i] if names else f"{editor.family} ({editor.path.parent.parent.name or editor.path.name})"
            row = self._row(session, editor, test, clf, real_features, label)
            rows.append(row)
            all_keys += [k for k in row["cells"] if k not in all_keys]
        doc: dict[str, Any] = {
            "metric": "attributes", "protocol": session.protocol.name, "data": str(self.data), "split": self.split,
            "n_test": int(len(test.pixels)), "targets": all_keys, "dims": int(TAP),
            "kid": {"subsets": self.kid_subsets, "subset_size": self.kid_subset_size, "seed": self.kid_seed},
            "face_region": {"fraction": self.face_fraction,
                            "definition": "centred square of side round(fraction x image side); L1 in 0..1 pixel "
                            "units over all channels, outside (l1_outside) and inside (l1_inside) it"},
            "reference": "real test images with the target value (NAME=v); the whole real test set for NAME=flip",
            "classifier": None if clf is None else {"path": str(clf.path), "step": clf.step, "attrs": clf.attrs,
                                                     "resolution": clf.resolution},
            "rows": rows,
        }
        return session.finish(doc, started)

    def _row(self, session: Session, editor: AttributeEditor, test: TestSet, clf: LoadedClassifier | None,
             real_features: dict[int, np.ndarray], label: str) -> dict[str, Any]:
        res = editor.resolution
        pixels = test.at(res)
        c_org = torch.from_numpy(test.labels[:, test.columns(editor.attrs, str(editor.path))]).float()
        if res not in real_features:
            real_features[res] = session.features(ArraySource(pixels, f"{test.path} [{test.split}] at {res}"),
                                                  [TAP]).taps[TAP]
        region = face_region_mask(res, self.face_fraction)
        input_pred = _predict(clf, pixels) if clf is not None else None
        cells: dict[str, Any] = {}
        for target in self.targets or default_targets(editor.attrs):
            if target.name not in editor.attrs:
                _warn_once(session, f"{editor.path} was not trained on {target.name}: its {target.key} cell is empty")
                cells[target.key] = None
                continue
            c_trg = target.labels(c_org, editor.attrs)
            wanted = c_trg[:, editor.attrs.index(target.name)]
            fakes = _translate(editor, pixels, c_trg, self.batch_size, f"{label}: {target.key}")
            cells[target.key] = self._cell(session, test, target, fakes, pixels, real_features[res], region, clf,
                                           input_pred, wanted)
        return {"name": label, "checkpoint": str(editor.path), "family": editor.family, "step": editor.step,
                "attrs": editor.attrs, "resolution": res, "cells": cells}

    def _cell(self, session: Session, test: TestSet, target: Target, fakes: np.ndarray, inputs: np.ndarray,
              real: np.ndarray, region: torch.Tensor, clf: LoadedClassifier | None, input_pred: torch.Tensor | None,
              wanted: torch.Tensor) -> dict[str, Any]:
        col = test.label_names.index(target.name)
        reference = np.ones(len(real), dtype=bool) if target.value is None else test.labels[:, col] == target.value
        cell: dict[str, Any] = {"n_translated": int(len(fakes)), "n_reference": int(reference.sum()),
                                "fid": None, "kid_mean": None, "kid_std": None, "kid_subset_size": None}
        if reference.sum() >= 2:
            ref = real[reference]
            fake_features = session.features(ArraySource(fakes, target.key), [TAP]).taps[TAP]
            s1, s2 = gaussian_stats(fake_features, session.device), gaussian_stats(ref, session.device)
            cell["fid"] = registry.fid_value(s1, s2, "eig", session.device)
            options = registry.Options(kid_subsets=self.kid_subsets, kid_subset_size=self.kid_subset_size,
                                       kid_seed=self.kid_seed)
            mean, std, m = registry.kid_values(fake_features, ref, options, session.device)
            cell.update(kid_mean=mean, kid_std=std, kid_subset_size=m)
            if min(len(fakes), len(ref)) < int(TAP):
                cell["note"] = f"fewer samples than the {TAP} feature dimensions: FID biased upwards"
        else:
            _warn_once(session, f"{target.key}: {int(reference.sum())} real test image(s) have it; FID and KID need 2")
        outside = ~region
        cell["l1_outside"] = masked_l1(inputs, fakes, outside)
        cell["l1_inside"] = masked_l1(inputs, fakes, region)
        cell["success_rate"] = cell["unedited_success_rate"] = None
        if clf is not None and input_pred is not None:
            if target.name in clf.attrs:
                k = clf.attrs.index(target.name)
                cell["success_rate"] = success_rate(_predict(clf, fakes)[:, k], wanted)
                cell["unedited_success_rate"] = success_rate(input_pred[:, k], wanted)
            else:
                _warn_once(session, f"the classifier does not know {target.name}: no success rate for {target.key}")
        return cell


def edit_success_rates(
    editor: AttributeEditor, classifier: LoadedClassifier, test: TestSet, targets: Sequence[Target] | None = None,
    batch_size: int = 16,
) -> dict[str, dict[str, float]]:
    """{target key: {"success_rate", "unedited_success_rate"}}: the classifier's part of the table alone (no
    Inception network), for every target the classifier knows."""
    pixels = test.at(editor.resolution)
    c_org = torch.from_numpy(test.labels[:, test.columns(editor.attrs, str(editor.path))]).float()
    before = _predict(classifier, pixels)
    out = {}
    for target in targets or default_targets(editor.attrs):
        if target.name not in classifier.attrs or target.name not in editor.attrs:
            continue
        c_trg = target.labels(c_org, editor.attrs)
        wanted = c_trg[:, editor.attrs.index(target.name)]
        k = classifier.attrs.index(target.name)
        after = _predict(classifier, _translate(editor, pixels, c_trg, batch_size, target.key))
        out[target.key] = {"success_rate": success_rate(after[:, k], wanted),
                           "unedited_success_rate": success_rate(before[:, k], wanted)}
    return out
