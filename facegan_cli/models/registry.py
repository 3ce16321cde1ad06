"""Model families by name: how to build their networks from a configuration dict.

A checkpoint stores `family` and `model` (the resolved configuration) in its metadata, so any command
can rebuild the generator from the file alone through `build_generator`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from facegan_cli.core.errors import FaceganError


@dataclass(frozen=True)
class Family:
    name: str
    presets: dict[str, dict[str, Any]]
    default_preset: str
    build_generator: Callable[[dict[str, Any]], nn.Module]
    build_discriminator: Callable[[dict[str, Any]], nn.Module]
    describe: str = ""


_FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    _FAMILIES[family.name] = family
    return family


def _load_builtin() -> None:
    # Importing a family module registers it; the list grows by one line per family.
    from facegan_cli.models import dcgan, progan, stargan  # noqa: F401


def families() -> dict[str, Family]:
    _load_builtin()
    return dict(_FAMILIES)


def get_family(name: str) -> Family:
    found = families()
    if name not in found:
        raise FaceganError(f"Unknown model family {name!r}.", f"Known families: {', '.join(sorted(found))}.")
    return found[name]


def resolve_config(family: str, preset: str | None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The preset's configuration with the user's overrides (None values mean 'keep the preset')."""
    fam = get_family(family)
    preset = preset or fam.default_preset
    if preset not in fam.presets:
        raise FaceganError(
            f"Unknown preset {preset!r} for {family}.", f"Choose one of: {', '.join(fam.presets)}."
        )
    config = {"preset": preset, **fam.presets[preset]}
    for key, value in (overrides or {}).items():
        if value is not None:
            config[key] = value
    return config


def build_generator(family: str, config: dict[str, Any]) -> nn.Module:
    return get_family(family).build_generator(config)


def build_discriminator(family: str, config: dict[str, Any]) -> nn.Module:
    return get_family(family).build_discriminator(config)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
