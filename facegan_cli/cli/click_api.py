"""The parts of click the CLI uses, from wherever this Typer keeps them.

Typer up to 0.2x depends on click; newer releases vendor it as `typer._click`. Importing through this one
module keeps the rest of cli/ independent of which kind is installed.
"""

from __future__ import annotations

try:
    from typer._click import echo
    from typer._click.core import Context, ParameterSource
    from typer._click.exceptions import ClickException, UsageError
    from typer._click.globals import get_current_context
except ImportError:  # a Typer that depends on click instead of vendoring it
    from click import Context, echo, get_current_context  # type: ignore[no-redef]
    from click.core import ParameterSource  # type: ignore[no-redef]
    from click.exceptions import ClickException, UsageError  # type: ignore[no-redef]

__all__ = ["ClickException", "Context", "ParameterSource", "UsageError", "echo", "get_current_context"]
