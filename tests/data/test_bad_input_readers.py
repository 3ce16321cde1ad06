"""Hostile and odd inputs met by every image reader (issue 10): prepare, the training readers
(data.sources) and the metrics inputs (metrics.inputs) share one decode-and-reject path.

Covered: file names that are not UTF-8, dangling symlinks, symlink loops, unreadable files, FIFOs,
sockets and devices named like images, decompression bombs (pixels declared in the header, zip members
declaring gigabytes, files above the byte limit), 16-bit images without int64 copies, labels.csv in
Latin-1. Every image here is tiny; the one test that could hang or eat memory before the fix runs in
a subprocess under a timeout and an address-space limit.
"""

from __future__ import annotations

import errno
import io
import json
import os
import socket
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from metrics_helpers import MetricsWorld, metrics_args, world  # noqa: F401
from PIL import Image

from facegan_cli.core.errors import FaceganError
from facegan_cli.data import imageio
from facegan_cli.data.imageio import RejectedImage, load_rgb
from facegan_cli.data.prepared import PreparedDataset
from facegan_cli.data.sources import open_image_set
from facegan_cli.metrics.inputs import open_source

ROOT = Path(__file__).resolve().parents[2]
LATIN = os.fsdecode(b"caf\xe9.png")  # a Latin-1 file name: not valid UTF-8
BAD_LATIN = os.fsdecode(b"broken\xff.jpg")
MAX_PIXELS_ENV = "FACEGAN_MAX_PIXELS"  # set by `facegan --max-pixels N`; inherited by workers


def _png(path: Path | str, side: int = 40, seed: int = 0) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="PNG")


def _good_folder(folder: Path, count: int = 3, side: int = 40) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        _png(folder / f"{i:03d}.png", side, seed=i)
    return folder


def _reasons(rejects: list[tuple[str, str]]) -> dict[str, str]:
    return {os.path.basename(source): reason for source, reason in rejects}


def _tsv(path: Path) -> dict[str, str]:
    """rejects.tsv, read byte for byte (names that are not UTF-8 come back as os.listdir gives them)."""
    lines = path.read_bytes().decode("utf-8", "surrogateescape").splitlines()
    return {os.path.basename(line.split("\t")[0]): line.split("\t")[1] for line in lines}


def _prepare_faces(cli, src: Path, out: Path, *extra: object):
    return cli(
        "prepare", "faces", "--src", src, "--out", out, "--align", "none", "--size", 16,
        "--workers", 1, "--json", "--quiet", *extra,
    )  # fmt: skip


# ----- 4: file names that are not UTF-8 ---------------------------------------------------------------


def test_non_utf8_names_through_prepare_faces_celeba_and_fid(
    cli, world: MetricsWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    folder = _good_folder(tmp_path / "faces", side=64)
    _png(folder / LATIN, 64, seed=7)
    (folder / BAD_LATIN).write_bytes(b"")  # a reject whose name must reach rejects.tsv intact

    out = tmp_path / "prepared"
    result = _prepare_faces(cli, folder, out)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["count"] == 4 and doc["rejected"] == 1
    # names.txt holds the file's own bytes, and reads back as the name os.listdir gives.
    assert b"caf\xe9.png\n" in (out / "names.txt").read_bytes()
    assert LATIN in PreparedDataset.open(out).names
    assert _tsv(out / "rejects.tsv") == {BAD_LATIN: "zero-byte file"}

    src = tmp_path / "celeba"
    _good_folder(src / "img_align_celeba", side=64)
    _png(src / "img_align_celeba" / LATIN, 64, seed=8)
    (src / "img_align_celeba" / BAD_LATIN).write_bytes(b"")
    out = tmp_path / "celeba-ds"
    result = cli("prepare", "celeba", "--src", src, "--out", out, "--attrs", "none", "--size", 16,
                 "--workers", 1, "--json", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["count"] == 4
    assert LATIN in PreparedDataset.open(out).names
    assert _tsv(out / "rejects.tsv") == {BAD_LATIN: "zero-byte file"}
    strict = cli("prepare", "celeba", "--src", src, "--out", tmp_path / "strict", "--attrs", "none",
                 "--size", 16, "--workers", 1, "--strict")  # fmt: skip
    assert strict.exit_code == 1 and "broken" in strict.stderr and "zero-byte file" in strict.stderr
    assert "internal error" not in strict.stderr

    monkeypatch.setenv("TORCH_HOME", str(world.torch_home))
    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path / "home"))
    for run in range(2):  # computed, then replayed from the feature cache (rejects stored with it)
        result = cli("metrics", "fid", folder, world.set_b, "--dims", 64, "--json", *metrics_args(world))
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert doc["n1"] == 4 and doc["inputs"][0]["rejected"] == 1
        assert run == 1 or "broken\\xff.jpg (zero-byte file)" in result.stderr


# ----- 5: dangling symlinks, loops, unreadable files ---------------------------------------------------


@pytest.fixture
def broken_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Good images plus a dangling symlink, a symlink loop and an unreadable file (EACCES)."""
    folder = _good_folder(tmp_path / "links", side=64)
    os.symlink(tmp_path / "nowhere.png", folder / "dangling.png")
    os.symlink("loop.png", folder / "loop.png")
    _png(folder / "locked.png", 64, seed=9)
    if os.geteuid() != 0:
        os.chmod(folder / "locked.png", 0)
    else:  # root reads a chmod 000 file, so make opening it fail as it would for anyone else
        real_open = os.open

        def refusing_open(path, flags, *args, **kwargs):
            if os.fspath(path).endswith("locked.png"):
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refusing_open)
    return folder


LINK_REASONS = {
    "dangling.png": "missing file (a symlink whose target does not exist)",
    "loop.png": "symlink loop",
    "locked.png": "unreadable file: Permission denied",
}


def test_unreadable_entries_are_rejected_alike_by_every_reader(
    cli, broken_links: Path, world: MetricsWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    images = open_image_set(broken_links, resolution=16, workers=1)
    first = images.fingerprint  # reads every entry: must not fail on the broken ones
    assert first == open_image_set(broken_links, resolution=16, workers=1).fingerprint
    batch, kept = images.load_with_indices()
    assert batch.shape == (3, 16, 16, 3) and _reasons(images.rejects) == LINK_REASONS

    source = open_source(broken_links, workers=1)
    assert sum(len(b) for b in source.batches(8)) == 3 and _reasons(source.rejects) == LINK_REASONS

    out = tmp_path / "prepared"
    result = _prepare_faces(cli, broken_links, out)
    assert result.exit_code == 0, result.output
    assert _tsv(out / "rejects.tsv") == LINK_REASONS

    monkeypatch.setenv("TORCH_HOME", str(world.torch_home))
    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path / "home"))
    result = cli("metrics", "fid", broken_links, world.set_b, "--dims", 64, "--json", *metrics_args(world))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["inputs"][0]["rejected"] == 3


# ----- 6: devices, FIFOs and sockets named like images -------------------------------------------------

_SPECIAL_SCRIPT = textwrap.dedent(
    """
    import json, os, resource, sys
    # Before the fix, /dev/zero was read to the end: cap the address space so that fails, not the machine.
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
    from typer.testing import CliRunner
    from facegan_cli.cli import app
    from facegan_cli.data.sources import open_image_set
    from facegan_cli.metrics.inputs import open_source

    folder, out = sys.argv[1], sys.argv[2]
    base = lambda rejects: {os.path.basename(s): r for s, r in rejects}
    images = open_image_set(folder, resolution=16, workers=1)
    fingerprint = images.fingerprint
    images.load_with_indices()
    source = open_source(folder, workers=1)
    used = sum(len(b) for b in source.batches(8))
    result = CliRunner().invoke(app, ["prepare", "faces", "--src", folder, "--out", out, "--align", "none",
                                      "--size", "16", "--workers", "1", "--json", "--quiet"])
    print(json.dumps({"training": base(images.rejects), "metrics": base(source.rejects), "used": used,
                      "prepare": result.exit_code, "output": result.output}))
    """
)


def test_fifo_device_and_socket_are_rejected_without_blocking(tmp_path: Path) -> None:
    folder = _good_folder(tmp_path / "special", side=32)
    os.mkfifo(folder / "pipe.jpg")
    os.symlink("/dev/zero", folder / "zero.png")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sock.png"))
    server.close()  # the socket file stays
    out = tmp_path / "prepared"
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SPECIAL_SCRIPT, str(folder), str(out)],
            capture_output=True, text=True, timeout=90, cwd=ROOT,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("a reader blocked on a FIFO or device")
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    expected = {
        "pipe.jpg": "not a regular file (a FIFO)",
        "zero.png": "not a regular file (a character device)",
        "sock.png": "not a regular file (a socket)",
    }
    assert found["training"] == expected and found["metrics"] == expected and found["used"] == 3
    assert found["prepare"] == 0, found["output"]
    assert _tsv(out / "rejects.tsv") == expected


# ----- 6: decompression bombs and size limits ----------------------------------------------------------


def _bomb_png(width: int, height: int) -> bytes:
    """A 1x1 16-bit grey PNG whose header claims width x height (the pixel data is not there)."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((1, 1), np.uint16)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:20] = width.to_bytes(4, "big")
    data[20:24] = height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


def _reason(source: Path | bytes) -> str:
    with pytest.raises(RejectedImage) as info:
        load_rgb(source)
    return info.value.reason


def test_bomb_png_is_rejected_from_its_header_with_the_limit_named(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    folder = _good_folder(tmp_path / "bomb")
    (folder / "bomb.png").write_bytes(_bomb_png(13000, 13000))
    reason = _reason(folder / "bomb.png")
    assert reason.startswith("image too large: 13000x13000")
    assert "89,478,485" in reason and "--max-pixels" in reason and "FACEGAN_MAX_PIXELS" in reason

    images = open_image_set(folder, resolution=16, workers=1)
    images.load_with_indices()
    assert _reasons(images.rejects) == {"bomb.png": reason}
    out = tmp_path / "prepared"
    assert _prepare_faces(cli, folder, out).exit_code == 0
    assert _tsv(out / "rejects.tsv") == {"bomb.png": reason}
    # A raised limit lets a header through: then the missing pixel data is what fails.
    monkeypatch.setenv(MAX_PIXELS_ENV, "4000000")
    assert _reason(_bomb_png(2000, 2000)).startswith("truncated or corrupt image")
    monkeypatch.setenv(MAX_PIXELS_ENV, "3999999")
    assert _reason(_bomb_png(2000, 2000)).startswith("image too large: 2000x2000")


@pytest.mark.parametrize("limit,accepted", [("10000", False), ("90000", True), ("0", True), ("none", True)])
def test_max_pixels_environment_sets_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str, accepted: bool
) -> None:
    _png(tmp_path / "big.png", side=300)
    monkeypatch.setenv(MAX_PIXELS_ENV, limit)
    if accepted:
        assert load_rgb(tmp_path / "big.png").shape == (300, 300, 3)
    else:
        assert _reason(tmp_path / "big.png").startswith("image too large: 300x300 = 90,000 pixels")


def test_bad_max_pixels_value_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(FaceganError, match="FACEGAN_MAX_PIXELS"):
        imageio.max_pixels()
    _good_folder(tmp_path / "f")
    with pytest.raises(FaceganError, match="FACEGAN_MAX_PIXELS"):
        open_image_set(tmp_path / "f")


def test_file_above_the_byte_limit_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")  # 8 bytes a pixel + 1 MiB: about 1 MiB
    folder = _good_folder(tmp_path / "sparse", side=20)
    with open(folder / "huge.png", "wb") as fh:
        fh.truncate(8 << 20)  # sparse: 8 MiB of zeros that take no disk
    reason = _reason(folder / "huge.png")
    assert reason.startswith("file too large: 8,388,608 bytes") and "FACEGAN_MAX_PIXELS" in reason
    images = open_image_set(folder, resolution=16, workers=1)
    assert images.fingerprint.startswith("sha256:")
    images.load_with_indices()
    assert _reasons(images.rejects) == {"huge.png": reason}


def _declare_size(archive: Path, member: str, size: int) -> None:
    """Patch the central directory so `member` claims `size` uncompressed bytes."""
    data = bytearray(archive.read_bytes())
    start = 0
    while (at := data.find(b"PK\x01\x02", start)) >= 0:
        length = int.from_bytes(data[at + 28 : at + 30], "little")
        if data[at + 46 : at + 46 + length] == member.encode():
            data[at + 24 : at + 28] = size.to_bytes(4, "little")
        start = at + 4
    archive.write_bytes(bytes(data))


def test_zip_member_declaring_gigabytes_is_rejected_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in ("a.png", "bomb.png", "c.png"):
            buffer = io.BytesIO()
            Image.new("RGB", (20, 20), (9, 99, 199)).save(buffer, format="PNG")
            zf.writestr(name, buffer.getvalue())
    _declare_size(archive, "bomb.png", 2 << 30)
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def spying_open(self, name, *args, **kwargs):
        opened.append(name if isinstance(name, str) else name.filename)
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spying_open)
    images = open_image_set(archive, workers=1)
    batch, kept = images.load_with_indices()
    assert list(kept) == [0, 2] and (batch == [9, 99, 199]).all()
    reason = _reasons(images.rejects)["bomb.png"]
    assert reason.startswith("zip member too large: declares 2,147,483,648 bytes") and "--max-pixels" in reason
    assert "bomb.png" not in opened
    source = open_source(archive, workers=1)
    assert sum(len(b) for b in source.batches(8)) == 2 and _reasons(source.rejects) == {"bomb.png": reason}


def test_zip_member_lying_about_its_size_is_read_in_bounded_steps(tmp_path: Path) -> None:
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("liar.png", bytes(64 << 20))  # 64 MiB of zeros: about 64 KB compressed
    _declare_size(archive, "liar.png", 100)
    tracemalloc.start()
    try:
        reason = _reason_member(archive, "liar.png")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert reason.startswith("truncated or corrupt zip member")
    assert peak < 16 << 20, peak  # one read() of the member inflated all 64 MiB first


def _reason_member(archive: Path, member: str) -> str:
    with pytest.raises(RejectedImage) as info:
        load_rgb(archive, member=member)
    return info.value.reason


def test_sixteen_bit_conversion_makes_no_wide_copies(tmp_path: Path) -> None:
    values = np.random.default_rng(0).integers(0, 65536, (1000, 1000), dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    tracemalloc.start()
    try:
        out = load_rgb(tmp_path / "deep.png")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(out[..., 1], (values >> 8).astype(np.uint8))
    # uint16 pixels (2 MB), their high bytes (1 MB) and the RGB result (3 MB); int64 copies alone were 16 MB.
    assert peak < 12e6, peak


# ----- 13, 16: labels.csv in Latin-1, and the rejects warning ------------------------------------------


def test_latin1_labels_csv_is_read_with_a_warning(
    cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _good_folder(tmp_path / "labelled", count=2)
    _png(folder / LATIN, seed=5)
    (folder / "labels.csv").write_bytes("file,Männlich\n000.png,1\n001.png,0\ncafé.png,1\n".encode("latin-1"))
    images = open_image_set(folder, workers=1)
    assert images.label_names == ["Männlich"]
    np.testing.assert_array_equal(images.labels[:, 0], [1, 0, 1])  # 000, 001, café (its Latin-1 bytes)
    assert "labels.csv is not UTF-8" in capsys.readouterr().err
    out = tmp_path / "prepared"
    result = _prepare_faces(cli, folder, out)
    assert result.exit_code == 0, result.output
    assert PreparedDataset.open(out).label_names == ["Männlich"]


def test_unusable_label_files_are_ignored_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _good_folder(tmp_path / "junk-labels", count=2)
    (folder / "labels.csv").write_bytes(b"file,Male\n" + b"x" * 200_000)  # a field above csv's limit
    assert open_image_set(folder, workers=1).labels is None
    assert "labels.csv does not give 0/1 values" in capsys.readouterr().err
    archive = tmp_path / "classes.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("a.png", "b.png"):
            buffer = io.BytesIO()
            Image.new("RGB", (8, 8)).save(buffer, format="PNG")
            zf.writestr(name, buffer.getvalue())
        zf.writestr("dataset.json", json.dumps({"labels": [["a.png", 0], ["b.png", 10**12]]}))
    assert open_image_set(archive, workers=1).labels is None  # not a trillion one-hot columns
    assert "dataset.json labels do not cover" in capsys.readouterr().err


def test_skipped_images_warning_names_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _good_folder(tmp_path / "warn")
    (folder / "empty.png").write_bytes(b"")
    (folder / LATIN).write_text("not an image")
    open_image_set(folder, resolution=16, workers=1).load_with_indices()
    err = capsys.readouterr().err
    assert "ImageSet.rejects" not in err
    assert "skipped 2 unusable image(s) of 5" in err
    assert "caf\\xe9.png (not an image)" in err and "empty.png (zero-byte file)" in err
