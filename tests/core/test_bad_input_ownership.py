"""Issue 18: `--force` never deletes a user's file. Ownership is recorded when facegan writes, never guessed
from names: a single file is replaced only when its folder's `.facegan-files.json` lists it unchanged, a
folder only when its marker lists every entry unchanged; output folders are locked while they are made, the
final rename never replaces what appeared meanwhile, links are never replaced, and a killed command's
staging folder is cleaned by the next one."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke_cli
from PIL import Image
from train_helpers import TINY_DCGAN, write_image_folder
from typer.testing import Result

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.lock import OutputLock
from facegan_cli.core.outputs import FILES_RECORD, MARKER, read_marker, staged_folder
from facegan_cli.core.ownership import foreign_entries

Cli = Callable[..., Result]
SHORT = ["--ckpt-every", "2", "--log-every", "1", "--sample-every", "2", "--device", "cpu", "--quiet",
         "--no-tensorboard"]


def _photo(path: Path, seed: int = 0) -> Path:
    """A user's own picture (a holiday photo)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("imgs") / "faces", n=8)


@pytest.fixture(scope="module")
def trained(images: Path, tmp_path_factory: pytest.TempPathFactory, cli_module: Cli) -> Path:
    """A dcgan run trained through the CLI: metrics, a sample grid and checkpoints, each recorded."""
    out = tmp_path_factory.mktemp("run") / "run"
    result = cli_module("train", "dcgan", "--data", images, "--out", out, "--steps", 2, *SHORT, *TINY_DCGAN)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def cli_module() -> Cli:
    """The `cli` fixture for module-scoped fixtures."""
    return lambda *args: invoke_cli(args)


# --- 1. single-file outputs: replaced only when facegan's record lists them ---------------------------------


def test_force_never_overwrites_a_users_file_with_a_plot_grid_or_figure(trained: Path, cli: Cli, tmp_path: Path) -> None:
    """Old main: `cp holiday.png myplot.png; runs plot RUN --out myplot.png --force` overwrote the photo."""
    commands = {
        "myplot.png": ("runs", "plot", trained, "--force"),
        "grid.png": ("sample", "--ckpt", trained, "--n", 4, "--device", "cpu", "--force"),
        "walk.png": ("latent", "interpolate", "--ckpt", trained, "--pairs", "1:2", "--steps", 3, "--device", "cpu",
                     "--force"),
    }
    for k, (name, args) in enumerate(commands.items()):
        photo = _photo(tmp_path / name, seed=k)
        before = photo.read_bytes()
        result = cli(*args, "--out", photo)
        assert result.exit_code == 1, result.output
        assert "does not list it as a file facegan wrote" in result.stderr and "Traceback" not in result.output
        assert photo.read_bytes() == before, name


def test_a_file_facegan_wrote_is_replaced_with_force_until_it_is_changed(trained: Path, cli: Cli, tmp_path: Path) -> None:
    grid = tmp_path / "grid.png"
    args = ("sample", "--ckpt", trained, "--n", 4, "--device", "cpu", "--out", grid)
    assert cli(*args).exit_code == 0
    record = json.loads((tmp_path / FILES_RECORD).read_text())["files"]["grid.png"]
    assert record["size"] == grid.stat().st_size and len(record["sha256"]) == 64
    assert cli(*args).exit_code == 1  # exists: --force is still needed
    assert cli(*args, "--force", "--seed", 3).exit_code == 0  # ours and unchanged: replaced
    _photo(grid, seed=5)  # the user saved their own picture over it
    mine = grid.read_bytes()
    refused = cli(*args, "--force")
    assert refused.exit_code == 1 and "changed since" in refused.stderr and grid.read_bytes() == mine
    # Latents follow the same record.
    grid.unlink()
    z = tmp_path / "z.npy"
    np.save(z, np.zeros((2, 2), np.float32))
    refused = cli(*args, "--force", "--save-latents", z)
    assert refused.exit_code == 1 and "--save-latents" in refused.stderr
    assert np.load(z).shape == (2, 2)


def test_runs_plot_out_inside_its_run_is_refused(trained: Path, cli: Cli) -> None:
    result = cli("runs", "plot", trained, "--out", trained / "samples" / "curves.png")
    assert result.exit_code == 1 and "lies inside the input RUN" in result.stderr
    assert not (trained / "samples" / "curves.png").exists()


def test_force_never_replaces_a_symbolic_link(trained: Path, cli: Cli, tmp_path: Path) -> None:
    target = _photo(tmp_path / "real.png")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    result = cli("sample", "--ckpt", trained, "--n", 4, "--device", "cpu", "--out", link, "--force")
    assert result.exit_code == 1 and "symbolic link" in result.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    folder_link = tmp_path / "folder-link"
    (tmp_path / "somewhere").mkdir()
    folder_link.symlink_to(tmp_path / "somewhere")
    result = cli("sample", "--ckpt", trained, "--n", 2, "--device", "cpu", "--out", folder_link, "--force")
    assert result.exit_code == 1 and "symbolic link" in result.stderr and folder_link.is_symlink()


# --- 2. inside a marked folder: a name that looks like facegan's proves nothing --------------------------------


def test_run_force_refuses_a_users_png_named_like_a_sample(trained: Path, images: Path, cli: Cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run, copy_function=shutil.copy2)  # copy2 keeps mtimes: still facegan's record
    assert foreign_entries(run) == []
    notes = _photo(run / "samples" / "my_notes.png")
    same_name = run / "samples" / "step-000000002.png"
    result = cli("train", "dcgan", "--data", images, "--out", run, "--force", "--steps", 2, *SHORT, *TINY_DCGAN)
    assert result.exit_code == 1 and "samples/my_notes.png" in result.stderr, result.output
    assert notes.exists() and same_name.exists()
    notes.unlink()
    _photo(same_name, seed=9)  # the user replaced a sample grid by their own file of the same name
    result = cli("train", "dcgan", "--data", images, "--out", run, "--force", "--steps", 2, *SHORT, *TINY_DCGAN)
    assert result.exit_code == 1 and "samples/step-000000002.png" in result.stderr
    _photo(same_name, seed=9)
    shutil.rmtree(run)
    shutil.copytree(trained, run, copy_function=shutil.copy2)
    result = cli("train", "dcgan", "--data", images, "--out", run, "--force", "--steps", 2, *SHORT, *TINY_DCGAN)
    assert result.exit_code == 0, result.output


def test_a_killed_runs_grown_log_is_still_the_runs_own(trained: Path, images: Path, cli: Cli, tmp_path: Path) -> None:
    """metrics.jsonl grows between records (a killed run): its recorded prefix is what counts."""
    run = tmp_path / "run"
    shutil.copytree(trained, run, copy_function=shutil.copy2)
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 3}\n')
    assert foreign_entries(run) == []
    (run / "metrics.jsonl").write_text('{"step": 1}\n')  # rewritten: the recorded prefix is gone
    assert foreign_entries(run) == ["metrics.jsonl"]


def test_translate_and_pairs_force_refuse_a_users_png_inside(cli: Cli, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for k in range(4):
        _photo(a / f"{k}.png", seed=k)
        _photo(b / f"{k}.png", seed=10 + k)
    out = tmp_path / "pairs"
    args = ("prepare", "pairs", "--a", a, "--b", b, "--out", out, "--size", 8, "--test", 1, "--workers", 1)
    assert cli(*args).exit_code == 0
    mine = _photo(out / "trainA" / "my_own.png", seed=7)
    refused = cli(*args, "--force")
    assert refused.exit_code == 1 and "trainA/my_own.png" in refused.stderr and mine.exists()
    mine.unlink()
    assert cli(*args, "--force").exit_code == 0


def test_sample_folder_force_refuses_a_users_png_and_replaces_a_clean_one(trained: Path, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "samples"
    args = ("sample", "--ckpt", trained, "--n", 3, "--device", "cpu", "--out", out)
    assert cli(*args).exit_code == 0
    assert set(read_marker(out)["files"]) == {"0000.png", "0001.png", "0002.png"}
    mine = _photo(out / "0003.png", seed=4)  # named like a sample, written by the user
    refused = cli(*args, "--force")
    assert refused.exit_code == 1 and "0003.png" in refused.stderr and mine.exists()
    mine.unlink()
    assert cli(*args, "--force", "--n", 2).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "0000.png", "0001.png"]


def test_prepared_dataset_force_refuses_a_users_file_named_like_its_own(
    synthetic_tree: Path, cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    args = ("prepare", "celeba", "--src", synthetic_tree, "--out", out, "--size", 8, "--limit", 3, "--workers", 1)
    assert cli(*args).exit_code == 0, cli(*args).output
    assert {"manifest.json", "images-8.u8", "names.txt"} <= set(read_marker(out)["files"])
    (out / "labels.npy").unlink(missing_ok=True)
    np.save(out / "labels.npy", np.arange(3))  # the user's own array under a name facegan also writes
    refused = cli(*args, "--force")
    assert refused.exit_code == 1 and "labels.npy" in refused.stderr, refused.output
    assert np.load(out / "labels.npy").tolist() == [0, 1, 2]


# --- 4. a staged output is locked, and its rename never replaces what appeared meanwhile ----------------------


def test_a_second_command_writing_the_same_new_output_is_refused(trained: Path, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "same"
    with OutputLock(out, "samples"):  # as a first `sample --out same` still at work holds it
        result = cli("sample", "--ckpt", trained, "--n", 2, "--device", "cpu", "--out", out)
    assert result.exit_code == 1 and "is in use by process" in result.stderr, result.output
    assert not out.exists()
    assert cli("sample", "--ckpt", trained, "--n", 2, "--device", "cpu", "--out", out).exit_code == 0
    assert not (tmp_path / ".same.facegan.lock").exists()  # removed once the output is complete


def test_the_final_rename_never_replaces_an_output_that_appeared_meanwhile(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(FaceganError, match="appeared while this command worked"):
        with staged_folder(target, False, "samples") as staging:
            (staging / "0000.png").write_bytes(b"ours")
            target.mkdir()
            (target / "theirs.png").write_bytes(b"theirs")  # another program wrote it meanwhile
    assert (target / "theirs.png").read_bytes() == b"theirs" and not list(tmp_path.glob(".out.*.partial"))
    # With --force, what appeared is replaced only when the record shows it is facegan's.
    with pytest.raises(FaceganError, match="not created by facegan"):
        with staged_folder(tmp_path / "out2", True, "samples") as staging:
            (staging / "0000.png").write_bytes(b"ours")
            (tmp_path / "out2").mkdir()
            (tmp_path / "out2" / "theirs.png").write_bytes(b"theirs")
    assert (tmp_path / "out2" / "theirs.png").exists()


def test_a_killed_commands_staging_folder_is_cleaned_by_the_next(trained: Path, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "translated"
    left = tmp_path / ".translated.k1ll3d00.partial"  # what a SIGKILLed command leaves
    left.mkdir()
    (left / MARKER).write_text(json.dumps({"kind": "samples", "files": {}}))
    (left / "0000.png").write_bytes(b"half")
    user_dir = tmp_path / ".translated.notours1.partial"  # named alike, but no marker: not facegan's
    user_dir.mkdir()
    (user_dir / "keep.txt").write_text("mine")
    assert cli("sample", "--ckpt", trained, "--n", 2, "--device", "cpu", "--out", out).exit_code == 0
    assert not left.exists() and (user_dir / "keep.txt").exists()


def test_an_old_marker_without_a_record_is_never_replaced(trained: Path, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "x"
    assert cli("sample", "--ckpt", trained, "--n", 2, "--device", "cpu", "--out", out).exit_code == 0
    (out / MARKER).write_text(json.dumps({"facegan": "0.1.0", "kind": "samples"}))  # an older facegan's: no record
    refused = cli("sample", "--ckpt", trained, "--n", 2, "--device", "cpu", "--out", out, "--force")
    assert refused.exit_code == 1 and "did not record" in refused.stderr
    assert (out / "0000.png").exists()
