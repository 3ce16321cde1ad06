"""The declarations snapshot (cli/declarations.py): the help it renders is the help the real declarations
render, for every family; any edit, a corrupt or foreign file, or a live registry makes it a miss; a cache
folder that cannot be written means no snapshot, never an error."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import invoke_cli

from facegan_cli.cli import declarations
from facegan_cli.models import registry
from facegan_cli.train.spec import training_spec

TRAINED = sorted(name for name in registry.families() if training_spec(name) is not None)


@pytest.fixture(scope="module")
def parts() -> dict[str, Any]:
    """The snapshot's parts, through JSON as a later process reads them."""
    return json.loads(json.dumps(declarations.make()))


def _from_snapshot(monkeypatch: pytest.MonkeyPatch, parts: dict[str, Any]) -> None:
    """Make the commands build as a fresh process with a current snapshot does."""
    monkeypatch.setattr(declarations, "registry_is_live", lambda: False)
    monkeypatch.setattr(declarations, "read", lambda: parts)
    monkeypatch.setattr(declarations, "store", lambda: pytest.fail("a snapshot hit wrote the snapshot"))


DESCRIBING = [["train", "--help"], *[["train", name, "--help"] for name in TRAINED], ["models", "list"],
              ["models", "list", "--json"], ["models", "summary", "--help"], ["models", "--help"]]


@pytest.mark.parametrize("args", DESCRIBING, ids=[" ".join(a) for a in DESCRIBING])
def test_the_snapshot_renders_what_the_real_declarations_render(
    args: list[str], parts: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    live = invoke_cli(args)  # the registry is imported in this process: the live declarations
    assert live.exit_code == 0, live.output
    _from_snapshot(monkeypatch, parts)
    described = invoke_cli(args)
    assert described.exit_code == 0, described.output
    assert described.output == live.output


def test_a_described_command_runs_the_real_one(parts: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """Without --help the snapshot's command hands the command line to the real command: its parsing, its
    checks (an Opt.check the snapshot cannot hold) and its run."""
    from facegan_cli.cli import train

    loaded: list[str] = []
    real = train._live_command
    monkeypatch.setattr(train, "_live_command", lambda name: loaded.append(name) or real(name))
    _from_snapshot(monkeypatch, parts)
    refused = invoke_cli(["train", "dcgan", "--device", "tpu9", "--out", tmp_path / "run", "--data", tmp_path])
    assert refused.exit_code == 2 and "tpu9" in refused.output and loaded == ["dcgan"]
    missing = invoke_cli(["train", "dcgan", "--steps", "1"])
    assert missing.exit_code == 2 and "needs --data and --out" in " ".join(missing.output.split())
    assert loaded == ["dcgan", "dcgan"]


def test_a_registry_changed_in_process_is_not_described_by_the_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This process imported the registry (a test may register a family): no snapshot is read or written."""
    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path))
    assert declarations.registry_is_live()
    declarations.store()
    assert declarations.path().exists()
    assert declarations.read() is None
    result = invoke_cli(["models", "list", "--json"])
    assert {e["family"] for e in json.loads(result.output)["families"]} == set(registry.families())


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A snapshot keyed by a small package of its own, stored in a cache folder of its own."""
    root = tmp_path / "pkg"
    (root / "models").mkdir(parents=True)
    (root / "models" / "family.py").write_text("X = 1\n")
    monkeypatch.setattr(declarations, "_PACKAGE", root)
    monkeypatch.setattr(declarations, "registry_is_live", lambda: False)
    monkeypatch.setattr(declarations, "make", lambda: {"train": [], "models": {"families": [], "arch_options": []}})
    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path / "home"))
    declarations.store()
    assert declarations.read() is not None
    return root


@pytest.mark.unit
def test_any_edit_makes_the_snapshot_stale(package: Path) -> None:
    source = package / "models" / "family.py"
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))
    assert declarations.read() is None
    declarations.store()
    assert declarations.read() is not None
    (package / "models" / "new_family.py").write_text("")
    assert declarations.read() is None


@pytest.mark.unit
@pytest.mark.parametrize("content", [b'{"format": 1', b"[]", b"null", b"{}", b'{"format": "facegan-declarations/1"}',
                                     b"\x80\x81 not text", b'{"format": "facegan-declarations/1", "key": 5, "parts": 1}'])
def test_a_corrupt_or_foreign_snapshot_is_a_miss(package: Path, content: bytes) -> None:
    declarations.path().write_bytes(content)
    assert declarations.read() is None


@pytest.mark.unit
def test_a_snapshot_of_another_shape_under_the_right_key_is_a_miss(package: Path) -> None:
    doc = json.loads(declarations.path().read_text())
    doc["parts"] = {"train": []}
    declarations.path().write_text(json.dumps(doc))
    assert declarations.read() is None


@pytest.mark.unit
def test_a_cache_folder_that_cannot_be_written_means_no_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("FACEGAN_HOME", str(blocker / "home"))  # below a file: no folder can be made
    monkeypatch.setattr(declarations, "make", lambda: {"train": [], "models": {}})
    declarations.store()
    assert declarations.read() is None


@pytest.mark.unit
def test_options_survive_json(parts: dict[str, Any]) -> None:
    """Every option of every family command reads back as it was declared (but its `check`)."""
    from dataclasses import replace

    from facegan_cli.cli import train

    for name, _help, _epilog, options in train._families():
        for opt in options:
            back = declarations.decode_opt(json.loads(json.dumps(declarations.encode_opt(opt))))
            assert back == replace(opt, check=None), (name, opt.name)


def test_a_snapshot_part_of_another_shape_falls_back_to_the_real_declarations(
    parts: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    live = invoke_cli(["train", "--help"]).output
    stored: list[bool] = []
    _from_snapshot(monkeypatch, {**parts, "train": [{"name": "dcgan"}]})
    monkeypatch.setattr(declarations, "store", lambda: stored.append(True))
    result = invoke_cli(["train", "--help"])
    assert result.exit_code == 0 and result.output == live and stored == [True]
