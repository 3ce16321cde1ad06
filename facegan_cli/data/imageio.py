"""Robust image reading and decoding: every input becomes an RGB uint8 array or a `RejectedImage`.

This is the ONE decode-and-reject path of facegan: the prepare jobs and every image source (data.sources,
which training, metrics, latent tools and editing read) read files and zip members through `open_rgb` /
`load_rgb` (in workers through `guarded`), so a file is rejected with the same reason whoever meets it.

The bad-input policy of specs/datasets.md lives here: EXIF orientation is applied; CMYK, palette,
16-bit, grayscale and alpha images are converted to RGB; corrupt, truncated, zero-byte and non-image
files are rejected with a short reason that goes into `rejects.tsv`.

Alpha is dropped (the colour channels are kept as they are, not composited on a background), which is
what PIL's `convert("RGB")` and StyleGAN's dataset_tool do, so datasets match those tools.

Hostile inputs (a folder is a stranger's data) are refused before they cost memory or time:
- Only regular files are read. A path is opened with O_NONBLOCK and checked with fstat on the open
  descriptor (no race between the check and the read), so a FIFO, socket or device named like an image
  (a symlink to /dev/zero) is rejected at once instead of blocking or being read forever. A dangling
  symlink, a symlink loop and a file that cannot be opened are rejected with that reason.
- Pixel limit: an image whose header declares more than `max_pixels()` pixels (width x height) is
  rejected before any pixel is decoded (a decompression bomb: a few hundred KB of PNG can declare
  13000 x 13000 16-bit pixels). The default is PIL's own limit, Image.MAX_IMAGE_PIXELS =
  89,478,485 pixels; `facegan --max-pixels N` or the environment variable FACEGAN_MAX_PIXELS=N changes
  it (0 or "none": no limit). It is read from the environment at each decode, so worker processes
  (forked or forkserver-started) apply the same limit as the command that started them.
- Byte limit: a file or zip member larger than `max_input_bytes()` is rejected before it is read (a zip
  member's size is the one its directory declares). The limit is 8 bytes per allowed pixel (what an
  uncompressed 16-bit RGBA image needs) plus 1 MiB for headers and metadata: 716,876,456 bytes
  (about 684 MiB) by default, none when the pixel limit is off.
- Working sizes: an image facegan makes must fit in the largest square the pixel limit allows (9,459 x
  9,459 by default): an aspect-kept resize (`check_work_size`: a 100000x10 file at short side 32 would be
  320000x32) and a --size option (`check_side_option`) are refused above it, naming the option that raises it.
"""

from __future__ import annotations

import contextlib
import errno
import io
import math
import os
import stat
import warnings
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.files import display_name as display_name  # where callers import it from

# Lower-case suffixes of files treated as images when a folder or zip is scanned.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}
)

# Modes whose pixels are 16-bit integers; PIL's own convert() would clip them to 255 instead of scaling.
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})

# PIL's default Image.MAX_IMAGE_PIXELS (1024 * 1024 * 1024 // 4 // 3), written out so that another
# library changing PIL's global does not change facegan's limit.
DEFAULT_MAX_PIXELS = 89_478_485
MAX_PIXELS_ENV = "FACEGAN_MAX_PIXELS"
MAX_PIXELS_OPTION = "--max-pixels"
# The byte limit per allowed pixel (16-bit RGBA, uncompressed) and the allowance for headers/metadata.
BYTES_PER_PIXEL = 8
HEADER_BYTES = 1 << 20

_RAISE_HINT = (
    f"raise it with `facegan {MAX_PIXELS_OPTION} N ...` or the environment variable {MAX_PIXELS_ENV}=N; "
    "0 for no limit"
)


class RejectedImage(Exception):
    """An input that cannot be used; `reason` is the short text written to rejects.tsv.

    `source` names the input (a path, or the name given with bytes) once `open_rgb` has seen it.
    """

    def __init__(self, reason: str, source: str = "") -> None:
        super().__init__(f"{display_name(source)}: {reason}" if source else reason)
        self.reason = reason
        self.source = source


def name_bytes(name: str) -> bytes:
    """The bytes of a file name as the file system holds them (for digests and byte-exact text files)."""
    return name.encode("utf-8", "surrogateescape")


def is_image_name(name: str) -> bool:
    """True for file names with an image suffix (case-insensitive), so `.JPG` is not missed."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


# ----- limits ----------------------------------------------------------------------------------------


def max_pixels() -> int | None:
    """The largest width x height decoded (see the module docstring); None when there is no limit."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    if raw.lower() in ("0", "none"):
        return None
    try:
        value = int(raw.replace(",", ""))
    except ValueError:
        value = -1
    if value == 0:  # "00", "0_000": still no limit
        return None
    if value < 0:
        raise FaceganError(
            f"{MAX_PIXELS_ENV}={raw!r} is not a number of pixels.",
            f"Set it to a positive integer (default {DEFAULT_MAX_PIXELS}), 0 or none for no limit, or use "
            f"`facegan {MAX_PIXELS_OPTION} N`.",
        )
    return value


def max_input_bytes() -> int | None:
    """The largest image file or zip member read, in bytes; None when the pixel limit is off."""
    pixels = max_pixels()
    return None if pixels is None else pixels * BYTES_PER_PIXEL + HEADER_BYTES


def _too_many_bytes(what: str, size: int, limit: int) -> RejectedImage:
    return RejectedImage(
        f"{what} too large: {'declares ' if what == 'zip member' else ''}{size:,} bytes, above the limit "
        f"of {limit:,} for one image ({BYTES_PER_PIXEL} bytes per allowed pixel plus 1 MiB; {_RAISE_HINT})"
    )


def check_pixels(size: tuple[int, int]) -> None:
    """RejectedImage when an image of `size` (width, height) is above the pixel limit."""
    limit = max_pixels()
    width, height = size
    if limit is not None and width * height > limit:
        raise RejectedImage(
            f"image too large: {width}x{height} = {width * height:,} pixels, above the limit of {limit:,} "
            f"(a guard against decompression bombs; {_RAISE_HINT})"
        )


def largest_side() -> int | None:
    """The side of the largest square the pixel limit allows (9,459 by default); None without a limit."""
    limit = max_pixels()
    return None if limit is None else math.isqrt(limit)


def check_work_size(size: tuple[int, int], what: str = "the resized image") -> None:
    """RejectedImage when an image facegan is about to make (`size`: width, height), e.g. by an aspect-kept
    resize, does not fit in the largest square the pixel limit allows.

    The limit on files alone misses what a resize does: a 100000x10 PNG (a million pixels, a few KB) with
    its short side resized to 32 becomes 320000x32, and a network's feature maps of it take gigabytes. A
    working image must fit in the largest allowed square, so both its pixels and its long side are bounded.
    """
    side = largest_side()
    width, height = size
    if side is not None and max(width, height) > side:
        raise RejectedImage(
            f"{what} would be {width}x{height} pixels, wider or taller than {side:,}, the side of the largest "
            f"square the pixel limit of {max_pixels():,} allows ({_RAISE_HINT})"
        )


def check_side_option(side: int, option: str) -> None:
    """UsageProblem (a bad number: exit 2, as every out-of-range option value) when `option` (e.g. "--size
    40000") asks for side x side images above the pixel limit."""
    limit = max_pixels()
    if limit is not None and side * side > limit:
        raise UsageProblem(
            f"{option} {side} asks for {side}x{side} = {side * side:,} pixels per image, above the limit of "
            f"{limit:,} (the largest square side is {math.isqrt(limit):,}).",
            f"Use a smaller {option}, or raise the limit with `facegan {MAX_PIXELS_OPTION} N ...` or the environment "
            f"variable {MAX_PIXELS_ENV}=N (0: no limit).",
        )


# ----- reading ---------------------------------------------------------------------------------------

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


@contextlib.contextmanager
def _regular_file(path: str | os.PathLike[str]) -> Iterator[tuple[int, int]]:
    """(descriptor, size) of a regular file within the byte limit, else RejectedImage; never blocks.

    O_NONBLOCK makes opening a FIFO return at once (there may be no writer, ever); the type is then
    checked on the descriptor itself, so the file cannot be swapped between the check and the read.
    """
    flags = (
        os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    )
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        if os.path.islink(path):
            raise RejectedImage("missing file (a symlink whose target does not exist)") from exc
        raise RejectedImage("missing file") from exc
    except IsADirectoryError as exc:
        raise RejectedImage("not an image (a directory)") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RejectedImage("symlink loop") from exc
        if exc.errno == errno.ENXIO:  # what opening a Unix socket gives
            raise RejectedImage("not a regular file (a socket)") from exc
        raise RejectedImage(f"unreadable file: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise RejectedImage("not an image (a directory)")
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a plain file")
            raise RejectedImage(f"not a regular file ({kind})")
        limit = max_input_bytes()
        if limit is not None and info.st_size > limit:
            raise _too_many_bytes("file", info.st_size, limit)
        yield fd, info.st_size
    finally:
        os.close(fd)


def _read_all(fd: int, size: int) -> bytes:
    limit = max_input_bytes()
    chunks, total = [], 0
    # One read of the size fstat gave, plus a byte to meet the end; a file that grew past the limit since
    # is still refused.
    while True:
        try:
            chunk = os.read(fd, max(size + 1 - total, 1 << 20))
        except OSError as exc:
            raise RejectedImage(f"unreadable file: {exc.strerror or exc}") from exc
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if limit is not None and total > limit:
            raise _too_many_bytes("file", total, limit)


def read_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of an image file, or RejectedImage (not a regular file, above the byte limit, unreadable)."""
    with _regular_file(path) as (fd, size):
        return _read_all(fd, size)


def digest_input(path: str | os.PathLike[str], digest: Any) -> None:
    """Feed a file's bytes to a hashlib object; for a file `read_file` would reject, the reason instead.

    Fingerprints of folders use this, so a FIFO, device, broken link or huge file neither blocks, nor
    crashes, nor is read: the same folder in the same state gives the same fingerprint.
    """
    try:
        with _regular_file(path) as (fd, _):
            while chunk := os.read(fd, 1 << 24):
                digest.update(chunk)
    except RejectedImage as exc:
        digest.update(f"\0unreadable\0{exc.reason}\0".encode())
    except OSError as exc:  # a read error after a successful open (I/O error, file shrank under NFS)
        digest.update(f"\0unreadable\0{exc.strerror or exc}\0".encode())


_ZIPS: dict[tuple[int, str], zipfile.ZipFile] = {}


def _zip_handle(archive: str) -> zipfile.ZipFile:
    # One handle per process: a handle inherited through fork shares its file offset with the parent.
    key = (os.getpid(), archive)
    if key not in _ZIPS:
        try:
            _ZIPS[key] = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError) as exc:
            raise RejectedImage(f"unreadable zip file: {exc}") from exc
    return _ZIPS[key]


def read_zip_member(archive: str | os.PathLike[str], member: str) -> bytes:
    """The bytes of one zip member, or RejectedImage; a member declaring more than the byte limit is
    refused from the zip's directory, before anything is decompressed."""
    handle = _zip_handle(os.fspath(archive))
    try:
        info = handle.getinfo(member)
    except KeyError as exc:
        raise RejectedImage("missing zip member") from exc
    limit = max_input_bytes()
    if limit is not None and info.file_size > limit:
        raise _too_many_bytes("zip member", info.file_size, limit)
    try:
        # zipfile stops at the declared size (checked above), but one unbounded read() would first inflate
        # a member that lies about its size as far as its data goes: read in bounded steps instead.
        chunks = []
        with handle.open(info) as stream:
            while chunk := stream.read(1 << 20):
                chunks.append(chunk)
        return b"".join(chunks)
    except Exception as exc:  # BadZipFile, zlib/lzma errors, encryption, unsupported methods, EOF
        raise RejectedImage(f"truncated or corrupt zip member: {exc}") from exc


def read_input(source: str | os.PathLike[str] | bytes, member: str | None = None) -> bytes:
    """The bytes of a path, of a zip member (`source` the zip, `member` its name), or `source` itself."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if member is not None:
        return read_zip_member(source, member)
    return read_file(source)


# ----- decoding --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _facegan_limit() -> Iterator[None]:
    """PIL's own bomb check off while a header is parsed: facegan's limit (checked right after, and
    possibly raised by the user above PIL's hard 2x error) is the one that applies."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL warns on odd metadata; the pixels are what matter
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _open_header(data: bytes) -> Image.Image:
    if not data:
        raise RejectedImage("zero-byte file")
    try:
        with _facegan_limit():
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise RejectedImage("not an image") from exc
    except Exception as exc:  # PIL raises many types for damaged headers
        raise RejectedImage(f"truncated or corrupt image: {exc}") from exc
    check_pixels(img.size)
    return img


def probe_size(source: str | os.PathLike[str] | bytes, member: str | None = None) -> tuple[int, int]:
    """(width, height) from the header alone, with every check `open_rgb` makes before decoding."""
    return _open_header(read_input(source, member)).size


def _sixteen_to_rgb(img: Image.Image) -> Image.Image:
    # Scale 0..65535 to 0..255 by the high byte (v >> 8, within one step of v / 257) rather than clipping.
    # In 16-bit arithmetic: an int64 copy of a large image would take 8 bytes a pixel, twice over.
    values = np.asarray(img)
    if values.dtype.kind != "u":  # mode "I" is 32-bit signed: clip into 0..65535 first
        values = np.clip(values, 0, 65535).astype(np.uint16)
    eight = (values >> 8).astype(np.uint8)
    return Image.fromarray(np.repeat(eight[:, :, None], 3, axis=2), mode="RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _SIXTEEN_BIT_MODES:
        return _sixteen_to_rgb(img)
    if mode == "F":
        raise RejectedImage("unsupported pixel mode F (floating-point image)")
    if mode in ("P", "PA"):
        # Through RGBA so a palette with transparency converts without PIL's warning; alpha is then dropped.
        return img.convert("RGBA").convert("RGB")
    # L, LA, 1, CMYK, RGBA, RGBa, La, YCbCr, LAB, HSV: PIL's conversions drop alpha and map colour spaces.
    return img.convert("RGB")


def open_rgb(
    source: str | os.PathLike[str] | bytes, name: str = "", min_size: int = 0, member: str | None = None
) -> Image.Image:
    """Decode `source` (a path, the file's bytes, or with `member` a zip and one of its members) into an
    upright RGB PIL image.

    Raises RejectedImage for anything unusable (see the module docstring), including images whose
    shorter side is below `min_size` after orientation; its `source` is `name`, else the path (and
    member) read.
    """
    try:
        return _decode(source, min_size, member)
    except RejectedImage as exc:
        label = name
        if not label and not isinstance(source, bytes | bytearray | memoryview):
            label = os.fspath(source) if member is None else f"{os.fspath(source)}/{member}"
        raise RejectedImage(exc.reason, label) from exc.__cause__


def _decode(source: str | os.PathLike[str] | bytes, min_size: int, member: str | None) -> Image.Image:
    img = _open_header(read_input(source, member))
    try:
        with _facegan_limit():
            # load() decodes every byte now, so a truncated JPEG fails here and not later in a worker.
            img.load()
    except Exception as exc:
        raise RejectedImage(f"truncated or corrupt image: {exc}") from exc
    try:
        upright = ImageOps.exif_transpose(img)
    except Exception:
        # Damaged EXIF: the pixels decoded fine, so keep them in stored orientation.
        upright = img
    if upright is None:
        upright = img
    rgb = _to_rgb(upright)
    width, height = rgb.size
    if min_size and min(width, height) < min_size:
        raise RejectedImage(f"too small: {width}x{height} < {min_size}")
    return rgb


def load_rgb(
    source: str | os.PathLike[str] | bytes, name: str = "", min_size: int = 0, member: str | None = None
) -> np.ndarray:
    """Decode `source` into an H x W x 3 uint8 array (see `open_rgb` for the conversion rules)."""
    return np.asarray(open_rgb(source, name=name, min_size=min_size, member=member), dtype=np.uint8).copy()


def guarded(fn: Callable[[Any], Any], task: Any) -> tuple[bool, Any]:
    """Run one decode task (in a worker): (True, its result) or (False, the reject reason)."""
    try:
        return True, fn(task)
    except RejectedImage as exc:
        return False, exc.reason


def decode_text(raw: bytes) -> tuple[str, bool]:
    """(text, was_utf8) of a small text file beside the images (labels.csv, annotation files).

    UTF-8 (a BOM is dropped) is expected; bytes that are not UTF-8 are read as Latin-1, which maps every
    byte to a character (the usual encoding of files saved by older Windows tools and Excel), and the
    caller warns.
    """
    try:
        return raw.decode("utf-8-sig"), True
    except UnicodeDecodeError:
        return raw.decode("latin-1"), False


def describe_rejects(rejects: list[tuple[str, str]], shown: int = 3) -> str:
    """'a.jpg (not an image), b.png (zero-byte file) and 4 more': the first few (name, reason) pairs of a
    reader's rejects, printable whatever the names' bytes, for a one-line warning."""
    parts = [f"{display_name(name)} ({reason})" for name, reason in rejects[:shown]]
    more = len(rejects) - shown
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")
