"""Usage errors (issue 18 items 8 and the low ones): a command line that cannot be parsed, or an option value
out of range, exits 2 everywhere, and with --json prints the one error document on stdout as well."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import invoke_cli
from typer.testing import Result


def _error_document(result: Result) -> dict:
    """The one JSON document on stdout, which must be an error document of exit status 2."""
    doc = json.loads(result.stdout)  # exactly one document: json.loads refuses trailing text
    assert set(doc) == {"error"} and set(doc["error"]) == {"message", "fix", "exit_status"}, doc
    assert doc["error"]["exit_status"] == 2
    return doc["error"]


# (arguments, a word the message must contain): parse-time errors of several commands.
PARSE_ERRORS = [
    (["translate", "x.png", "--ckpt", "r", "--out", "o", "--bogus"], "--bogus"),
    (["translate", "--ckpt", "r", "--out", "o"], "inputs"),  # missing argument
    (["transfer", "style", "--content", "a.png", "--style", "b.png", "--out", "o", "--size", "abc"], "--size"),
    (["transfer", "features", "x.png", "--ckpt", "r", "--out", "o", "--lr", "nan"], "--lr"),
    (["train", "dcgan", "--out", "r", "--lr", "nan"], "--lr"),
    (["metrics", "fid", "a", "b", "--dims", "many"], "--dims"),
    (["sample", "--ckpt", "r", "--out", "o.png", "--n", "x"], "--n"),
]


@pytest.mark.unit
@pytest.mark.parametrize(("args", "word"), PARSE_ERRORS, ids=[" ".join(a[:2]) + " " + w for a, w in PARSE_ERRORS])
def test_parse_errors_print_the_error_document_with_json(cli: Callable[..., Result], args: list[str], word: str,
                                                         tmp_path: Path) -> None:
    result = cli(*args, "--json")
    assert result.exit_code == 2, result.output
    error = _error_document(result)
    assert word in error["message"]
    assert "Traceback" not in result.output
    # stderr still says it for a person, as without --json.
    assert word in result.stderr


@pytest.mark.unit
def test_parse_errors_without_json_keep_stdout_empty(cli: Callable[..., Result]) -> None:
    result = cli("translate", "x.png", "--ckpt", "r", "--out", "o", "--bogus")
    assert result.exit_code == 2 and result.stdout == "" and "--bogus" in result.stderr


@pytest.mark.unit
def test_a_group_level_error_with_json_as_a_word_prints_no_document(cli: Callable[..., Result]) -> None:
    # `--json` given to something that has no such option (here: no command at all) is not a request for JSON.
    result = cli("no-such-command", "--json")
    assert result.exit_code == 2 and result.stdout == ""


def test_usage_line_names_arguments_in_capitals(cli: Callable[..., Result]) -> None:
    # Typer 0.29 showed required arguments as `{inputs}...`, which reads like an unfilled template.
    result = cli("translate", "--ckpt", "r", "--out", "o")
    assert result.exit_code == 2
    assert "{" not in result.stderr and "INPUTS..." in result.stderr
    shown = cli("transfer", "features", "--help")
    assert "{inputs}" not in shown.stdout and "INPUTS..." in shown.stdout


# (arguments, what the message must say): option values a library check refuses (out of range, a wrong count,
# weights that are all zero), which used to exit 1 in these commands while Typer's range checks exit 2.
BAD_NUMBERS = [
    (["metrics", "kid", "a", "b", "--subset-size", "0"], "--subset-size 0"),
    (["eval", "translation", "--ckpt", "r", "--data", "d", "--kid-subsets", "0"], "--kid-subsets 0"),
    (["eval", "attributes", "--ckpt", "r", "--data", "d", "--kid-subset-size", "1"], "--kid-subset-size 1"),
    (["transfer", "style", "--content", "a.png", "--style", "b.png", "--out", "o", "--layer-weights", "1,2"],
     "--layer-weights"),
    (["transfer", "style", "--content", "a.png", "--style", "b.png", "--style", "c.png", "--out", "o",
      "--style-blend", "0,0"], "must not all be zero"),
    (["runs", "plot", "r", "--out", "curves.png", "--smooth", "2"], "--smooth 2"),
    (["runs", "plot", "r", "--out", "curves.png", "--width", "10"], "10 px wide"),
]


@pytest.mark.parametrize(("args", "words"), BAD_NUMBERS, ids=[w for _, w in BAD_NUMBERS])
def test_bad_numbers_are_usage_errors_with_the_error_document(cli: Callable[..., Result], args: list[str],
                                                              words: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative names: nothing here exists, and nothing may be written
    result = cli(*args, "--device", "cpu", "--json") if args[0] != "runs" else cli(*args, "--json")
    assert result.exit_code == 2, result.output
    error = _error_document(result)
    assert words in error["message"] and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_kid_subsets_message_names_the_eval_option(cli: Callable[..., Result], tmp_path: Path) -> None:
    # eval translation used to say "--subsets 0", an option it does not have.
    result = cli("eval", "translation", "--ckpt", tmp_path / "r", "--data", tmp_path / "d", "--kid-subsets", 0)
    assert result.exit_code == 2 and "--kid-subsets 0" in result.stderr
    assert " --subsets" not in " ".join(result.stderr.split())


def test_control_characters_in_stdin_paths_are_escaped(tmp_path: Path) -> None:
    # A NUL byte (or an escape sequence) read from stdin used to be echoed raw into the terminal.


    (tmp_path / "edits").mkdir()
    for stdin, shown in (("bad\x00name.png\n", "bad\\x00name.png"), ("\x1b[31mred.png\n", "\\x1b[31mred.png")):
        result = invoke_cli(["explain", "--input", "-", "--edited", str(tmp_path / "edits"), "--out",
                                          str(tmp_path / "h.png"), "--json"], input=stdin)
        assert result.exit_code == 1, result.output
        for stream in (result.stderr, result.stdout):
            assert "\x00" not in stream and "\x1b" not in stream
        assert shown in result.stderr and shown in json.loads(result.stdout)["error"]["message"]


@pytest.mark.unit
def test_display_name_escapes_control_characters() -> None:
    from facegan_cli.data.imageio import display_name

    assert display_name("a\x00b\n\t\x7f.png") == "a\\x00b\\n\\t\\x7f.png"
    assert display_name("caf\udce9.jpg") == "caf\\xe9.jpg" and display_name("plain é.png") == "plain é.png"
