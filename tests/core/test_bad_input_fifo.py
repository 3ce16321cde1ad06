"""Issue 18, item 5 and its low items: FIFOs, devices and dangling links where facegan expects a file.

A FIFO named like a checkpoint hung `translate` and `train --resume`; a FIFO run.json hung `runs list`; a
FIFO as a translate input was called missing; FIFOs and dangling links in an input folder were dropped
silently. Each test reproduces one of those on the code before the fix. A reader that blocks would hang the
test for ever, so every test runs under `unblock`, which opens the FIFO's other end after a while: the
test then ends (and fails, since the watchdog fired) instead of hanging.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke_cli
from train_helpers import copy_run, tiny_cycle_gan_run, tiny_dcgan_run, write_image_folder
from typer.testing import Result

from facegan_cli.core.checkpoint import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")
WAIT_S = 20.0  # far longer than any of these commands takes; only a blocked reader waits this long


# The watchdog is another process: a reader blocked inside a library's open() (safetensors' Rust code) may
# hold the GIL, so a thread of this process would never get to run.
_WATCHDOG = """
import os, sys, time
after, flag, fifos = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
time.sleep(after)
open(flag, "w").close()
while True:
    for fifo in fifos:
        for flags in (os.O_WRONLY, os.O_RDONLY):
            try:
                os.close(os.open(fifo, flags | os.O_NONBLOCK))
            except OSError:
                pass
    time.sleep(0.2)
"""


@contextlib.contextmanager
def unblock(*fifos: Path, after: float = WAIT_S) -> Iterator[Path]:
    """Watch `fifos`: if the code under test is still running after `after` seconds, keep opening their
    other ends (which releases a reader, or a writer, blocked in open()) until it returns. The returned
    path exists afterwards when that was needed, i.e. when the code blocked."""
    flag = Path(tempfile.mkdtemp()) / "fired"
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(after), str(flag), *map(str, fifos)])
    try:
        yield flag
    finally:
        watchdog.kill()
        watchdog.wait()


def invoke(*args: object) -> Result:
    return invoke_cli(args)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("imgs") / "faces", n=16)


@pytest.fixture(scope="module")
def dcgan_run(images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step tiny DCGAN run with one checkpoint (copy it before damaging it)."""
    return tiny_dcgan_run(tmp_path_factory.mktemp("dcgan"), images, 2)


@pytest.fixture(scope="module")
def cycle_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_cycle_gan_run(tmp_path_factory.mktemp("cg"))



def fifo(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def photo(path: Path, size: int = 16) -> Path:
    from PIL import Image

    Image.fromarray(np.full((size, size, 3), 128, dtype=np.uint8)).save(path)
    return path


# --- checkpoints -------------------------------------------------------------------------------------------


def test_a_fifo_named_like_the_newest_checkpoint_does_not_hang_translate(cycle_run: Path, tmp_path: Path) -> None:
    run = copy_run(cycle_run, tmp_path / "run")
    pipe = fifo(run / "checkpoints" / "ckpt-000000009.safetensors")
    with unblock(pipe) as fired:
        result = invoke("translate", "--ckpt", run, photo(tmp_path / "face.png"), "--out", tmp_path / "out",
                        "--device", "cpu")
    assert not fired.exists(), "translate blocked on the FIFO"
    assert result.exit_code == 0, result.output
    assert "ckpt-000000009" in result.stderr and "FIFO" in result.stderr and "Traceback" not in result.output
    assert (tmp_path / "out" / "face.png").is_file()


def test_a_fifo_given_as_the_checkpoint_is_named_as_one(cycle_run: Path, tmp_path: Path) -> None:
    pipe = fifo(tmp_path / "model.safetensors")
    with unblock(pipe) as fired:
        result = invoke("translate", "--ckpt", pipe, photo(tmp_path / "face.png"), "--out", tmp_path / "out",
                        "--device", "cpu")
    assert not fired.exists()
    assert result.exit_code == 1 and "FIFO" in result.stderr and "model.safetensors" in result.stderr


def test_a_fifo_checkpoint_does_not_hang_resume(dcgan_run: Path, tmp_path: Path) -> None:
    run = copy_run(dcgan_run, tmp_path / "run")
    pipe = fifo(run / "checkpoints" / "ckpt-000000003.safetensors")
    with unblock(pipe) as fired:
        result = invoke("train", "dcgan", "--resume", run, "--steps", 4, "--device", "cpu", "--no-tensorboard")
    assert not fired.exists(), "train --resume blocked on the FIFO"
    assert result.exit_code == 0, result.output
    assert "ckpt-000000003" in result.stderr and "FIFO" in result.stderr
    assert load_checkpoint(run).step == 4


def test_a_fifo_state_file_does_not_hang_resume(dcgan_run: Path, tmp_path: Path) -> None:
    run = copy_run(dcgan_run, tmp_path / "run")
    pipe = fifo(run / "checkpoints" / "ckpt-000000002.state.safetensors")
    with unblock(pipe) as fired:
        result = invoke("train", "dcgan", "--resume", run, "--steps", 4, "--device", "cpu", "--no-tensorboard")
    assert not fired.exists(), "train --resume blocked on the FIFO state file"
    assert result.exit_code == 1 and "FIFO" in result.stderr and "state.safetensors" in result.stderr
    assert "internal error" not in result.stderr and "unpickles" not in result.stderr


def test_a_fifo_metrics_log_does_not_hang_resume(dcgan_run: Path, tmp_path: Path) -> None:
    run = copy_run(dcgan_run, tmp_path / "run")
    pipe = fifo(run / "metrics.jsonl")
    with unblock(pipe) as fired:
        result = invoke("train", "dcgan", "--resume", run, "--steps", 4, "--device", "cpu", "--no-tensorboard")
    assert not fired.exists(), "train --resume blocked on the FIFO metrics.jsonl"
    assert result.exit_code == 1 and "FIFO" in result.stderr and "metrics.jsonl" in result.stderr


# --- run files ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["run.json", "config.json", "metrics.jsonl"])
def test_a_fifo_run_file_does_not_hang_runs_list(dcgan_run: Path, tmp_path: Path, name: str) -> None:
    copy_run(dcgan_run, tmp_path / "runs" / "a")
    bad = copy_run(dcgan_run, tmp_path / "runs" / "b")
    pipe = fifo(bad / name)
    with unblock(pipe) as fired:
        result = invoke("runs", "list", tmp_path / "runs", "--json")
    assert not fired.exists(), f"runs list blocked on a FIFO {name}"
    assert result.exit_code == 0, result.output
    runs = {Path(r["run"]).name: r for r in json.loads(result.stdout)["runs"]}
    assert runs["a"]["status"] == "finished"
    assert runs["b"]["status"] == "unreadable" and name in runs["b"]["error"] and "FIFO" in runs["b"]["error"]


# --- other files facegan reads -----------------------------------------------------------------------------


def _latents(path: Path) -> object:
    from facegan_cli.latent.latents import load_latents

    return load_latents(path)


def _stats(path: Path) -> object:
    from facegan_cli.metrics.stats import load_stats

    return load_stats(path)


def _recipe(path: Path) -> object:
    from facegan_cli.prepare.recipes import load_recipe

    return load_recipe(path)


def _weights(path: Path) -> object:
    from facegan_cli.core import weights
    from facegan_cli.features.base import read_state_dict

    return read_state_dict(path, weights.get(next(iter(weights.KNOWN))))


def _state(path: Path) -> object:
    from facegan_cli.core.statefile import load_state

    return load_state(path)


def _prepared(path: Path) -> object:
    from facegan_cli.data.prepared import PreparedDataset

    path.with_name("ds").mkdir()
    os.replace(path, path.with_name("ds") / "manifest.json")
    return PreparedDataset.open(path.with_name("ds"))


def _checkpoint(path: Path) -> object:
    return load_checkpoint(path)


def _annotations(path: Path) -> object:
    from facegan_cli.prepare.celeba import _rows

    return _rows(path)


def _turing_key(path: Path) -> object:
    from facegan_cli.evaluation.turing import read_key

    return read_key(path)


def _answers(path: Path) -> object:
    from facegan_cli.evaluation.turing import read_answers

    return read_answers(path, {1})


@pytest.mark.parametrize(
    ("reader", "name"),
    [(_latents, "z.npy"), (_stats, "ref.npz"), (_recipe, "mine.toml"), (_weights, "vgg.pth"),
     (_state, "s.state.safetensors"), (_prepared, "manifest.json"), (_checkpoint, "c.safetensors"),
     (_annotations, "list_attr_celeba.txt"), (_turing_key, "key.json"), (_answers, "answers.txt")],
)
def test_every_reader_refuses_a_fifo_at_once_naming_it(tmp_path: Path, reader: Callable[[Path], object],
                                                       name: str) -> None:
    from facegan_cli.core.errors import FaceganError

    pipe = fifo(tmp_path / name)
    with unblock(pipe, tmp_path / "ds" / "manifest.json") as fired, pytest.raises(FaceganError) as info:
        reader(pipe)
    assert not fired.exists(), f"{reader.__name__} blocked on the FIFO"
    assert "FIFO" in info.value.paragraph() and name in info.value.paragraph()


# --- inputs ------------------------------------------------------------------------------------------------


def test_a_fifo_translate_input_is_named_as_a_fifo_not_as_missing(cycle_run: Path, tmp_path: Path) -> None:
    pipe = fifo(tmp_path / "face.png")
    with unblock(pipe) as fired:
        result = invoke("translate", "--ckpt", cycle_run, pipe, "--out", tmp_path / "out", "--device", "cpu")
    assert not fired.exists()
    assert result.exit_code == 1 and "FIFO" in result.stderr and "does not exist" not in result.stderr


def test_fifos_and_dangling_links_in_an_input_folder_are_warned_about_and_listed(
    cycle_run: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    photo(folder / "a.png")
    pipe = fifo(folder / "b.png")
    (folder / "c.png").symlink_to(tmp_path / "gone.png")
    with unblock(pipe) as fired:
        result = invoke("translate", "--ckpt", cycle_run, folder, "--out", tmp_path / "out", "--device", "cpu",
                        "--json")
    assert not fired.exists()
    assert result.exit_code == 0, result.output
    assert "b.png" in result.stderr and "c.png" in result.stderr and "warning" in result.stderr
    doc = json.loads(result.stdout)
    assert [Path(r["input"]).name for r in doc["outputs"]] == ["a.png"]
    skipped = {Path(s["input"]).name: s["reason"] for s in doc["skipped"]}
    assert set(skipped) == {"b.png", "c.png"} and "FIFO" in skipped["b.png"] and "link" in skipped["c.png"]


def test_a_fifo_in_a_stdin_path_list_is_named_as_a_fifo(cycle_run: Path, tmp_path: Path) -> None:
    pipe = fifo(tmp_path / "face.png")
    with unblock(pipe) as fired:
        result = invoke_cli(["translate", "--ckpt", str(cycle_run), "-", "--out", str(tmp_path / "out"),
                                     "--device", "cpu"], input=f"{pipe}\n")
    assert not fired.exists()
    assert result.exit_code == 1 and "FIFO" in result.stderr

