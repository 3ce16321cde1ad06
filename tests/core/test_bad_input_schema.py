"""Issue 18, item 7 and its low items: what facegan reads back from disk is checked against a schema, and a
failure is one paragraph naming the file and the field, never "internal error ... This is a facegan bug".

Each test reproduces a defect of the code before the fix (named in its docstring).
"""

from __future__ import annotations

import dataclasses
import errno
import json
from pathlib import Path

import pytest
import torch
from cli_helpers import invoke_cli
from train_helpers import TINY_DCGAN, copy_run, make_run, tiny_dcgan_run, write_image_folder
from typer.testing import Result

from facegan_cli.core.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from facegan_cli.train.loop import LoopSettings

pytestmark = pytest.mark.usefixtures("one_thread")
SHORT = ["--ckpt-every", "2", "--log-every", "1", "--sample-every", "100"]


def invoke(*args: object) -> Result:
    return invoke_cli(args)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("imgs") / "faces", n=16)


@pytest.fixture(scope="module")
def dcgan_run(images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-step tiny DCGAN run with checkpoints at 2 and 4 (copy it before damaging it)."""
    return tiny_dcgan_run(tmp_path_factory.mktemp("dcgan"), images, 4)



def resume(run: Path, *args: object) -> Result:
    return invoke("train", "dcgan", "--resume", run, "--device", "cpu", "--no-tensorboard", *args)


def plain(result: Result) -> str:
    return " ".join(result.stderr.split())


def edit_json(path: Path, change: dict) -> None:
    data = json.loads(path.read_text())
    for dotted, value in change.items():
        holder = data
        *parents, key = dotted.split(".")
        for parent in parents:
            holder = holder[parent]
        holder[key] = value
    path.write_text(json.dumps(data))


# --- run.json and runs list ---------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [{"status": 5}, {"status": "finished", "step": "many"}, [1, 2]])
def test_a_run_json_of_the_wrong_shape_is_listed_as_unreadable(dcgan_run: Path, tmp_path: Path, payload) -> None:
    """Before: `{"status": 5}` in one run.json made the whole `runs list` an internal error."""
    copy_run(dcgan_run, tmp_path / "runs" / "a")
    bad = copy_run(dcgan_run, tmp_path / "runs" / "b")
    (bad / "run.json").write_text(json.dumps(payload))
    listed = invoke("runs", "list", tmp_path / "runs")
    assert listed.exit_code == 0, listed.output
    assert "internal error" not in listed.output and "unreadable" in listed.stdout
    doc = invoke("runs", "list", tmp_path / "runs", "--json")
    runs = {Path(r["run"]).name: r for r in json.loads(doc.stdout)["runs"]}
    assert runs["a"]["status"] == "finished" and runs["a"]["step"] == 4
    assert runs["b"]["status"] == "unreadable" and "run.json" in runs["b"]["error"]


# --- config.json on resume ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [({"train.ckpt_every": 0}, "train.ckpt_every"), ({"train.seed": "abc"}, "train.seed"),
     ({"model": [1, 2]}, "model"), ({"train.log_every": None}, "train.log_every"),
     ({"train.bogus": 1}, "train.bogus"), ({"family": 7}, "family")],
)
def test_an_edited_config_json_is_one_paragraph_naming_the_field(dcgan_run: Path, tmp_path: Path, change,
                                                                  field: str) -> None:
    """Before: ckpt_every 0, seed "abc" and model as a list crashed the resume with "internal error"."""
    run = copy_run(dcgan_run, tmp_path / "run")
    edit_json(run / "config.json", change)
    result = resume(run, "--steps", 6)
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert "config.json" in result.stderr and field in result.stderr
    assert load_checkpoint(run).step == 4


def test_the_schema_covers_every_loop_setting() -> None:
    """A setting added to LoopSettings without a schema entry would make every run's config.json invalid."""
    from facegan_cli.core.runschema import TRAIN_FIELDS

    assert set(TRAIN_FIELDS) == {f.name for f in dataclasses.fields(LoopSettings)}


def test_a_config_json_describing_a_huge_network_is_refused_before_it_is_built(dcgan_run: Path,
                                                                               tmp_path: Path) -> None:
    """Before: config.json with g_width 100000 asked for hundreds of GB before the weights were compared."""
    run = copy_run(dcgan_run, tmp_path / "run")
    edit_json(run / "config.json", {"model.g_width": 100000})
    result = resume(run, "--steps", 6)
    assert result.exit_code == 1, result.output
    assert "g_width=100000" in plain(result) and "checkpoint: 8" in plain(result) and "not built" in plain(result)


def test_a_config_json_describing_another_small_network_is_one_paragraph(dcgan_run: Path, tmp_path: Path) -> None:
    run = copy_run(dcgan_run, tmp_path / "run")
    edit_json(run / "config.json", {"model.g_width": 16})
    result = resume(run, "--steps", 6)
    assert result.exit_code == 1, result.output
    assert "do not fit" in plain(result) and "internal error" not in result.output


# --- checkpoint metadata ------------------------------------------------------------------------------------


def _forged(tmp_path: Path, meta_change: dict, tensor_change=None) -> Path:
    run = make_run(tmp_path / "src")
    ckpt = load_checkpoint(run)
    meta = {**ckpt.meta}
    for key, value in meta_change.items():
        if key.startswith("model."):
            meta["model"] = {**meta["model"], key[6:]: value}
        else:
            meta[key] = value
    modules = {name: dict(state) for name, state in ckpt.modules.items()}
    if tensor_change:
        tensor_change(modules)
    forged = tmp_path / "forged"
    save_checkpoint(forged / "checkpoints", 7, modules, meta, {"step": 7})
    return forged


def _nan(modules: dict) -> None:
    key = next(k for k, t in modules["G"].items() if t.is_floating_point())
    modules["G"][key] = torch.full_like(modules["G"][key], float("nan"))


@pytest.mark.parametrize(
    ("meta", "tensors", "needle"),
    [({"model.resolution": -32}, None, "model.resolution"), ({"value_range": [0, 0]}, None, "value_range"),
     ({"value_range": [0, "x"]}, None, "value_range"), ({"model.z_dim": "a"}, None, "model.z_dim"),
     ({}, _nan, "NaN"), ({"model.g_width": 100000}, None, "do not fit")],
)
def test_a_forged_checkpoint_is_refused_when_loaded(tmp_path: Path, meta, tensors, needle: str) -> None:
    """Before: resolution -32 was an internal error, NaN weights and value_range [0, 0] sampled with exit 0,
    and g_width 100000 asked for the memory of the network it describes before comparing the weights."""
    forged = _forged(tmp_path, meta, tensors)
    result = invoke("sample", "--ckpt", forged / "checkpoints" / "ckpt-000000007.safetensors", "--n", 2,
                    "--out", tmp_path / "g.png", "--device", "cpu")
    assert result.exit_code == 1, result.output
    assert needle in plain(result) and "ckpt-000000007" in result.stderr and "internal error" not in result.output
    assert not (tmp_path / "g.png").exists()


def test_a_damaged_newest_checkpoint_is_skipped_with_one_warning(dcgan_run: Path, tmp_path: Path) -> None:
    """A damaged newest checkpoint is named once (the issue saw the warning twice; `train --resume` and
    `sample` print it once before and after the fix: this guards the count)."""
    run = copy_run(dcgan_run, tmp_path / "run")
    newest = list_checkpoints(run / "checkpoints")[-1]
    newest.write_bytes(newest.read_bytes()[:100])
    result = resume(run, "--steps", 6)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("skipping damaged checkpoint ckpt-000000004") == 1, result.stderr
    sampled = invoke("sample", "--ckpt", run, "--n", 2, "--out", tmp_path / "g.png", "--device", "cpu")
    assert sampled.exit_code == 0, sampled.output


# --- resume length ------------------------------------------------------------------------------------------


def test_resume_to_fewer_steps_than_the_run_has_is_a_usage_error(dcgan_run: Path, tmp_path: Path) -> None:
    """Before: `--resume --steps 2` on a run at step 4 was accepted and said "finished" at step 4."""
    run = copy_run(dcgan_run, tmp_path / "run")
    config = (run / "config.json").read_text()
    result = resume(run, "--steps", 2)
    assert result.exit_code == 2, result.output  # as the other options a resume cannot honour
    assert "--steps 2" in plain(result) and "step 4" in plain(result)
    assert (run / "config.json").read_text() == config and load_checkpoint(run).step == 4
    assert resume(run, "--steps", 4).exit_code == 0  # the same length: nothing to do, accepted


# --- a full disk while a checkpoint is written ------------------------------------------------------------------


def test_a_full_disk_inside_safetensors_is_the_disk_full_paragraph(images: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: safetensors' SafetensorError (not an OSError) was an internal error, and run.json said
    "step": null."""
    from safetensors import SafetensorError

    import facegan_cli.core.checkpoint as checkpoint

    real = checkpoint.save_file
    calls = []

    def full(tensors, filename, metadata=None):  # the second checkpoint finds the disk full
        calls.append(filename)
        if len(calls) > 1:
            raise SafetensorError(
                'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
            )
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", full)
    out = tmp_path / "run"
    result = invoke("train", "dcgan", "--data", images, "--out", out, "--steps", 6, *SHORT, *TINY_DCGAN)
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output and "full" in result.stderr and "--resume" in result.stderr
    status = json.loads((out / "run.json").read_text())
    assert status["status"] == "failed" and status["step"] == 2
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["ckpt-000000002.safetensors"]


def test_an_unwritable_checkpoint_for_another_reason_is_not_called_a_bug(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors import SafetensorError

    import facegan_cli.core.checkpoint as checkpoint

    def broken(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(Os { code: 5, kind: Uncategorized })")

    monkeypatch.setattr(checkpoint, "save_file", broken)
    with pytest.raises(OSError) as info:
        save_checkpoint(tmp_path / "c", 1, {"G": {"w": torch.zeros(2)}}, {}, None)
    assert info.value.errno == errno.EIO


# --- explain --edited ---------------------------------------------------------------------------------------


def test_explain_edits_of_different_sizes_make_one_figure(tmp_path: Path) -> None:
    """Before: edits of one input at 16x16 and of another at 24x24 were "internal error (ValueError: all
    images of a figure must have one size)"."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for path, side in (("in/a.png", 32), ("in/b.png", 32), ("edits/a.png", 16), ("edits/b.png", 24)):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(tmp_path / path)
    result = invoke("explain", "--input", tmp_path / "in", "--edited", tmp_path / "edits", "--out",
                    tmp_path / "heat.png", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [len(p["edits"]) for p in doc["pairs"]] == [1, 1] and (tmp_path / "heat.png").is_file()


def test_checkpoint_metadata_without_a_step_still_loads_as_step_0(tmp_path: Path) -> None:
    """The schema accepts what older writers left out (the step is optional); it must not then fail reading it."""
    import safetensors.torch

    file = tmp_path / "ckpt-000000000.safetensors"
    safetensors.torch.save_file({"G.w": torch.zeros(2)}, str(file), metadata={"facegan": json.dumps({"family": "dcgan"})})
    assert load_checkpoint(file).step == 0
