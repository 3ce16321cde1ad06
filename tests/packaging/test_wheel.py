"""The built wheel works without the source tree: it carries data_recipes/, installs into a fresh venv with
its dependencies satisfied (`pip check` clean), and prepare + train + sample run from it.

Offline, the fresh venv cannot download torch: it sees this environment's installed distributions through
a folder of links to them (facegan's own editable install left out), named in a .pth file. The venv is
otherwise fresh (not --system-site-packages: this interpreter's own site-packages are another venv's, and
their .pth files would bring back the editable facegan), so pip installs facegan from the wheel alone and
checks every requirement against what it sees."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ("facegan_cli", "data_recipes", "pyproject.toml", "setup.py", "README.md", "LICENSE")
RECIPES = sorted(p.stem for p in (ROOT / "data_recipes").glob("*.toml"))


# Without PYTHONPATH: the source tree (and any facegan.egg-info in it) must not be seen.
CLEAN = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _run(*args: str | Path, cwd: Path, env: dict[str, str] = CLEAN) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, f"{' '.join(map(str, args))}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _dependencies_folder(tmp: Path) -> Path:
    """Links to every installed distribution of this environment except facegan's own (editable) install."""
    site = Path(sysconfig.get_paths()["purelib"])
    folder = tmp / "deps"
    folder.mkdir()
    for entry in site.iterdir():
        name = entry.name.lower()
        if "facegan" in name or name.endswith(".pth") or name == "__pycache__" or name.startswith("pip"):
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


@pytest.mark.slow
def test_wheel_installs_and_runs_without_the_source_tree(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in SOURCE:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name)
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp_path / "dist",
         source, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("facegan-*.whl"))
    shipped = zipfile.ZipFile(wheel).namelist()
    assert sorted(Path(n).stem for n in shipped if n.startswith("facegan_cli/data_recipes/")) == RECIPES

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).strip())
    for bundled in (*site.glob("setuptools*"), *site.glob("_distutils_hack"), *site.glob("distutils-precedence.pth")):
        # ensurepip's old setuptools would hide the one torch requires (>= 77) among the dependencies
        shutil.rmtree(bundled) if bundled.is_dir() else bundled.unlink()
    (site / "facegan-test-dependencies.pth").write_text(f"{_dependencies_folder(tmp_path)}\n")
    _run(python, "-m", "pip", "install", "--no-index", "--no-build-isolation", wheel, cwd=tmp_path)
    assert "No broken requirements found" in _run(python, "-m", "pip", "check", cwd=tmp_path)

    work = tmp_path / "work"  # no source tree here or on the path
    work.mkdir()
    env = {**CLEAN, "FACEGAN_HOME": str(tmp_path / "home"), "FACEGAN_QUIET": "1"}
    where = _run(python, "-c", "import facegan_cli; print(facegan_cli.__file__)", cwd=work, env=env)
    assert Path(where.strip()).is_relative_to(env_dir)
    facegan = env_dir / "bin" / "facegan"
    listed = json.loads(_run(facegan, "prepare", "recipes", "--json", cwd=work, env=env))
    assert sorted(r["name"] for r in listed) == RECIPES
    _run(facegan, "prepare", "synthetic", "--out", "faces", "--n", "24", "--size", "64", "--seed", "0", cwd=work, env=env)
    _run(facegan, "prepare", "celeba", "--src", "faces", "--out", "faces32", "--recipe", "celeba-32", cwd=work, env=env)
    _run(facegan, "train", "dcgan", "--data", "faces32", "--out", "run", "--preset", "heikka32", "--width", "8",
         "--g-width", "8", "--batch", "8", "--steps", "2", "--device", "cpu", "--no-tensorboard", cwd=work, env=env)
    out = _run(facegan, "sample", "--ckpt", "run", "--n", "4", "--out", "grid.png", "--device", "cpu", cwd=work, env=env)
    assert (work / "grid.png").is_file() and "grid.png" in out
