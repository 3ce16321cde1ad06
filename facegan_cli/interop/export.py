"""`facegan export`: a run's network as an ONNX or TorchScript file, checked against the eager network.

Every kind is exported as the function its command computes:
  generator   z (N x z_dim) -> image (N x 3 x H x W, in the generator's value range)
  translator  image (N x 3 x H x W in [-1, 1]) -> image, one direction; height and width are dynamic (any
              multiple of 4 for fully convolutional translators)
  editor      (image, target labels N x c) -> image, every image normalised with its own InstanceNorm
              statistics as `facegan edit` (and yunjey's test) runs G: the exported G is a copy whose
              InstanceNorms keep no running statistics, which computes exactly that in inference mode.
The file is written staged (core.outputs.new_file), loaded back (onnxruntime / torch.jit.load), run on probe
inputs (for a translator: two different sizes through one file) and compared with the eager network; above
TOLERANCE the command fails and no file is left.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facegan_cli.core.checkpoint import load_checkpoint
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.outputs import new_file
from facegan_cli.models.loading import family_of, load_model

FORMATS = ("onnx", "torchscript")
TOLERANCE = 1e-4
EXPORT_KIND = "export"


@dataclass
class Exportable:
    """A network as one function of tensors, with probe inputs and the names and dynamic axes of its inputs."""

    module: nn.Module
    net: str  # what was exported, for the file name and the report
    probes: list[tuple[torch.Tensor, ...]]  # the first is traced; every one is compared
    input_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]


class _Translate(nn.Module):
    def __init__(self, translator: Any, direction: str) -> None:
        super().__init__()
        self.translator = translator
        self.direction = direction
        for name, net in getattr(translator, "nets", {}).items():
            self.add_module(name, net)  # so .eval() and the exporters see the networks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.translator.translate(x, self.direction)


class _Edit(nn.Module):
    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.G = per_image_statistics(generator)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.G(x, c)


def per_image_statistics(net: nn.Module) -> nn.Module:
    """A copy of `net` whose InstanceNorms keep no running statistics: in eval mode each image is normalised
    with its own statistics, as the original runs in training mode (without touching any buffer)."""
    net = copy.deepcopy(net).eval()
    for module in net.modules():
        if isinstance(module, nn.modules.instancenorm._InstanceNorm) and module.track_running_stats:
            module.track_running_stats = False
            module.running_mean = None
            module.running_var = None
            module.num_batches_tracked = None
    return net


def _generator(model: Any, net: str | None, gen: torch.Generator) -> Exportable:
    if net not in (None, "G", model.weights):
        raise FaceganError(f"--net {net}: a generator exports its sampling network ({model.weights}).",
                           "Leave --net out.")
    z = torch.randn(2, model.z_dim, generator=gen)
    return Exportable(model.module.eval(), model.weights, [(z,), (z[:1] * 0.5,)], ["z"],
                      {"z": {0: "batch"}, "image": {0: "batch"}})


def _translator(model: Any, net: str | None, gen: torch.Generator) -> Exportable:
    # --net names a direction or the generator that translates it (the translator's declared `generators`).
    by_name = {**{g: d for d, g in model.generators.items()}, **{d: d for d in model.directions}}
    direction = by_name.get(net or model.directions[0])
    if direction is None:
        raise FaceganError(f"--net {net} is not a network of this translator.",
                           "Use " + " or ".join(f"{g} ({d})" for d, g in model.generators.items()) + ".")
    side = model.resolution
    probes = [(torch.rand(1, 3, side, side, generator=gen) * 2 - 1,)]
    axes: dict[str, dict[int, str]] = {"image_in": {0: "batch"}, "image": {0: "batch"}}
    if model.size_multiple:  # fully convolutional: any multiple of it, checked at a second size
        other = side + 2 * model.size_multiple
        probes.append((torch.rand(2, 3, other, side + model.size_multiple, generator=gen) * 2 - 1,))
        axes = {name: {0: "batch", 2: "height", 3: "width"} for name in ("image_in", "image")}
    return Exportable(_Translate(model, direction).eval(), model.generators[direction], probes,
                      ["image_in"], axes)


def _editor(model: Any, net: str | None, gen: torch.Generator) -> Exportable:
    if net not in (None, "G"):
        raise FaceganError(f"--net {net}: an editor exports its generator G.", "Leave --net out.")
    side, c = model.resolution, len(model.attrs)
    images = torch.rand(2, 3, side, side, generator=gen) * 2 - 1
    labels = (torch.rand(2, c, generator=gen) > 0.5).float()
    return Exportable(_Edit(model.G).eval(), "G", [(images, labels), (images[:1], 1 - labels[:1])],
                      ["image_in", "labels"], {"image_in": {0: "batch"}, "labels": {0: "batch"}, "image": {0: "batch"}})


def _stylizer(model: Any, net: str | None, gen: torch.Generator) -> Exportable:
    if net not in (None, "T", "transformer"):
        raise FaceganError(f"--net {net}: a stylizer exports its transformation network.", "Leave --net out.")
    # 0-255 RGB in, 0-255 out (unclamped, as the network computes it), any height and width: two sizes probed.
    probes = [(torch.rand(1, 3, 64, 64, generator=gen) * 255,), (torch.rand(2, 3, 72, 96, generator=gen) * 255,)]
    axes = {name: {0: "batch", 2: "height", 3: "width"} for name in ("image_in", "image")}
    return Exportable(model.module.eval(), "T", probes, ["image_in"], axes)


# How each kind's loaded model becomes one exportable function (a new kind adds its entry).
KIND_EXPORTS: dict[str, Callable[[Any, str | None, torch.Generator], Exportable]] = {
    "generator": _generator, "translator": _translator, "editor": _editor, "stylizer": _stylizer,
}
EXPORTABLE = tuple(KIND_EXPORTS)


def exportable(path: Path, net: str | None) -> Exportable:
    """The run's network of its kind, as an Exportable (FaceganError for a kind or --net it cannot export)."""
    family, _ = family_of(load_checkpoint(path))
    if family.kind not in KIND_EXPORTS:
        raise FaceganError(
            f"{path} is a {family.name} checkpoint, {family.kind_text}; facegan exports generators, translators, "
            "attribute editors and stylizers only.",
            "Export a run of one of those kinds.",
        )
    return KIND_EXPORTS[family.kind](load_model(path, "cpu"), net, torch.Generator().manual_seed(0))


def _onnx_write(item: Exportable, file: Path) -> Callable[[tuple[torch.Tensor, ...]], torch.Tensor]:
    try:
        import onnxruntime
    except ImportError as exc:
        raise FaceganError("ONNX export needs onnx and onnxruntime, which are not installed.",
                           "pip install 'facegan[export]' (or --format torchscript).") from exc
    with torch.no_grad():
        torch.onnx.export(item.module, item.probes[0], str(file), input_names=item.input_names,
                          output_names=["image"], dynamic_axes=item.dynamic_axes, opset_version=17, dynamo=False)
    session = onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])

    def run(inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        feed = {name: t.numpy() for name, t in zip(item.input_names, inputs)}
        return torch.from_numpy(session.run(None, feed)[0])

    return run


def _torchscript_write(item: Exportable, file: Path) -> Callable[[tuple[torch.Tensor, ...]], torch.Tensor]:
    with torch.no_grad():
        traced = torch.jit.trace(item.module, item.probes[0], check_trace=False)
    traced.save(str(file))
    loaded = torch.jit.load(str(file), map_location="cpu")

    def run(inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        with torch.no_grad():
            return loaded(*inputs)

    return run


def export_run(path: Path, format_: str = "onnx", net: str | None = None, out: Path | None = None,
               force: bool = False, device: str = "cpu") -> dict[str, Any]:
    """Export, load back, compare; returns the result document (file, largest difference per probe)."""
    if format_ not in FORMATS:
        raise FaceganError(f"--format {format_!r} is not an export format.", f"Use {' or '.join(FORMATS)}.")
    if device not in ("auto", "cpu"):
        raise FaceganError(f"--device {device}: exports are traced and checked on the CPU.", "Leave --device out.")
    item = exportable(path, net)
    run_name = (path if path.is_dir() else path.parent).resolve()
    run_name = run_name.parent if run_name.name == "checkpoints" else run_name
    out = out or Path(f"{run_name.name}-{item.net}.{'onnx' if format_ == 'onnx' else 'pt'}")
    diffs: list[float] = []
    with new_file(out, force, EXPORT_KIND) as staged:
        try:
            runner = (_onnx_write if format_ == "onnx" else _torchscript_write)(item, staged)
        except FaceganError:
            raise
        except Exception as exc:  # noqa: BLE001 - the exporters raise many types for unsupported operators
            raise FaceganError(
                f"The {item.net} network of {path} could not be exported to {format_} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}).",
                "Try the other --format; report the operator named if it is a facegan network.",
            ) from exc
        for probe in item.probes:
            with torch.no_grad():
                eager = item.module(*probe).float()
            got = runner(probe).float()
            if got.shape != eager.shape:
                raise FaceganError(
                    f"The exported {item.net} gives {tuple(got.shape)} where the network gives {tuple(eager.shape)} "
                    f"for inputs of {[tuple(t.shape) for t in probe]}; the file was not kept.",
                    "Try the other --format.",
                )
            diffs.append(float((got - eager).abs().max()))
        if max(diffs) > TOLERANCE:
            raise FaceganError(
                f"The exported {item.net} of {path} differs from the network in facegan by up to {max(diffs):.3g} "
                f"(more than {TOLERANCE:g}) on the probe inputs, so the file was not kept.",
                "Try the other --format.",
            )
    return {"file": str(out), "format": format_, "checkpoint": str(path), "net": item.net,
            "inputs": {name: [list(t.shape) for t in (p[i] for p in item.probes)]
                       for i, name in enumerate(item.input_names)},
            "dynamic_axes": item.dynamic_axes, "max_abs_diff": max(diffs), "diffs": diffs,
            "tolerance": TOLERANCE, "bytes": os.path.getsize(out)}
