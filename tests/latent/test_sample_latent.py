"""`facegan sample` and `facegan latent ...`, and the library under them, on tiny random generators."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import invoke_cli
from PIL import Image
from train_helpers import TINY_HEIKKA32, make_run

from facegan_cli.core.checkpoint import load_checkpoint, save_checkpoint
from facegan_cli.core.errors import FaceganError
from facegan_cli.core.seeding import draw_latents
from facegan_cli.data.grid import to_uint8
from facegan_cli.latent.arithmetic import jitter, vector_arithmetic
from facegan_cli.latent.interpolate import interpolate, lerp, slerp
from facegan_cli.latent.latents import load_latents, resolve_latents
from facegan_cli.latent.nearest import nearest_neighbours
from facegan_cli.models import registry
from facegan_cli.models.loading import load_generator


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run")


def invoke(*args: str) -> object:
    return invoke_cli([str(a) for a in args])


def ok(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def expected_pixels(run: Path, z: torch.Tensor) -> np.ndarray:
    generator = load_generator(run, "cpu")
    with torch.no_grad():
        return to_uint8(generator.module(z), generator.value_range)


def cell(grid: np.ndarray, index: int, ncol: int, size: int = 32, padding: int = 2) -> np.ndarray:
    r, c = divmod(index, ncol)
    y, x = padding + r * (size + padding), padding + c * (size + padding)
    return grid[y : y + size, x : x + size]


# --- loading -----------------------------------------------------------------------------------------


def test_load_generator_reads_the_contract(run_dir: Path) -> None:
    generator = load_generator(run_dir, "cpu")
    assert (generator.family, generator.z_dim, generator.resolution, generator.step) == ("dcgan", 100, 32, 7)
    assert generator.value_range == (-1.0, 1.0)
    assert generator.weights == "G"
    assert not generator.module.training
    images = generator.generate(draw_latents(5, 100, 0), batch_size=2)
    assert images.shape == (5, 3, 32, 32)
    assert images.min() >= -1 and images.max() <= 1


def test_load_generator_prefers_ema_weights(tmp_path: Path) -> None:
    run = make_run(tmp_path / "ema", ema=True)
    generator = load_generator(run, "cpu")
    assert generator.weights == "G_ema"
    modules = load_checkpoint(run).modules
    loaded = generator.module.state_dict()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in modules["G_ema"].items())
    assert not all(torch.equal(loaded[name], tensor) for name, tensor in modules["G"].items())


def test_sigmoid_generator_range(tmp_path: Path) -> None:
    run = make_run(tmp_path / "sig", output="sigmoid")
    assert load_generator(run, "cpu").value_range == (0.0, 1.0)


def test_weights_that_do_not_fit_are_a_clear_error(tmp_path: Path) -> None:
    config = registry.resolve_config("dcgan", "heikka32", TINY_HEIKKA32)
    wider = registry.build_generator("dcgan", {**config, "g_width": 16})
    save_checkpoint(
        tmp_path / "bad",
        1,
        modules={"G": wider.state_dict()},
        meta={"family": "dcgan", "model": config, "generator": "G"},
        state=None,
    )
    with pytest.raises(FaceganError, match="do not fit"):
        load_generator(tmp_path / "bad", "cpu")
    result = invoke("sample", "--ckpt", tmp_path / "bad", "--out", tmp_path / "g.png", "--device", "cpu")
    assert result.exit_code == 1
    assert "do not fit" in result.output and "Traceback" not in result.output


def test_not_a_checkpoint_exits_1(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = invoke("sample", "--ckpt", tmp_path / "empty", "--out", tmp_path / "g.png")
    assert result.exit_code == 1
    assert "no complete checkpoint" in result.output and "Traceback" not in result.output


# --- sample ------------------------------------------------------------------------------------------


def test_sample_grid_size_and_content(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    stdout = ok(
        "sample", "--ckpt", run_dir, "--n", 6, "--nrow", 3, "--seed", 4, "--out", out, "--device", "cpu"
    )
    assert stdout.strip() == str(out)
    grid = read_png(out)
    assert grid.shape == (2 * 34 + 2, 3 * 34 + 2, 3)
    expected = expected_pixels(run_dir, draw_latents(6, 100, 4))
    for i in range(6):
        np.testing.assert_array_equal(cell(grid, i, 3), expected[i])


def test_sample_same_seed_same_images(run_dir: Path, tmp_path: Path) -> None:
    for name, seed in (("a.png", 0), ("b.png", 0), ("c.png", 1)):
        ok("sample", "--ckpt", run_dir, "--n", 4, "--seed", seed, "--out", tmp_path / name, "-q")
    a, b, c = (read_png(tmp_path / name) for name in ("a.png", "b.png", "c.png"))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_save_latents_then_latents_reproduces(run_dir: Path, tmp_path: Path) -> None:
    z_path = tmp_path / "z.npy"
    ok(
        "sample",
        "--ckpt",
        run_dir,
        "--n",
        5,
        "--seed",
        9,
        "--out",
        tmp_path / "a.png",
        "--save-latents",
        z_path,
    )
    np.testing.assert_array_equal(np.load(z_path), draw_latents(5, 100, 9).numpy())
    stdout = ok("sample", "--ckpt", run_dir, "--latents", z_path, "--out", tmp_path / "folder")
    # The folder also holds facegan's ownership marker (.facegan-output.json), which is not a sample.
    assert (tmp_path / "folder" / ".facegan-output.json").is_file()
    files = sorted(f for f in (tmp_path / "folder").iterdir() if f.name != ".facegan-output.json")
    assert [f.name for f in files] == [f"{i:04d}.png" for i in range(5)]
    assert stdout.split() == [str(f) for f in files]
    grid = read_png(tmp_path / "a.png")
    for i, file in enumerate(files):
        np.testing.assert_array_equal(read_png(file), cell(grid, i, 3))


def test_sample_never_overwrites_without_force(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.png"
    ok("sample", "--ckpt", run_dir, "--n", 2, "--out", out)
    before = out.read_bytes()
    result = invoke("sample", "--ckpt", run_dir, "--n", 2, "--seed", 1, "--out", out)
    assert result.exit_code == 1 and "already exists" in result.output
    assert out.read_bytes() == before
    ok("sample", "--ckpt", run_dir, "--n", 2, "--seed", 1, "--out", out, "--force")
    assert out.read_bytes() != before

    folder = tmp_path / "f"
    ok("sample", "--ckpt", run_dir, "--n", 3, "--out", folder)
    assert invoke("sample", "--ckpt", run_dir, "--n", 2, "--out", folder).exit_code == 1
    ok("sample", "--ckpt", run_dir, "--n", 2, "--out", folder, "--force")
    # no stale 0002.png; the marker lets a later --force recognise the folder as facegan's
    assert sorted(p.name for p in folder.iterdir()) == [".facegan-output.json", "0000.png", "0001.png"]
    (folder / "notes.txt").write_text("mine")
    result = invoke("sample", "--ckpt", run_dir, "--n", 2, "--out", folder, "--force")
    assert result.exit_code == 1 and "notes.txt" in result.output


def test_sample_json_is_one_document(run_dir: Path, tmp_path: Path) -> None:
    payload = json.loads(ok("sample", "--ckpt", run_dir, "--n", 3, "--out", tmp_path / "g.png", "--json"))
    assert payload["n"] == 3 and payload["step"] == 7 and payload["files"] == [str(tmp_path / "g.png")]


# --- latents -----------------------------------------------------------------------------------------


def test_latent_references(tmp_path: Path) -> None:
    saved = draw_latents(4, 10, 3)
    z = resolve_latents(["2", "s5"], 10, saved)
    torch.testing.assert_close(z[0], saved[2], rtol=0, atol=0)
    torch.testing.assert_close(z[1], draw_latents(1, 10, 5)[0], rtol=0, atol=0)
    torch.testing.assert_close(resolve_latents(["5"], 10, None)[0], draw_latents(1, 10, 5)[0], rtol=0, atol=0)
    with pytest.raises(FaceganError, match="past the end"):
        resolve_latents(["4"], 10, saved)
    np.save(tmp_path / "bad.npy", np.zeros((3, 7), np.float32))
    with pytest.raises(FaceganError, match="7-d latents"):
        load_latents(tmp_path / "bad.npy", 10)


# --- interpolation -----------------------------------------------------------------------------------


def test_lerp_midpoint_is_exact() -> None:
    a, b = draw_latents(2, 100, 0)
    path = interpolate(a, b, 3, "lerp")
    assert torch.equal(path[0], a) and torch.equal(path[2], b)
    assert torch.equal(path[1], (a + b) / 2)


def test_slerp_endpoints_and_norms() -> None:
    a, b = draw_latents(2, 100, 1)
    b = b * (a.norm() / b.norm())  # equal norms: slerp stays on that sphere
    path = slerp(a, b, torch.linspace(0, 1, 11, dtype=torch.float64))
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    torch.testing.assert_close(path.norm(dim=1), a.norm().expand(11), rtol=1e-6, atol=0)
    # The angle from a grows linearly in t, unlike lerp's.
    unit = path.double() / path.double().norm(dim=1, keepdim=True)
    angles = torch.arccos((unit @ (a.double() / a.double().norm())).clamp(-1, 1))
    torch.testing.assert_close(
        angles, angles[-1] * torch.linspace(0, 1, 11, dtype=torch.float64), rtol=0, atol=1e-6
    )
    mid_lerp = lerp(a, b, torch.tensor([0.5]))[0]
    assert mid_lerp.norm() < a.norm() * 0.9  # the straight line dips inside the sphere


def test_slerp_near_parallel_and_opposite() -> None:
    a = draw_latents(1, 50, 2)[0]
    near = a * 2 + 1e-9
    path = slerp(a, near, torch.linspace(0, 1, 5))
    assert torch.isfinite(path).all()
    torch.testing.assert_close(path, lerp(a, near, torch.linspace(0, 1, 5)))
    opposite = slerp(a, -a, torch.linspace(0, 1, 5))
    assert torch.isfinite(opposite).all()
    assert torch.equal(opposite[0], a) and torch.equal(opposite[-1], -a)
    torch.testing.assert_close(opposite.norm(dim=1), a.norm().expand(5))


def test_interpolate_cli(run_dir: Path, tmp_path: Path) -> None:
    z_path = tmp_path / "z.npy"
    ok("sample", "--ckpt", run_dir, "--n", 4, "--out", tmp_path / "s.png", "--save-latents", z_path)
    out, saved = tmp_path / "interp.png", tmp_path / "path.npy"
    stdout = ok(
        "latent",
        "interpolate",
        "--ckpt",
        run_dir,
        "--latents",
        z_path,
        "--pairs",
        "0:3,s7:1",
        "--steps",
        5,
        "--method",
        "slerp",
        "--out",
        out,
        "--save-latents",
        saved,
    )
    assert stdout.split() == [str(out), str(saved)]
    z = torch.from_numpy(np.load(z_path))
    expected = torch.cat(
        [interpolate(z[0], z[3], 5, "slerp"), interpolate(draw_latents(1, 100, 7)[0], z[1], 5, "slerp")]
    )
    np.testing.assert_array_equal(np.load(saved), expected.numpy())
    figure = read_png(out)
    assert figure.shape[0] >= 2 * 32 and figure.shape[1] >= 5 * 32
    result = invoke("latent", "interpolate", "--ckpt", run_dir, "--pairs", "0-3", "--out", tmp_path / "x.png")
    assert result.exit_code == 1 and "START:END" in result.output


# --- arithmetic --------------------------------------------------------------------------------------


def test_vector_arithmetic_matches_hand_computation() -> None:
    z = draw_latents(9, 6, 0)
    a, b, c = z[0:3], z[3:5], z[5:9]
    per = vector_arithmetic(a, b, c)
    hand = torch.stack([a[i] - (b[0] + b[1]) / 2 + (c[0] + c[1] + c[2] + c[3]) / 4 for i in range(3)])
    torch.testing.assert_close(per, hand, rtol=0, atol=1e-6)
    avg = vector_arithmetic(a, b, c, average_a=True)
    assert avg.shape == (1, 6)
    torch.testing.assert_close(
        avg[0], (a[0] + a[1] + a[2]) / 3 - (b[0] + b[1]) / 2 + c.sum(0) / 4, rtol=0, atol=1e-6
    )
    varied = jitter(avg, 0.25, 8, seed=3)
    assert varied.shape == (1, 8, 6)
    assert (varied - avg[:, None]).abs().max() <= 0.25
    assert (varied - avg[:, None]).abs().max() > 0.1
    torch.testing.assert_close(varied, jitter(avg, 0.25, 8, seed=3), rtol=0, atol=0)


def test_arithmetic_cli_both_modes(run_dir: Path, tmp_path: Path) -> None:
    z_path = tmp_path / "z.npy"
    ok("sample", "--ckpt", run_dir, "--n", 8, "--out", tmp_path / "s.png", "--save-latents", z_path)
    z = torch.from_numpy(np.load(z_path)).double()
    offset = -(z[4] + z[5]) / 2 + (z[6] + z[7]) / 2
    common = [
        "latent",
        "arithmetic",
        "--ckpt",
        run_dir,
        "--latents",
        z_path,
        "--a",
        "0,1,2",
        "--b",
        "4,5",
        "--c",
        "6,7",
    ]
    ok(*common, "--out", tmp_path / "per.png", "--save-latents", tmp_path / "per.npy")
    np.testing.assert_allclose(np.load(tmp_path / "per.npy"), (z[0:3] + offset).numpy(), rtol=0, atol=1e-6)
    payload = json.loads(
        ok(
            *common,
            "--average-a",
            "--jitter",
            "0.25",
            "--variations",
            4,
            "--out",
            tmp_path / "avg.png",
            "--save-latents",
            tmp_path / "avg.npy",
            "--json",
        )
    )
    assert payload["mode"] == "average-a" and payload["results"] == 1 and payload["variations"] == 4
    saved = np.load(tmp_path / "avg.npy")
    assert saved.shape == (5, 100)
    np.testing.assert_allclose(saved[0], (z[0:3].mean(0) + offset).numpy(), rtol=0, atol=1e-6)
    assert np.abs(saved[1:] - saved[0]).max() <= 0.25 + 1e-6
    assert read_png(tmp_path / "avg.png").shape[0] > 5 * 32


# --- nearest neighbours ------------------------------------------------------------------------------


def test_nearest_matches_brute_force_across_batches() -> None:
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(23, 8, 8, 3), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(4, 8, 8, 3), dtype=np.uint8)
    queries[2] = train[17]
    # Row numbers as a reader that skipped unusable files reports them: here every row is 100 + position.
    batches = ((train[i : i + 5], np.arange(i, min(i + 5, 23)) + 100) for i in range(0, 23, 5))
    found = nearest_neighbours(queries, batches, k=3)
    diff = queries[:, None].astype(np.float64) / 255 - train[None].astype(np.float64) / 255
    brute = (diff**2).reshape(4, 23, -1).mean(-1)
    np.testing.assert_array_equal(found.indices, np.argsort(brute, axis=1)[:, :3] + 100)
    np.testing.assert_allclose(found.distances, np.sort(brute, axis=1)[:, :3], rtol=1e-5, atol=1e-7)
    assert found.indices[2, 0] == 117 and found.distances[2, 0] == 0.0
    assert found.searched == 23


def test_nearest_cli_finds_planted_training_image(run_dir: Path, tmp_path: Path) -> None:
    samples = expected_pixels(run_dir, draw_latents(3, 100, 0))
    data = tmp_path / "train"
    data.mkdir()
    rng = np.random.default_rng(1)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)).save(data / f"{i:03d}.png")
    planted = data / "005.png"
    Image.fromarray(samples[1]).save(planted)  # PNG is lossless: the training set holds sample 1 exactly
    payload = json.loads(
        ok(
            "latent",
            "nearest",
            "--ckpt",
            run_dir,
            "--data",
            data,
            "--n",
            3,
            "-k",
            2,
            "--out",
            tmp_path / "nn.png",
            "--json",
            "--batch-size",
            5,
        )
    )
    best = payload["queries"][1]["neighbours"][0]
    assert best == {"index": 5, "source": str(planted), "distance": 0.0}
    assert all(q["neighbours"][0]["distance"] > 0 for i, q in enumerate(payload["queries"]) if i != 1)
    assert payload["searched"] == 12
    assert (tmp_path / "nn.png").exists()


def test_nearest_rejects_unknown_space(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "d" / "a.png")
    result = invoke(
        "latent",
        "nearest",
        "--ckpt",
        run_dir,
        "--data",
        tmp_path / "d",
        "-k",
        1,
        "--space",
        "nope",
        "--out",
        tmp_path / "n.png",
    )
    assert result.exit_code == 1 and "--space" in result.output


def test_help_has_examples() -> None:
    for args in (["sample"], ["latent", "interpolate"], ["latent", "arithmetic"], ["latent", "nearest"]):
        result = invoke(*args, "--help")
        assert result.exit_code == 0 and "Example:" in result.output, args


def test_nearest_reads_a_prepared_dataset_at_the_matching_level(run_dir: Path, tmp_path: Path) -> None:
    from facegan_cli.data.prepared import PreparedWriter

    sample = expected_pixels(run_dir, draw_latents(1, 100, 0))[0]
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8) for _ in range(6)]
    # Pixel-doubled at 64x64, so the dataset's 32x32 level (2x2 box averages) holds the sample exactly.
    images[4] = sample.repeat(2, axis=0).repeat(2, axis=1)
    writer = PreparedWriter(tmp_path / "prep", resolution=64, plan={"test": 1}, total_inputs=6, levels=True)
    writer.open()
    for i, pixels in enumerate(images):
        writer.add(pixels, f"face{i}.png")
    writer.finish({"name": "tiny"})
    payload = json.loads(
        ok(
            "latent",
            "nearest",
            "--ckpt",
            run_dir,
            "--data",
            tmp_path / "prep",
            "--n",
            1,
            "-k",
            1,
            "--out",
            tmp_path / "nn.png",
            "--json",
        )
    )
    assert payload["queries"][0]["neighbours"] == [{"index": 4, "source": "face4.png", "distance": 0.0}]
