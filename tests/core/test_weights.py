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


@pytest.mark.unit
def test_cache_follows_facegan_home_then_xdg_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("FACEGAN_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert W.cache_dir() == tmp_path / "user" / ".cache" / "facegan" / "weights"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # the XDG rule: a relative path is ignored
    assert W.facegan_home() == tmp_path / "user" / ".cache" / "facegan"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert W.cache_dir() == tmp_path / "xdg" / "facegan" / "weights"
    listed = json.loads(invoke_cli(["weights", "list", "--json"]).stdout)
    assert listed["cache"] == str(tmp_path / "xdg" / "facegan" / "weights")  # what `weights list` shows
    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path / "mine"))
    assert W.cache_dir() == tmp_path / "mine" / "weights"


class _HalfThenRange:
    """A local HTTP server for one file: the first GET is cut off half-way (the connection closes), later
    ones honour `Range: bytes=N-` with 206 Partial Content, as a CDN does. It records the Range headers."""

    def __init__(self, payload: bytes) -> None:
        import http.server
        import threading

        self.payload, self.ranges, self.cut = payload, [], True
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                asked = self.headers.get("Range")
                owner.ranges.append(asked)
                start = int(asked.split("=")[1].rstrip("-")) if asked else 0
                body = owner.payload[start:]
                self.send_response(206 if asked else 200)
                self.send_header("Content-Length", str(len(body)))
                if asked:
                    self.send_header("Content-Range", f"bytes {start}-{len(owner.payload) - 1}/{len(owner.payload)}")
                self.end_headers()
                if owner.cut:
                    owner.cut = False
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/weights.pth"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_interrupted_download_resumes_with_range_and_is_verified(homes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    entry = W.WeightsFile("fake", f"fake-{prefix}.pth", "", "tests")
    server = _HalfThenRange(payload)
    try:
        monkeypatch.setitem(W.KNOWN, "fake", W.WeightsFile(entry.key, entry.filename, server.url, "tests"))
        first = invoke_cli(["weights", "fetch", "fake"])
        assert first.exit_code == 1 and "stopped after" in first.stderr and "again" in first.stderr
        partial = W.partial_path(W.get("fake"))
        assert partial.stat().st_size == len(payload) // 2  # the half that arrived is kept ...
        assert not (W.cache_dir() / entry.filename).exists()  # ... and does not look complete
        second = invoke_cli(["weights", "fetch", "fake", "--json"])
        assert second.exit_code == 0, second.output
        assert server.ranges == [None, f"bytes={len(payload) // 2}-"]  # continued, not downloaded again
        path = Path(json.loads(second.stdout)["path"])
        assert path.read_bytes() == payload and not partial.exists()
    finally:
        server.close()


def test_resumed_download_that_fails_the_sha256_is_thrown_away(homes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = b"the real file " * 5000
    server = _HalfThenRange(payload)
    try:
        wrong = hashlib.sha256(b"another file").hexdigest()[:8]
        monkeypatch.setitem(W.KNOWN, "fake", W.WeightsFile("fake", f"fake-{wrong}.pth", server.url, "tests"))
        assert invoke_cli(["weights", "fetch", "fake"]).exit_code == 1
        again = invoke_cli(["weights", "fetch", "fake"])
        assert again.exit_code == 1 and "SHA-256" in again.stderr
        assert not W.partial_path(W.get("fake")).exists() and not (W.cache_dir() / f"fake-{wrong}.pth").exists()
    finally:
        server.close()
