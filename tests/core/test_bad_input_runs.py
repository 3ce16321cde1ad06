"""Issue 10, the run side: --force ownership, forged state files, locks, resume options, damaged
checkpoints, non-finite weights, usage errors, disk-full, umask and stdout purity of `facegan train`.

Each test reproduces a defect of facegan 0.1 (named in its docstring) and checks the fixed behaviour.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import invoke_cli
from safetensors.torch import load_file
from train_helpers import TINY_DCGAN, write_image_folder

from facegan_cli.core.checkpoint import list_checkpoints, load_checkpoint
from facegan_cli.core.lock import FolderLock
from facegan_cli.core.rundir import RunDir
from facegan_cli.core.statefile import load_state
from facegan_cli.models.registry import resolve_config
from facegan_cli.train.dcgan_trainer import DCGANTrainer
from facegan_cli.train.loop import LoopSettings, run_training

SHORT = ["--ckpt-every", "2", "--log-every", "1", "--sample-every", "100"]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("imgs") / "faces", n=16)


def train(*args: object) -> object:
    return invoke_cli(["train", "dcgan", *[str(a) for a in args]])


def resume(run: Path, *args: object) -> object:
    return train("--resume", run, "--device", "cpu", "--quiet", "--no-tensorboard", *args)


def new_run(images: Path, out: Path, steps: int = 2, *extra: object) -> Path:
    result = train("--data", images, "--out", out, "--steps", steps, *SHORT, *TINY_DCGAN, *extra)
    assert result.exit_code == 0, result.output
    return out


# --- 1. --force replaces only a run facegan wrote ------------------------------------------------------------


def test_force_never_deletes_a_folder_that_merely_has_a_config_json(images: Path, tmp_path: Path) -> None:
    """0.1: `train --out p --force` rmtree'd p when it held a file named config.json."""
    project = tmp_path / "p"
    (project / "src").mkdir(parents=True)
    (project / "config.json").write_text("{}")
    (project / "src" / "main.py").write_text("x\n")
    result = train("--data", images, "--out", project, "--force", "--steps", 2, *TINY_DCGAN)
    assert result.exit_code == 1, result.output
    assert "not created by facegan" in result.stderr and "Traceback" not in result.output
    assert (project / "src" / "main.py").read_text() == "x\n" and (project / "config.json").read_text() == "{}"


def test_force_refuses_a_facegan_run_holding_foreign_files_and_replaces_a_clean_one(
    images: Path, tmp_path: Path
) -> None:
    run = new_run(images, tmp_path / "run")
    (run / "notes.txt").write_text("mine")
    (run / "samples" / "keep.jpg").write_text("mine too")
    refused = train("--data", images, "--out", run, "--force", "--steps", 2, *TINY_DCGAN)
    assert refused.exit_code == 1 and "notes.txt" in refused.stderr and "samples/keep.jpg" in refused.stderr
    assert (run / "notes.txt").exists() and list_checkpoints(run / "checkpoints")
    (run / "notes.txt").unlink()
    (run / "samples" / "keep.jpg").unlink()
    replaced = train("--data", images, "--out", run, "--force", "--steps", 4, *SHORT, *TINY_DCGAN)
    assert replaced.exit_code == 0, replaced.output
    assert [p.name for p in list_checkpoints(run / "checkpoints")][-1] == "ckpt-000000004.safetensors"


def test_out_inside_the_data_is_refused(images: Path, tmp_path: Path) -> None:
    data = write_image_folder(tmp_path / "data", n=8)
    result = train("--data", data, "--out", data / "run", "--steps", 1, *TINY_DCGAN)
    assert result.exit_code == 1 and "inside the input --data" in result.stderr
    assert not (data / "run").exists()


# --- 3. no file facegan reads is unpickled --------------------------------------------------------------------


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_forged_state_pt_is_refused_without_running(images: Path, tmp_path: Path) -> None:
    """0.1 read state.pt with torch.load(weights_only=False): a __reduce__ payload ran on --resume."""
    run = new_run(images, tmp_path / "run", 2, "--keep", "1")
    marker = tmp_path / "pwned"
    weights = list_checkpoints(run / "checkpoints")[-1]
    weights.with_name(weights.name.replace(".safetensors", ".state.safetensors")).unlink()
    torch.save({"optimizers": _Payload(marker), "rng_by_rank": []}, weights.with_name("ckpt-000000002.state.pt"))
    result = resume(run, "--steps", 4)
    assert result.exit_code == 1, result.output
    assert not marker.exists(), "the payload ran"
    assert "never unpickles" in result.stderr and "system" in result.stderr
    assert "weights_only=False" not in result.stderr  # torch's advice to load it anyway is not passed on


def test_legacy_state_pt_of_facegan_01_still_resumes_exactly(images: Path, tmp_path: Path) -> None:
    """Runs written by 0.1 (state in a pickle of tensors and numpy arrays) resume through the allow-list."""
    straight = new_run(images, tmp_path / "straight", 4)
    split = new_run(images, tmp_path / "split", 2)
    weights = list_checkpoints(split / "checkpoints")[-1]
    new_state = weights.with_name(weights.name.replace(".safetensors", ".state.safetensors"))
    torch.save(load_state(new_state), weights.with_name(weights.name.replace(".safetensors", ".state.pt")))
    new_state.unlink()
    result = resume(split, "--steps", 4)
    assert result.exit_code == 0, result.output
    a = load_file(str(straight / "checkpoints" / "ckpt-000000004.safetensors"))
    b = load_file(str(split / "checkpoints" / "ckpt-000000004.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_state_files_hold_no_pickle(images: Path, tmp_path: Path) -> None:
    run = new_run(images, tmp_path / "run")
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["ckpt-000000002.safetensors", "ckpt-000000002.state.safetensors"]
    state = load_state(run / "checkpoints" / names[1])
    assert state["step"] == 2 and isinstance(state["rng_by_rank"][0]["numpy"][1], np.ndarray)


# --- 7. one process per run ----------------------------------------------------------------------------------


def test_second_resume_is_refused_while_the_run_is_held(images: Path, tmp_path: Path) -> None:
    """0.1: two `--resume` of one run both proceeded, duplicating metrics and overwriting checkpoints."""
    run = new_run(images, tmp_path / "run")
    lines = (run / "metrics.jsonl").read_text()
    holder = FolderLock(run, "run directory").acquire()
    try:
        result = resume(run, "--steps", 4)
        assert result.exit_code == 1 and f"process {os.getpid()}" in result.stderr and "in use" in result.stderr
        assert (run / "metrics.jsonl").read_text() == lines
        assert load_checkpoint(run).step == 2
    finally:
        holder.release()
    assert resume(run, "--steps", 4).exit_code == 0


def test_a_live_training_process_keeps_others_out_and_a_killed_one_is_stale(images: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "facegan_cli", "train", "dcgan", "--data", str(images), "--out", str(run),
         "--steps", "100000", "--log-every", "1", "--ckpt-every", "2", "--sample-every", "100000", *TINY_DCGAN],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list_checkpoints(run / "checkpoints"):
            time.sleep(0.2)
        assert RunDir(run).effective_status()["status"] == "running"
        second = resume(run, "--steps", 200000)
        assert second.exit_code == 1 and f"process {proc.pid}" in second.stderr
        forced = train("--data", images, "--out", run, "--force", "--steps", 2, *TINY_DCGAN)
        assert forced.exit_code == 1 and "in use" in forced.stderr
    finally:
        proc.kill()  # SIGKILL: no chance to update run.json
        proc.wait(timeout=60)
    status = RunDir(run).effective_status()
    assert status["status"] == "killed" and status["stale"]
    step = load_checkpoint(run).step
    resumed = resume(run, "--steps", step + 1)
    assert resumed.exit_code == 0, resumed.output
    assert "no longer exists" in resumed.stderr or resumed.stderr == ""  # --quiet hides the note


# --- 8. options on resume: applied and recorded, or refused ------------------------------------------------


def test_resume_applies_a_new_learning_rate_and_records_it(images: Path, tmp_path: Path) -> None:
    run = new_run(images, tmp_path / "run")
    result = resume(run, "--steps", 4, "--lr", "5e-5")
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["lr"] == 5e-5
    assert config["changes"][0]["step"] == 2 and config["changes"][0]["set"].items() >= {"steps": 4, "lr": 5e-5}.items()
    state = load_checkpoint(run).load_state()
    assert all(g["lr"] == 5e-5 for opt in state["optimizers"].values() for g in opt["param_groups"])


@pytest.mark.parametrize("option", [["--seed", "5"], ["--batch", "4"], ["--preset", "keras64"], ["--mirror"]])
def test_resume_refuses_options_it_cannot_honour(images: Path, tmp_path: Path, option: list[str]) -> None:
    """0.1 silently ignored --batch, --seed (and every model option) on --resume."""
    run = new_run(images, tmp_path / "run")
    result = resume(run, "--steps", 4, *option)
    assert result.exit_code == 2, result.output
    assert option[0] in result.stderr and "cannot change" in " ".join(result.stderr.split())
    assert load_checkpoint(run).step == 2


def test_resume_finds_a_moved_dataset_and_refuses_other_data(images: Path, tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "faces"
    shutil.copytree(images, data)
    monkeypatch.chdir(tmp_path)
    run = new_run(Path("faces"), tmp_path / "run")  # a relative --data is stored absolute
    assert json.loads((run / "config.json").read_text())["data"]["images"]["path"] == str(data)
    moved = tmp_path / "elsewhere" / "faces"
    moved.parent.mkdir()
    data.rename(moved)
    lost = resume(run, "--steps", 3)
    assert lost.exit_code == 1 and str(data) in lost.stderr
    found = resume(run, "--steps", 3, "--data", moved)
    assert found.exit_code == 0, found.output
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["images"]["path"] == str(moved) and config["changes"][-1]["set"]["data"] == str(moved)
    other = write_image_folder(tmp_path / "other", n=16, seed=7)
    refused = resume(run, "--steps", 4, "--data", other)
    assert refused.exit_code == 1 and "fingerprint" in refused.stderr and "--data-changed-ok" in refused.stderr
    accepted = resume(run, "--steps", 4, "--data", other, "--data-changed-ok")
    assert accepted.exit_code == 0, accepted.output
    assert "data_changed" in json.loads((run / "config.json").read_text())["changes"][-1]["set"]


# --- 14. data changed in place --------------------------------------------------------------------------------


def test_resume_notices_a_prepared_dataset_edited_in_place(synthetic_tree: Path, tmp_path: Path) -> None:
    """0.1 compared only the manifest's fingerprint, so pixels edited in place were resumed silently."""
    data = tmp_path / "prepared"
    prepared = invoke_cli(["prepare", "celeba", "--src", str(synthetic_tree), "--out", str(data),
                                   "--size", "32", "--workers", "1", "--quiet"])
    assert prepared.exit_code == 0, prepared.output
    args = ["--preset", "heikka32", "--width", "8", "--g-width", "8", "--batch", "8", "--device", "cpu",
            "--no-tensorboard", "--quiet"]
    out = tmp_path / "run"
    assert train("--data", data, "--out", out, "--steps", 2, *SHORT, *args).exit_code == 0
    pixels = data / "images-32.u8"
    raw = bytearray(pixels.read_bytes())
    raw[:3072] = bytes(255 - b for b in raw[:3072])  # the first image, inverted; same size, same manifest
    pixels.write_bytes(bytes(raw))
    refused = resume(out, "--steps", 4)
    assert refused.exit_code == 1 and "sampled pixels" in refused.stderr
    assert resume(out, "--steps", 4, "--data-changed-ok").exit_code == 0


# --- 11. damaged checkpoints and leftovers ------------------------------------------------------------------


def test_truncated_newest_checkpoint_falls_back_to_the_newest_complete_one(images: Path, tmp_path: Path) -> None:
    """0.1 gave a torch traceback, or said "use an older one", which --resume could not do."""
    run = new_run(images, tmp_path / "run", 4)
    newest = run / "checkpoints" / "ckpt-000000004.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])
    leftover = run / "checkpoints" / ".ckpt-000000006.safetensors.abc123.partial"
    leftover.write_bytes(b"half")
    sampled = invoke_cli(["sample", "--ckpt", str(run), "--out", str(tmp_path / "g.png"), "--n", "4",
                                  "--device", "cpu", "--quiet"])
    assert sampled.exit_code == 0 and "ckpt-000000004" in sampled.stderr
    result = train("--resume", run, "--steps", 6, "--device", "cpu", "--no-tensorboard")
    assert result.exit_code == 0, result.output
    assert "skipping damaged checkpoint ckpt-000000004" in result.stderr and "step 2" in result.stderr
    assert not leftover.exists()
    assert load_checkpoint(run).step == 6


# --- 12. non-finite weights and buffers ---------------------------------------------------------------------


class _PoisonedBatchNorm(DCGANTrainer):
    """Makes a BatchNorm running_var infinite at `at` while the losses stay finite."""

    at = 3

    def train_step(self, batch, step):  # type: ignore[override]
        losses = super().train_step(batch, step)
        if step + 1 == self.at:
            bn = next(m for m in self.modules["G"].modules() if isinstance(m, torch.nn.BatchNorm2d))
            bn.running_var.fill_(float("inf"))
        return losses


def _poisoned_run(tmp_path: Path, images: Path, at: int, ckpt_every: int) -> str:
    _PoisonedBatchNorm.at = at
    config = resolve_config("dcgan", "radford64", {"width": 8, "g_width": 8, "batch": 8})
    settings = LoopSettings(steps=6, log_every=100, ckpt_every=ckpt_every, sample_every=100, tensorboard=False)
    out = tmp_path / f"run{at}"
    from facegan_cli.core.errors import FaceganError

    with pytest.raises(FaceganError) as info:
        run_training(_PoisonedBatchNorm, "dcgan", config, {"path": str(images), "split": "all"}, settings, out,
                     device="cpu")
    assert json.loads((out / "run.json").read_text())["status"] == "failed"
    return info.value.paragraph()


def test_infinite_batchnorm_statistics_stop_the_run(images: Path, tmp_path: Path) -> None:
    """0.1 checked losses only: a running_var of inf ended "finished" with the poison saved."""
    message = _poisoned_run(tmp_path, images, at=3, ckpt_every=2)
    assert "running_var" in message and "ckpt-000000002" in message
    ckpts = list_checkpoints(tmp_path / "run3" / "checkpoints")
    assert [p.name for p in ckpts] == ["ckpt-000000002.safetensors"]
    message = _poisoned_run(tmp_path, images, at=1, ckpt_every=4)
    assert "No checkpoint had been written yet" in message and "last good checkpoint" not in message


# --- 13, 16. usage errors and plain failures ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--lr", "nan"], "--lr"), (["--lr", "-1"], "--lr"), (["--batch", "0"], "--batch"),
        (["--steps", "0"], "--steps"), (["--device", "tpu"], "--device"), (["--epochs", "inf"], "--epochs"),
        (["--ckpt-every", "0"], "--ckpt-every"),
    ],
)
def test_bad_numbers_and_device_names_are_usage_errors(images: Path, tmp_path: Path, args, needle) -> None:
    """0.1 answered --lr nan / -1 and --batch 0 with "internal error", --steps 0 and --device tpu with exit 1."""
    result = train("--data", images, "--out", tmp_path / "r", *args)
    assert result.exit_code == 2, result.output
    assert needle in result.stderr and "Traceback" not in result.output and "internal error" not in result.output
    assert not (tmp_path / "r").exists()


def test_missing_data_is_a_usage_error_and_out_naming_a_file_is_refused(images: Path, tmp_path: Path) -> None:
    assert train("--out", tmp_path / "r", *TINY_DCGAN).exit_code == 2
    target = tmp_path / "a-file"
    target.write_text("keep")
    result = train("--data", images, "--out", target, "--steps", 1, *TINY_DCGAN)
    assert result.exit_code == 1 and "is an existing file" in result.stderr and target.read_text() == "keep"


def test_disk_full_during_training_fails_cleanly(images: Path, tmp_path: Path, monkeypatch) -> None:
    """0.1: "internal error" and run.json left "running"."""
    import facegan_cli.core.checkpoint as checkpoint

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "ckpt-000000002.safetensors")

    monkeypatch.setattr(checkpoint, "save_file", full)
    out = tmp_path / "run"
    result = train("--data", images, "--out", out, "--steps", 4, *SHORT, *TINY_DCGAN)
    assert result.exit_code == 1 and "disk" in result.stderr and "full" in result.stderr
    assert "internal error" not in result.stderr
    assert json.loads((out / "run.json").read_text())["status"] == "failed"
    assert not list_checkpoints(out / "checkpoints") and "--resume" in result.stderr


# --- 9. permissions follow the umask ----------------------------------------------------------------------


def test_run_files_respect_the_umask(images: Path, tmp_path: Path) -> None:
    """0.1 wrote checkpoints, config.json and run.json 0600 (mkstemp), unreadable to a group."""
    old = os.umask(0o002)
    try:
        run = new_run(images, tmp_path / "run")
    finally:
        os.umask(old)
    for path in [run, *run.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o775 if path.is_dir() else 0o664), (path, oct(mode))


# --- 10. stdout holds results only ----------------------------------------------------------------------------


def test_json_stdout_stays_one_document_when_a_library_prints(images: Path, tmp_path: Path, monkeypatch) -> None:
    """0.1 let library prints (torch.hub's "Downloading ...") into the --json document's stdout."""
    original = DCGANTrainer.build

    def chatty_build(self, ctx):  # type: ignore[no-untyped-def]
        print("Downloading: https://example.invalid/weights.pth")
        return original(self, ctx)

    monkeypatch.setattr(DCGANTrainer, "build", chatty_build)
    ok = train("--data", images, "--out", tmp_path / "run", "--steps", 2, "--json", *TINY_DCGAN)
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["status"] == "finished" and "Downloading" in ok.stderr
    failed = train("--data", tmp_path / "nope", "--out", tmp_path / "r2", "--json", *TINY_DCGAN)
    assert failed.exit_code == 1
    error = json.loads(failed.stdout)["error"]
    assert "nope" in error["message"] and error["fix"] and error["exit_status"] == 1


def test_out_that_is_a_link_or_lies_below_a_file_is_refused_before_any_work(images: Path, tmp_path: Path) -> None:
    run = new_run(images, tmp_path / "run")
    link = tmp_path / "link"
    link.symlink_to(run)
    result = train("--data", images, "--out", link, "--force", "--steps", 2, *TINY_DCGAN)
    assert result.exit_code == 1 and "symbolic link" in result.stderr and "internal error" not in result.stderr
    assert load_checkpoint(run).step == 2  # what the link points at is untouched
    blocker = tmp_path / "a-file"
    blocker.write_text("keep")
    below = train("--data", images, "--out", blocker / "run", "--steps", 2, *TINY_DCGAN)
    assert below.exit_code == 1 and f"{blocker} is a file" in below.stderr
    sampled = invoke_cli(["sample", "--ckpt", str(run), "--out", str(link), "--n", "2", "--force",
                                  "--device", "cpu", "--quiet"])
    assert sampled.exit_code == 1 and "symbolic link" in sampled.stderr


def test_root_max_pixels_option_limits_every_decode(images: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FACEGAN_MAX_PIXELS", "0")  # restored after the test: the option writes the variable
    result = invoke_cli(["--max-pixels", "1000", "train", "dcgan", "--data", str(images), "--out",
                                 str(tmp_path / "run"), "--steps", "1", *TINY_DCGAN])
    assert result.exit_code == 1 and "--max-pixels" in " ".join(result.stderr.split())
    assert not (tmp_path / "run").exists()
    bad = invoke_cli(["--max-pixels", "lots", "models", "list"])
    assert bad.exit_code == 2


def test_disk_full_during_prepare_fails_cleanly_and_resumes(synthetic_tree: Path, tmp_path: Path) -> None:
    """0.1: "internal error"; now the one-paragraph message, and the output never looks complete."""
    from prepare_helpers import writer_fails

    from facegan_cli.data.prepared import PreparedWriter

    def disk_full(writer: PreparedWriter) -> OSError:
        return OSError(errno.ENOSPC, "No space left on device", str(writer.out / "images-32.u8.partial"))

    out = tmp_path / "prepared"
    args = ["prepare", "celeba", "--src", str(synthetic_tree), "--out", str(out), "--size", "32", "--workers", "1"]
    with writer_fails(6, disk_full):
        result = invoke_cli(args)
    assert result.exit_code == 1 and "disk is full" in result.stderr and "internal error" not in result.stderr
    assert not (out / "manifest.json").exists()
    resumed = invoke_cli([*args, "--resume", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    assert (out / "manifest.json").exists()
