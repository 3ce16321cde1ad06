"""pyproject.toml declares exactly what facegan_cli imports, and the torch it allows has every API facegan
calls (the floor is the first release with safe weights-only loading, 2.6: CVE-2025-32434)."""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import io
import pickle
import re
import sys
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from packaging.version import Version

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - the backport facegan declares for 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Imports that need no declaration of their own: typer before 0.20 depended on click and cli/click_api.py
# falls back to it; face_recognition_models is located by name, never imported (align/dlib_backend.py).
UNDECLARED_OK = {"click"}
# Modules whose distribution may not be installed here (an extra, another Python): the name it comes under.
NOT_INSTALLED_HERE = {"dlib": "dlib-bin", "tomli": "tomli"}


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


def _imported_modules() -> set[str]:
    """Top-level names of every absolute import in facegan_cli, without the standard library's."""
    found: set[str] = set()
    for path in (ROOT / "facegan_cli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "facegan_cli"}


def _distributions_of(module: str) -> set[str]:
    return {re.sub(r"[-_.]+", "-", d).lower() for d in importlib.metadata.packages_distributions().get(module, [])}


@pytest.mark.unit
def test_every_import_is_declared_and_every_dependency_imported() -> None:
    core = {_name(r) for r in PROJECT["dependencies"]}
    extras = {_name(r) for reqs in PROJECT["optional-dependencies"].values() for r in reqs}
    imported = _imported_modules()
    assert {"torch", "cv2", "matplotlib", "numpy", "PIL", "typer"} <= imported  # the scan sees the imports
    for module in sorted(imported - UNDECLARED_OK):
        owners = _distributions_of(module) or {NOT_INSTALLED_HERE.get(module, "")} - {""}
        assert owners, f"{module} is imported but installed by no distribution here"
        assert owners & (core | extras), f"facegan_cli imports {module} ({', '.join(owners)}) but pyproject does not declare it"
    provided = set().union(*(_distributions_of(m) for m in imported))
    unused = {name for name in core if name not in provided and name != "tomli"}
    assert not unused, f"declared but never imported by facegan_cli: {unused}"
    assert "tomli>=1.1; python_version < '3.11'" in PROJECT["dependencies"]  # the backport only where needed


@pytest.mark.unit
def test_torch_floor_is_the_safe_loading_release_and_installed_torch_meets_it() -> None:
    torch_req = next(Requirement(r) for r in PROJECT["dependencies"] if _name(r) == "torch")
    floors = [Version(spec.version) for spec in torch_req.specifier if spec.operator == ">="]
    assert floors and floors[0] >= Version("2.6"), "torch < 2.6 loads untrusted files unsafely (CVE-2025-32434)"
    assert Version(torch.__version__.split("+")[0]) in torch_req.specifier


@pytest.mark.unit
def test_the_torch_apis_facegan_calls_exist() -> None:
    # core/statefile.py: the allow-list context manager (torch 2.5+).
    with torch.serialization.safe_globals([]):
        pass
    assert "weights_only" in inspect.signature(torch.load).parameters
    assert "assign" in inspect.signature(torch.nn.Module.load_state_dict).parameters  # features/base.py
    assert "antialias" in inspect.signature(torch.nn.functional.interpolate).parameters  # metrics/protocols.py
    assert callable(torch.compile)  # train --compile


class _Payload:
    def __reduce__(self):  # what a malicious checkpoint does: run code when unpickled
        return (print, ("pwned",))


@pytest.mark.unit
def test_weights_only_loading_refuses_a_pickled_callable() -> None:
    """The behaviour the floor is for: torch.load(weights_only=True) rejects a file that would run code."""
    buffer = io.BytesIO()
    torch.save({"x": torch.zeros(1), "evil": _Payload()}, buffer)
    buffer.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(buffer, map_location="cpu", weights_only=True)
