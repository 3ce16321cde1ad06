"""`facegan train attr-classifier`: the attribute classifier that judges edits (`facegan eval attributes`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from facegan_cli.cli.common import (
    DebugOpt,
    DeviceOpt,
    ForceOpt,
    JsonOpt,
    QuietOpt,
    check_positive,
    command,
    emit_json,
    emit_line,
    result_console,
)
from facegan_cli.cli.train import (
    CkptEveryOpt,
    DataChangedOkOpt,
    DataOpt,
    EpochsOpt,
    KeepOpt,
    LogEveryOpt,
    OutOpt,
    ResumeOpt,
    SampleEveryOpt,
    StepsOpt,
    _loop_settings,
    missing_data_or_out,
    resume_changes,
)
from facegan_cli.cli.train import app as train_app
from facegan_cli.cli.train_attrs import _parse_attrs
from facegan_cli.core.atomic import write_json
from facegan_cli.core.device import resolve_device
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.rundir import RunDir
from facegan_cli.data.prepared import MANIFEST
from facegan_cli.data.sources import open_image_set
from facegan_cli.models.attr_classifier import (
    CLASSIFIER_DEFAULTS,
    CLASSIFIER_FAMILY,
    load_classifier,
    stage_count,
)
from facegan_cli.models.stargan import STARGAN_ATTRS
from facegan_cli.train.classifier_recipe import heldout_accuracy, make_recipe
from facegan_cli.train.loop import run_training

HELP = (
    "Train the small CNN attribute classifier that `facegan eval attributes --classifier` uses to measure "
    "edit success (StarGAN's own evaluation).\n\n"
    "Stages of conv3x3-BN-ReLU + conv4x4/2-BN-ReLU down to 4x4 (width --width, doubling per stage up to 8x), "
    "global average pooling, dropout and one logit per attribute; BCE loss, Adam 1e-3 with cosine decay to 0, "
    "random horizontal flips. Trains on a prepared dataset's labels (`facegan prepare celeba`) on the same "
    "split protocol as the editors, and reports accuracy per attribute on the held-out split (next to the "
    "majority-class rate) in --json and in RUN/heldout.json. Ctrl-C saves; --resume continues exactly."
)
EPILOG = (
    "Example: facegan train attr-classifier --data data/celeba-128-attrs --out runs/attr-clf "
    "--attrs Black_Hair,Blond_Hair,Brown_Hair,Male,Young --json"
)

_SPLITS = {"stargan": ("stargan-train", "stargan-test"), "celeba": ("train", "test")}


def _render(doc: dict[str, Any]) -> None:
    emit_line(str(doc["run_dir"]))
    if doc.get("checkpoint"):
        emit_line(str(doc["checkpoint"]))
    held = doc["heldout"]
    table = Table(title=f"held-out accuracy ({held['split']}, {held['n']} images)")
    for column in ("attribute", "accuracy", "majority rate", "positives"):
        table.add_column(column, justify="left" if column == "attribute" else "right")
    for name, row in held["attributes"].items():
        acc = "-" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
        table.add_row(name, acc, f"{row['majority_rate']:.3f}", str(row["positives"]))
    result_console().print(table)


def _evaluate(run_dir: Path, data: Path, split: str, device: str) -> dict[str, Any]:
    classifier = load_classifier(run_dir, resolve_device(device))
    images = open_image_set(data, split=split)
    if images.labels is None:
        raise FaceganError(f"{data} has no labels to measure the classifier against.", "Use a prepared CelebA dataset.")
    pixels, rows = images.load_with_indices()
    report = heldout_accuracy(classifier, pixels, images.labels[rows], list(images.label_names))
    report = {"split": split, **report}
    write_json(run_dir / "heldout.json", report)
    return report


@command
def train_attr_classifier(
    data: DataOpt = None,
    out: OutOpt = None,
    attrs: Annotated[str | None, typer.Option(
        help="Comma-separated attributes to classify, any of the dataset's (default: Black_Hair,Blond_Hair,"
        "Brown_Hair,Male,Young).")] = None,
    steps: StepsOpt = None,
    epochs: EpochsOpt = None,
    batch: Annotated[int, typer.Option(min=1, help="Batch size.")] = CLASSIFIER_DEFAULTS["batch"],
    lr: Annotated[float, typer.Option(
        callback=check_positive, help="Adam learning rate (cosine decay to 0). With --resume: from then on.")
    ] = CLASSIFIER_DEFAULTS["lr"],
    width: Annotated[int, typer.Option(min=1, help="First stage's channels.")] = CLASSIFIER_DEFAULTS["width"],
    resolution: Annotated[int | None, typer.Option(
        help="Input size, a power of two (default: the data's, at most 128; inputs of other sizes are resized).")] = None,
    split_protocol: Annotated[str, typer.Option(
        "--split-protocol", help="stargan (train on all but yunjey's 1999 test images, report on them) or celeba "
        "(official train partition, report on the test partition).")] = "stargan",
    split: Annotated[str | None, typer.Option(help="Explicit training split instead.")] = None,
    eval_split: Annotated[str | None, typer.Option("--eval-split", help="Explicit held-out split instead.")] = None,
    mirror: Annotated[bool, typer.Option("--mirror/--no-mirror", help="Random horizontal flips.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of weights and data order.")] = 0,
    log_every: LogEveryOpt = 100,
    ckpt_every: CkptEveryOpt = 1000,
    sample_every: SampleEveryOpt = 1000,
    keep: KeepOpt = 2,
    resume: ResumeOpt = None,
    data_changed_ok: DataChangedOkOpt = False,
    force: ForceOpt = False,
    device: DeviceOpt = "auto",
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    settings = _loop_settings(steps, epochs, seed, log_every, ckpt_every, sample_every, keep, mirror, False, True,
                              False, False)
    if resume is not None:
        changes = resume_changes({"lr": lambda v: {"lr": v}})
        result = run_training(make_recipe, CLASSIFIER_FAMILY, {}, {}, settings, None, resume=resume, device=device,
                              changes=changes)
        config = RunDir.open(resume, lock=False).config()
        data_path, held_split = Path(config["data"]["path"]), config["model"]["eval_split"]
    else:
        if data is None or out is None:
            raise missing_data_or_out("attr-classifier", "data/celeba-128-attrs")
        if not (data / MANIFEST).exists():
            raise FaceganError(
                f"{data} is not a prepared dataset; the classifier trains on one split and is measured on another.",
                "Prepare CelebA first: facegan prepare celeba --src CELEBA --out data/celeba-128-attrs "
                "--recipe celeba-128-attrs.",
            )
        if split_protocol not in _SPLITS:
            raise FaceganError(f"Unknown --split-protocol {split_protocol!r}.", "Use stargan or celeba.")
        train_split, held_split = split or _SPLITS[split_protocol][0], eval_split or _SPLITS[split_protocol][1]
        found = open_image_set(data, split=train_split)
        res = resolution or min(found.resolution, 128)
        try:
            stage_count(res)
        except ValueError as exc:
            raise FaceganError(f"--resolution {res}: {exc}.", "Use 32, 64 or 128.") from None
        names = _parse_attrs(attrs) or list(STARGAN_ATTRS)
        open_image_set(data, split=held_split)  # fail now, not after training, when the held-out split is empty
        config = {**CLASSIFIER_DEFAULTS, "attrs": names, "resolution": res, "width": width, "lr": lr, "batch": batch,
                  "eval_split": held_split}
        if steps is None and epochs is None:
            settings.steps = int(CLASSIFIER_DEFAULTS["steps"])
        config["steps"] = settings.steps
        result = run_training(make_recipe, CLASSIFIER_FAMILY, config, {"path": str(data), "split": train_split},
                              settings, out, force=force, device=device)
        data_path = data
    if result.rank != 0:
        return
    doc = {**result.to_json(), "heldout": _evaluate(result.run_dir, data_path, held_split, device)}
    if json_:
        emit_json(doc)
    else:
        _render(doc)


_REGISTERED: list[bool] = []


def register() -> None:
    if _REGISTERED:
        return
    _REGISTERED.append(True)
    train_app.command("attr-classifier", help=HELP, epilog=EPILOG)(train_attr_classifier)
