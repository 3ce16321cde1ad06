"""`facegan metrics ...` as a user runs it: documents, the feature cache, inputs, bad input, weights errors.

Most calls use --dims 64 (the first block of the network only) so that they stay cheap; the numbers'
agreement with the reference packages is test_metrics_parity.py's job.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from metrics_helpers import (  # noqa: F401
    OFFICIAL_NAME,
    MetricsWorld,
    homes,
    make_generator,
    metrics_args,
    run_cli,
    run_json,
    world,
)
from PIL import Image

from facegan_cli.core import weights as W


@pytest.fixture
def fresh(world: MetricsWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MetricsWorld:  # noqa: F811
    """The world with an empty feature cache of its own."""
    monkeypatch.setenv("TORCH_HOME", str(world.torch_home))
    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path / "home"))
    return world


@pytest.fixture(scope="module")
def generator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_generator(tmp_path_factory.mktemp("gen") / "run")


def fid64(world: MetricsWorld, *inputs: object, extra: tuple = ()) -> dict:  # noqa: F811
    return run_json("metrics", "fid", *inputs, "--dims", 64, *extra, *metrics_args(world))


def test_fid_document_and_feature_cache(fresh: MetricsWorld) -> None:
    first = fid64(fresh, fresh.set_a, fresh.set_b)
    assert first["metric"] == "fid" and first["values"] == {"fid": first["value"]} and first["value"] > 0
    assert first["protocol"] == "pytorch-fid" and first["dims"] == 64 and first["n1"] == first["n2"] == 8
    assert first["weights_sha256"] == W.sha256_of(fresh.weights) and first["weights_verified"] is False
    assert first["inputs"][0]["kind"] == "folder" and first["inputs"][0]["path"] == str(fresh.set_a)
    assert [i["cached"] for i in first["inputs"]] == [False, False]
    assert any("unreliable" in w for w in first["warnings"])  # 8 samples, 64 dimensions
    assert isinstance(first["seconds"], float)
    second = fid64(fresh, fresh.set_a, fresh.set_b)
    assert [i["cached"] for i in second["inputs"]] == [True, True]
    assert second["value"] == first["value"]
    swapped = fid64(fresh, fresh.set_b, fresh.set_a, extra=("--no-cache",))
    assert [i["cached"] for i in swapped["inputs"]] == [False, False]
    assert swapped["value"] == pytest.approx(first["value"], rel=1e-7)


def test_table_on_stdout_warnings_on_stderr(fresh: MetricsWorld) -> None:
    result = run_cli("metrics", "fid", fresh.set_a, fresh.set_b, "--dims", 64, *metrics_args(fresh))
    assert result.exit_code == 0, result.output
    assert "fid (pytorch-fid)" in result.stdout and "weights sha256" in result.stdout
    assert "warning:" in result.stderr and "warning:" not in result.stdout


def test_stats_file_round_trip_and_protocol_guard(fresh: MetricsWorld, tmp_path: Path) -> None:
    out = tmp_path / "a.npz"
    assert run_cli("metrics", "stats", fresh.set_a, "--out", out, "--dims", 64, *metrics_args(fresh)).stdout.strip() == str(out)
    with np.load(out) as data:  # pytorch-fid's reader
        assert data["mu"].shape == (64,) and data["sigma"].shape == (64, 64)
    from_stats = fid64(fresh, out, fresh.set_b)
    from_images = fid64(fresh, fresh.set_a, fresh.set_b)
    assert from_stats["value"] == pytest.approx(from_images["value"], rel=1e-9)
    assert from_stats["inputs"][0]["kind"] == "stats" and from_stats["n1"] == 8
    # dims come from the file when not given
    auto = run_json("metrics", "fid", out, fresh.set_b, *metrics_args(fresh))
    assert auto["dims"] == 64
    mixed = run_cli("metrics", "fid", out, fresh.set_b, "--protocol", "clean", *metrics_args(fresh))
    assert mixed.exit_code == 1 and "--protocol pytorch-fid" in mixed.stderr
    again = run_cli("metrics", "stats", fresh.set_a, "--out", out, "--dims", 64, *metrics_args(fresh))
    assert again.exit_code == 1 and "--force" in again.stderr


def _bad_folder(root: Path, world: MetricsWorld) -> Path:  # noqa: F811
    root.mkdir()
    faces = world.faces
    for i in range(3):
        Image.fromarray(faces[30 + i]).save(root / f"ok{i}.png")
    Image.fromarray(faces[33]).convert("L").save(root / "gray.png")
    Image.fromarray(faces[34]).convert("RGBA").save(root / "alpha.png")
    Image.fromarray(faces[35]).convert("CMYK").save(root / "cmyk.jpg")
    Image.fromarray(faces[36][:, :96]).save(root / "narrow.png")  # another size, not square
    (root / "broken.jpg").write_bytes((root / "cmyk.jpg").read_bytes()[:200])
    (root / "text.png").write_text("not an image")
    (root / "notes.txt").write_text("ignored: not an image name")
    return root


def test_bad_input_is_converted_or_skipped_and_counted(fresh: MetricsWorld, tmp_path: Path) -> None:
    bad = _bad_folder(tmp_path / "bad", fresh)
    doc = fid64(fresh, bad, fresh.set_b)
    assert doc["n1"] == 7 and doc["inputs"][0]["rejected"] == 2 and doc["inputs"][0]["count"] == 9
    cached = fid64(fresh, bad, fresh.set_b)  # the cache remembers what was skipped
    assert cached["inputs"][0]["rejected"] == 2 and cached["inputs"][0]["cached"]
    strict = run_cli("metrics", "fid", bad, fresh.set_b, "--dims", 64, "--strict", "--no-cache", *metrics_args(fresh))
    assert strict.exit_code == 1 and "broken.jpg" in strict.stderr and "--strict" in strict.stderr
    assert "Traceback" not in strict.output


def test_empty_or_unusable_inputs_exit_1(fresh: MetricsWorld, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    empty = run_cli("metrics", "fid", tmp_path / "empty", fresh.set_b, *metrics_args(fresh))
    assert empty.exit_code == 1 and "No images found" in empty.stderr
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.png").write_bytes(b"")
    (junk / "b.jpg").write_text("no")
    unusable = run_cli("metrics", "fid", junk, fresh.set_b, "--dims", 64, *metrics_args(fresh))
    assert unusable.exit_code == 1 and "is a readable image" in unusable.stderr and str(junk) in unusable.stderr
    one = run_cli("metrics", "fid", fresh.set_a, *metrics_args(fresh))
    assert one.exit_code == 1 and "compares 2 input(s) but got 1" in one.stderr
    missing = run_cli("metrics", "is", tmp_path / "nope", *metrics_args(fresh))
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    npz_kid = run_cli("metrics", "kid", tmp_path / "x.npz", fresh.set_a, *metrics_args(fresh))
    assert npz_kid.exit_code == 1 and "statistics file" in npz_kid.stderr


def test_missing_weights_fail_at_once_with_the_way_out(
    fresh: MetricsWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    official = W.get("fid-inception")
    offline = W.WeightsFile(official.key, official.filename, "http://127.0.0.1:9/pt_inception.pth",
                            official.used_by, official.aliases)
    monkeypatch.setitem(W.KNOWN, "fid-inception", offline)
    result = run_cli("metrics", "fid", fresh.set_a, fresh.set_b, "--device", "cpu", "--no-cache")
    assert result.exit_code == 1
    text = " ".join(result.stderr.split())
    assert OFFICIAL_NAME in text and "127.0.0.1:9" in text and "facegan weights import fid-inception" in text
    impostor = tmp_path / OFFICIAL_NAME
    impostor.write_bytes(fresh.weights.read_bytes())
    wrong = run_cli("metrics", "fid", fresh.set_a, fresh.set_b, "--inception-weights", impostor, "--no-cache")
    assert wrong.exit_code == 1 and "SHA-256" in wrong.stderr


def test_generator_checkpoint_scores_what_its_saved_samples_would(
    fresh: MetricsWorld, generator: Path, tmp_path: Path
) -> None:
    on_the_fly = fid64(fresh, fresh.set_a, extra=("--ckpt", generator, "--n", 8, "--seed", 3))
    assert on_the_fly["n2"] == 8 and on_the_fly["inputs"][1]["kind"] == "generator"
    assert on_the_fly["inputs"][1]["seed"] == 3
    samples = tmp_path / "samples"
    written = run_cli("sample", "--ckpt", generator, "--n", 8, "--seed", 3, "--out", samples, "--device", "cpu")
    assert written.exit_code == 0, written.output
    from_files = fid64(fresh, fresh.set_a, samples)
    assert from_files["value"] == pytest.approx(on_the_fly["value"], rel=1e-6)


def test_is_kid_swd_msssim_documents(fresh: MetricsWorld, generator: Path) -> None:
    # (precision/recall's document is checked with its parity in test_metrics_parity.py)
    score = run_json("metrics", "is", "--ckpt", generator, "--n", 4, "--splits", 2, *metrics_args(fresh))
    assert score["metric"] == "is" and score["value"] >= 1.0 and set(score["values"]) == {"is_mean", "is_std"}
    assert score["n1"] == 4 and score["dims"] == 1008
    kid = run_json("metrics", "kid", fresh.set_a, "--ckpt", generator, "--n", 12, "--dims", 64, *metrics_args(fresh))
    assert kid["subset_size"] == 8 and "not comparable" in " ".join(kid["warnings"])
    swd = run_json("metrics", "swd", fresh.set_a, fresh.set_b, "--device", "cpu", "--workers", 1)
    assert swd["levels"] == [128, 64, 32, 16] and swd["protocol"] == "progan-swd"
    assert swd["value"] == pytest.approx(np.mean([swd["values"][f"swd_{r}"] for r in swd["levels"]]))
    ms = run_json("metrics", "msssim", "--ckpt", generator, "--pairs", 6, "--device", "cpu")
    assert ms["pairs"] == 6 and 0 < ms["value"] <= 1 and any("pytorch-msssim" in w for w in ms["warnings"])
    folder = run_json("metrics", "msssim", fresh.set_a, "--pairs", 10, "--device", "cpu", "--workers", 1)
    assert folder["pairs"] == 10 and folder["inputs"][0]["kind"] == "folder"


@pytest.mark.parametrize("name", ["fid", "kid", "is", "pr", "swd", "msssim", "stats"])
def test_help_shows_defaults_and_an_example(name: str) -> None:
    result = run_cli("metrics", name, "--help")
    assert result.exit_code == 0 and "Example:" in result.stdout and "[default:" in result.stdout
