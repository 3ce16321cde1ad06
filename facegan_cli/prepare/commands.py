"""One library call per `facegan prepare` command that builds something: the command-line options given
over the recipe's settings over the built-in defaults, then the job; the CLI only parses and renders.

    run_prepare("celeba", "data/celeba-64", src="~/data/CelebA", recipe="celeba-64", given={"size": 64})

The job modules are imported on use (the aligned prepares bring the landmark and warping code).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from facegan_cli.core.outputs import check_outside_inputs
from facegan_cli.core.parallel import default_workers
from facegan_cli.prepare.recipes import load_recipe, resolve_settings

# command -> (module, its built-in defaults, its job function)
JOBS = {
    "celeba": ("facegan_cli.prepare.celeba_crops", "CELEBA_DEFAULTS", "prepare_celeba"),
    "celeba-hq": ("facegan_cli.prepare.celebahq", "CELEBAHQ_DEFAULTS", "prepare_celebahq"),
    "faces": ("facegan_cli.prepare.faces", "FACES_DEFAULTS", "prepare_faces"),
    "synthetic": ("facegan_cli.prepare.synthetic", "SYNTHETIC_DEFAULTS", "prepare_synthetic"),
}


def _setting(value: Any) -> Any:
    """An option's value as a setting: a choice by its name, a path absolute (the manifest records it)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value.resolve())
    return value


def run_prepare(
    command: str,
    out: str | os.PathLike[str],
    *,
    recipe: str,
    given: dict[str, Any],
    src: str | os.PathLike[str] | None = None,
    inputs: Sequence[tuple[str, str | os.PathLike[str] | None]] = (),
    workers: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Run `facegan prepare COMMAND`; returns its summary document.

    `given` holds the options given on the command line by setting name (None: not given; enums and paths
    are turned into settings). `src` and `inputs` ((option, path) pairs) are what `out` must not be, hold or
    lie inside: --force could delete an input, and a re-run would read the output as input. `workers`
    defaults to the CPUs available; `options` go to the job (resume, force, strict, name, device, shard).
    """
    if src is not None:
        check_outside_inputs(Path(out), [("--src", src), *inputs])
    module_name, defaults, job = JOBS[command]
    module = importlib.import_module(module_name)
    chosen = load_recipe(recipe, command=command)
    settings = resolve_settings(chosen, {key: _setting(value) for key, value in given.items()}, getattr(module, defaults))
    run = getattr(module, job)
    workers = workers or default_workers()
    if src is None:
        return run(out, settings, workers=workers, **options)
    return run(src, out, settings, chosen, workers=workers, **options)
