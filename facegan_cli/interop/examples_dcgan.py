"""pytorch/examples dcgan/main.py: `netG_epoch_N.pth` (+ `netD_epoch_N.pth`) onto the dcgan family.

main.py saves `netG.state_dict()` and `netD.state_dict()` into --outf after every epoch. Its Generator and
Discriminator are nn.Sequential `main` trees with the same indices as facegan's conv DCGAN (the sigmoid at
the end of netD has no parameters; facegan folds it into the loss), so the keys map one to one. nz and ngf
come from the first and last transposed convolutions, the image size from their count (4 * 2**(n - 1)),
ndf from netD's first convolution. Samples are netG(z) in eval mode (BatchNorm running statistics), z of
shape N x nz (x 1 x 1).
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

PROJECT = "pytorch/examples (dcgan)"
FAMILY = "dcgan"
_NAME = re.compile(r"^net(?P<net>G|D)_epoch_(?P<epoch>\d+)\.pth$")


def select(paths: Sequence[Path], request: ImportRequest) -> list[Path] | None:
    return sources.pick_epoch(paths, _NAME, request.epoch, "pytorch/examples `netG_epoch_N.pth`") or None


def _convs(file: ForeignFile) -> list[tuple[int, ...]]:
    t = file.tensors
    return [tuple(t[f"main.{i}.weight"].shape) for i in sources.count_indexed(t, r"main\.(\d+)\.weight")
            if t[f"main.{i}.weight"].dim() == 4]


def _generator_arch(file: ForeignFile) -> dict[str, Any]:
    first = shape(file.tensors, "main.0.weight", file.path, 4)
    convs = _convs(file)
    if first[2:] != (4, 4) or len(convs) < 2 or convs[-1][1] != 3:
        raise FaceganError(
            f"{file.path} is not a pytorch/examples DCGAN generator of RGB images (first transposed convolution "
            f"{first}, last {convs[-1] if convs else None}).",
            "Import the netG_epoch_N.pth that dcgan/main.py writes (--nc 3).",
        )
    stages = len(convs) - 1
    return {"z_dim": int(first[0]), "g_width": int(convs[-1][0]), "resolution": 4 * 2**stages}


def _discriminator_arch(file: ForeignFile) -> dict[str, Any]:
    first = shape(file.tensors, "main.0.weight", file.path, 4)
    convs = _convs(file)
    if first[1] != 3 or len(convs) < 2 or convs[-1][0] != 1:
        raise FaceganError(f"{file.path} is not a pytorch/examples DCGAN discriminator of RGB images.",
                           "Import the netD_epoch_N.pth that dcgan/main.py writes.")
    return {"width": int(first[0]), "resolution": 4 * 2 ** (len(convs) - 1)}


def convert(files: list[ForeignFile], request: ImportRequest) -> Imported:
    by_net = sources.by_network(files, _NAME)
    if "G" not in by_net:
        raise FaceganError(f"The inputs hold a DCGAN discriminator ({by_net['D'].name}) but no generator.",
                           "Add the netG_epoch_N.pth of the same epoch.")
    arch = _generator_arch(by_net["G"])
    notes: list[str] = []
    if "D" in by_net:
        d_arch = _discriminator_arch(by_net["D"])
        if d_arch["resolution"] != arch["resolution"]:
            raise FaceganError(
                f"{by_net['D'].path} judges {d_arch['resolution']}x{d_arch['resolution']} images but "
                f"{by_net['G'].path} makes {arch['resolution']}x{arch['resolution']}: they are not one model.",
                "Import netG and netD of the same run and epoch.",
            )
        arch["width"] = d_arch["width"]
    else:
        notes.append("no discriminator imported: fine-tuning starts D from a fresh initialisation")
    model = sources.preset_config(FAMILY, "radford64", {**arch, "first_kernel": 4, "d_first_bn": False})
    networks = sources.load_generator_and_discriminator(FAMILY, model, by_net)
    inferred = {"nz": arch["z_dim"], "ngf": arch["g_width"], "ndf": arch.get("width"),
                "image_size": arch["resolution"], "networks": sorted(networks)}
    return Imported(project=PROJECT, source="examples-dcgan", family=FAMILY, model=model, networks=networks,
                    files=files, inferred=inferred, generator="G", notes=notes)


sources.register(Source(
    example="facegan import out/netG_epoch_24.pth out/netD_epoch_24.pth --out runs/dcgan-examples",
    name="examples-dcgan", project=PROJECT, priority=30, select=select, convert=convert, families=(FAMILY,),
    describe="DCGAN `netG_epoch_N.pth` (+ `netD_epoch_N.pth`), or its --outf folder (--epoch N)",
))
