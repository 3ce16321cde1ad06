"""Pretrained weights that come from elsewhere: where they live, how they are verified and fetched.

Files are cached under $FACEGAN_HOME/weights ($FACEGAN_HOME: else $XDG_CACHE_HOME/facegan, else
~/.cache/facegan). A copy already in the torch hub cache (where pytorch-fid, torchvision and face-alignment
keep theirs) is reused. File names carry a SHA-256 prefix, as torch.hub's do, and every file is verified
against it before use. A download shows a progress bar on stderr, is written to NAME.partial beside its
place, and continues from there (an HTTP Range request) when it was interrupted; only a verified file takes
its name. With no network and no file, `require` fails at once with the file name, the URL and the import
command; it never substitutes other weights.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facegan_cli.core.atomic import atomic_path
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.files import open_regular
from facegan_cli.core.home import facegan_home


@dataclass(frozen=True)
class WeightsFile:
    key: str
    filename: str
    url: str
    used_by: str
    # Other names the same bytes are kept under by other tools (found in the cache and torch hub too).
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.filename, *self.aliases)

    @property
    def sha256_prefix(self) -> str:
        # torch.hub convention: the part after the last '-' of the stem is a SHA-256 prefix.
        stem = self.filename.split(".")[0]
        return stem.rsplit("-", 1)[-1]


KNOWN: dict[str, WeightsFile] = {
    w.key: w
    for w in (
        WeightsFile(
            "fid-inception", "pt_inception-2015-12-05-6726825d.pth",
            "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
            "FID / KID / IS / precision-recall (pytorch-fid's FIDInceptionV3)",
            # torch-fidelity downloads the same state dict into torch hub under this name.
            aliases=("weights-inception-2015-12-05-6726825d.pth",),
        ),
        WeightsFile(
            "vgg19", "vgg19-dcbb9e9d.pth", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
            "neural style transfer (torchvision VGG19)",
        ),
        WeightsFile(
            "vgg16", "vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth",
            "fast neural style training (torchvision VGG16, as pytorch/examples' fast_neural_style)",
        ),
        WeightsFile(
            "face-alignment-2dfan4", "2DFAN4-11f355bf06.pth.tar",
            "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar",
            "face-alignment landmarks (prepare --landmarks face-alignment)",
        ),
        WeightsFile(
            "face-alignment-s3fd", "s3fd-619a316812.pth",
            "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth",
            "face-alignment face detector (prepare --landmarks face-alignment)",
        ),
    )
}


def cache_dir() -> Path:
    return facegan_home() / "weights"


def torch_hub_checkpoints() -> Path:
    """torch.hub's checkpoints folder. Computed as torch.hub.get_dir does ($TORCH_HOME/hub, TORCH_HOME
    defaulting to $XDG_CACHE_HOME/torch, then ~/.cache/torch) so that `facegan weights list` needs no torch;
    torch's own answer where torch is already loaded (it honours torch.hub.set_dir)."""
    if "torch" in sys.modules:
        import torch.hub

        return Path(torch.hub.get_dir()) / "checkpoints"
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(torch_home)) / "hub" / "checkpoints"


def get(key: str) -> WeightsFile:
    if key not in KNOWN:
        raise FaceganError(f"Unknown weights {key!r}.", f"Known weights: {', '.join(KNOWN)} (see `facegan weights list`).")
    return KNOWN[key]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open_regular(path, "Weights file") as fh:  # a FIFO or /dev/zero is refused, not hashed for ever
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(weights: WeightsFile, path: Path) -> str:
    """Return the file's SHA-256; fail if it does not start with the prefix in the file name."""
    sha = sha256_of(path)
    if not sha.startswith(weights.sha256_prefix):
        raise FaceganError(
            f"{path} is not {weights.filename}: its SHA-256 starts {sha[:10]}, expected {weights.sha256_prefix}.",
            f"Download the right file from {weights.url}.",
        )
    return sha


def candidates(weights: WeightsFile) -> list[Path]:
    return [folder / name for name in weights.names for folder in (cache_dir(), torch_hub_checkpoints())]


def locate(weights: WeightsFile) -> Path | None:
    for path in candidates(weights):
        if path.is_file():
            return path
    return None


def listing() -> dict[str, Any]:
    """`facegan weights list`: the cache folder, and per known file its key, name, URL, use and local copy."""
    rows = []
    for w in KNOWN.values():
        found = locate(w)
        rows.append({"key": w.key, "file": w.filename, "url": w.url, "used_by": w.used_by,
                     "path": str(found) if found else None})
    return {"cache": str(cache_dir()), "weights": rows}


def check(key: str, path: Path | None = None) -> tuple[Path, str]:
    """`facegan weights verify`: (the file checked, its SHA-256); `path` defaults to the local copy."""
    weights = get(key)
    target = path or locate(weights)
    if target is None:
        raise missing_error(weights)
    return target, verify(weights, target)


def missing_error(weights: WeightsFile) -> FaceganError:
    return FaceganError(
        f"The {weights.used_by} weights {weights.filename} are not on this machine (looked in "
        f"{', '.join(dict.fromkeys(str(p.parent) for p in candidates(weights)))}) and could not be downloaded "
        f"from {weights.url}.",
        f"Download that file elsewhere and run `facegan weights import {weights.key} /path/to/{weights.filename}`, "
        "or pass its path to the command's weights option.",
    )


_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


def partial_path(weights: WeightsFile) -> Path:
    """Where an unfinished download of `weights` is kept until it is complete and verified."""
    return cache_dir() / f"{weights.filename}.partial"


def _open_from(url: str, offset: int, timeout: float) -> tuple[Any, int, int | None]:
    """The response for `url` from byte `offset` on (a Range request where a partial file exists), the
    offset the server really starts at (0 where it ignores the range) and the file's full size if known."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        # An opener of its own: urlopen's global one keeps the proxy settings of the process's first download
        # (another library's, perhaps under other environment variables) for every later one.
        response = urllib.request.build_opener().open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing after `offset`: the partial file is all of it
            exc.close()
            return None, offset, offset
        raise
    found = _CONTENT_RANGE.match(response.headers.get("Content-Range", "")) if response.status == 206 else None
    start = int(found.group(1)) if found else 0
    length = response.headers.get("Content-Length")
    total = (int(found.group(2)) if found and found.group(2) != "*" else
             start + int(length) if length is not None and length.isdigit() else None)
    return response, start, total


def fetch(weights: WeightsFile, timeout: float = 60.0) -> Path:
    """Download into the cache and verify: into NAME.partial (continued where an earlier download stopped),
    with a progress bar on stderr, then renamed to its place once its SHA-256 matches."""
    from facegan_cli.core.progress import Progress, log

    target = cache_dir() / weights.filename
    partial = partial_path(weights)
    partial.parent.mkdir(parents=True, exist_ok=True)
    offset = partial.stat().st_size if partial.is_file() else 0
    try:
        response, start, total = _open_from(weights.url, offset, timeout)
        if response is not None:
            with response, open(partial, "r+b" if start else "wb") as fh:
                if offset:
                    log(f"{weights.filename}: continuing the download at byte {start:,}" if start else
                        f"{weights.filename}: the server cannot continue a download; starting again")
                fh.seek(start)
                fh.truncate()
                with Progress(total, f"downloading {weights.filename}", unit="B", start=start) as bar:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        fh.write(chunk)
                        bar.advance(len(chunk))
                if total is not None and fh.tell() < total:  # the connection closed early: no error raised
                    raise http.client.IncompleteRead(b"", total - fh.tell())
    except (OSError, http.client.HTTPException) as exc:  # no network, refused, timeout, cut off half-way
        have = partial.stat().st_size if partial.is_file() else 0
        if have:
            raise FaceganError(
                f"The download of {weights.filename} from {weights.url} stopped after {have:,} bytes ({exc}).",
                f"Run the command again: it continues from {partial}. Or download the file elsewhere and run "
                f"`facegan weights import {weights.key} /path/to/{weights.filename}`.",
            ) from exc
        raise missing_error(weights) from exc
    try:
        verify(weights, partial)
    except FaceganError:
        partial.unlink()  # a wrong or corrupt file is never continued: the next try starts again
        raise
    os.replace(partial, target)
    return target


def import_file(weights: WeightsFile, source: Path) -> Path:
    """Copy a user-provided file into the cache after verifying it."""
    if not source.is_file():
        raise FaceganError(f"{source} is not a file.", f"Pass the path of a downloaded {weights.filename}.")
    verify(weights, source)
    target = cache_dir() / weights.filename
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    return target


def require(key: str, explicit: Path | None = None, download: bool = True) -> Path:
    """The verified local path of weights `key`: the explicit path, the cache, torch hub, or a download."""
    weights = get(key)
    if explicit is not None:
        if not explicit.is_file():
            raise FaceganError(f"Weights file {explicit} does not exist.", f"Pass the path of {weights.filename}.")
        verify(weights, explicit)
        return explicit
    found = locate(weights)
    if found is not None:
        verify(weights, found)
        return found
    if not download:
        raise missing_error(weights)
    return fetch(weights)


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _sha256_once(path: Path) -> str:
    """sha256_of, remembered per process for an unchanged file (same size and modification time)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_of(path)
    return _DIGESTS[key]


@dataclass(frozen=True)
class Resolved:
    """A weights file chosen for a command, with what the result documents should say about it."""

    path: Path
    sha256: str
    verified: bool  # False only for a user's file under a name of its own (see `resolve`)


def resolve(key: str, explicit: Path | None = None, download: bool = True) -> Resolved:
    """Like `require`, but a user's own file is allowed: the weights to use, their SHA-256, and whether
    that hash was checked against the official file.

    An explicit path whose name is the official file name (or a known alias) claims to be that file and is
    verified like a cached copy. Under any other name it is the user's own network (retrained, converted,
    or random for tests): it is used as given, never verified, and its full SHA-256 goes into the results
    so that a number can always be traced to the exact weights that produced it.
    """
    weights = get(key)
    if explicit is None:
        found = locate(weights)
        if found is None:
            if not download:
                raise missing_error(weights)
            found = fetch(weights)
        return Resolved(found, verify(weights, found), True)
    if not explicit.is_file():
        raise FaceganError(
            f"Weights file {explicit} does not exist.",
            f"Pass the path of {weights.filename}, or leave the option out to use the cached copy.",
        )
    if explicit.name in weights.names:
        return Resolved(explicit, verify(weights, explicit), True)
    return Resolved(explicit, _sha256_once(explicit), False)
