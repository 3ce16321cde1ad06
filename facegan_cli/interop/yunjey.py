"""yunjey/stargan: StarGAN checkpoints onto the stargan family.

Its Solver.save writes `{iteration}-G.ckpt` and `{iteration}-D.ckpt` (plain state dicts of G and D) into
models/. facegan's StarGenerator has yunjey's module tree (`main.N`, residual blocks `main.N.main.M`), so G's
keys map one to one; D's heads are `conv1` (source) and `conv2` (classes) there and `src` / `cls` here.
c_dim is G's first convolution's input channels minus 3; the widths and block counts are read from the
shapes; the image size from D's class head (kernel = image_size / 2**repeat_num), else yunjey's default 128.
The attribute names are not in the files: `--attrs` (default yunjey's five), whose count must be c_dim.

solver.test() never puts G in eval mode, so every image is normalised with its own InstanceNorm statistics
(facegan's editor does the same); it reads CelebA through CenterCrop(178) -> Resize(128) (bilinear), which
for a 178x218 CelebA image is the centre square of its short side, resized.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from facegan_cli.core.errors import FaceganError
from facegan_cli.interop import sources
from facegan_cli.interop.foreign import ForeignFile, shape
from facegan_cli.interop.sources import Imported, ImportRequest, Source

PROJECT = "yunjey/stargan"
FAMILY = "stargan"
DEFAULT_ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")  # yunjey's main.py --selected_attrs
_NAME = re.compile(r"^(?P<epoch>\d+)-(?P<net>G|D)\.ckpt$")
INPUT_FIT = {"crop": "center-square", "resize": "short-side", "filter": "bilinear"}
_D_HEADS = {"conv1.": "src.", "conv2.": "cls."}


def select(paths: Sequence[Path], request: ImportRequest) -> list[Path] | None:
    return sources.pick_epoch(paths, _NAME, request.epoch, "yunjey `N-G.ckpt`") or None


def _generator_arch(file: ForeignFile, attrs: tuple[str, ...] | None) -> tuple[dict[str, Any], tuple[str, ...]]:
    t = file.tensors
    first = shape(t, "main.0.weight", file.path, 4)
    c_dim = first[1] - 3
    if c_dim < 1 or first[2:] != (7, 7):
        raise FaceganError(
            f"{file.path} is not a StarGAN generator: its first convolution is {first} (yunjey's takes 3 image "
            "channels plus one per attribute, 7x7).",
            "Import the `N-G.ckpt` file of yunjey/stargan's models/ folder.",
        )
    names = tuple(attrs) if attrs is not None else DEFAULT_ATTRS
    if len(names) != c_dim:
        raise FaceganError(
            f"{file.path} is a StarGAN generator of {c_dim} attributes (its first convolution takes {first[1]} "
            f"channels: 3 + {c_dim}), but {len(names)} attribute names were given ({', '.join(names)}).",
            f"Pass --attrs with the {c_dim} attribute names the model was trained with, in its order "
            "(yunjey's --selected_attrs).",
        )
    blocks = sources.count_indexed(t, r"main\.(\d+)\.main\.0\.weight")
    return {"g_width": int(first[0]), "g_repeat": len(blocks)}, names


def _discriminator_arch(file: ForeignFile) -> tuple[dict[str, Any], int]:
    t = file.tensors
    first = shape(t, "main.0.weight", file.path, 4)
    head = shape(t, "conv2.weight", file.path, 4)
    repeat = len(sources.count_indexed(t, r"main\.(\d+)\.weight"))
    if first[1] != 3 or repeat < 1 or head[2] != head[3]:
        raise FaceganError(f"{file.path} is not a StarGAN discriminator of RGB images (first convolution {first}).",
                           "Import the `N-D.ckpt` file of yunjey/stargan's models/ folder.")
    return {"d_width": int(first[0]), "d_repeat": repeat, "resolution": int(head[2]) * 2**repeat}, int(head[0])


def convert(files: list[ForeignFile], request: ImportRequest) -> Imported:
    by_net = sources.by_network(files, _NAME)
    if "G" not in by_net:
        raise FaceganError(f"The inputs hold a StarGAN discriminator ({by_net['D'].name}) but no generator.",
                           "Add the N-G.ckpt of the same iteration.")
    arch, attrs = _generator_arch(by_net["G"], request.attrs)
    notes: list[str] = []
    inferred: dict[str, Any] = {"c_dim": len(attrs), "attrs": list(attrs),
                                "attrs_from": "--attrs" if request.attrs else "yunjey's default"}
    if "D" in by_net:
        d_arch, d_classes = _discriminator_arch(by_net["D"])
        if d_classes != len(attrs):
            raise FaceganError(
                f"{by_net['D'].path} classifies {d_classes} attributes but {by_net['G'].path} takes {len(attrs)}: "
                "they are not one model.",
                "Import the N-G.ckpt and N-D.ckpt of the same run and iteration.",
            )
        by_net["D"].tensors = {_renamed(k): v for k, v in by_net["D"].tensors.items()}
    else:
        d_arch = {"d_width": 64, "d_repeat": 6, "resolution": 128}
        notes.append("no discriminator imported: inputs' own attributes must be given (`edit --source`), the "
                     "image size is yunjey's default 128, and fine-tuning starts D from a fresh initialisation")
    arch.update(d_arch)
    inferred.update(arch)
    model = sources.preset_config(FAMILY, "yunjey", {**arch, "attrs": list(attrs)})
    networks = sources.load_generator_and_discriminator(FAMILY, model, by_net)
    inferred["networks"] = sorted(networks)
    return Imported(project=PROJECT, source="yunjey", family=FAMILY, model=model, networks=networks, files=files,
                    inferred=inferred, input_fit=INPUT_FIT, notes=notes)


def _renamed(key: str) -> str:
    for old, new in _D_HEADS.items():
        if key.startswith(old):
            return new + key[len(old):]
    return key


sources.register(Source(
    example="facegan import stargan_celeba_128/models --out runs/stargan128",
    name="yunjey", project=PROJECT, priority=20, select=select, convert=convert, families=(FAMILY,),
    describe="StarGAN `N-G.ckpt` (+ `N-D.ckpt`), or its models/ folder (--epoch N: iteration N); --attrs names "
    "the attributes (default Black_Hair,Blond_Hair,Brown_Hair,Male,Young)",
))
