"""`facegan weights`: cache, torch hub reuse, SHA-256 prefix checks, and the offline failure message."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cli_helpers import invoke_cli

from facegan_cli.core import weights as W
from facegan_cli.core.errors import FaceganError


@pytest.fixture()
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def _fake_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str | None = None) -> tuple[str, Path]:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"not really an inception network" * 100)
    prefix = hashlib.sha256(blob.read_bytes()).hexdigest()[:8]
    named = tmp_path / f"fake-{prefix}.pth"
    named.write_bytes(blob.read_bytes())
    entry = W.WeightsFile("fake", named.name, url or named.as_uri(), "tests")
    monkeypatch.setitem(W.KNOWN, "fake", entry)
    return "fake", named


def test_import_verifies_prefix_and_caches(homes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, source = _fake_weights(homes, monkeypatch)
    result = invoke_cli(["weights", "import", key, str(source)])
    assert result.exit_code == 0, result.output
    assert (homes / "home" / "weights" / source.name).read_bytes() == source.read_bytes()
    wrong = homes / "wrong.pth"
    wrong.write_bytes(b"something else")
    bad = invoke_cli(["weights", "import", key, str(wrong)])
    assert bad.exit_code == 1 and "SHA-256" in bad.stderr and "Traceback" not in bad.output


def test_torch_hub_copy_is_reused(homes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, source = _fake_weights(homes, monkeypatch, url="http://127.0.0.1:9/unreachable")
    hub = homes / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / source.name).write_bytes(source.read_bytes())
    assert W.require(key) == hub / source.name
    listed = json.loads(invoke_cli(["weights", "list", "--json"]).stdout)
    assert {"key": key, "path": str(hub / source.name)}.items() <= next(
        r for r in listed["weights"] if r["key"] == key).items()


def test_fetch_downloads_atomically(homes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, source = _fake_weights(homes, monkeypatch)  # a file:// URL stands in for the network
    result = invoke_cli(["weights", "fetch", key, "--json"])
    assert result.exit_code == 0, result.output
    path = Path(json.loads(result.stdout)["path"])
    assert path.read_bytes() == source.read_bytes()
    assert not list(path.parent.glob("*.partial"))


@pytest.mark.unit
def test_offline_without_file_names_file_url_and_import_line(homes: Path) -> None:
    w = W.get("fid-inception")
    monkeypatch_url = W.WeightsFile(w.key, w.filename, "http://127.0.0.1:9/pt_inception.pth", w.used_by)
    with pytest.raises(FaceganError) as info:
        W.fetch(monkeypatch_url, timeout=2)
    text = info.value.paragraph()
    assert w.filename in text and "127.0.0.1:9" in text and "facegan weights import fid-inception" in text


def test_verify_of_missing_cache_exits_one(homes: Path) -> None:
    result = invoke_cli(["weights", "verify", "vgg19"])
    assert result.exit_code == 1 and "vgg19-dcbb9e9d.pth" in result.stderr
