"""Model families: each describes itself once, and everything else finds it here by name.

A family module (any module of facegan_cli.models, or of another package announced under the entry
point group "facegan.families") calls `register(Family(...))` when imported. The entry says what kind of
model the family trains, how to build its networks from a configuration, its presets, where its
training options live (`training`: a "module:attribute" reference to its train.spec.TrainSpec, which
names the trainer; the train side resolves it, since models/ must not import train/), how to load a
checkpoint into a usable model (`loader`; the kind's own loader where one serves every family of the
kind), and the architecture options of `facegan models summary FAMILY`.

A checkpoint stores `family` and `model` (the resolved configuration) in its metadata, so any command
can rebuild what it needs from the file alone. Modules are discovered, not listed: adding a family
touches nothing here.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.options import Opt
from facegan_cli.models.config import FamilyConfig

# What a trained model of each kind does, and the command that uses it (for messages that redirect).
KINDS: dict[str, tuple[str, str]] = {
    "generator": ("a generator (images from latent vectors)", "facegan sample --ckpt {path}"),
    "translator": ("an image translator (images of one domain to another)", "facegan translate --ckpt {path}"),
    "editor": ("an attribute editor (faces to target attributes)", "facegan edit --ckpt {path}"),
    "classifier": ("an attribute classifier", "facegan eval attributes --classifier {path}"),
    "feature-translator": ("a feature translator", "facegan transfer features --ckpt {path}"),
    "stylizer": ("a fast style network (photos to one style, in one pass)", "facegan transfer fast --ckpt {path}"),
}
# The checkpoint loader of the kinds whose families all load the same way (the family's own builders and
# the kind's model class); a family of another kind names its own.
KIND_LOADERS: dict[str, str] = {
    "generator": "facegan_cli.models.loading:generator_loader",
    "editor": "facegan_cli.models.editing:editor_loader",
}


@dataclass(frozen=True)
class Reference:
    """The parameter counts of a family's networks in one configuration, as its reference implementation (or
    paper) has them. tests/models/test_family_contract.py builds the configuration as `facegan models summary` does
    and compares every count declared here."""

    counts: dict[str, int]  # network, as `models summary` names it (Family.build_networks) -> its parameters
    preset: str | None = None  # None: the name the Reference is declared under is the preset
    options: dict[str, Any] = field(default_factory=dict)  # architecture option values (Family.arch_options)
    source: str = ""  # where the numbers come from


@dataclass(frozen=True)
class Family:
    """Everything facegan needs to know about one model family."""

    name: str
    kind: str  # one of KINDS
    presets: dict[str, dict[str, Any]]
    default_preset: str
    build_generator: Callable[[dict[str, Any]], nn.Module] | None = None
    build_discriminator: Callable[[dict[str, Any]], nn.Module] | None = None
    describe: str = ""
    # "module:attribute" (or the object itself) of: the train.spec.TrainSpec (options, defaults,
    # configuration and trainer of `facegan train FAMILY`) ...
    training: str | Any = ""
    # ... and the checkpoint loader, (Checkpoint, Family, torch.device) -> the loaded model of this kind
    # (default: KIND_LOADERS[kind]).
    loader: str | Callable[..., Any] = ""
    # `facegan models summary FAMILY`: its options, and how their values change a preset's configuration
    # (default: the values given replace the preset's, by option name).
    arch_options: tuple[Opt, ...] = ()
    configure_arch: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None
    # The networks `models summary` counts, by what they are called there, from a configuration.
    networks: Callable[[dict[str, Any]], dict[str, nn.Module]] | None = None
    # The reference parameter counts, by configuration name (a preset, or a preset with options); every
    # family declares at least one (the family contract fails a family that declares none).
    reference_counts: dict[str, Reference] = field(default_factory=dict)
    # The family's settings (a models.config.FamilyConfig subclass): its presets are checked against it, and
    # every "model" record written or read back goes through it. None: records are plain dicts (unchecked).
    config: type[FamilyConfig] | None = None

    def __post_init__(self) -> None:
        if self.config is not None:
            self.config.check_presets(self.presets)
            if not self.arch_options:  # `models summary`'s options: the config's architecture fields
                object.__setattr__(self, "arch_options", self.config.options(arch=True))
        if self.kind not in KINDS:
            raise ValueError(f"family {self.name}: unknown kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.default_preset not in self.presets:
            raise ValueError(f"family {self.name}: default preset {self.default_preset!r} is not a preset")
        for name, reference in self.reference_counts.items():
            if (reference.preset or name) not in self.presets:
                raise ValueError(f"family {self.name}: reference {name!r} names no preset of the family")

    @property
    def kind_text(self) -> str:
        return KINDS[self.kind][0]

    @property
    def checkpoint_loader(self) -> str | Callable[..., Any]:
        """The family's loader, or its kind's ("" where neither is given)."""
        return self.loader or KIND_LOADERS.get(self.kind, "")

    def configure(self, config: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """A preset's configuration with the architecture option values given (None: not given)."""
        if self.configure_arch is not None:
            return self.configure_arch(config, values)
        return with_values(config, values, self.arch_options)

    def record(self, config: dict[str, Any], source: str) -> dict[str, Any]:
        """`config` checked against the family's config class (unknown or missing keys: FaceganError naming
        `source`), with the defaults of keys it lacks; as it is where the family declares no class."""
        return self.config.normalize(config, source) if self.config is not None else config

    def build_networks(self, config: dict[str, Any]) -> dict[str, nn.Module]:
        """The networks of a configuration, by name (generator and discriminator unless the family says)."""
        if self.networks is not None:
            return self.networks(config)
        found: dict[str, nn.Module] = {}
        if self.build_generator is not None:
            found["generator"] = self.build_generator(config)
        if self.build_discriminator is not None:
            found["discriminator"] = self.build_discriminator(config)
        return found


def with_values(config: dict[str, Any], values: dict[str, Any], options: tuple[Opt, ...]) -> dict[str, Any]:
    """`config` with the values given of `options` (None: not given) in place of its own, by option name."""
    return {**config, **{o.name: values[o.name] for o in options if values.get(o.name) is not None}}


def resolve_reference(reference: str | Any) -> Any:
    """The object a "module:attribute" reference names (objects are returned as they are)."""
    if not isinstance(reference, str):
        return reference
    module_name, _, attribute = reference.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


_FAMILIES: dict[str, Family] = {}
_DISCOVERED: list[bool] = []


def register(family: Family) -> Family:
    """Add (or replace) a family; family modules call this when they are imported."""
    _FAMILIES[family.name] = family
    return family


def unregister(name: str) -> None:
    """Remove a family (a plugin unloaded, a test's family after the test)."""
    _FAMILIES.pop(name, None)


def _discover() -> None:
    """Import every module of this package and every "facegan.families" entry point, once."""
    if _DISCOVERED:
        return
    _DISCOVERED.append(True)
    import facegan_cli.models as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    for entry in importlib.metadata.entry_points(group="facegan.families"):
        entry.load()


def families() -> dict[str, Family]:
    _discover()
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
    named = fam.config is None or "preset" in {f.name for f in fam.config.settings()}
    config = {**({"preset": preset} if named else {}), **fam.presets[preset]}  # the preset's name, where recorded
    for key, value in (overrides or {}).items():
        if value is not None:
            config[key] = value
    return config


def typed_config(family: str, config: FamilyConfig | dict[str, Any]) -> Any:
    """`config` as the family's config class (a record is checked: FaceganError for an unknown or missing key)."""
    cls = get_family(family).config
    if cls is None:
        raise TypeError(f"the {family} family declares no config class")
    return cls.coerce(config)


def build_generator(family: str, config: dict[str, Any]) -> nn.Module:
    builder = get_family(family).build_generator
    if builder is None:
        raise FaceganError(f"The {family} family has no generator.", "Use a family that has one.")
    return builder(config)


def build_discriminator(family: str, config: dict[str, Any]) -> nn.Module:
    builder = get_family(family).build_discriminator
    if builder is None:
        raise FaceganError(f"The {family} family has no discriminator.", "Use a family that has one.")
    return builder(config)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
