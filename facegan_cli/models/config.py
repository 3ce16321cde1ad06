"""A family's settings, declared once as a dataclass: its options, presets, record and networks derive from it.

A family module declares `@dataclass(kw_only=True) class XConfig(FamilyConfig)` with one field per setting of
its model configuration (the "model" record of config.json and of checkpoint metadata). A field's metadata,
given with `setting(...)`, says how the setting reaches the command line:

    width: int = setting(help="Filters of D's first layer.", min=1, arch=True)

- a field with `help` is an option of `facegan train FAMILY` (`--width`, of the field's type, default None:
  "the preset's"); `arch=True` also makes it an option of `facegan models summary FAMILY`, and `train=False`
  only that (a setting training decides otherwise, e.g. from another run);
- a field without a default must be in every preset and every record; a field with a default may be left
  out (an old run directory written before the field existed reads back with the default);
- `absent_if_none=True`: the record leaves the key out while the value is None (settings only some
  configurations have, e.g. DCGAN's keras64 has no `first_kernel`);
- `derived=True`: the family's configure step decides it (e.g. from the data), so presets leave it out; every
  record has it.

`from_record(record, source)` reads a record back (config.json, checkpoint metadata, a preset): an unknown key or
a missing one is a FaceganError naming the source, the key and the fix. `to_record()` writes it, in field order.
The registry checks a family's presets against its config class when the family registers.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Union

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.options import Opt

_OPTION_TYPES = (bool, int, float, str, Path)


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str = "",
    flag: str | None = None,
    arch: bool = False,
    choices: tuple[str, ...] | None = None,
    min: int | float | None = None,
    positive: bool = False,
    non_negative: bool = False,
    hidden: bool = False,
    absent_if_none: bool = False,
    derived: bool = False,
    train: bool = True,
    type: type | None = None,
) -> Any:
    """A field of a FamilyConfig (see the module docstring). Mutable defaults (lists) are copied per instance."""
    metadata = {
        "help": help, "flag": flag, "arch": arch, "choices": choices, "min": min, "positive": positive,
        "non_negative": non_negative, "hidden": hidden, "absent_if_none": absent_if_none, "derived": derived,
        "train": train, "type": type,
    }
    if isinstance(default, list | dict):
        value = default
        return dataclasses.field(default_factory=lambda: value.copy(), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _option_type(annotation: Any) -> type:
    """int for `int`, `int | None`; the one option type an annotation allows."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is Union:
        found = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(found) == 1:
            return _option_type(found[0])
    if annotation in _OPTION_TYPES:
        return annotation
    raise TypeError(f"no option type for {annotation!r}: give setting(type=...)")


@dataclasses.dataclass(kw_only=True)
class FamilyConfig:
    """The base of every family's configuration (see the module docstring)."""

    family: ClassVar[str] = ""  # the family's name, for messages
    # Subclasses declare their fields; most start with `preset: str`, the preset the configuration started from.

    # --- the fields --------------------------------------------------------------------------------------

    @classmethod
    def settings(cls) -> tuple[dataclasses.Field, ...]:
        return dataclasses.fields(cls)

    @classmethod
    def options(cls, arch: bool | None = None) -> tuple[Opt, ...]:
        """The command-line options of the fields that have help, in field order: None: those of `facegan train`;
        arch=True: those of `models summary` (the architecture options); False: the training ones that are not
        architecture options. Every default is None: the preset's value is kept."""
        hints = typing.get_type_hints(cls)
        found = []
        for f in cls.settings():
            meta = f.metadata
            if not meta.get("help") or (arch is not None and bool(meta["arch"]) != arch):
                continue
            if not meta["train"] and arch is not True:
                continue
            kind = meta["type"] or _option_type(hints[f.name])
            flag = meta["flag"] or "--" + f.name.replace("_", "-")
            if kind is bool and "/" not in flag:
                flag = f"{flag}/--no-{flag[2:]}"
            found.append(Opt(
                f.name, (flag,), kind, None, meta["help"], choices=meta["choices"], min=meta["min"],
                positive=meta["positive"], non_negative=meta["non_negative"], hidden=meta["hidden"],
            ))
        return tuple(found)

    @classmethod
    def given(cls, values: dict[str, Any], arch: bool | None = None) -> dict[str, Any]:
        """The option values of this config's options that were given (None: not given), by field name."""
        return {o.name: values[o.name] for o in cls.options(arch) if values.get(o.name) is not None}

    # --- records ---------------------------------------------------------------------------------------------

    @classmethod
    def from_record(cls, record: Any, source: str, derived_missing_ok: bool = False) -> FamilyConfig:
        """The configuration a record holds; FaceganError (naming `source`, the key and the fix) for an unknown
        or a missing key. derived_missing_ok: a preset, or a configuration only networks are built from, may
        leave the derived settings out (they are None)."""
        family = cls.family or "model"
        if not isinstance(record, dict):
            raise FaceganError(
                f"The {family} model configuration in {source} is not a JSON object ({type(record).__name__}).",
                "Restore the file, or start a new run with --out.",
            )
        names = {f.name for f in cls.settings()}
        unknown = [k for k in record if k not in names]
        if unknown:
            raise FaceganError(
                f"The {family} model configuration in {source} has the unknown key {unknown[0]!r}"
                f"{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''}: this facegan does not know "
                f"that setting. Known keys: {', '.join(sorted(names))}.",
                f"Remove {unknown[0]!r} from its \"model\" record if it was added by hand, or use the facegan "
                "version that wrote the run (its facegan_version).",
            )
        required = [f.name for f in cls.settings()
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        missing = [k for k in required if k not in record]
        if derived_missing_ok:
            derived = {f.name for f in cls.settings() if f.metadata.get("derived")}
            record = {**{k: None for k in missing if k in derived}, **record}
            missing = [k for k in missing if k not in derived]
        if missing:
            raise FaceganError(
                f"The {family} model configuration in {source} lacks the key {missing[0]!r}"
                f"{f' (and {len(missing) - 1} more: {missing[1:]})' if len(missing) > 1 else ''}, which every "
                f"{family} configuration needs.",
                f"Restore {missing[0]!r} in its \"model\" record (the value the run was trained with), or start "
                "a new run with --out.",
            )
        return cls(**record)

    @classmethod
    def coerce(cls, config: FamilyConfig | dict[str, Any], source: str = "the configuration given") -> FamilyConfig:
        """`config` as this class (what a network is built from): a record is read with from_record, derived
        settings allowed missing, and keys of other fields left aside (a subclass's record, built by its base's
        builders; records are checked for unknown keys where they are read, by Family.record)."""
        if isinstance(config, cls):
            return config
        if isinstance(config, dict):
            names = {f.name for f in cls.settings()}
            config = {k: v for k, v in config.items() if k in names}
        return cls.from_record(config, source, derived_missing_ok=True)

    def to_record(self) -> dict[str, Any]:
        """The JSON record (config.json's "model", checkpoint metadata), in field order."""
        record: dict[str, Any] = {}
        for f in self.settings():
            value = getattr(self, f.name)
            if value is None and f.metadata.get("absent_if_none"):
                continue
            record[f.name] = value
        return record

    @classmethod
    def normalize(cls, record: dict[str, Any], source: str) -> dict[str, Any]:
        """A record read and written back: checked, with the defaults of keys it lacks filled in."""
        return cls.from_record(record, source).to_record()

    @classmethod
    def check_presets(cls, presets: dict[str, dict[str, Any]]) -> None:
        """ValueError (at import, when the family registers) for a preset with an unknown or missing key."""
        for name, values in presets.items():
            try:
                named = {"preset": name} if "preset" in {f.name for f in cls.settings()} else {}
                cls.from_record({**named, **values}, f"preset {name!r}", derived_missing_ok=True)
            except FaceganError as exc:
                raise ValueError(f"family {cls.family}: {exc.message}") from exc


def checked(check: Callable[[dict[str, Any]], None], config: dict[str, Any], what: str, use: str) -> dict[str, Any]:
    """`config` when `check` (a family's ValueError-raising check) passes; else a FaceganError "This `what`
    configuration cannot be `use`: ...", naming the option (every value such a check reads comes from one)."""
    try:
        check(config)
    except ValueError as exc:
        raise FaceganError(f"This {what} configuration cannot be {use}: {exc}.", "Change the option named.") from exc
    return config
