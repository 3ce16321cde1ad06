"""junyanz/pytorch-CycleGAN-and-pix2pix: CycleGAN checkpoints onto the cycle-gan family.

Its BaseModel.save_networks writes one state dict per network, `{epoch}_net_{name}.pth` (epoch = "latest" or
a number) in checkpoints/NAME/, keys without DataParallel's `module.` (it saves `net.module`): G_A, G_B,
D_A, D_B for CycleGAN, and for the one-direction pretrained test models (`--model test`) a single
`latest_net_G.pth`. facegan's ResnetGenerator and NLayerDiscriminator have junyanz's module trees, so the keys
map one to one; widths, residual blocks and PatchGAN depth are read from the shapes. Files written before
PyTorch 0.4 carry InstanceNorm running_mean / running_var / num_batches_tracked entries, which junyanz's
load_networks drops (its __patch_instance_norm_state_dict: an InstanceNorm's running statistics when the
module keeps none, and num_batches_tracked always); so does this module, and counts them.

pix2pix's U-Net G (`latest_net_G.pth` with nested `model.model...` keys) is interop/junyanz_pix2pix.py's
(it is tried first); offered here (--family cycle-gan) it is refused, naming pix2pix. Test-time inputs are fitted as junyanz's test.py does (Resize to the square
crop size, bicubic; load_size = crop_size at test time), and written with tensor2im's truncation within one
grey level (facegan rounds).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facegan_cli.core.errors import FaceganError
from facegan_cli.interop import sources
from facegan_cli.interop.foreign import ForeignFile, shape
from facegan_cli.interop.sources import Imported, ImportRequest, Source
from facegan_cli.models import registry

PROJECT = "junyanz/pytorch-CycleGAN-and-pix2pix"
FAMILY = "cycle-gan"
PIX2PIX_FAMILY = "pix2pix"
_NAME = re.compile(r"^(?P<epoch>latest|\d+)_net_(?P<net>G_A|G_B|D_A|D_B|G|D)\.pth$")
# test.py: Resize([crop, crop], BICUBIC) (load_size defaults to crop_size at test time), no crop or flip.
INPUT_FIT = {"crop": "none", "resize": "square", "filter": "bicubic"}
_LEGACY_NORM_KEYS = ("running_mean", "running_var", "num_batches_tracked")


def select(paths: Sequence[Path], request: ImportRequest) -> list[Path] | None:
    return sources.pick_epoch(paths, _NAME, request.epoch, "junyanz `*_net_*.pth`") or None


def legacy_instance_norm_key(key: str, network: nn.Module) -> bool:
    """junyanz's __patch_instance_norm_state_dict: an InstanceNorm's running statistics where the module keeps
    none (affine-free, track_running_stats off), and its num_batches_tracked in any case."""
    path, _, leaf = key.rpartition(".")
    if leaf not in _LEGACY_NORM_KEYS:
        return False
    try:
        module = network.get_submodule(path)
    except AttributeError:
        return False
    if not type(module).__name__.startswith("InstanceNorm"):
        return False
    return leaf == "num_batches_tracked" or getattr(module, leaf, None) is None


def is_unet(tensors: dict[str, torch.Tensor]) -> bool:
    """pix2pix's UnetGenerator: UnetSkipConnectionBlocks nested as model.model.N.model..."""
    return any(k.startswith("model.model.") for k in tensors)


def _refuse_unet(file: ForeignFile, request: ImportRequest) -> None:
    offered = request.family in (FAMILY, "junyanz") if request.family else False
    raise FaceganError(
        f"{file.path} is a pix2pix U-Net generator (its keys nest as model.model...), "
        + ("not a CycleGAN ResNet generator (--family cycle-gan), " if offered else "")
        + "so the file was not imported.",
        f"Import it as pix2pix (leave --family out, or --family {PIX2PIX_FAMILY}), or import CycleGAN files "
        "(latest_net_G_A.pth / latest_net_G_B.pth, or a one-direction ResNet latest_net_G.pth).",
    )


def _generator_arch(file: ForeignFile) -> dict[str, int]:
    t = file.tensors
    first = shape(t, "model.1.weight", file.path, 4)
    if first[1] != 3 or first[2:] != (7, 7):
        raise FaceganError(
            f"{file.path} is not a ResNet generator of 3-channel images (its first convolution is {first}).",
            "Import an RGB CycleGAN generator (junyanz's resnet_9blocks / resnet_6blocks).",
        )
    blocks = sources.count_indexed(t, r"model\.(\d+)\.conv_block\.1\.weight")
    if any(k.endswith("conv_block.6.weight") for k in t):
        raise FaceganError(
            f"{file.path} is a ResNet generator with dropout in its residual blocks (trained without "
            "--no_dropout), which facegan's cycle-gan family does not have.",
            "Import a model trained with --no_dropout (every released CycleGAN model is).",
        )
    return {"ngf": int(first[0]), "n_blocks": len(blocks)}


def patchgan_arch(file: ForeignFile, channels: int = 3, fix: str = "Import junyanz's basic / n_layers "
                  "discriminator files (latest_net_D_A.pth, latest_net_D_B.pth).") -> dict[str, int]:
    """ndf and n_layers_d of junyanz's NLayerDiscriminator reading `channels` channels (CycleGAN's RGB images;
    pix2pix's (input, output) pairs, 6)."""
    t = file.tensors
    first = shape(t, "model.0.weight", file.path, 4)
    convs = [i for i in sources.count_indexed(t, r"model\.(\d+)\.weight") if t[f"model.{i}.weight"].dim() == 4]
    if first[1] != channels or len(convs) < 3:
        reads = "RGB images" if channels == 3 else f"{channels}-channel inputs"
        raise FaceganError(
            f"{file.path} is not a PatchGAN discriminator of {reads} (first convolution {first}, "
            f"{len(convs)} convolutions).", fix)
    return {"ndf": int(first[0]), "n_layers_d": len(convs) - 2}


def convert(files: list[ForeignFile], request: ImportRequest) -> Imported:
    by_net = sources.by_network(files, _NAME)
    for f in files:
        if f.name.split("_net_")[1].startswith("G") and is_unet(f.tensors):
            _refuse_unet(f, request)
    if "G" in by_net and ({"G_A", "G_B"} & set(by_net)):
        raise FaceganError(
            f"The inputs mix a one-direction generator ({by_net['G'].name}) with CycleGAN's "
            f"{' and '.join(n for n in ('G_A', 'G_B') if n in by_net)}.",
            "Import either latest_net_G_A.pth / latest_net_G_B.pth or one latest_net_G.pth with --direction.",
        )
    inferred: dict[str, Any] = {}
    notes: list[str] = []
    if "G" in by_net:
        direction = request.direction or "a2b"
        inferred["direction"] = direction + ("" if request.direction else " (default; --direction b2a for B -> A)")
        by_net = {("G_A" if direction == "a2b" else "G_B"): by_net["G"],
                  **{k: v for k, v in by_net.items() if k in ("D_A", "D_B")}}
        inferred["one_direction"] = True
        notes.append(f"one-direction model: only {direction} translates")
    generators = {n: by_net[n] for n in ("G_A", "G_B") if n in by_net}
    if not generators:
        raise FaceganError(
            f"The inputs hold junyanz discriminators only ({', '.join(f.name for f in files)}), no generator.",
            "Add latest_net_G_A.pth and/or latest_net_G_B.pth (or latest_net_G.pth).",
        )
    g_arch = {n: _generator_arch(f) for n, f in generators.items()}
    _same(g_arch, "generators", generators)
    discriminators = {n: by_net[n] for n in ("D_A", "D_B") if n in by_net}
    d_arch = {n: patchgan_arch(f) for n, f in discriminators.items()}
    _same(d_arch, "discriminators", discriminators)
    arch = {**next(iter(g_arch.values())), **(next(iter(d_arch.values())) if d_arch else {})}
    inferred.update(arch)
    if not d_arch:
        notes.append("no discriminators imported: `eval translation` has no adversarial accuracy, and "
                     "fine-tuning starts D_A and D_B from a fresh initialisation")
    model = sources.preset_config(FAMILY, "junyanz256", arch, {"data_resolution": 256})
    networks: dict[str, nn.Module] = {}
    dropped = 0
    for name, f in {**generators, **discriminators}.items():
        build = registry.build_generator if name.startswith("G") else registry.build_discriminator
        networks[name], gone = sources.load_strict(build(FAMILY, model), f.tensors, f, FAMILY, legacy_instance_norm_key)
        dropped += len(gone)
    if dropped:
        inferred["legacy_instance_norm_keys_dropped"] = dropped
    inferred["networks"] = sorted(networks)
    return Imported(project=PROJECT, source="junyanz", family=FAMILY, model=model, networks=networks, files=files,
                    inferred=inferred, input_fit=INPUT_FIT, notes=notes)


def _same(arch: dict[str, dict[str, int]], what: str, files: dict[str, ForeignFile]) -> None:
    if len({tuple(sorted(a.items())) for a in arch.values()}) > 1:
        described = "; ".join(f"{files[n].name}: {', '.join(f'{k} {v}' for k, v in a.items())}" for n, a in arch.items())
        raise FaceganError(
            f"The {what} are of different sizes ({described}); a CycleGAN's two {what} always have the same "
            "architecture, so these files do not come from one model.",
            "Import the files of one checkpoints/NAME folder and one epoch (--epoch).",
        )


sources.register(Source(
    example="facegan import checkpoints/style_monet_pretrained/latest_net_G.pth --direction a2b --out runs/monet",
    name="junyanz", project=PROJECT, priority=10, select=select, convert=convert, families=(FAMILY,),
    describe="CycleGAN `latest_net_G_A.pth` / `latest_net_G_B.pth` (+ D_A / D_B), a checkpoints/NAME folder "
    "(--epoch N: `N_net_*.pth`), or a one-direction ResNet `latest_net_G.pth` (--direction)",
))
