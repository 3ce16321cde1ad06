"""Typed family configurations (models.config.FamilyConfig): a family declares its settings once.

(1) For every family with a config class: a field added to it (a subclass made here, swapped into the
    registry entry, nothing else edited) is an option of `facegan train FAMILY --help`, lands in the run's
    config.json and checkpoint metadata, and survives a resume; a run written before the field existed
    resumes with its default.
(2) A config.json (or checkpoint metadata) with an unknown or a missing key: one paragraph naming the file
    and the key, exit 1, no traceback.
(3) The "model" records the current main writes (captured from tiny runs of main's code, verbatim below)
    are what this code writes for the same command lines, and they resume.
(4) Presets are checked against the fields when a family registers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from family_contract import option_args
from safetensors import safe_open
from safetensors.torch import save_file
from train_helpers import write_image_folder
from transfer_helpers import vgg16_weights_file, vgg_weights_file
from typer.testing import CliRunner

from facegan_cli.core.checkpoint import list_checkpoints
from facegan_cli.core.options import Opt
from facegan_cli.models import registry
from facegan_cli.models.config import FamilyConfig, setting
from facegan_cli.train.spec import command_options, training_spec

RUN = ["--device", "cpu", "--quiet", "--no-tensorboard"]
PROBE_HELP = "A setting the test adds to the family's config class."

# Families whose settings are declared by a config class: the tiny run's extra inputs (beyond an image folder
# per data option of the TrainSpec, the VAE run or VGG19 file of the families that need one) and the size of
# its images.
CONVERTED: dict[str, dict[str, Any]] = {
    "dcgan": {"size": 32},
    "cycle-gan": {"size": 32},
    "cycle-gan-vae": {"size": 32, "vae": True},  # --vae: a tiny VAE run
    "feature-translator": {"size": 32, "vgg": True},  # --vgg-weights: a random VGG19 file
    **{name: {"size": 16, "attrs": True} for name in ("stargan", "ccagan", "stargan-sagan")},  # --data: attrs16
    "vae": {"size": 32},
    "attr-classifier": {"size": 16, "attrs": True},
    "progan": {"size": 32},
    "template": {"size": 32},
    "fast-style": {"size": 32, "vgg16": True, "style": True},  # --vgg-weights: a random VGG16; --style-image
    "pix2pix": {"size": 32},  # --data-a/--data-b: two folders of images matched by name
}

# The "model" records main writes for these command lines (tiny runs of main's code at cf861f7, copied verbatim;
# no trainer or model module changed what it records up to 794f30f).
MAIN_RECORDS: dict[str, tuple[str, list[str], dict[str, Any]]] = {
    "dcgan heikka32": ("dcgan", ["--preset", "heikka32", "--width", "8", "--g-width", "8", "--batch", "4"], {
        "preset": "heikka32", "arch": "conv", "resolution": 32, "z_dim": 100, "g_width": 8, "width": 8,
        "first_kernel": 2, "d_first_bn": False, "output": "tanh", "lr": 0.0002, "betas": [0.5, 0.999], "batch": 4}),
    "dcgan --depth 4": ("dcgan", ["--preset", "heikka32", "--depth", "4", "--batch", "4", "--lr", "1e-3",
                                  "--beta1", "0.3"], {
        "preset": "heikka32", "arch": "conv", "resolution": 32, "z_dim": 100, "g_width": 128, "width": 128,
        "first_kernel": 4, "d_first_bn": False, "output": "tanh", "lr": 0.001, "betas": [0.3, 0.999], "batch": 4,
        "depth": 4}),
    "cycle-gan thesis64": ("cycle-gan", ["--preset", "thesis64", "--resolution", "16", "--load-size", "20", "--ngf", "8",
                                         "--ndf", "8", "--n-blocks", "1", "--n-layers-d", "2", "--batch", "2",
                                         "--pool-size", "3"],
        {"preset": "thesis64", "ngf": 8, "ndf": 8, "n_blocks": 1, "n_layers_d": 2, "upsample": "nearest", "padding":
        "reflect", "pack": 1, "init_gain": 0.02, "gan_mode": "lsgan", "lambda_gp": 10.0, "lambda_a": 10.0, "lambda_b":
        10.0, "lambda_identity": 0.5, "identity_mode": "cyclegan", "lambda_tv": 0.1, "d_noise_std": 0.1, "pool_size":
        3, "lr": 0.0002, "betas": [0.5, 0.999], "n_epochs": 100, "n_epochs_decay": 100, "batch": 2, "lambda_content":
        None, "lambda_style": None, "vgg_pool": "avg", "output": "tanh", "resolution": 16, "load_size": 20,
        "data_resolution": 20}),
    "cycle-gan junyanz256": ("cycle-gan", ["--resolution", "16", "--ngf", "8", "--ndf", "8", "--n-blocks", "1",
                                           "--n-layers-d", "2", "--batch", "2", "--pack", "2", "--beta2", "0.9"],
        {"preset": "junyanz256", "ngf": 8, "ndf": 8, "n_blocks": 1, "n_layers_d": 2, "upsample": "deconv", "padding":
        "zero", "pack": 2, "init_gain": 0.02, "gan_mode": "lsgan", "lambda_gp": 10.0, "lambda_a": 10.0, "lambda_b":
        10.0, "lambda_identity": 0.5, "identity_mode": "cyclegan", "lambda_tv": 0.0, "d_noise_std": 0.0, "pool_size":
        50, "lr": 0.0002, "betas": [0.5, 0.9], "n_epochs": 100, "n_epochs_decay": 100, "batch": 2, "lambda_content":
        None, "lambda_style": None, "vgg_pool": "avg", "output": "tanh", "resolution": 16, "load_size": 18,
        "data_resolution": 18}),
    "cycle-gan-vae": ("cycle-gan-vae", ["--batch", "2", "--pool-size", "3", "--lambda-a", "5"],  # the vae path: this run's
        {"preset": "thesis64", "hidden": 512, "d_hidden": [512, 256], "slope": 0.2, "gan_mode": "lsgan", "lambda_a":
        5.0, "lambda_b": 10.0, "lambda_identity": 0.0, "pool_size": 3, "lr": 0.0002, "betas": [0.5, 0.999],
        "n_epochs": 100, "n_epochs_decay": 100, "batch": 2, "init_gain": 0.02, "z_dim": 8, "output": "tanh", "vae":
        "RUN/vae/checkpoints/ckpt-000000001.safetensors", "vae_step": 1, "vae_config": {"preset": "thesis64",
        "resolution": 16, "z_dim": 8, "width": 4, "batch": 4, "lr": 0.001, "betas": [0.9, 0.999], "recon": "l1",
        "beta_kl": 1.0, "per_domain": False, "output": "tanh"}, "resolution": 16}),
    "feature-translator": ("feature-translator", ["--translator", "dense", "--resolution", "32", "--batch", "4",
                                                  "--sample-steps", "1", "--style-layer-weights", "1,1,1,1,2"],
        {"preset": "adam64", "resolution": 32, "direction": "a2b", "content_layer": "conv3_2", "style_layers":
        ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"], "style_layer_weights": [1.0, 1.0, 1.0, 1.0, 2.0],
        "alpha": 1e-05, "beta": 1.0, "translator": "dense", "slope": 0.2, "last_norm_affine": True, "act":
        "post_relu", "pool": "avg", "batch": 4, "n_epochs": 500, "n_epochs_decay": 100, "sample_steps": 1,
        "optimizer": "adam", "lr": 0.001, "vgg_weights": "THIS RUN", "vgg_sha256":
        "a4e1eeb3260fde1499ab14d97e3c6835419aa3fe5442d13073f27bb7aa3f658a", "heldout": None}),
    "stargan": ("stargan", [
        "--split-protocol", "celeba", "--g-width", "8", "--d-width", "8", "--g-repeat", "1", "--batch", "4",
        "--n-critic", "2"],
        {"preset": "yunjey", "resolution": 16, "attrs": ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"],
        "g_width": 8, "d_width": 8, "g_repeat": 1, "d_repeat": 4, "output": "tanh", "loss": "wgan-gp", "lambda_cls":
        1.0, "lambda_gp": 10.0, "n_critic": 2, "lr": 0.0001, "d_lr": 0.0001, "betas": [0.5, 0.999], "decay_fraction":
        0.5, "decay_steps": None, "attention": "none", "cca_placement": "none", "lambda_rec": 10.0, "batch": 4,
        "steps": 1}),
    "ccagan": ("ccagan", [
        "--split-protocol", "celeba", "--g-width", "8", "--d-width", "8", "--g-repeat", "1", "--batch", "4",
        "--n-critic", "2", "--cca-placement", "encoder", "--attrs", "Male,Young"],
        {"preset": "paper", "resolution": 16, "attrs": ["Male", "Young"], "g_width": 8, "d_width": 8, "g_repeat": 1,
        "d_repeat": 4, "output": "tanh", "loss": "wgan-gp", "lambda_cls": 1.0, "lambda_gp": 10.0, "n_critic": 2, "lr":
        0.0001, "d_lr": 0.0001, "betas": [0.5, 0.999], "decay_fraction": 0.5, "decay_steps": None, "attention": "cca",
        "cca_placement": "encoder", "lambda_rec": 1.0, "batch": 4, "epochs": 20, "steps": 1}),
    "stargan-sagan": ("stargan-sagan", [
        "--split-protocol", "celeba", "--g-width", "8", "--d-width", "8", "--g-repeat", "1", "--batch", "4",
        "--decay-steps", "3", "--beta1", "0.4"],
        {"preset": "yunjey", "resolution": 16, "attrs": ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"],
        "g_width": 8, "d_width": 8, "g_repeat": 1, "d_repeat": 4, "output": "tanh", "loss": "wgan-gp", "lambda_cls":
        1.0, "lambda_gp": 10.0, "n_critic": 5, "lr": 0.0001, "d_lr": 0.0001, "betas": [0.4, 0.999], "decay_fraction":
        0.5, "decay_steps": 3, "attention": "sagan", "cca_placement": "none", "lambda_rec": 10.0, "batch": 4, "steps":
        1}),
    "vae per-domain": ("vae", [
        "--resolution", "16", "--width", "4", "--z-dim", "8", "--batch", "4", "--per-domain"],
        {"preset": "thesis64", "resolution": 16, "z_dim": 8, "width": 4, "batch": 4, "lr": 0.001, "betas": [0.9,
        0.999], "recon": "l1", "beta_kl": 1.0, "per_domain": True, "output": "tanh"}),
    "attr-classifier": ("attr-classifier", [
        "--width", "8", "--batch", "8", "--lr", "0.01", "--attrs", "Male,Young", "--resolution", "8",
        "--split-protocol", "celeba"],
        {"resolution": 8, "width": 8, "max_width_factor": 8, "dropout": 0.2, "lr": 0.01, "weight_decay": 0.0001,
        "batch": 8, "steps": 1, "attrs": ["Male", "Young"], "eval_split": "test"}),
    "progan paper": ("progan", [
        "--preset", "paper", "--resolution", "8", "--max-channels", "8", "--phase-kimg", "0.008", "--lr",
        "0.002", "--ema", "0.99", "--mbstd-group", "2", "--batch", "2"],
        {"preset": "paper", "resolution": 8, "z_dim": 8, "fmap_base": 8192, "fmap_max": 8, "lr": 0.002, "betas": [0.0,
        0.99], "adam_eps": 1e-08, "gp_lambda": 10.0, "drift": 0.001, "ema": 0.99, "output": "linear", "value_range":
        [-1.0, 1.0], "phase_kimg": 0.008, "mbstd_group": 2, "batch_sizes": {"4": 2, "8": 2, "16": 2, "32": 2, "64": 2,
        "128": 2, "256": 2, "512": 2, "1024": 2}, "lr_by_resolution": {}}),
}


def _cli() -> Any:
    from facegan_cli.cli import build_app  # built now: the registry as the test left it

    app, runner = build_app(), CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def _data_args(family: str, work: Path, request: pytest.FixtureRequest) -> list[str]:
    """An image folder per data option (the attribute editors: attrs16), and a tiny VAE run or a VGG19 file
    where the family needs one."""
    spec = training_spec(family)
    assert spec is not None
    size = CONVERTED[family]["size"]
    if CONVERTED[family].get("attrs"):
        return ["--data", str(request.getfixturevalue("attrs16"))]
    args: list[str] = []
    for i, option in enumerate(spec.data_options.values()):
        folder = write_image_folder(work / "data" / option, n=8, size=size, seed=10 + i)
        args += [f"--{option.replace('_', '-')}", str(folder)]
    if CONVERTED[family].get("vgg"):
        # the session's one random VGG19 file (half a gigabyte: written once, not per test)
        args += ["--vgg-weights", str(vgg_weights_file(request.getfixturevalue("tmp_path_factory").getbasetemp()))]
    if CONVERTED[family].get("vgg16"):
        args += ["--vgg-weights", str(vgg16_weights_file(request.getfixturevalue("tmp_path_factory").getbasetemp()))]
    if CONVERTED[family].get("style"):
        args += ["--style-image", str(write_image_folder(work / "style", n=1, size=size, seed=99) / "0000.png")]
    if CONVERTED[family].get("vae"):
        vae = work / "vae"
        done = _cli()("train", "vae", "--resolution", 16, "--width", 4, "--z-dim", 8, "--batch", 4, *args,
                      "--out", vae, "--steps", 1, *RUN)
        assert done.exit_code == 0, done.output
        args += ["--vae", str(vae)]
    return args


def _tiny_args(family: str) -> list[str]:
    spec = training_spec(family)
    assert spec is not None and spec.tiny is not None
    entry = registry.get_family(family)
    preset = Opt("preset", ("--preset",), str)
    tiny = dict(spec.tiny)
    length = ["--steps", str(tiny.pop("steps", 2))] if spec.length == "steps" else ["--kimg", str(tiny.pop("kimg"))]
    return option_args([preset, *command_options(entry, spec), *spec.loop_options()], tiny) + length


def _record(run: Path) -> dict[str, Any]:
    return json.loads((run / "config.json").read_text())["model"]


def _meta_model(run: Path) -> dict[str, Any]:
    newest = list_checkpoints(run / "checkpoints")[-1]
    with safe_open(str(newest), "pt") as f:
        return json.loads(f.metadata()["facegan"])["model"]


def _with_probe(monkeypatch: pytest.MonkeyPatch, family: str) -> type[FamilyConfig]:
    """The family's config class with one more field, `probe` (default 7), swapped into its registry entry."""
    entry = registry.get_family(family)
    assert entry.config is not None, f"{family} declares no config class"
    plus = dataclasses.make_dataclass(
        f"{entry.config.__name__}Plus", [("probe", int, setting(7, help=PROBE_HELP, min=0))],
        bases=(entry.config,), kw_only=True,
    )
    monkeypatch.setitem(registry._FAMILIES, family, dataclasses.replace(entry, config=plus))
    return plus


# --- (1) a field added to a family's config class -------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(CONVERTED))
def test_a_field_added_to_the_config_class_is_an_option_a_record_and_survives_resume(
    family: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    _with_probe(monkeypatch, family)
    cli = _cli()
    shown = cli("train", family, "--help")
    text = " ".join(shown.output.replace("│", " ").split())
    assert shown.exit_code == 0 and "--probe" in text and PROBE_HELP in text, shown.output

    data, tiny = _data_args(family, tmp_path, request), _tiny_args(family)
    run = tmp_path / "run"
    done = cli("train", family, *tiny, *data, "--probe", 11, "--out", run, "--ckpt-every", 1, *RUN)
    assert done.exit_code == 0, done.output
    assert _record(run)["probe"] == 11 and _meta_model(run)["probe"] == 11

    old = tmp_path / "old"  # the same run as one written before the field existed
    shutil.copytree(run, old)
    config = json.loads((old / "config.json").read_text())
    del config["model"]["probe"]
    (old / "config.json").write_text(json.dumps(config))

    steps = len(list_checkpoints(run / "checkpoints")) + 1
    length = ["--steps", steps] if "--steps" in tiny else ["--kimg", float(tiny[tiny.index("--kimg") + 1]) * 2]
    resumed = cli("train", family, "--resume", run, *length, *RUN)
    assert resumed.exit_code == 0, resumed.output
    assert _record(run)["probe"] == 11 and _meta_model(run)["probe"] == 11  # read back, written again

    resumed = cli("train", family, "--resume", old, *length, *RUN)
    assert resumed.exit_code == 0, resumed.output
    assert _record(old)["probe"] == 7 and _meta_model(old)["probe"] == 7  # the field's default


# --- (2) unknown and missing keys ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    work = tmp_path_factory.mktemp("dcgan-run")
    run = work / "run"
    done = _cli()("train", "dcgan", *_tiny_args("dcgan"), *_data_args("dcgan", work, request), "--out", run, *RUN)
    assert done.exit_code == 0, done.output
    return run


def _edited(run: Path, where: Path, edit: Any) -> Path:
    shutil.copytree(run, where)
    config = json.loads((where / "config.json").read_text())
    edit(config["model"])
    (where / "config.json").write_text(json.dumps(config))
    return where


@pytest.mark.parametrize(("what", "edit", "key"), [
    ("unknown", lambda model: model.update(g_widht=16), "g_widht"),
    ("missing", lambda model: model.pop("z_dim"), "z_dim"),
])
def test_a_config_json_with_an_unknown_or_missing_key_is_one_paragraph_naming_it(
    dcgan_run: Path, tmp_path: Path, what: str, edit: Any, key: str
) -> None:
    run = _edited(dcgan_run, tmp_path / what, edit)
    result = _cli()("train", "dcgan", "--resume", run, "--steps", 3, *RUN)
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert f"'{key}'" in message and "config.json" in message and what in message, message
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) <= 12


def test_checkpoint_metadata_with_an_unknown_key_is_refused_naming_the_file(dcgan_run: Path, tmp_path: Path) -> None:
    ckpt = list_checkpoints(dcgan_run / "checkpoints")[-1]
    with safe_open(str(ckpt), "pt") as f:
        meta = json.loads(f.metadata()["facegan"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    meta["model"]["colour"] = "blue"
    bad = tmp_path / ckpt.name
    save_file(tensors, str(bad), metadata={"facegan": json.dumps(meta)})
    result = _cli()("sample", "--ckpt", bad, "--out", tmp_path / "grid.png", "--n", 2, "--device", "cpu")
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "'colour'" in message and bad.name in message and "Traceback" not in result.output, message


# --- (3) records written by the current main --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MAIN_RECORDS))
def test_the_record_main_writes_is_written_the_same_and_resumes(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    family, args, main_record = MAIN_RECORDS[name]
    cli = _cli()
    run = tmp_path / "run"
    spec = training_spec(family)
    assert spec is not None
    first, longer = (["--steps", 1], ["--steps", 2]) if spec.length == "steps" else (["--kimg", 0.004], ["--kimg", 0.008])
    done = cli("train", family, *args, *_data_args(family, tmp_path, request), "--out", run, *first, *RUN)
    assert done.exit_code == 0, done.output
    if "vae" in main_record:  # the VAE checkpoint read, where this test's run put it
        main_record = {**main_record, "vae": str((tmp_path / "vae" / "checkpoints" / "ckpt-000000001.safetensors").resolve())}
    if "vgg_weights" in main_record:  # the VGG19 file given, where this test wrote it, and its digest (the
        # random file's bits depend on the thread count its calibration ran with: one under xdist, two alone)
        vgg = vgg_weights_file(request.getfixturevalue("tmp_path_factory").getbasetemp()).resolve()
        main_record = {**main_record, "vgg_weights": str(vgg), "vgg_sha256": hashlib.sha256(vgg.read_bytes()).hexdigest()}
    assert list(_record(run).items()) == list(main_record.items())  # same keys, values and order
    config = json.loads((run / "config.json").read_text())
    config["model"] = main_record
    (run / "config.json").write_text(json.dumps(config, indent=2))
    resumed = cli("train", family, "--resume", run, *longer, *RUN)
    assert resumed.exit_code == 0, resumed.output
    assert _record(run) == main_record


# --- (4) presets ------------------------------------------------------------------------------------------------


def test_a_preset_with_an_unknown_or_missing_key_is_refused_when_the_family_registers() -> None:
    entry = registry.get_family("dcgan")
    good = entry.presets["radford64"]
    with pytest.raises(ValueError, match="'g_widht'"):
        dataclasses.replace(entry, presets={**entry.presets, "bad": {**good, "g_widht": 3}})
    missing = {k: v for k, v in good.items() if k != "lr"}
    with pytest.raises(ValueError, match="'lr'"):
        dataclasses.replace(entry, presets={**entry.presets, "bad": missing})


def test_every_family_with_a_config_class_is_covered_here() -> None:
    declared = {name for name, family in registry.families().items() if family.config is not None}
    assert declared == set(CONVERTED), f"add {sorted(declared - set(CONVERTED))} to CONVERTED (its tiny run's inputs)"


def test_options_derive_from_the_fields() -> None:
    entry = registry.get_family("dcgan")
    assert entry.config is not None
    options = {o.name: o for o in entry.config.options()}
    assert options["width"].flags == ("--width",) and options["width"].type is int and options["width"].min == 1
    assert options["d_first_bn"].flags == ("--d-first-bn/--no-d-first-bn",) and options["d_first_bn"].type is bool
    assert options["lr"].positive and options["lr"].default is None
    assert "first_kernel" not in options  # no help: a setting, not an option
    assert {o.name for o in entry.arch_options} == {"g_width", "width", "d_first_bn", "depth"}
