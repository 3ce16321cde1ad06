"""`facegan eval translation`: how well a translator (cycle-gan, its variants, pix2pix) translates held-out images.

Per direction the translator has (its declared `directions`; a2b: the A images through G_A, judged against
the real B images; b2a the reverse):

- adversarial accuracy (seed 004, T:709; specs/cyclegan.md 7): the target domain's discriminator on the
  held-out images, without input noise: the share of real target images it calls real and of translations
  it calls fake, and both together (a real call: mean patch score > 0.5 for LSGAN, logit > 0 for vanilla,
  score > 0 for a WGAN critic). Near 0.5 the translations fool it; near 1 they do not. A translator whose D
  is conditional (`conditional_d`, pix2pix) judges (input, translation) and (input, true target) pairs, so
  its real calls need the true targets;
- reconstruction error, for translators that `reconstruct` (cycle models): mean |F(G(x)) - x| over pixels
  and channels, in [-1, 1] units (the cycle loss's L1);
- FID and KID of the translations against the real target-domain images, with the metrics' Inception
  network and protocol, at the translator's size. Test sets are small (100 paintings in the thesis), so
  KID (unbiased, subsets of at most `kid_subset_size`) is the number to read; FID is biased upwards below
  2048 images. Neither looks at which input became which output;
- with true pairs (junyanz-layout data that has truth/, such as `prepare synthetic --style painting`; a
  paired test split, testA/ and testB/ with the same file names, as `prepare pairs` writes; or
  --truth-a/--truth-b): L1 ([-1, 1] units), PSNR (uint8, per image, averaged) and SSIM (pytorch-msssim's
  single-scale SSIM on 0-255, per image, averaged) of the translations to the true translations, next to
  those of the untranslated inputs (what doing nothing scores).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.progress import Progress
from facegan_cli.data.device_data import resize_uint8
from facegan_cli.data.domains import DOMAIN_FOLDERS, open_domain, resolve_domains, truth_folders
from facegan_cli.data.grid import to_uint8
from facegan_cli.data.pairs import paired_names
from facegan_cli.data.sources import DecodedSource, ImageSource
from facegan_cli.metrics import registry
from facegan_cli.metrics.attribute_editing import ArraySource
from facegan_cli.metrics.kid import check_subsets
from facegan_cli.metrics.msssim import ssim
from facegan_cli.metrics.run import Session, Settings
from facegan_cli.metrics.stats import gaussian_stats
from facegan_cli.models.translation import (
    SOURCE_DOMAIN,
    TARGET_DOMAIN,
    Translator,
    check_direction,
    load_translator,
    to_model_input,
)

TAP = registry.POOL3


@dataclass
class Domain:
    """One domain's held-out images at the translator's size, and where they came from."""

    pixels: np.ndarray  # N x S x S x 3 uint8
    source: ImageSource
    rows: np.ndarray  # the source rows they are (rejected files left out)
    truth: np.ndarray | None = None  # the true other-domain image of each, at the same size


def _at(pixels: np.ndarray, side: int) -> np.ndarray:
    if pixels.shape[1] == side:
        return pixels
    t = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2)
    return resize_uint8(t, side).permute(0, 2, 3, 1).contiguous().numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over images of 10 log10(255^2 / MSE) of two N x H x W x 3 uint8 arrays (MSE floored at 1e-10)."""
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(axis=1)
    return float(np.mean(10.0 * np.log10(255.0**2 / np.maximum(mse, 1e-10))))


def mean_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over images of the single-scale SSIM of two N x H x W x 3 uint8 arrays (data range 255)."""
    scores = [ssim(torch.from_numpy(a[i : i + 64]).permute(0, 3, 1, 2).double(),
                   torch.from_numpy(b[i : i + 64]).permute(0, 3, 1, 2).double()) for i in range(0, len(a), 64)]
    return float(torch.cat(scores).mean())


def l1(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |a - b| of two uint8 arrays, in [-1, 1] units (the difference of x / 127.5 - 1)."""
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean() / 127.5)


@dataclass
class TranslationEvaluation:
    settings: Settings
    data_a: Path | None = None
    data_b: Path | None = None
    data: Path | None = None  # junyanz's layout instead of data_a/data_b
    split: str | None = None  # junyanz's layout: test (default); prepared datasets: their split (default all)
    truth_a: Path | None = None  # the true B-domain image of every data_a image (same names or order)
    truth_b: Path | None = None
    directions: tuple[str, ...] | None = None  # None: every direction the translator has
    limit: int | None = None
    batch_size: int = 16
    inception: bool = True  # FID and KID (needs the FID Inception weights)
    kid_subsets: int = 100
    kid_subset_size: int = 100
    kid_seed: int = 2020

    @property
    def _kid_options(self) -> registry.Options:
        return registry.Options(kid_subsets=self.kid_subsets, kid_subset_size=self.kid_subset_size,
                                kid_seed=self.kid_seed)

    def run(self, ckpt: Path) -> dict[str, Any]:
        for direction in self.directions or ():
            check_direction(direction)
        if self.limit is not None and self.limit < 2:
            raise UsageProblem(f"--limit {self.limit} must be at least 2.", "Leave it out to use every image.")
        if self.batch_size < 1:
            raise UsageProblem(f"--batch-size {self.batch_size} must be at least 1.", "Use e.g. --batch-size 16.")
        if self.inception:
            check_subsets(self.kid_subsets, self.kid_subset_size, prefix="--kid-")
        started = time.perf_counter()
        session = Session(self.settings)
        translator = load_translator(ckpt, session.device)
        directions = tuple(translator.check_direction(d) for d in self.directions or translator.directions)
        split = self.split or ("test" if self.data is not None else None)
        where = resolve_domains(self.data, self.data_a, self.data_b, split)
        truth = self._paired_truth(where) if self.data is not None else {}
        # aligned pairs: each domain's truth is the other half of the same images
        truth_half = {name: where["B" if name == "A" else "A"].get("half") for name in truth}
        truth.update(truth_folders(self.data, split or "test") if self.data is not None else {})
        for domain, given in (("A", self.truth_a), ("B", self.truth_b)):
            if given is not None:
                truth[domain] = given
        side = translator.resolution
        domains = {name: self._load(cfg["path"], cfg["split"], side, truth.get(name), session, cfg.get("half"),
                                    truth_half.get(name)) for name, cfg in where.items()}
        results = {d: self._direction(session, translator, d, domains) for d in directions}
        doc: dict[str, Any] = {
            "metric": "translation", "checkpoint": str(translator.path), "family": translator.family,
            "step": translator.step, "resolution": side, "split": split,
            "data": {name: {**dom.source.describe(), "n": int(len(dom.pixels)),
                            "truth": str(truth[name]) if dom.truth is not None else None}
                     for name, dom in domains.items()},
            "directions": results,
            "definitions": {
                "adversarial_accuracy": "share of correct calls of the target domain's D on the held-out real target "
                "images (called real) and the translations (called fake), no input noise",
                "reconstruction_l1": "mean |F(G(x)) - x| in [-1, 1] units (cycle models; None for one-way ones)",
                "pairs": "L1 ([-1, 1] units), PSNR (dB, uint8, mean over images) and SSIM (single-scale, mean over "
                "images) to the true translations; input_*: the same for the untranslated inputs",
            },
        }
        if self.inception:
            doc["protocol"] = session.protocol.name
            doc["kid"] = {"subsets": self.kid_subsets, "subset_size": self.kid_subset_size, "seed": self.kid_seed}
        return session.finish(doc, started)

    @staticmethod
    def _paired_truth(where: dict[str, dict[str, str]]) -> dict[str, Path]:
        """A paired test split (testA/ and testB/ with the same file names, `prepare pairs`' layout; or the
        halves of junyanz's aligned images): each domain's images are the true translations of the other's."""
        a, b = where["A"]["path"], where["B"]["path"]
        if where["A"].get("half"):
            return {"A": Path(b), "B": Path(a)}
        if Path(a).name not in {name for names in DOMAIN_FOLDERS.values() for name in names}:
            return {}
        return {"A": Path(b), "B": Path(a)} if paired_names(a, b) else {}

    def _load(self, path: str, split: str, side: int, truth: Path | None, session: Session, half: str | None = None,
              truth_half: str | None = None) -> Domain:
        source = open_domain(path, split, side, session.workers, self.settings.strict, half)
        n = len(source) if self.limit is None else min(self.limit, len(source))
        pixels, rows = source.load_with_indices(np.arange(n))
        source.used = len(rows)  # this random-access read is the evaluation's one pass (describe() reports it)
        if len(pixels) < 2:
            raise FaceganError(f"{path} gives {len(pixels)} usable image(s); the evaluation needs at least 2.",
                               "Evaluate on a larger test set.")
        domain = Domain(_at(pixels, side), source, rows)
        if truth is not None:
            domain.truth = self._truth(source, rows, truth, side, session, truth_half)
        return domain

    def _truth(self, source: ImageSource, rows: np.ndarray, path: Path, side: int, session: Session,
               half: str | None = None) -> np.ndarray:
        truth = open_domain(path, None, side, session.workers, strict=True, half=half)
        # Every true translation is needed whether or not --strict was given: say so, not "--strict stops".
        truth.strict_why = ("every input's true translation is needed to score it",
                            f"Fix or replace that file in {path}, or evaluate on data without true translations.")
        if len(truth) != len(source) or (
            isinstance(truth, DecodedSource) and isinstance(source, DecodedSource)
            and [Path(e).name for e in truth.entries] != [Path(e).name for e in source.entries]
        ):
            raise FaceganError(
                f"The true translations in {path} ({len(truth)} images) do not pair up with the {len(source)} images of "
                f"{source.label} (one per image, with the same file names).",
                "Give the folder of true translations of exactly these images, or leave it out.",
            )
        pixels, _ = truth.load_with_indices(rows)
        return _at(pixels, side)

    def _direction(self, session: Session, translator: Translator, direction: str, domains: dict[str, Domain]
                   ) -> dict[str, Any]:
        src, tgt = domains[SOURCE_DOMAIN[direction]], domains[TARGET_DOMAIN[direction]]
        target = TARGET_DOMAIN[direction]
        # Whole packs per batch, so a packed D sees the same groups whatever the batch size.
        step = max(translator.pack, self.batch_size - self.batch_size % translator.pack)
        fakes, fake_calls, rec_sum, rec_count = [], [], 0.0, 0
        with Progress(len(src.pixels), f"translate {direction}", unit="img") as bar:
            for start in range(0, len(src.pixels), step):
                x = to_model_input(src.pixels[start : start + step], translator.device)
                with torch.no_grad():
                    fake = translator.translate(x, direction)
                    fake_calls.append(translator.judged_real(fake, target, x).cpu())
                    if translator.reconstructs:
                        rec_sum += float((translator.reconstruct(fake, direction) - x).abs().sum())
                        rec_count += x.numel()
                fakes.append(to_uint8(fake, translator.value_range))
                bar.advance(len(x))
        translated = np.concatenate(fakes)
        real_calls = self._real_calls(translator, src, tgt, target, step)
        fake_judged = torch.cat(fake_calls)
        out: dict[str, Any] = {
            "from": SOURCE_DOMAIN[direction], "to": target, "n_translated": int(len(translated)),
            "n_real": int(len(real_calls)),
            "real_judged_real": float(real_calls.float().mean()) if len(real_calls) else None,
            "fake_judged_fake": float((~fake_judged).float().mean()) if len(fake_judged) else None,
            "adversarial_accuracy": None,
            "reconstruction_l1": rec_sum / rec_count if translator.reconstructs else None,
        }
        if len(real_calls) and len(fake_judged):
            out["adversarial_accuracy"] = float((real_calls.sum() + (~fake_judged).sum()) /
                                                (len(real_calls) + len(fake_judged)))
        if translator.pack > 1:
            out["note_pack"] = f"D judges packs of {translator.pack}: accuracies count packs (a remainder is left out)"
        if self.inception:
            out.update(self._distances(session, translated, tgt.pixels, direction))
        out["pairs"] = None
        if src.truth is not None:
            out["pairs"] = {"n": int(len(translated)), "l1": l1(translated, src.truth), "psnr": psnr(translated, src.truth),
                            "ssim": mean_ssim(translated, src.truth), "input_l1": l1(src.pixels, src.truth),
                            "input_psnr": psnr(src.pixels, src.truth), "input_ssim": mean_ssim(src.pixels, src.truth)}
        return out

    @staticmethod
    def _real_calls(translator: Translator, src: Domain, tgt: Domain, target: str, step: int) -> torch.Tensor:
        """The target domain's D on real target images: alone, or (a conditional D) with the inputs they are the
        true translations of (none without true pairs)."""
        def judged(images: np.ndarray, given: np.ndarray | None) -> torch.Tensor:
            calls = [translator.judged_real(
                to_model_input(images[i : i + step], translator.device), target,
                None if given is None else to_model_input(given[i : i + step], translator.device)).cpu()
                for i in range(0, len(images), step)]
            return torch.cat(calls) if calls else torch.zeros(0, dtype=torch.bool)

        if not translator.conditional_d:
            return judged(tgt.pixels, None)
        return judged(src.truth, src.pixels) if src.truth is not None else torch.zeros(0, dtype=torch.bool)

    def _distances(self, session: Session, translated: np.ndarray, real: np.ndarray, direction: str) -> dict[str, Any]:
        fake_f = session.features(ArraySource(translated, f"translations {direction}"), [TAP]).taps[TAP]
        real_f = session.features(ArraySource(real, f"real {TARGET_DOMAIN[direction]}"), [TAP]).taps[TAP]
        s1, s2 = gaussian_stats(fake_f, session.device), gaussian_stats(real_f, session.device)
        fid = registry.fid_value(s1, s2, "eig", session.device)
        mean, std, m = registry.kid_values(fake_f, real_f, self._kid_options, session.device)
        found: dict[str, Any] = {"fid": fid if math.isfinite(fid) else None, "kid_mean": mean, "kid_std": std,
                                 "kid_subset_size": m}
        if min(len(fake_f), len(real_f)) < int(TAP):
            found["note"] = f"fewer samples than the {TAP} feature dimensions: FID biased upwards; read KID"
        return found
