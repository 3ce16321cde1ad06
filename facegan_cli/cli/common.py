"""Shared CLI plumbing: error handling and result output.

Every command is wrapped by `command(...)`, which turns a FaceganError into one paragraph on stderr and
exit status 1 (a traceback only with --debug), applies --quiet, and keeps stdout for results alone:
while a command runs, anything a library prints to `sys.stdout` (torch.hub's download notes, say) goes
to stderr, and results reach the real stdout only through `emit_json`, `emit_result`, `emit_line` and
`result_console`. With --json a failure prints one JSON error document on stdout as well.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from facegan_cli.cli import click_api, help_snapshot
from facegan_cli.cli.lazy import LazyCommand, Placeholder
from facegan_cli.core import launch
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.files import display_name

if TYPE_CHECKING:  # rich is imported where a result is shown: `facegan --version` needs none of it
    from rich.console import Console
    from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])


# The stream results go to: the real stdout of the running command (library prints are sent to stderr).
_results: list[Any] = []


def result_stream() -> Any:
    return _results[-1] if _results else sys.stdout


@contextlib.contextmanager
def _stdout_for_results_only() -> Iterator[None]:
    # Under torchrun every rank runs the command and computes the same result; rank 0 alone prints it.
    _results.append(sys.stdout if launch.env_rank() == 0 else io.StringIO())
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _results.pop()


# What the --json option's parameter is called in the commands (Typer's name or an Opt's).
_JSON_PARAMETERS = ("json", "json_out")


def _disk_full(exc: BaseException) -> FaceganError | None:
    """A full disk or quota, wherever it struck, as the user's problem it is."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" while writing {exc.filename}" if exc.filename else ""
        return FaceganError(
            f"The disk is full ({exc.strerror}){where}; the command stopped, and no output it left is marked "
            "complete.",
            "Free some space (or choose an --out on another disk) and run the command again (with --resume where "
            "the command has it).",
        )
    return None


def _json_error(as_json: bool, message: str, fix: str, exit_status: int) -> None:
    if as_json:
        emit_json({"error": {"message": message, "fix": fix, "exit_status": exit_status}})


def _fail(error: FaceganError, as_json: bool, debug: bool) -> NoReturn:
    """The user's error as one paragraph on stderr (the traceback too with --debug), and exit 1."""
    if debug:
        traceback.print_exc()
    # display_name: a file name that is not UTF-8 is shown with \xNN escapes, as everywhere else.
    message, fix = display_name(error.message), display_name(error.fix)
    typer.echo(f"Error: {message}" + (f" {fix}" if fix else ""), err=True)
    _json_error(as_json, message, fix, 1)
    raise typer.Exit(1) from None


def command(fn: F) -> F:
    """Wrap a Typer command: --quiet, user errors as one paragraph + exit 1, tracebacks only with --debug,
    stdout reserved for results (and with --json, one JSON document even on failure)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from facegan_cli.core import progress

        progress.set_quiet(bool(kwargs.get("quiet")))
        debug = bool(kwargs.get("debug")) or os.environ.get("FACEGAN_DEBUG") == "1"
        as_json = any(bool(kwargs.get(name)) for name in _JSON_PARAMETERS)
        with _stdout_for_results_only():
            try:
                return fn(*args, **kwargs)
            except (typer.Exit, typer.Abort, SystemExit):
                raise
            except click_api.ClickException as exc:  # a usage error found inside the command: exit 2 as Typer's
                _json_error(as_json, exc.format_message(), "", exc.exit_code)
                exc.facegan_reported = True  # type: ignore[attr-defined]  # FaceganGroup prints no second document
                raise
            except UsageProblem as exc:  # the library's word for a usage error: exit 2 as well
                _json_error(as_json, display_name(exc.message), display_name(exc.fix), 2)
                usage = click_api.UsageError(display_name(exc.paragraph()), click_api.get_current_context())
                usage.facegan_reported = True  # type: ignore[attr-defined]
                raise usage from None
            except FaceganError as exc:
                _fail(exc, as_json, debug)
            except KeyboardInterrupt:
                typer.echo("Interrupted.", err=True)
                _json_error(as_json, "Interrupted.", "", 130)
                raise typer.Exit(130) from None
            except Exception as exc:  # a bug: say so in one line, keep the traceback for --debug
                _fail(_disk_full(exc) or FaceganError(
                    f"internal error ({type(exc).__name__}: {exc}).",
                    "This is a facegan bug; re-run with --debug to see the traceback and please report it.",
                ), as_json, debug)

    return wrapper  # type: ignore[return-value]


# The command line being run (FaceganGroup.main records it): a usage error found while parsing it is
# reported as a JSON document only when the user asked for --json on it.
_argv: list[list[str]] = []


def _asked_for_json(error: click_api.UsageError) -> bool:
    """True when the command that failed to parse takes --json and the command line gives it."""
    command = error.ctx.command if error.ctx is not None else None
    if command is None or not any("--json" in param.opts for param in command.params):
        return False
    tokens = _argv[-1] if _argv else sys.argv[1:]
    given = tokens[: tokens.index("--")] if "--" in tokens else tokens  # after `--` it is a file name
    return "--json" in given


class FaceganGroup(TyperGroup):
    """The root `facegan` group. Its commands are declared by `lazy` (cli.lazy.LazyCommand, set by the root
    app) and imported when one is run or shows its own help: the root's --help lists their declarations.

    A usage error found while the command line is parsed (an unknown option,
    `--size abc`, a value a callback refuses, a missing argument) happens before any command runs, so
    `command()` never sees it; with --json it is reported here as the same one error document on stdout,
    exit status 2, as the usage errors a command finds itself."""

    lazy: tuple[LazyCommand, ...] = ()
    _listing = False  # while the root's help or completion lists the commands: their declarations serve

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        for declared in self.lazy:
            self.commands.setdefault(declared.name, Placeholder(declared))

    def get_command(self, ctx: click_api.Context, cmd_name: str) -> Any:
        found = self.commands.get(cmd_name)
        if isinstance(found, Placeholder) and not self._listing:
            found = self.commands[cmd_name] = found.declared.load()
        return found

    def _listing_only(self, method: Callable[..., Any], *args: Any) -> Any:
        self._listing = True
        try:
            return method(*args)
        finally:
            self._listing = False

    def format_help(self, ctx: click_api.Context, formatter: Any) -> None:
        if ctx.parent is not None:
            self._listing_only(super().format_help, ctx, formatter)
            return
        # The root's help: written back from the snapshot of an earlier rendering for this terminal, else
        # rendered (rich prints it to sys.stdout) and recorded (cli.help_snapshot).
        code, terminal = help_snapshot.code_key(), help_snapshot.terminal_key(ctx.command_path, sys.stdout)
        text = help_snapshot.recorded(code, terminal)
        if text is not None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        with help_snapshot.copying_stdout() as copy:
            self._listing_only(super().format_help, ctx, formatter)
        # Only what rich printed itself: without rich (TYPER_USE_RICH=0) the help goes to `formatter`.
        if copy.parts and not formatter.getvalue():
            help_snapshot.record(code, terminal, "".join(copy.parts))

    def shell_complete(self, ctx: click_api.Context, incomplete: str) -> Any:
        return self._listing_only(super().shell_complete, ctx, incomplete)

    def main(self, args: Sequence[str] | None = None, *rest: Any, **options: Any) -> Any:
        _argv.append(list(sys.argv[1:] if args is None else args))
        try:
            return super().main(args, *rest, **options)
        finally:
            _argv.pop()

    def invoke(self, ctx: click_api.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click_api.UsageError as exc:
            if not getattr(exc, "facegan_reported", False) and _asked_for_json(exc) and launch.env_rank() == 0:
                hint = f"See '{exc.ctx.command_path} --help'." if exc.ctx is not None else ""
                emit_json({"error": {"message": display_name(exc.format_message()), "fix": hint, "exit_status": 2}})
            raise


class FaceganCommand(TyperCommand):
    """A command whose usage line names its arguments as click does (`INPUTS...`, `[FOLDER]`): Typer 0.29
    writes required ones as `{inputs}...`, which reads like a template left unfilled."""

    def collect_usage_pieces(self, ctx: click_api.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "").upper()
                name = name if param.required else f"[{name}]"
                pieces.append(f"{name}..." if param.nargs != 1 else name)
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class FaceganTyper(typer.Typer):
    """typer.Typer whose commands are FaceganCommands (cli.params.group and the root app use it)."""

    def command(self, *args: Any, cls: type[TyperCommand] | None = None, **options: Any) -> Any:
        return super().command(*args, cls=cls or FaceganCommand, **options)


def emit_json(payload: Any) -> None:
    """The one JSON document of a --json command, on stdout."""
    out = result_stream()
    out.write(json.dumps(payload, indent=2, default=_json_default) + "\n")
    out.flush()


def emit_line(text: str) -> None:
    """One line of a command's result on stdout."""
    click_api.echo(text, file=result_stream())


def result_console() -> Console:
    """A rich console on stdout for result tables."""
    from rich.console import Console

    return Console(file=result_stream())


def result_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[str]] = (), left: int | None = None,
                 no_wrap: bool = False, **options: Any) -> Table:
    """A result table: the first `left` columns (all by default) left-aligned, the others (numbers) right-aligned;
    `options` go to rich's Table."""
    from rich.table import Table

    table = Table(title=title, **options)
    for k, column in enumerate(columns):
        table.add_column(column, justify="left" if left is None or k < left else "right", no_wrap=no_wrap)
    for row in rows:
        table.add_row(*row)
    return table


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def emit_result(doc: Any, as_json: bool, render: Callable[[Any], Iterable[object] | Table]) -> None:
    """A command's result: its one JSON document with --json, otherwise render(doc) on stdout: a table, or
    lines (paths first)."""
    if as_json:
        emit_json(doc)
        return
    from rich.table import Table

    shown = render(doc)
    if isinstance(shown, Table):
        result_console().print(shown)
        return
    for line in shown:
        emit_line(str(line))
