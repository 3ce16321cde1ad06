"""The one in-process CLI runner every test shares: `invoke_cli([...])` runs `facegan ...` and returns click's
Result (stdout and stderr kept apart); the `cli` fixture of conftest.py is built on it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from typer.testing import CliRunner, Result

RUNNER = CliRunner()


def invoke_cli(args: Sequence[Any], **kwargs: Any) -> Result:
    """`facegan ARGS` in this process (each argument passed through str()); kwargs go to CliRunner.invoke
    (input= for stdin, env=, ...)."""
    # Imported here, not at module level: a broken command module must not stop every test's collection.
    from facegan_cli.cli import app

    return RUNNER.invoke(app, [str(a) for a in args], **kwargs)
