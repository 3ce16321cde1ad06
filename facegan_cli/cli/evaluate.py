"""`facegan eval`: seed 001's visual Turing test (a numbered sheet for raters) and its scoring."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facegan_cli.cli.common import emit_json, emit_result, result_console, result_table
from facegan_cli.cli.params import group
from facegan_cli.cli.shared_options import OUTPUT, REPORT, SeedOpt, shared_command

if TYPE_CHECKING:
    from facegan_cli.evaluation.turing import RaterScore
from facegan_cli.metrics.settings import Settings

app = group("Evaluation kits: the visual Turing test of seed 001, attribute editing (seed 000 Table 1), and image "
            "translation (seed 004).")

_EXAMPLES = {
    "turing": "Example: facegan eval turing --real data/faces32 --fake samples/ --n 50 --out sheet/\n\n"
    "Give raters the sheet/ folder (numbered images, sheet.png, answers.txt); keep sheet.key.json.",
    "score": "Example: facegan eval score --key sheet.key.json --answers alice.txt --answers bob.txt\n\n"
    "Answers files: one line per image, 'NUMBER real|fake' (or r|f), e.g. '007 fake'; '#' starts a comment.",
    "attributes": "Example: facegan eval attributes --ckpt runs/stargan --ckpt runs/ccagan --data "
    "data/celeba-128-attrs --split stargan-test --classifier runs/attr-clf --json\n\n"
    "Example (the seed's columns): --targets Black_Hair,Blond_Hair,Brown_Hair,Male=flip,Young=0",
}


@shared_command(app, "turing", *OUTPUT, "force", epilog=_EXAMPLES["turing"])
def turing(
    device: str, json_out: bool, force: bool,
    real: Annotated[Path, typer.Option("--real", help="Real images: a folder of images or a prepared dataset.")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Folder for the raters: numbered images, sheet.png, answers.txt.")],
    fake: Annotated[Path | None, typer.Option("--fake", help="Generated images: a folder of images.")] = None,
    fake_ckpt: Annotated[Path | None, typer.Option(
        "--fake-ckpt", help="Or generate the fakes from this checkpoint (seeded by --seed).")] = None,
    n: Annotated[int, typer.Option("--n", help="Real images and fake images on the sheet (2n in all).")] = 50,
    key: Annotated[Path | None, typer.Option(
        "--key", help="Where the answer key goes (default: OUT.key.json beside OUT).")] = None,
    seed: SeedOpt = 0,
    size: Annotated[int | None, typer.Option(
        "--size", help="Resize every image to N x N (centre crop) (default: keep sizes).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per forward pass with --fake-ckpt.")] = 64,
) -> None:
    """Make a shuffled, numbered sheet of n real and n fake images and a separate answer key."""
    from facegan_cli.evaluation.turing import turing_sheet

    sheet = turing_sheet(
        real, out, fake=fake, fake_ckpt=fake_ckpt, n=n, seed=seed, key=key, size=size, batch_size=batch_size,
        device=device, force=force,
    )
    emit_result(sheet.document(), json_out, lambda _: [sheet.folder, sheet.contact_sheet, sheet.answers_template,
                                                     sheet.key])


def _row(result: RaterScore) -> tuple[str, ...]:
    return (result.rater, str(result.n), f"{result.accuracy:.3f}", f"{result.false_positive_rate:.3f}",
            f"{result.fakes_called_real}/{result.fakes}", f"{result.reals_called_fake}/{result.reals}")


@shared_command(app, "score", *REPORT, epilog=_EXAMPLES["score"])
def score_cmd(
    json_out: bool,
    key: Annotated[Path, typer.Option("--key", help="The answer key written by `facegan eval turing`.")],
    answers: Annotated[list[Path], typer.Option("--answers", help="One rater's answers file; repeat per rater.")],
) -> None:
    """Accuracy and false-positive rate (share of fakes called real) per rater and overall."""
    from facegan_cli.evaluation.turing import score

    report = score(key, answers)
    doc = {"key": key, "raters": [r.as_dict() for r in report.raters], "overall": report.overall.as_dict()}
    columns = ("rater", "n", "accuracy", "FPR (fake called real)", "fakes called real", "reals called fake")
    rows = [_row(result) for result in (*report.raters, report.overall)]
    emit_result(doc, json_out, lambda _: result_table(f"visual Turing test ({key})", columns, rows, left=1))


_ATTR_HELP = (
    "Seed 000's Table 1 for attribute editors: one row per --ckpt, one column per target.\n\n"
    "Every image of the test split is translated to each target (default: yunjey's create_labels, one per "
    "attribute of the checkpoint: a hair colour set, the other hair colours cleared; any other attribute "
    "flipped; or --targets NAME=0|1|flip), starting from its ground-truth labels. FID and KID compare the "
    "translated images with the real test images that have the target value (NAME=v: the real images with "
    "NAME = v; a flip yields both values, so its reference is the whole real test set), with the metrics' "
    "FID Inception network and --protocol (pytorch-fid by default); numbers are on the standard scale, not "
    "the seed's. With --classifier (`facegan train attr-classifier`): the edit success rate, the fraction "
    "of translated images the classifier reads with the target value, next to the rate of the untouched "
    "inputs (doing nothing). Preservation: mean L1 (0..1 pixel units, all channels) between input and output "
    "outside the face region, which is the centred square of side --face-fraction x the image side (default "
    "0.625: pixels 24-103 of 128, holding the eyes, nose and mouth of CelebA's CenterCrop-178 faces), and "
    "inside it. FID on fewer than 2048 images is biased upwards; use the full test split for reported numbers."
)


def _num(value: object, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"  # type: ignore[str-format]


def _render_attributes(doc: dict) -> None:
    keys = doc["targets"]
    table = result_table(f"attribute editing ({doc['split']}, {doc['n_test']} test images, {doc['protocol']} protocol)",
                         ("metric", "model", *keys), left=2, no_wrap=True)
    measures = [("FID", lambda c: _num(c["fid"], 2)),
                ("KID", lambda c: "-" if c["kid_mean"] is None else f"{c['kid_mean']:.4f}±{c['kid_std']:.4f}"),
                ("L1 outside face", lambda c: _num(c["l1_outside"], 4))]
    if doc["classifier"] is not None:
        measures += [("success", lambda c: _num(c["success_rate"])),
                     ("success (unedited)", lambda c: _num(c["unedited_success_rate"]))]
    for metric, fmt in measures:
        for i, row in enumerate(doc["rows"]):
            cells = [fmt(row["cells"][k]) if row["cells"].get(k) else "-" for k in keys]
            table.add_row(metric if i == 0 else "", row["name"], *cells, end_section=i == len(doc["rows"]) - 1)
    # Wide enough for every column when stdout is a pipe (rich would otherwise wrap at 80 characters).
    console = result_console()
    console.width = max(console.width, 44 + 22 * len(keys))
    console.print(table)


@shared_command(app, "attributes", "inception_batch", "protocol", "inception_weights", "no_cache", *OUTPUT,
                help=_ATTR_HELP, epilog=_EXAMPLES["attributes"])
def attributes(
    settings: Settings, json_out: bool,
    ckpt: Annotated[list[Path], typer.Option("--ckpt", help="An editing run (stargan, ccagan, stargan-sagan); repeat "
                                             "for one row per model.")],
    data: Annotated[Path, typer.Option("--data", help="The prepared dataset with attribute labels.")],
    split: Annotated[str, typer.Option("--split", help="Test images: test, stargan-test, valid, all, ...")] = "test",
    targets: Annotated[str | None, typer.Option(
        "--targets", help="Comma-separated targets NAME (create_labels'), NAME=0, NAME=1 or NAME=flip (default: "
        "one per attribute of each checkpoint).")] = None,
    name: Annotated[list[str] | None, typer.Option("--name", help="Row label per --ckpt (default: family and run).")] = None,
    classifier: Annotated[Path | None, typer.Option(
        "--classifier", help="An attr-classifier run, for the edit success rate.")] = None,
    face_fraction: Annotated[float, typer.Option(
        "--face-fraction", help="Side of the central face square, as a fraction of the image side.")] = 0.625,
    limit: Annotated[int | None, typer.Option("--limit", help="Use only the first N test images.")] = None,
    kid_subsets: Annotated[int, typer.Option("--kid-subsets", help="KID subsets.")] = 100,
    kid_subset_size: Annotated[int, typer.Option("--kid-subset-size", help="KID samples per subset (capped).")] = 1000,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per editor forward pass.")] = 16,
) -> None:
    from facegan_cli.metrics.attribute_editing import AttributeEvaluation, parse_targets

    evaluation = AttributeEvaluation(
        settings, data, split, parse_targets(targets) if targets else None, classifier, face_fraction, limit,
        batch_size, kid_subsets, kid_subset_size)
    doc = evaluation.run(ckpt, name)
    emit_json(doc) if json_out else _render_attributes(doc)


_TRANSLATION_HELP = (
    "How well a translator (cycle-gan, cycle-gan-vae, pix2pix) translates held-out images, per direction it has: "
    "seed 004's adversarial accuracy (the target domain's discriminator calling real target images real and "
    "translations fake; near 0.5 = fooled; a conditional D such as pix2pix's judges (input, image) pairs) and, for "
    "cycle models, reconstruction error (mean |F(G(x)) - x|, [-1, 1] units); FID and KID of the "
    "translations against the real target domain (the metrics' Inception network and --protocol; with small test "
    "sets read KID, FID is biased upwards); and, where the true translations exist (junyanz-layout data with "
    "truth/, e.g. `facegan prepare synthetic --style painting`; a paired test split, testA/ and testB/ with the same "
    "file names, as `facegan prepare pairs` writes; or --truth-a/--truth-b), L1, PSNR and SSIM to them next to "
    "those of the untranslated inputs."
)
_EXAMPLES["translation"] = (
    "Example: facegan eval translation --ckpt runs/cyclegan --data data/photo2painting --split test --json\n\n"
    "Example: facegan eval translation --ckpt runs/cyclegan --data-a photos/ --data-b paintings/ --direction a2b"
)


def _render_translation(doc: dict) -> None:
    directions = list(doc["directions"])
    table = result_table(f"translation ({doc['family']} step {doc['step']}, {doc['resolution']}x{doc['resolution']})",
                         ("measure", *directions), left=1, no_wrap=True)
    rows = [("images translated", lambda d: str(d["n_translated"])),
            ("adversarial accuracy", lambda d: _num(d["adversarial_accuracy"])),
            ("  reals called real", lambda d: _num(d["real_judged_real"])),
            ("  translations called fake", lambda d: _num(d["fake_judged_fake"])),
            ("reconstruction L1", lambda d: _num(d["reconstruction_l1"], 4))]
    if "kid_mean" in doc["directions"][directions[0]]:
        rows += [("KID", lambda d: f"{d['kid_mean']:.4f}±{d['kid_std']:.4f}"), ("FID", lambda d: _num(d["fid"], 2))]
    if any(d["pairs"] for d in doc["directions"].values()):
        for key, label, digits in (("l1", "L1 to truth", 4), ("input_l1", "  untranslated input", 4),
                                   ("psnr", "PSNR to truth (dB)", 2), ("input_psnr", "  untranslated input", 2),
                                   ("ssim", "SSIM to truth", 4), ("input_ssim", "  untranslated input", 4)):
            rows.append((label, lambda d, k=key, n=digits: _num(d["pairs"][k], n) if d["pairs"] else "-"))
    for label, fmt in rows:
        table.add_row(label, *(fmt(doc["directions"][name]) for name in directions))
    result_console().print(table)


@shared_command(app, "translation", "inception_batch", "protocol", "inception_weights", "no_cache", "workers",
                "strict", *OUTPUT, help=_TRANSLATION_HELP, epilog=_EXAMPLES["translation"])
def translation(
    settings: Settings, json_out: bool,
    ckpt: Annotated[Path, typer.Option("--ckpt", help="A translator run (cycle-gan, cycle-gan-vae, pix2pix).")],
    data_a: Annotated[Path | None, typer.Option("--data-a", help="Held-out domain A images.")] = None,
    data_b: Annotated[Path | None, typer.Option("--data-b", help="Held-out domain B images.")] = None,
    data: Annotated[Path | None, typer.Option(
        "--data", help="Instead: a dataset in junyanz's layout (testA/, testB/; truth/ when it has one).")] = None,
    split: Annotated[str | None, typer.Option(
        "--split", help="junyanz's layout: test (default) or train; prepared datasets: their split.")] = None,
    truth_a: Annotated[Path | None, typer.Option(
        "--truth-a", help="The true B-domain image of every --data-a image (same file names).")] = None,
    truth_b: Annotated[Path | None, typer.Option(
        "--truth-b", help="The true A-domain image of every --data-b image (same file names).")] = None,
    direction: Annotated[str | None, typer.Option(
        "--direction", help="Evaluate only a2b or b2a (default: every direction the model has).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Use only the first N images of each domain.")] = None,
    no_inception: Annotated[bool, typer.Option(
        "--no-inception", help="Leave out FID and KID (no Inception network needed).")] = False,
    kid_subsets: Annotated[int, typer.Option("--kid-subsets", help="KID subsets.")] = 100,
    kid_subset_size: Annotated[int, typer.Option(
        "--kid-subset-size", help="KID samples per subset (capped by the test sets).")] = 100,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per translator pass.")] = 16,
) -> None:
    from facegan_cli.evaluation.translation_scores import TranslationEvaluation

    evaluation = TranslationEvaluation(
        settings, data_a, data_b, data, split, truth_a, truth_b, (direction,) if direction else None, limit,
        batch_size, not no_inception, kid_subsets, kid_subset_size)
    doc = evaluation.run(ckpt)
    emit_json(doc) if json_out else _render_translation(doc)
