"""Dataset recipes: one TOML file per recipe in data_recipes/, giving the defaults of a prepare command.

A recipe file holds `name`, `command` (the `facegan prepare` command it configures), `description`,
optionally `reference` (the code or paper it reproduces) and a `[settings]` table whose keys are that
command's option names with underscores (`crop_size`, not `--crop-size`). Options given on the command
line override the recipe; the manifest records the recipe and every resolved setting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.files import read_regular_text

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 ships tomli as a backport
    import tomli as tomllib  # type: ignore[no-redef]



def _recipes_dir() -> Path:
    """data_recipes/: inside the installed package (a wheel carries it as facegan_cli/data_recipes, see setup.py),
    else at the top of the source checkout this module runs from."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "data_recipes"
    return installed if installed.is_dir() else package.parent / "data_recipes"


RECIPES_DIR = _recipes_dir()


@dataclass(frozen=True)
class Trainer:
    name: str
    command: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)
    reference: str = ""
    path: Path | None = None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "command": self.command, "file": str(self.path) if self.path else None}


def list_recipes(command: str | None = None) -> list[str]:
    """Names of the recipes in data_recipes/ (for one command when given)."""
    if not RECIPES_DIR.is_dir():
        return []
    names = []
    for file in sorted(RECIPES_DIR.glob("*.toml")):
        if command is None or load_recipe(file.stem).command == command:
            names.append(file.stem)
    return names


def describe_recipes() -> list[dict[str, Any]]:
    """Every recipe of data_recipes/: name, command, description and settings (`facegan prepare recipes`)."""
    rows = []
    for name in list_recipes():
        recipe = load_recipe(name)
        rows.append(
            {"name": recipe.name, "command": recipe.command, "description": recipe.description, "settings": recipe.settings}
        )
    return rows


def _resolve(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" and candidate.exists():  # a FIFO is refused when read, by name
        return candidate
    file = RECIPES_DIR / f"{name_or_path}.toml"
    if file.is_file():
        return file
    known = ", ".join(list_recipes()) or f"none found in {RECIPES_DIR}"
    raise FaceganError(
        f"Unknown dataset recipe {name_or_path!r} (no {file}).",
        f"Use one of: {known}; or pass the path of a recipe .toml file.",
    )


def load_recipe(name_or_path: str | os.PathLike[str], command: str | None = None) -> Trainer:
    """Read a recipe by name (data_recipes/NAME.toml) or path; check it belongs to `command`."""
    file = _resolve(str(name_or_path))
    try:
        data = tomllib.loads(read_regular_text(file, "Trainer"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FaceganError(f"Trainer {file} is not valid TOML ({exc}).", "Fix the file's syntax.") from exc
    missing = [key for key in ("name", "command") if key not in data]
    if missing:
        raise FaceganError(f"Trainer {file} lacks {', '.join(missing)}.", "Add them at the top of the file.")
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise FaceganError(f"Trainer {file}: [settings] must be a table.", "See data_recipes/celeba-64.toml.")
    recipe = Trainer(
        name=str(data["name"]),
        command=str(data["command"]),
        description=str(data.get("description", "")),
        settings=dict(settings),
        reference=str(data.get("reference", "")),
        path=file,
    )
    if command is not None and recipe.command != command:
        raise FaceganError(
            f"Trainer {recipe.name} is for `facegan prepare {recipe.command}`, not `prepare {command}`.",
            f"Use one of: {', '.join(list_recipes(command)) or '(none)'}.",
        )
    return recipe


def resolve_settings(recipe: Trainer, given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Command-line values (not None) over recipe settings over built-in defaults.

    Unknown keys in the recipe are an error, so a typo in a recipe file cannot be silently ignored.
    """
    unknown = sorted(set(recipe.settings) - set(defaults))
    if unknown:
        raise FaceganError(
            f"Trainer {recipe.path or recipe.name} has unknown setting(s): {', '.join(unknown)}.",
            f"Known settings of `prepare {recipe.command}`: {', '.join(sorted(defaults))}.",
        )
    resolved = dict(defaults)
    resolved.update(recipe.settings)
    resolved.update({key: value for key, value in given.items() if value is not None})
    return resolved


def check_sizes(settings: dict[str, Any], keys: tuple[str, ...], example: int, reference: str) -> None:
    """FaceganError for values no option parser catches (recipes can hold anything): each of `keys` must
    be a positive integer (or None), and `size` at least 4; `example` and `reference` go into the fix."""
    for key in keys:
        value = settings.get(key)
        if value is not None and (not isinstance(value, int) or value < 1):
            option = f"--{key.replace('_', '-')}"
            raise FaceganError(
                f"{option} must be a positive integer, not {value!r}.", f"Pass e.g. {option} {example}."
            )
    if settings["size"] < 4:
        raise UsageProblem(f"--size {settings['size']} is too small.", f"Use 4 or more ({reference}).")
