"""Pretrained weights that come from elsewhere: where they live, how they are verified and fetched.

Files are cached under $FACEGAN_HOME/weights (default ~/.cache/facegan/weights). A copy already in the
torch hub cache (where pytorch-fid, torchvision and face-alignment keep theirs) is reused. File names
carry a SHA-256 prefix, as torch.hub's do, and every file is verified against it before use. With no
network and no file, `require` fails at once with the file name, the URL and the import command; it never
substitutes other weights.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facegan_cli.core.atomic import atomic_path
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.files import open_regular


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


def facegan_home() -> Path:
    return Path(os.environ.get("FACEGAN_HOME", Path.home() / ".cache" / "facegan"))


def cache_dir() -> Path:
    return facegan_home() / "weights"


def torch_hub_checkpoints() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


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


def fetch(weights: WeightsFile, timeout: float = 60.0) -> Path:
    """Download into the cache (atomically) and verify."""
    target = cache_dir() / weights.filename
    try:
        with atomic_path(target) as tmp, urllib.request.urlopen(weights.url, timeout=timeout) as response:
            with open(tmp, "wb") as fh:
                shutil.copyfileobj(response, fh)
            verify(weights, tmp)
    except OSError as exc:  # URLError is an OSError: no network, DNS, refused, timeout
        raise missing_error(weights) from exc
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
