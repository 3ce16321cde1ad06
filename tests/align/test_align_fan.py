"""The face-alignment backend's plumbing, with random-initialised networks (this machine has no network).

The networks are the package's own classes (face_alignment.models.FAN(4) and the S3FD of
face_alignment.detection.sfd), saved as the state dicts it downloads. facegan is given them as the
user's own networks (--fan-weights, --s3fd-weights, under names of their own); the package itself reads
the same files under the names it looks for in `torch.hub.get_dir()/checkpoints/`, in a temporary
TORCH_HOME, for the reference landmarks. The FAN keeps its random
weights. S3FD's detection heads are set so that what it finds is known: every head reports "no face"
except the coarsest (stride 128, prior boxes of 512 pixels), whose box regression shrinks its priors
to 48 x 48. On a 128 x 128 photo that level has 2 x 2 anchors, so S3FD reports one box on the photo,
(40, 40, 88, 88), and three that miss it; the random FAN then puts 68 points inside the crop around
that box. facegan must drop the boxes off the photo (the package's crop fails on them), take the
package's landmarks for the one on it, and crop with them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import Result

from facegan_cli.align.geometry import five_points, oriented_quad
from facegan_cli.data.prepared import PreparedDataset

face_alignment = pytest.importorskip("face_alignment")
torch = pytest.importorskip("torch")

FAN_FILE = "2DFAN4-11f355bf06.pth.tar"
S3FD_FILE = "s3fd-619a316812.pth"
PHOTO = 128
BOX = 48.0
HEADS = (
    "conv3_3_norm_mbox",
    "conv4_3_norm_mbox",
    "conv5_3_norm_mbox",
    "fc7_mbox",
    "conv6_2_mbox",
    "conv7_2_mbox",
)
# Fail at once instead of trying the internet: every download goes through a proxy nobody listens on.
NO_NETWORK = {"https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "no_proxy": ""}


def _random_networks(checkpoints: Path) -> None:
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    checkpoints.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(FAN(4).state_dict(), checkpoints / FAN_FILE)
    detector = s3fd()
    shrink = math.log(BOX / 512) / 0.2  # decode(): w = prior * exp(0.2 * loc)
    with torch.no_grad():
        for level, head in enumerate(HEADS):
            conf, loc = getattr(detector, head + "_conf"), getattr(detector, head + "_loc")
            conf.weight.zero_()
            loc.weight.zero_()
            coarsest = level == len(HEADS) - 1
            # Softmax over (background..., face): face 0.99995 on the coarsest head, 5e-5 elsewhere.
            conf.bias.fill_(-5.0 if coarsest else 5.0)
            conf.bias[-1] = 5.0 if coarsest else -5.0
            loc.bias.copy_(torch.tensor([0.0, 0.0, shrink, shrink]) if coarsest else torch.zeros(4))
    torch.save(detector.state_dict(), checkpoints / S3FD_FILE)


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("torch")
    _random_networks(home / "hub" / "checkpoints")
    return home


OWN_FAN, OWN_S3FD = "my-fan.pth", "my-s3fd.pth"


@pytest.fixture(scope="module")
def own_networks(torch_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same random networks under names of their own, as a user's retrained networks would be."""
    folder = tmp_path_factory.mktemp("own")
    for official, own in ((FAN_FILE, OWN_FAN), (S3FD_FILE, OWN_S3FD)):
        (folder / own).write_bytes((torch_home / "hub" / "checkpoints" / official).read_bytes())
    return folder


@pytest.fixture
def photos(tmp_path: Path, celebahq_sample: Path) -> Path:
    """Two real faces scaled to 128 x 128 (the content does not matter to the fixed detector)."""
    src = tmp_path / "photos"
    src.mkdir()
    for k, path in enumerate(sorted(celebahq_sample.glob("*.jpg"))[:2]):
        Image.open(path).convert("RGB").resize((PHOTO, PHOTO), Image.LANCZOS).save(src / f"{k}.png")
    return src


def _env(monkeypatch: pytest.MonkeyPatch, torch_home: Path, facegan_home: Path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setenv("FACEGAN_HOME", str(facegan_home))
    for key, value in NO_NETWORK.items():
        monkeypatch.setenv(key, value)


def test_face_alignment_backend_runs_with_networks_in_the_package_format(
    cli, photos: Path, torch_home: Path, own_networks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _env(monkeypatch, torch_home, tmp_path / "home")
    out = tmp_path / "fan"
    result = cli(
        "prepare", "faces", "--src", photos, "--out", out, "--size", 32, "--transform-size", 64,
        "--landmarks", "face-alignment", "--align", "ffhq", "--device", "cpu", "--min-face", 1,
        "--workers", 2, "--json", "--fan-weights", own_networks / OWN_FAN, "--s3fd-weights", own_networks / OWN_S3FD,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "not the official one" in " ".join(result.stderr.split())  # own weights are used, with a warning
    data = PreparedDataset.open(out)
    assert data.names == ["0.png", "1.png"]
    backend = data.manifest["alignment"]["landmark_backend"]
    assert backend["backend"] == "face-alignment" and backend["detector"] == "sfd"
    for name, own in ((FAN_FILE, OWN_FAN), (S3FD_FILE, OWN_S3FD)):
        entry = backend["weights"][name]
        assert entry["official"] is False and Path(entry["path"]) == own_networks / own
    np.testing.assert_array_equal(data.extra("faces"), [1, 1])  # the three boxes off the photo dropped

    # The landmarks are the package's own for the box on the photo, and the crop follows them.
    model = face_alignment.FaceAlignment(
        face_alignment.LandmarksType.TWO_D, device="cpu", flip_input=False, face_detector="sfd", compile=False
    )
    for k in range(2):
        pixels = np.asarray(Image.open(photos / f"{k}.png").convert("RGB"))
        boxes = model.face_detector.detect_from_image(pixels.copy())
        on_photo = [b for b in boxes if 0 <= (b[0] + b[2]) / 2 < PHOTO and 0 <= (b[1] + b[3]) / 2 < PHOTO]
        assert len(boxes) == 4 and len(on_photo) == 1
        np.testing.assert_allclose(on_photo[0][:4], [40, 40, 88, 88], atol=1e-3)
        points = model.get_landmarks_from_image(pixels, detected_faces=on_photo)[0]
        np.testing.assert_allclose(data.extra("landmarks")[k], five_points(points), atol=1e-3)
        np.testing.assert_allclose(data.extra("quads")[k], oriented_quad(points, "ffhq"), atol=1e-2)


def _prepare_with_fan(cli: Callable[..., Result], photos: Path, out: Path) -> Result:
    """`prepare faces` with face-alignment landmarks, on the CPU, one worker."""
    return cli(
        "prepare", "faces", "--src", photos, "--out", out, "--size", 32, "--landmarks", "face-alignment",
        "--device", "cpu", "--workers", 1,
    )  # fmt: skip


def test_missing_weights_fail_at_once_naming_the_files(
    cli, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "torch"
    _env(monkeypatch, empty, tmp_path / "home")
    out = tmp_path / "fan"
    result = _prepare_with_fan(cli, photos, out)
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    for name in (FAN_FILE, S3FD_FILE):
        assert name in message and f"https://www.adrianbulat.com/downloads/python-fan/{name}" in message
    assert "facegan weights import face-alignment-2dfan4" in message and "--landmarks dlib" in message
    assert "Traceback" not in result.output and not (out / "manifest.json").exists()
    assert not any(p.is_file() for p in empty.rglob("*"))  # no partial download left behind


def test_files_under_the_official_names_are_verified_before_any_loader_reads_them(
    cli, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0.1 handed any file at the official path to the package: random bytes gave an UnpicklingError
    traceback, and another network was used under the official name."""
    home = tmp_path / "torch"
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / FAN_FILE).write_bytes(np.random.default_rng(0).bytes(4096))
    _random_networks(tmp_path / "real")  # a real network file, but not the official one
    (checkpoints / S3FD_FILE).write_bytes((tmp_path / "real" / S3FD_FILE).read_bytes())
    _env(monkeypatch, home, tmp_path / "home")
    out = tmp_path / "fan"
    result = _prepare_with_fan(cli, photos, out)
    assert result.exit_code == 1, result.output
    message = " ".join(result.stderr.split())
    assert f"is not {FAN_FILE}" in message and "SHA-256" in message and "Traceback" not in result.output
    assert "Unpickling" not in result.output and not (out / "manifest.json").exists()
