"""Every command follows DESIGN.md's conventions: help with an example, exit codes, no tracebacks."""

from __future__ import annotations

import pytest
import typer
from cli_helpers import invoke_cli

from facegan_cli import __version__
from facegan_cli.cli import app


def _commands() -> list[list[str]]:
    root = typer.main.get_command(app)
    found: list[list[str]] = []

    def walk(cmd: object, path: list[str]) -> None:
        if hasattr(cmd, "commands"):  # get_command: the root loads its commands on use (cli.lazy)
            for name in cmd.list_commands(None):
                walk(cmd.get_command(None, name), [*path, name])
        else:
            found.append(path)

    walk(root, [])
    return found


ALL = _commands()


def test_expected_groups_exist() -> None:
    groups = {path[0] for path in ALL}
    assert {"prepare", "train", "sample", "latent", "models", "weights", "eval"} <= groups


@pytest.mark.parametrize("path", ALL, ids=[" ".join(p) for p in ALL])
def test_every_command_has_help_with_example(path: list[str]) -> None:
    result = invoke_cli([*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`facegan {' '.join(path)} --help` shows no example"


def test_usage_error_is_exit_two() -> None:
    result = invoke_cli(["train", "dcgan", "--no-such-option"])
    assert result.exit_code == 2


def test_version() -> None:
    result = invoke_cli(["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == __version__


def test_debug_shows_traceback_only_when_asked(tmp_path) -> None:
    args = ["sample", "--ckpt", str(tmp_path / "missing"), "--out", str(tmp_path / "g.png")]
    plain = invoke_cli(args)
    assert plain.exit_code == 1 and "Traceback" not in plain.output and "missing" in plain.stderr
    debug = invoke_cli([*args, "--debug"])
    assert debug.exit_code == 1 and "Traceback" in debug.stderr
