"""Start-up stays light: the commands that only read or describe import neither torch nor OpenCV, and every
top-level command is declared once (cli.COMMANDS) with the help its own module gives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facegan_cli.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "cv2")
# Run `facegan ARGS` in a fresh interpreter and report which heavy modules it imported.
_PROBE = """
import json, sys
from facegan_cli.cli import app
try:
    app(args=sys.argv[1:], prog_name="facegan")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
sys.stdout = sys.__stdout__
print(json.dumps({"exit": code or 0, "heavy": [m for m in HEAVY if m in sys.modules]}))
""".replace("HEAVY", repr(HEAVY))


def _probe(*args: str, cwd: Path = ROOT, home: Path | None = None) -> tuple[int, list[str], str]:
    """Exit status, heavy modules imported and output of `facegan ARGS` (cache folder `home` where given)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120", **({"FACEGAN_HOME": str(home)} if home else {})}
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)
    *output, last = done.stdout.strip().splitlines()
    report = json.loads(last)
    return report["exit"], report["heavy"], "\n".join(output)


def _heavy_after(*args: str, cwd: Path = ROOT) -> tuple[int, list[str]]:
    status, heavy, _ = _probe(*args, cwd=cwd)
    return status, heavy


@pytest.mark.unit
def test_importing_the_cli_imports_no_torch_or_opencv() -> None:
    probe = f"import sys, facegan_cli.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


LIGHT = [
    ["--help"], ["--version"], ["prepare", "recipes"], ["weights", "list"],
    *[[name, "--help"] for name in ("prepare", "weights", "eval", "metrics", "runs", "latent", "transfer", "sample",
                                   "edit", "translate")],
]


@pytest.mark.parametrize("args", LIGHT, ids=[" ".join(a) for a in LIGHT])
def test_describing_commands_import_no_torch_or_opencv(args: list[str]) -> None:
    status, heavy = _heavy_after(*args)
    assert status == 0 and heavy == [], f"`facegan {' '.join(args)}` exit {status}, imported {heavy}"


FAMILY_DESCRIBING = [["train", "--help"], ["train", "dcgan", "--help"], ["models", "list"], ["models", "summary", "--help"]]


def test_family_commands_describe_themselves_without_torch_after_one_call(tmp_path: Path) -> None:
    """The first describing call reads the real declarations (torch included) and writes the snapshot
    (cli.declarations); from then on they import neither torch nor OpenCV, and show the same."""
    status, heavy, first = _probe("train", "dcgan", "--help", home=tmp_path)
    assert status == 0 and "torch" in heavy and (tmp_path / "declarations.json").is_file()
    for args in FAMILY_DESCRIBING:
        status, heavy, output = _probe(*args, home=tmp_path)
        assert status == 0 and heavy == [], f"`facegan {' '.join(args)}` exit {status}, imported {heavy}"
        if args == ["train", "dcgan", "--help"]:
            assert output == first
    status, heavy, _ = _probe("train", "dcgan", "--steps", "1", home=tmp_path)  # runs: the real declarations
    assert status == 2 and "torch" in heavy


def test_runs_list_and_show_import_no_torch(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "one"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"family": "dcgan", "model": {}, "data": {}, "train": {}}))
    for args in (["runs", "list", str(tmp_path / "runs")], ["runs", "show", str(run)]):
        status, heavy = _heavy_after(*args)
        assert heavy == [], f"`facegan {' '.join(args)}` imported {heavy}"


def test_a_command_that_runs_a_network_does_load_torch(tmp_path: Path) -> None:
    """The probe sees imports: the same check on a command that needs torch finds it."""
    status, heavy = _heavy_after("sample", "--ckpt", str(tmp_path / "missing"), "--out", str(tmp_path / "g.png"))
    assert status == 1 and "torch" in heavy


@pytest.mark.unit
def test_each_declaration_is_its_commands_own_first_paragraph() -> None:
    names = [declared.name for declared in COMMANDS]
    assert len(set(names)) == len(names)
    for declared in COMMANDS:
        command = declared.load()
        assert command.name == declared.name
        assert (command.help or "").split("\n\n")[0].strip() == declared.short, declared.name
