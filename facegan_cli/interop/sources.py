"""The foreign projects `facegan import` reads: one module of this package per project, each registering a Source.

A Source recognises its project's files by name (`select`: which of the given files are its own, the epoch
chosen), then maps their state dicts onto a facegan family from the tensor shapes alone (`convert`: the
networks built and loaded strictly, what was inferred, how the project fits its test inputs). Modules of
this package are discovered, not listed: adding a project is one new module that calls `register(...)`.
The driver (interop.importer) tries the sources in `priority` order.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facegan_cli.core.errors import FaceganError
from facegan_cli.interop.foreign import ForeignFile, read_foreign, strip_module_prefix
from facegan_cli.models import registry


@dataclass(frozen=True)
class ImportRequest:
    """What the user asked of `facegan import` besides the files."""

    family: str | None = None  # --family: the family (or source project) the files must map onto
    direction: str | None = None  # --direction for one-direction translators
    attrs: tuple[str, ...] | None = None  # --attrs for attribute editors
    epoch: str | None = None  # --epoch: which saved epoch/iteration of a folder (default: the latest)


@dataclass
class Imported:
    """Foreign networks mapped onto a facegan family, ready to be written as a run."""

    project: str  # the source project, as its users know it (e.g. its repository)
    source: str  # the Source's name
    family: str
    model: dict[str, Any]  # the family's model configuration (a complete record)
    networks: dict[str, nn.Module]  # checkpoint module name -> network with the imported weights
    files: list[ForeignFile]
    inferred: dict[str, Any]  # what was read from the shapes and names, for config.json
    input_fit: dict[str, str] | None = None  # how the project fits test inputs (apply.photos reads it)
    generator: str | None = None  # the module that samples (generator families)
    notes: list[str] = field(default_factory=list)  # what the user should know (a missing D, ...)


@dataclass(frozen=True)
class Source:
    """One foreign project's checkpoint format (see the module docstring)."""

    name: str  # short name, accepted by --family too
    project: str  # e.g. "owner/repository"
    describe: str  # the files it reads, for --help and messages
    priority: int  # lower is tried first
    select: Any  # (paths, ImportRequest) -> list[Path] of its files to read, or None when not its files
    convert: Any  # (files: list[ForeignFile], ImportRequest) -> Imported
    pickled_fix: str = ""  # what to do when its file holds pickled objects (read_foreign's fix)
    families: tuple[str, ...] = ()  # the facegan families it maps onto (--family may name one)
    example: str = ""  # one `facegan import` line, for --help


_SOURCES: dict[str, Source] = {}
_DISCOVERED: list[bool] = []
_NOT_SOURCES = {"foreign", "sources", "importer", "export", "mapping"}


def register(source: Source) -> Source:
    _SOURCES[source.name] = source
    return source


def sources() -> list[Source]:
    """Every registered source, in priority order (modules of this package are imported once)."""
    if not _DISCOVERED:
        _DISCOVERED.append(True)
        import facegan_cli.interop as package

        for info in pkgutil.iter_modules(package.__path__):
            if info.name not in _NOT_SOURCES:
                importlib.import_module(f"{package.__name__}.{info.name}")
    return sorted(_SOURCES.values(), key=lambda s: (s.priority, s.name))


def read_files(paths: Sequence[Path], source: Source) -> list[ForeignFile]:
    return [read_foreign(p, f"The {source.project} checkpoint", source.pickled_fix) for p in paths]


# --- helpers the sources share -------------------------------------------------------------------------------


def pick_epoch(paths: Sequence[Path], pattern: re.Pattern[str], epoch: str | None, what: str) -> list[Path]:
    """The files of one saved epoch among `paths` (whose names match `pattern`, with its group "epoch"): the
    one asked for, else "latest" where present, else the highest number. FaceganError when --epoch names none."""
    by_epoch: dict[str, list[Path]] = {}
    for p in paths:
        found = pattern.match(p.name)
        if found:
            by_epoch.setdefault(found.group("epoch"), []).append(p)
    if not by_epoch:
        return []
    if epoch is not None:
        if epoch not in by_epoch:
            raise FaceganError(
                f"--epoch {epoch} names no {what} file among the inputs (saved: {', '.join(sorted(by_epoch))}).",
                f"Use one of: {', '.join(sorted(by_epoch))}.",
            )
        return sorted(by_epoch[epoch])
    if "latest" in by_epoch:
        return sorted(by_epoch["latest"])
    numbers = [e for e in by_epoch if e.isdecimal()]
    return sorted(by_epoch[max(numbers, key=int)]) if numbers else []


def preset_config(family: str, preset: str, arch: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The complete model record of `family`: the preset, the architecture read from the files, then `extra`
    (derived settings a trained run would have decided)."""
    entry = registry.get_family(family)
    config = entry.configure(registry.resolve_config(family, preset), arch)
    config.update(arch)  # settings a family's configure step leaves to training (e.g. StarGAN's widths)
    config.update(extra or {})
    return entry.record(config, f"the {family} configuration inferred from the imported files")


def load_strict(
    network: nn.Module, tensors: dict[str, torch.Tensor], file: ForeignFile, family: str, droppable: Any = None
) -> tuple[nn.Module, list[str]]:
    """`network` with the file's tensors, every key matched exactly (shapes included); keys `droppable(key,
    network)` says are legacy leftovers are dropped first and returned. FaceganError naming the file and the
    first key that does not fit: it is not the architecture its name and shapes suggested."""
    expected = network.state_dict()
    dropped = [k for k in tensors if k not in expected and droppable is not None and droppable(k, network)]
    tensors = {k: v for k, v in tensors.items() if k not in dropped}
    problem = ""
    for key, value in expected.items():
        if key not in tensors:
            problem = f"it lacks {key}"
        elif tuple(tensors[key].shape) != tuple(value.shape):
            problem = f"{key} is {tuple(tensors[key].shape)} where the {family} network has {tuple(value.shape)}"
        if problem:
            break
    extra = [k for k in tensors if k not in expected]
    if not problem and extra:
        problem = f"it has {extra[0]}, which the {family} network does not" + (
            f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
    if problem:
        raise FaceganError(
            f"{file.path} does not fit the {family} network its other tensors describe: {problem}. It is a "
            "network of another architecture (or of options facegan's family does not have), so nothing was "
            "imported.",
            "Check that the file is the one its project saves for this model; `facegan import --help` lists the "
            "files each project writes.",
        )
    network.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in tensors.items()})
    return network.eval(), dropped


def count_indexed(tensors: dict[str, torch.Tensor], pattern: str) -> list[int]:
    """The distinct integer indices captured by `pattern` (one group) over the keys, sorted."""
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in tensors if (m := regex.fullmatch(k))})


def by_network(files: Sequence[ForeignFile], pattern: re.Pattern[str]) -> dict[str, ForeignFile]:
    """The files by the network their name gives (`pattern`'s group "net"), `module.` prefixes removed."""
    found = {}
    for f in files:
        f.tensors = strip_module_prefix(f.tensors)
        found[pattern.match(f.name).group("net")] = f  # type: ignore[union-attr]
    return found


def load_generator_and_discriminator(family: str, model: dict[str, Any], files: dict[str, ForeignFile]
                                     ) -> dict[str, nn.Module]:
    """The family's G and (where its file was given) D, built from `model`, with the files' tensors."""
    networks = {}
    for name, build in (("G", registry.build_generator), ("D", registry.build_discriminator)):
        if name in files:
            networks[name], _ = load_strict(build(family, model), files[name].tensors, files[name], family)
    return networks
