"""The painting domains of `prepare synthetic --style painting`, `facegan translate`, `facegan eval translation`
and translations as a metrics input, on a tiny trained cycle-gan run, synthetic and real pictures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke_cli
from metrics_helpers import MetricsWorld, homes, metrics_args, run_cli, world  # noqa: F401
from PIL import Image
from train_helpers import TINY_CYCLE

from facegan_cli.core.checkpoint import load_checkpoint, save_checkpoint
from facegan_cli.data.crops import apply_crop
from facegan_cli.prepare import synthetic

pytestmark = pytest.mark.usefixtures("one_thread")
STYLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "styles"
TINY = TINY_CYCLE


@pytest.fixture(scope="module")
def painting(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 synthetic faces at 16x16 as photo and painting domains (18 + 18 train, 2 + 2 held out)."""
    out = tmp_path_factory.mktemp("painting") / "synth"
    synthetic.write_synthetic(out, n=40, size=16, style="painting")
    return out


@pytest.fixture(scope="module")
def run(painting: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:

    out = tmp_path_factory.mktemp("cg") / "run"
    result = invoke_cli(["train", "cycle-gan", "--data", str(painting), "--out", str(out), "--steps", "3",
                                      *TINY])
    assert result.exit_code == 0, result.output
    return out


def test_painting_domains_are_unpaired_with_true_pairs(painting: Path) -> None:
    summary = json.loads((painting / "synthetic.json").read_text())
    assert summary["counts"] == {"trainA": 18, "trainB": 18, "testA": 2, "testB": 2}
    names = {d: sorted(p.name for p in (painting / d).iterdir()) for d in summary["counts"]}
    assert not set(names["trainA"]) & set(names["trainB"])  # no face is in both training domains
    assert all(int(n[:6]) > 36 for n in names["testA"] + names["testB"])  # held-out identities: the test partition
    for folder in summary["counts"]:
        assert sorted(p.name for p in (painting / "truth" / folder).iterdir()) == names[folder]
    name = names["trainA"][0]
    photo = np.asarray(Image.open(painting / "trainA" / name))
    spec = synthetic.face_spec(0, int(name[:6]) - 1, 40)
    expected = apply_crop(synthetic.render(spec)[0], "stargan", 16, allow_upscale=True)
    np.testing.assert_array_equal(photo, expected)
    np.testing.assert_array_equal(np.asarray(Image.open(painting / "truth" / "trainA" / name)), synthetic.paint(photo))
    b_name = names["trainB"][0]
    np.testing.assert_array_equal(np.asarray(Image.open(painting / "trainB" / b_name)),
                                  synthetic.paint(np.asarray(Image.open(painting / "truth" / "trainB" / b_name))))


def test_paint_is_a_deterministic_strong_restyling() -> None:
    spec = synthetic.face_spec(0, 3, 100)
    photo = apply_crop(synthetic.render(spec)[0], "stargan", 32, allow_upscale=True)
    a, b = synthetic.paint(photo), synthetic.paint(photo.copy())
    np.testing.assert_array_equal(a, b)
    diff = np.abs(a.astype(float) - photo.astype(float)).mean() / 127.5
    assert diff > 0.1  # far from the photo: a translation has something to learn
    assert a[..., 2].mean() < photo[..., 2].mean()  # the warm palette takes blue out


def test_translate_image_folder_stdin_grid_and_real_pictures(cli, run: Path, painting: Path, celebahq_sample: Path,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "one"
    result = cli("translate", "--ckpt", run, "--direction", "a2b", painting / "testA", "--out", out, "--device", "cpu",
                 "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["from"], doc["to"], doc["size"]) == ("A", "B", 16) and len(doc["outputs"]) == 2
    assert np.asarray(Image.open(doc["outputs"][0]["output"])).shape == (16, 16, 3)
    grid = tmp_path / "grid"
    photo = sorted(celebahq_sample.glob("*.jpg"))[0]
    paint = STYLES / "metfaces-0.jpg"
    result = cli("translate", "--ckpt", run, "--direction", "b2a", paint, "--grid", "--out", grid, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(grid / "metfaces-0-grid.png")).shape == (16 + 4, 3 * 16 + 4 * 2, 3)
    big = tmp_path / "big"
    result = cli("translate", "--ckpt", run, photo, "--size", "64", "--out", big, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(big / f"{photo.stem}.png")).shape == (64, 64, 3)  # fully convolutional

    piped = tmp_path / "piped"
    result = invoke_cli(["translate", "--ckpt", str(run), "-", "--out", str(piped), "--device", "cpu"],
                                input=f"{photo}\n{paint}\n")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in piped.glob("*.png")) == sorted([f"{photo.stem}.png", "metfaces-0.png"])


def test_translate_keeps_the_whole_frame(cli, run: Path, celebahq_sample: Path, tmp_path: Path) -> None:
    """A 300 x 200 photo: --size 200 writes 300 x 200 (padded to the networks' multiple of 4 and cropped
    back), the default scales its short side to the training size (16), --grid keeps the frame too, and
    --tile translates it in tiles (instance norm: statistics of the whole image, frozen) to the same shape."""
    photo = tmp_path / "wide.png"
    with Image.open(sorted(celebahq_sample.glob("*.jpg"))[2]) as image:
        image.convert("RGB").resize((300, 200), Image.LANCZOS).save(photo)
    doc = json.loads(cli("translate", "--ckpt", run, photo, "--size", "200", "--out", tmp_path / "a", "--device",
                         "cpu", "--json").stdout)
    written = np.asarray(Image.open(doc["outputs"][0]["output"]))
    assert written.shape == (200, 300, 3) and doc["outputs"][0]["shape"] == [200, 300] and written.std() > 0
    result = cli("translate", "--ckpt", run, photo, "--out", tmp_path / "b", "--grid", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(tmp_path / "b" / "wide-grid.png")).shape == (16 + 4, 3 * 24 + 4 * 2, 3)
    doc = json.loads(cli("translate", "--ckpt", run, photo, "--size", "200", "--tile", "64", "--out", tmp_path / "c",
                         "--device", "cpu", "--json").stdout)
    tiling = doc["outputs"][0]["tiling"]
    assert (doc["tile"], doc["overlap"], tiling["tiles"]) == (64, 16, 6 * 4) and tiling["norm_statistics_from"]
    tiled = np.asarray(Image.open(doc["outputs"][0]["output"]))
    assert tiled.shape == (200, 300, 3)
    # Statistics from a reduced image (area 4 tiles) shift the tone a little, with no seam between tiles.
    assert np.abs(tiled.astype(int) - written.astype(int)).mean() < 8


def test_translate_aligns_a_real_photo(cli, run: Path, celebahq_sample: Path, tmp_path: Path) -> None:
    small = tmp_path / "photo.jpg"
    Image.open(sorted(celebahq_sample.glob("*.jpg"))[1]).convert("RGB").resize((384, 384), Image.LANCZOS).save(small)
    result = cli("translate", "--ckpt", run, small, "--align", "dlib", "--out", tmp_path / "out", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "photo.png").exists()


def test_translate_rejects_bad_inputs_with_one_paragraph(cli, run: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    bad = cli("translate", "--ckpt", run, text, "--out", tmp_path / "a", "--device", "cpu")
    assert bad.exit_code == 1 and "notes.jpg" in bad.stderr and "Traceback" not in bad.output
    assert not (tmp_path / "a").exists()
    # A checkpoint whose weights do not fit the configuration it names (edited, or written by another program).
    ckpt = load_checkpoint(run)
    config = {**ckpt.meta["model"], "ngf": 16}
    foreign = tmp_path / "foreign"
    save_checkpoint(foreign / "checkpoints", 1, ckpt.modules, {**ckpt.meta, "model": config}, {"step": 1})
    wrong = cli("translate", "--ckpt", foreign, STYLES / "candy.jpg", "--out", tmp_path / "b", "--device", "cpu")
    assert wrong.exit_code == 1 and "do not fit" in wrong.stderr and "Traceback" not in wrong.output
    from train_helpers import make_run

    dcgan = make_run(tmp_path / "dcgan")
    other = cli("translate", "--ckpt", dcgan, STYLES / "candy.jpg", "--out", tmp_path / "c", "--device", "cpu")
    assert other.exit_code == 1 and "not an image translator" in other.stderr and "facegan sample" in other.stderr
    # A bad number is a usage error (any --size works now: sides are padded to the networks' multiple).
    size = cli("translate", "--ckpt", run, STYLES / "candy.jpg", "--size", "3", "--out", tmp_path / "d")
    assert size.exit_code == 2 and "smaller than 4" in size.stderr
    tile = cli("translate", "--ckpt", run, STYLES / "candy.jpg", "--tile", "30", "--out", tmp_path / "d")
    assert tile.exit_code == 2 and "multiple of 4" in tile.stderr
    overlap = cli("translate", "--ckpt", run, STYLES / "candy.jpg", "--tile", "32", "--overlap", "24", "--out",
                  tmp_path / "d")
    assert overlap.exit_code == 2 and "twice the overlap" in overlap.stderr and not (tmp_path / "d").exists()
    way = cli("translate", "--ckpt", run, STYLES / "candy.jpg", "--direction", "up", "--out", tmp_path / "e")
    assert way.exit_code == 1 and "a2b or b2a" in way.stderr
    missing = cli("translate", "--ckpt", run, tmp_path / "nope.png", "--out", tmp_path / "f")
    assert missing.exit_code == 1 and "nope.png" in missing.stderr


def test_eval_translation_against_true_pairs(run: Path, painting: Path, cli) -> None:
    result = cli("eval", "translation", "--ckpt", run, "--data", painting, "--no-inception", "--device", "cpu",
                 "--json", "--quiet")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["split"] == "test" and doc["data"]["A"]["path"] == str(painting / "testA")
    for direction, d in doc["directions"].items():
        assert d["n_translated"] == 2 and 0 <= d["adversarial_accuracy"] <= 1 and d["reconstruction_l1"] > 0
        assert d["pairs"]["n"] == 2 and d["pairs"]["input_l1"] > 0.05 and d["pairs"]["psnr"] > 0, direction
        assert "fid" not in d
    mismatched = cli("eval", "translation", "--ckpt", run, "--data-a", painting / "testA", "--data-b",
                     painting / "testB", "--truth-a", painting / "truth" / "trainA", "--no-inception", "--device", "cpu")
    assert mismatched.exit_code == 1 and "do not pair up" in mismatched.stderr


def test_eval_translation_and_metrics_on_real_pictures(homes: MetricsWorld, run: Path,  # noqa: F811
                                                       celebahq_sample: Path) -> None:
    """Real photos as A, the real paintings as B: FID and KID per direction with the metrics' Inception
    network; and `metrics kid` scores the translations of a folder through the checkpoint."""
    doc = run_cli("eval", "translation", "--ckpt", run, "--data-a", celebahq_sample, "--data-b", STYLES,
                  "--limit", "6", "--kid-subset-size", "4", *metrics_args(homes), "--json", "--quiet")
    assert doc.exit_code == 0, doc.output
    found = json.loads(doc.stdout)
    assert found["protocol"] == "pytorch-fid" and found["weights_sha256"]
    for d in found["directions"].values():
        assert d["n_translated"] == 6 and d["kid_subset_size"] == 4 and np.isfinite(d["kid_mean"])
        assert d["fid"] > 0 and d["pairs"] is None
    kid = run_cli("metrics", "kid", STYLES, "--ckpt", run, "--translate", celebahq_sample, "--n", "6",
                  "--subset-size", "4", *metrics_args(homes), "--json", "--quiet")
    assert kid.exit_code == 0, kid.output
    value = json.loads(kid.stdout)
    assert value["inputs"][1]["kind"] == "translator" and value["inputs"][1]["direction"] == "a2b"
    assert value["inputs"][1]["count"] == 6
    no_source = run_cli("metrics", "kid", STYLES, "--ckpt", run, *metrics_args(homes))
    assert no_source.exit_code == 1 and "--translate" in no_source.stderr


def test_translations_source_matches_translate(run: Path, painting: Path, tmp_path: Path, cli) -> None:
    """What a metric reads from --ckpt/--translate is what `facegan translate` writes."""
    from facegan_cli.data.sources import open_image_set
    from facegan_cli.models.generated_sources import TranslatorSource
    from facegan_cli.models.translation import load_translator

    source = TranslatorSource(load_translator(run), open_image_set(painting / "testB"), "b2a")
    pixels = np.concatenate([b for b in source.batches(1)])
    result = cli("translate", "--ckpt", run, "--direction", "b2a", painting / "testB", "--out", tmp_path / "o",
                 "--device", "cpu")
    assert result.exit_code == 0, result.output
    written = np.stack([np.asarray(Image.open(p)) for p in sorted((tmp_path / "o").glob("*.png"))])
    np.testing.assert_array_equal(pixels, written)
