"""junyanz/pytorch-CycleGAN-and-pix2pix: pix2pix checkpoints onto the pix2pix family.

His Pix2PixModel saves `{epoch}_net_G.pth` (the U-Net, unet_256 or unet_128) and `{epoch}_net_D.pth` (the
conditional PatchGAN on 6 channels) in checkpoints/NAME/, as CycleGAN does (interop/junyanz.py, which takes
the ResNet generators). A `latest_net_G.pth` is this project's when its keys nest as UnetSkipConnectionBlocks
(`model.model.1.model...`); the file is read weights-only once to tell. Everything else comes from the
shapes: ngf from the outermost convolution, unet_256 / unet_128 from the number of convolutions (two per
level), batch or instance norm from the running statistics, ndf and D's depth from D's convolutions.
--direction says which way it was trained (a2b: his AtoB, the default). Dropout cannot be seen in a state
dict: the import assumes his default (on), which only `translate --stochastic` uses. Test-time inputs are
fitted as his test.py does (load_size = crop_size: a square bicubic resize).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from facegan_cli.core.errors import FaceganError
from facegan_cli.interop import sources
from facegan_cli.interop.foreign import ForeignFile, read_foreign, shape, strip_module_prefix
from facegan_cli.interop.junyanz import _NAME, INPUT_FIT, PROJECT, is_unet, patchgan_arch
from facegan_cli.interop.sources import Imported, ImportRequest, Source

FAMILY = "pix2pix"
_DOWNS = {8: ("unet_256", "junyanz256"), 7: ("unet_128", "junyanz128")}
_D_FIX = "Import the latest_net_D.pth saved with the generator (his conditional PatchGAN), or leave it out."


def select(paths: Sequence[Path], request: ImportRequest) -> list[Path] | None:
    chosen = [p for p in sources.pick_epoch(paths, _NAME, request.epoch, "junyanz `*_net_*.pth`")
              if _NAME.match(p.name).group("net") in ("G", "D")]  # type: ignore[union-attr]
    generator = [p for p in chosen if _NAME.match(p.name).group("net") == "G"]  # type: ignore[union-attr]
    if not generator:
        return None
    tensors = strip_module_prefix(read_foreign(generator[0], f"The {PROJECT} checkpoint").tensors)
    return chosen if is_unet(tensors) else None  # a ResNet latest_net_G.pth is a CycleGAN test model


def _generator_arch(file: ForeignFile) -> dict[str, Any]:
    t = file.tensors
    first = shape(t, "model.model.0.weight", file.path, 4)
    if first[1] != 3:
        raise FaceganError(f"{file.path} is not a U-Net of 3-channel images (its first convolution is {first}).",
                           "Import an RGB pix2pix generator (junyanz's unet_256 or unet_128).")
    convs = sum(1 for v in t.values() if v.dim() == 4)  # a down- and an up-convolution per level
    if convs // 2 not in _DOWNS or convs % 2:
        raise FaceganError(f"{file.path} is a U-Net with {convs // 2} levels; junyanz's pix2pix has unet_256 (8) and "
                           "unet_128 (7).", "Import a unet_256 or unet_128 generator.")
    norm = "batch" if any(k.endswith("running_mean") for k in t) else "instance"
    return {"netg": _DOWNS[convs // 2][0], "ngf": int(first[0]), "norm": norm}


def convert(files: list[ForeignFile], request: ImportRequest) -> Imported:
    by_net = sources.by_network(files, _NAME)
    generator, discriminator = by_net.get("G"), by_net.get("D")
    if generator is None:
        raise FaceganError(f"The inputs hold a pix2pix discriminator only ({files[0].name}), no generator.",
                           "Add latest_net_G.pth.")
    # His D reads the input and the output, 6 channels.
    arch = {**_generator_arch(generator), **(patchgan_arch(discriminator, 6, _D_FIX) if discriminator else {})}
    direction = request.direction or "a2b"
    preset = _DOWNS[7 if arch["netg"] == "unet_128" else 8][1]
    model = sources.preset_config(FAMILY, preset, arch, {"direction": "AtoB" if direction == "a2b" else "BtoA",
                                                         "data_resolution": 256 if preset == "junyanz256" else 128})
    inferred: dict[str, Any] = {**arch, "direction": direction + ("" if request.direction else
                                                                  " (default: his AtoB; --direction b2a for BtoA)")}
    notes = ["dropout assumed on (his default): it matters only to `translate --stochastic`"]
    if discriminator is None:
        notes.append("no discriminator imported: `eval translation` has no adversarial accuracy")
    networks = sources.load_generator_and_discriminator(FAMILY, model, by_net)
    inferred["networks"] = sorted(networks)
    return Imported(project=PROJECT, source="junyanz-pix2pix", family=FAMILY, model=model, networks=networks,
                    files=files, inferred=inferred, input_fit=INPUT_FIT, notes=notes)


sources.register(Source(
    example="facegan import checkpoints/facades_label2photo/latest_net_G.pth --direction b2a --out runs/facades",
    name="junyanz-pix2pix", project=PROJECT, priority=9, select=select, convert=convert, families=(FAMILY,),
    describe="pix2pix `latest_net_G.pth` (U-Net: unet_256 / unet_128) (+ `latest_net_D.pth`), or a checkpoints/NAME "
    "folder (--epoch N); --direction b2a for a model trained BtoA",
))
