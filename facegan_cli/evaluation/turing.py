"""Seed 001's visual Turing test: a shuffled, numbered sheet of real and fake faces, and its scoring.

`make_sheet` draws n real and n fake images, shuffles them and writes, into the folder a rater gets,
the numbered images (001.png ...), a contact sheet with the numbers (sheet.png) and an answer template
(answers.txt). The answer key goes to a separate file (default: OUT.key.json beside the folder), never
into the folder itself. `score` compares raters' answer files with the key: accuracy, and the
false-positive rate of seed 001 (the share of fakes called real).

Answer file format: one line per image, "NUMBER ANSWER", where NUMBER is the image number (007, 7 or
007.png) and ANSWER is real, fake, r or f (any case); blank lines and lines starting with # are ignored.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facegan_cli import __version__
from facegan_cli.core.atomic import write_json, write_text
from facegan_cli.core.device import resolve_device
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.files import read_regular_text
from facegan_cli.core.outputs import check_new_file, check_new_folder, make_out_dir, new_file, staged_folder
from facegan_cli.core.seeding import draw_latents
from facegan_cli.data.figure import labelled_grid
from facegan_cli.data.grid import save_png
from facegan_cli.data.image_pool import open_real_images, square_resize
from facegan_cli.models.loading import load_generator

KEY_FORMAT = "facegan-turing-key"
SHEET_NAME = "sheet.png"
ANSWERS_NAME = "answers.txt"
_ANSWER_WORDS = {"real": "real", "r": "real", "fake": "fake", "f": "fake"}
_NUMBER = re.compile(r"^#?(\d+)(?:\.[A-Za-z]+)?$")
# The ownership marker's kind: --force replaces only a sheet folder facegan wrote (core.outputs).
SHEET_KIND = "turing-sheet"


@dataclass
class CandidateImages:
    """Candidate images of one kind: `names[i]` is the source the key records for row i.

    `load(rows)` returns (images, the rows they are); a reader may leave out unusable files.
    """

    names: list[str]
    load: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], option: str, size: int | None = None) -> CandidateImages:
        images = open_real_images(path, size, option)
        return cls(names=list(images.names), load=images.load)

    @classmethod
    def from_array(cls, pixels: np.ndarray, names: Sequence[str]) -> CandidateImages:
        return cls(names=list(names), load=lambda rows: (pixels[rows], rows))


@dataclass
class Sheet:
    folder: Path
    key: Path
    contact_sheet: Path
    answers_template: Path
    images: list[Path]
    labels: list[str]  # labels[i] is the truth for images[i]

    def document(self) -> dict[str, Any]:
        """What `facegan eval turing --json` prints."""
        return {
            "sheet": self.folder, "key": self.key, "contact_sheet": self.contact_sheet,
            "answers_template": self.answers_template, "images": len(self.images),
            "n_real": self.labels.count("real"), "n_fake": self.labels.count("fake"),
        }


def default_key_path(out: str | os.PathLike[str]) -> Path:
    """OUT.key.json beside the sheet folder, so handing the folder to a rater does not hand over the key."""
    out = Path(out)
    return out.parent / f"{out.name}.key.json"


def _template(count: int, width: int) -> str:
    lines = [
        "# facegan visual Turing test: your answers.",
        "# Half of the numbered images are photos of real people and half were made by a generator.",
        "# After each number write real or fake (r or f is enough), e.g. '007 fake', then return this file.",
        "# Lines starting with # are ignored.",
    ]
    lines += [f"{i:0{width}d}" for i in range(1, count + 1)]
    return "\n".join(lines) + "\n"


def _pick(pool: CandidateImages, n: int, rng: np.random.Generator, option: str) -> list[tuple[int, np.ndarray]]:
    """n random usable images of a pool as (row, pixels), in the order the seeded permutation gives."""
    order = rng.permutation(len(pool.names))
    picked: list[tuple[int, np.ndarray]] = []
    start = 0
    # Read only as many as needed (a folder may hold all of CelebA); top up when files were unusable.
    while len(picked) < n and start < len(order):
        rows = order[start : start + n - len(picked)]
        start += len(rows)
        pixels, kept = pool.load(rows)
        picked += [(int(row), image) for row, image in zip(kept, pixels)]
    if len(picked) < n:
        raise FaceganError(
            f"{option} offers {len(picked)} usable images but the sheet needs {n} of each kind.",
            f"Use --n {len(picked)} or less, or add images.",
        )
    return picked


def make_sheet(
    real: str | os.PathLike[str] | CandidateImages,
    fake: str | os.PathLike[str] | CandidateImages,
    n: int,
    out: str | os.PathLike[str],
    seed: int = 0,
    key: str | os.PathLike[str] | None = None,
    size: int | None = None,
    force: bool = False,
) -> Sheet:
    """Write a shuffled sheet of n real and n fake images to folder `out` and its answer key to `key`.

    `size` fits every image to size x size (centre crop when not square); without it all chosen
    images must already share one size, since raters could otherwise tell real from fake by size.
    """
    if n < 1:
        raise UsageProblem(f"--n {n} must be at least 1.", "Use e.g. --n 50 (seed 001's sheet).")
    out = Path(out)
    key_path = Path(key) if key is not None else default_key_path(out)
    if key_path.resolve().is_relative_to(out.resolve()):
        raise FaceganError(
            f"--key {key_path} lies inside the sheet folder {out}, which is what raters are given.",
            f"Put the key elsewhere, e.g. --key {default_key_path(out)}.",
        )
    check_new_file(key_path, force, "--key")
    check_new_folder(out, force, SHEET_KIND)
    make_out_dir(out.parent)
    make_out_dir(key_path.parent, "--key")
    real_pool = real if isinstance(real, CandidateImages) else CandidateImages.from_path(real, "--real", size)
    fake_pool = fake if isinstance(fake, CandidateImages) else CandidateImages.from_path(fake, "--fake", size)

    rng = np.random.default_rng(seed)
    chosen = [("real", real_pool.names[row], image) for row, image in _pick(real_pool, n, rng, "--real")]
    chosen += [("fake", fake_pool.names[row], image) for row, image in _pick(fake_pool, n, rng, "--fake")]
    order = [chosen[int(j)] for j in rng.permutation(len(chosen))]

    pixels = [image for _, _, image in order]
    if size:
        pixels = [square_resize(p, size) for p in pixels]
    shapes = {p.shape for p in pixels}
    if len(shapes) > 1:
        listed = ", ".join(f"{s[1]}x{s[0]}" for s in sorted(shapes))
        raise FaceganError(
            f"The chosen images differ in size ({listed}); raters could tell real from fake by size alone.",
            "Pass --size N to bring every image to N x N (e.g. the generator's resolution).",
        )

    width = max(3, len(str(len(order))))
    names = [f"{i:0{width}d}" for i in range(1, len(order) + 1)]
    with staged_folder(out, force, SHEET_KIND) as staging:
        for name, image in zip(names, pixels):
            save_png(image, staging / f"{name}.png")
        ncol = math.ceil(math.sqrt(len(order)))
        rows = [np.stack(pixels[r : r + ncol]) for r in range(0, len(order), ncol)]
        captions = [names[r : r + ncol] for r in range(0, len(order), ncol)]
        save_png(labelled_grid(rows, captions=captions, min_cell=64), staging / SHEET_NAME)
        write_text(staging / ANSWERS_NAME, _template(len(order), width))
        with new_file(key_path, force, "turing-key", "--key") as tmp:
            write_json(
                tmp,
                {
                    "format": KEY_FORMAT,
                    "facegan_version": __version__,
                    "seed": seed,
                    "n_real": n,
                    "n_fake": n,
                    "sheet": str(out.absolute()),
                    "items": {
                        name: {"label": label, "source": source} for name, (label, source, _) in zip(names, order)
                    },
                },
            )
    return Sheet(
        folder=out,
        key=key_path,
        contact_sheet=out / SHEET_NAME,
        answers_template=out / ANSWERS_NAME,
        images=[out / f"{name}.png" for name in names],
        labels=[label for label, _, _ in order],
    )


def generated_pool(
    ckpt: str | os.PathLike[str], n: int, seed: int = 0, device: str = "auto", batch_size: int = 64
) -> CandidateImages:
    """n images of a generator checkpoint (latents seeded by `seed`), named checkpoint#seed=S:i."""
    generator = load_generator(ckpt, resolve_device(device))
    pixels = generator.pixels(draw_latents(n, generator.z_dim, seed), batch_size, "generating fakes")
    return CandidateImages.from_array(pixels, [f"{generator.path.absolute()}#seed={seed}:{i}" for i in range(n)])


def turing_sheet(
    real: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    fake: str | os.PathLike[str] | None = None,
    fake_ckpt: str | os.PathLike[str] | None = None,
    n: int = 50,
    seed: int = 0,
    key: str | os.PathLike[str] | None = None,
    size: int | None = None,
    batch_size: int = 64,
    device: str = "auto",
    force: bool = False,
) -> Sheet:
    """`facegan eval turing`: a sheet of n real images and n fakes, from a folder (`fake`) or generated by a
    checkpoint (`fake_ckpt`, seeded by `seed`)."""
    if fake is None and fake_ckpt is None:
        raise FaceganError(
            "No fake images: neither --fake nor --fake-ckpt was given.",
            "Pass a folder of generated images with --fake, or a checkpoint with --fake-ckpt.",
        )
    if fake is not None and fake_ckpt is not None:
        raise FaceganError(
            "Both --fake and --fake-ckpt were given; the fakes must come from one of them.",
            "Drop one of the two options.",
        )
    fakes = generated_pool(fake_ckpt, n, seed, device, batch_size) if fake_ckpt is not None else fake
    return make_sheet(real, fakes, n, out, seed=seed, key=key, size=size, force=force)


def read_key(path: str | os.PathLike[str]) -> dict[int, str]:
    """Image number -> "real" or "fake" from a key written by `make_sheet`."""
    path = Path(path)
    try:
        payload = json.loads(read_regular_text(path, "Answer key"))
    except FileNotFoundError as exc:
        raise FaceganError(
            f"Answer key {path} does not exist.", "Pass the key.json `facegan eval turing` wrote."
        ) from exc
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FaceganError(
            f"Answer key {path} is not readable JSON ({exc}).",
            "Pass the key.json `facegan eval turing` wrote.",
        ) from exc
    items = payload.get("items") if isinstance(payload, dict) else None
    if not isinstance(payload, dict) or payload.get("format") != KEY_FORMAT or not isinstance(items, dict):
        raise FaceganError(
            f"{path} is not a facegan Turing-test answer key.",
            "Pass the key.json `facegan eval turing` wrote.",
        )
    try:
        truth = {int(number): str(item["label"]) for number, item in items.items()}
    except (KeyError, TypeError, ValueError):
        truth = {}
    if not truth or set(truth.values()) - {"real", "fake"}:
        raise FaceganError(
            f"Answer key {path} is damaged (its items are not numbered real/fake labels).",
            "Re-create the sheet with `facegan eval turing`.",
        )
    return truth


def read_answers(path: str | os.PathLike[str], numbers: set[int]) -> dict[int, str]:
    """Image number -> "real"/"fake" from a rater's file; every number in `numbers` exactly once."""
    path = Path(path)
    try:
        text = read_regular_text(path, "Answers file")
    except (OSError, UnicodeDecodeError) as exc:
        raise FaceganError(
            f"Answers file {path} cannot be read ({exc}).", "Pass the rater's answers.txt."
        ) from exc
    fix = "Write one line per image like '007 real' or '007 f'."
    answers: dict[int, str] = {}
    first_line: dict[int, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p for p in re.split(r"[\s,:;=]+", line) if p]
        match = _NUMBER.match(parts[0])
        if match is None:
            raise FaceganError(f"{path}, line {lineno}: {parts[0]!r} is not an image number.", fix)
        number = int(match.group(1))
        if number not in numbers:
            raise FaceganError(
                f"{path}, line {lineno}: image {parts[0]} is not on the sheet (it has {min(numbers)}..{max(numbers)}).",
                fix,
            )
        if len(parts) < 2:
            raise FaceganError(f"{path}, line {lineno}: image {parts[0]} has no answer.", fix)
        if len(parts) > 2 or parts[1].lower() not in _ANSWER_WORDS:
            raise FaceganError(
                f"{path}, line {lineno}: {' '.join(parts[1:])!r} is not an answer (real, fake, r or f).", fix
            )
        if number in answers:
            raise FaceganError(
                f"{path}, line {lineno}: image {parts[0]} is answered twice (first on line {first_line[number]}).",
                fix,
            )
        answers[number] = _ANSWER_WORDS[parts[1].lower()]
        first_line[number] = lineno
    missing = sorted(numbers - answers.keys())
    if missing:
        shown = ", ".join(str(m) for m in missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        raise FaceganError(f"{path}: no answer for image(s) {shown}.", fix)
    return answers


@dataclass
class RaterScore:
    rater: str
    n: int
    correct: int
    accuracy: float
    false_positive_rate: float  # share of fakes called real (seed 001's FPR)
    fakes: int
    fakes_called_real: int
    reals: int
    reals_called_fake: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tally(rater: str, pairs: list[tuple[str, str]]) -> RaterScore:
    """pairs: (truth, answer) for every image a rater judged."""
    correct = sum(truth == answer for truth, answer in pairs)
    fakes = sum(truth == "fake" for truth, _ in pairs)
    fakes_called_real = sum(truth == "fake" and answer == "real" for truth, answer in pairs)
    reals = len(pairs) - fakes
    reals_called_fake = sum(truth == "real" and answer == "fake" for truth, answer in pairs)
    return RaterScore(
        rater=rater,
        n=len(pairs),
        correct=correct,
        accuracy=correct / len(pairs) if pairs else float("nan"),
        false_positive_rate=fakes_called_real / fakes if fakes else float("nan"),
        fakes=fakes,
        fakes_called_real=fakes_called_real,
        reals=reals,
        reals_called_fake=reals_called_fake,
    )


@dataclass
class ScoreReport:
    raters: list[RaterScore]
    overall: RaterScore  # every rater's answers pooled; equals the mean of raters, who all answer every image


def score(key: str | os.PathLike[str], answers_files: Sequence[str | os.PathLike[str]]) -> ScoreReport:
    """Accuracy and false-positive rate per rater (one answers file each) and over all raters."""
    if not answers_files:
        raise FaceganError("No answers file given.", "Pass one --answers FILE per rater.")
    truth = read_key(key)
    raters: list[RaterScore] = []
    pooled: list[tuple[str, str]] = []
    for path in answers_files:
        answers = read_answers(path, set(truth))
        pairs = [(truth[number], answers[number]) for number in sorted(truth)]
        raters.append(_tally(str(path), pairs))
        pooled += pairs
    return ScoreReport(raters=raters, overall=_tally("overall", pooled))
