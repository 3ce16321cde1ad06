"""Options and data choices shared by the families that train on CelebA attributes (editors, classifier)."""

from __future__ import annotations

from pathlib import Path

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.options import Opt
from facegan_cli.data.prepared import MANIFEST

SPLIT_PROTOCOLS = {"stargan": ("stargan-train", "stargan-test"), "celeba": ("train", "test")}

ATTRS_OPTION = Opt(
    "attrs", ("--attrs",), str, None,
    "Comma-separated attribute names to train on, any of CelebA's 40 (default: Black_Hair,Blond_Hair,"
    "Brown_Hair,Male,Young). Hair colours among them are edited as one exclusive group.",
)
PROTOCOL_OPTION = Opt(
    "split_protocol", ("--split-protocol",), str, "stargan",
    "Training rows of a prepared CelebA: stargan (all but yunjey's 1999-image test set, random.seed(1234)) or "
    "celeba (the official train partition). Folders and zips use every image.",
    choices=tuple(SPLIT_PROTOCOLS),
)


def parse_attrs(text: str | None) -> list[str] | None:
    """'Black_Hair, Male' -> ['Black_Hair', 'Male'] (None when not given)."""
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise FaceganError("--attrs is empty.", "Write it like --attrs Black_Hair,Blond_Hair,Brown_Hair,Male,Young.")
    if len(set(names)) != len(names):
        raise FaceganError(f"--attrs {text!r} names an attribute twice.", "List each attribute once.")
    return names


def protocol_splits(data: str | Path, split: str | None, protocol: str) -> tuple[str, str]:
    """(training split, held-out split) of a protocol; an explicit --split wins for training. A folder or
    zip of images has no partitions: it trains on everything."""
    if protocol not in SPLIT_PROTOCOLS:
        raise FaceganError(f"Unknown --split-protocol {protocol!r}.", "Use stargan or celeba.")
    train_split, held_split = SPLIT_PROTOCOLS[protocol]
    if split is not None:
        return split, held_split
    if not (Path(data) / MANIFEST).exists():
        return "all", held_split
    return train_split, held_split
