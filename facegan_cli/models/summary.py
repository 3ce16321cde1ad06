"""What `facegan models list|summary` reports: the families, and the exact parameter counts of a family's
networks for a preset and architecture options, with a per-layer table."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.options import Opt
from facegan_cli.models import registry


def list_families() -> list[dict[str, Any]]:
    """Every registered family: name, kind, description, presets (the default first)."""
    entries = []
    for name, family in sorted(registry.families().items()):
        presets = [family.default_preset] + [p for p in family.presets if p != family.default_preset]
        entries.append({"family": name, "kind": family.kind, "description": family.describe,
                        "default_preset": family.default_preset, "presets": presets})
    return entries


def reported_parameters(net: nn.Module) -> int:
    """Parameters as the family's paper counts them: a progressive network's full-resolution path only
    (its intermediate toRGB/fromRGB layers are left out), every parameter otherwise."""
    counter = getattr(net, "path_parameters", None)
    return int(counter()) if callable(counter) else registry.count_parameters(net)


def _leaf_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, module) for name, module in net.named_modules() if next(module.children(), None) is None]


def _own_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def layer_rows(net: nn.Module, example: torch.Tensor | None) -> list[tuple[str, str, str, int]]:
    """(name, type, output shape, parameters) of every leaf layer, in the order they run.

    Shapes come from one forward pass of `example`; networks that take more than one input (a level,
    labels) get the layer list without shapes.
    """
    rows: list[tuple[str, str, str, int]] = []

    def record(name: str) -> Any:
        def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
            shape = "x".join(str(d) for d in output.shape[1:]) if isinstance(output, torch.Tensor) else "?"
            rows.append((name, type(module).__name__, shape, _own_parameters(module)))

        return hook

    handles = [module.register_forward_hook(record(name)) for name, module in _leaf_layers(net)]
    try:
        if example is not None:
            with torch.no_grad():
                net.eval()(example)
    except (RuntimeError, TypeError, ValueError):
        rows.clear()
    finally:
        for handle in handles:
            handle.remove()
    if not rows:
        rows = [(name, type(module).__name__, "?", _own_parameters(module)) for name, module in _leaf_layers(net)]
    return rows


def _example(config: dict[str, Any], role: str) -> torch.Tensor | None:
    """A probe input for the layer shapes: a latent for generators from noise, an image for the rest."""
    if role == "generator" and "z_dim" in config:
        return torch.zeros(1, int(config["z_dim"]))
    res = config.get("resolution")
    return torch.zeros(1, 3, int(res), int(res)) if res else None


def arch_options() -> list[Opt]:
    """Every family's architecture options, once each (a name several families share keeps one entry,
    whose help names each family's meaning), for the one `models summary FAMILY` command."""
    merged: dict[str, Opt] = {}
    helps: dict[str, list[str]] = {}
    for name, family in sorted(registry.families().items()):
        for opt in family.arch_options:
            merged.setdefault(opt.name, opt)
            helps.setdefault(opt.name, []).append(f"{name}: {opt.help}")
    return [replace(opt, help=" ".join(helps[opt.name]), min=None) for opt in merged.values()]


def summarize(family: str, preset: str | None, values: dict[str, Any], layers: bool = False) -> dict[str, Any]:
    """Parameter counts of a family's networks for a preset with architecture options applied.

    `values` holds the architecture options given (None: not given); one the family does not have is an
    error naming the families that do. Each network reports `parameters` as its paper counts them and,
    when different, `all_parameters`; with `layers`, also its per-layer rows (name, type, output shape,
    parameters).
    """
    entry = registry.get_family(family)
    own = {opt.name for opt in entry.arch_options}
    for opt in arch_options():
        if values.get(opt.name) is not None and opt.name not in own:
            having = [n for n, f in sorted(registry.families().items()) if opt.name in {o.name for o in f.arch_options}]
            raise FaceganError(
                f"{opt.flag} applies to the {' and '.join(having)} famil{'ies' if len(having) > 1 else 'y'}, not "
                f"{family}.",
                f"Leave {opt.flag} out (see `facegan models summary --help`).",
            )
        if values.get(opt.name) is not None and opt.min is not None and values[opt.name] < opt.min:
            raise FaceganError(f"{opt.flag} {values[opt.name]} must be at least {opt.min}.", f"Pass a valid {opt.flag}.")
    config = registry.resolve_config(family, preset)
    preset = preset or entry.default_preset  # (a family's record may not name its preset)
    config = entry.configure(config, values)
    try:
        networks = entry.build_networks(config)
    except (KeyError, ValueError) as exc:
        raise FaceganError(
            f"{family} preset {preset} cannot be built with these options ({exc}).",
            f"Check the options against `facegan models summary {family} --help`.",
        ) from exc
    doc: dict[str, Any] = {"family": family, "preset": preset, "config": config}
    for role, net in networks.items():
        counted, every = reported_parameters(net), registry.count_parameters(net)
        info: dict[str, Any] = {"parameters": counted}
        if every != counted:
            info["all_parameters"] = every
        if layers:
            info["layers"] = layer_rows(net, _example(config, role))
        doc[role] = info
    return doc
