"""Seed 004's variants train end to end: PacGAN (--pack 2) and the NST identity resume bit-exactly; the VAE (`train
vae`) and the latent CycleGAN+VAE (`train cycle-gan-vae`), whose checkpoint translates and resumes without the VAE
run (their plain exact resume is the family contract's)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transfer_helpers import vgg_file_fixture  # noqa: F401

from facegan_cli.models import vae
from facegan_cli.models.registry import resolve_config
from facegan_cli.prepare.synthetic import write_synthetic
from facegan_cli.train.vae_trainer import vae_loss

pytestmark = pytest.mark.usefixtures("one_thread")
RUN = ["--device", "cpu", "--no-tensorboard", "--quiet", "--seed", "2"]


@pytest.fixture(scope="module")
def domains(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("variants") / "synth"
    write_synthetic(out, n=40, size=16, style="painting")
    return out


def _weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / f"ckpt-{step:09d}.safetensors"))


def _same_as_straight(cli, family: str, args: list, tmp_path: Path, steps: int = 6, split: int = 3) -> Path:
    """Train `steps` straight and `split` + resume; assert equal weights; return the straight run."""
    straight, parted = tmp_path / f"{family}-straight", tmp_path / f"{family}-parted"
    done = cli("train", family, *args, "--out", straight, "--steps", steps, *RUN)
    assert done.exit_code == 0, done.output
    assert cli("train", family, *args, "--out", parted, "--steps", split, *RUN).exit_code == 0
    resumed = cli("train", family, "--resume", parted, "--steps", steps, "--device", "cpu", "--quiet")
    assert resumed.exit_code == 0, resumed.output
    a, b = _weights(straight, steps), _weights(parted, steps)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return straight


def test_vae_networks_have_the_spec_shapes() -> None:
    # The spec's counts (the VAE's and the latent CycleGAN's) are declared in models/vae.py and
    # models/cyclegan_vae.py and checked by the family contract.
    config = resolve_config("vae", None)
    z = torch.randn(3, 128)
    assert vae.build_decoder(config)(z).shape == (3, 3, 64, 64)
    mu, logvar = vae.build_encoder(config)(torch.zeros(2, 3, 64, 64))
    assert mu.shape == logvar.shape == (2, 128)


def test_vae_loss_is_summed_reconstruction_plus_kl() -> None:
    x = torch.zeros(2, 3, 2, 2)
    rec = torch.full((2, 3, 2, 2), 0.5)
    mu, logvar = torch.zeros(2, 4), torch.zeros(2, 4)
    loss, recon, kl = vae_loss(x, rec, mu, logvar, "l1", 1.0)
    assert float(recon) == pytest.approx(6.0) and float(kl) == 0.0 and float(loss) == pytest.approx(6.0)
    mu = torch.ones(2, 4)
    _, _, kl = vae_loss(x, rec, mu, logvar, "mse", 1.0)
    assert float(kl) == pytest.approx(2.0)  # 1/2 * 4 * (1 + 1 - 1 - 0)
    _, recon, _ = vae_loss(x, rec, mu, logvar, "mse", 1.0)
    assert float(recon) == pytest.approx(3.0)  # 12 pixels x 0.25


def test_pacgan_trains_and_resumes(cli, domains: Path, tmp_path: Path) -> None:
    args = ["--data", domains, "--preset", "thesis64", "--resolution", "16", "--ngf", "4", "--ndf", "4",
            "--n-blocks", "1", "--n-layers-d", "2", "--pack", "2", "--batch", "2", "--pool-size", "3"]
    run = _same_as_straight(cli, "cycle-gan", args, tmp_path)
    assert _weights(run, 6)["D_A.model.0.weight"].shape == (4, 6, 4, 4)  # 2 images x 3 channels


def _straight(cli, family: str, args: list, tmp_path: Path, steps: int = 6) -> Path:
    """Train `steps` (the exact resume of these plain configurations is the family contract's)."""
    run = tmp_path / f"{family}-straight"
    done = cli("train", family, *args, "--out", run, "--steps", steps, *RUN)
    assert done.exit_code == 0, done.output
    return run


def test_vae_then_latent_cyclegan_train_and_translate(cli, domains: Path, tmp_path: Path) -> None:
    vae_args = ["--data", domains, "--resolution", "16", "--width", "4", "--z-dim", "8", "--batch", "4"]
    vae_run = _straight(cli, "vae", vae_args, tmp_path)
    assert {k.split(".")[0] for k in _weights(vae_run, 6)} == {"E", "G"}
    sampled = cli("sample", "--ckpt", vae_run, "--n", "4", "--out", tmp_path / "vae.png", "--device", "cpu", "--json")
    assert sampled.exit_code == 0, sampled.output  # a VAE run is a generator

    moved = tmp_path / "vae-elsewhere"
    shutil.copytree(vae_run, moved)
    cg_args = ["--vae", moved, "--data", domains, "--batch", "2", "--pool-size", "3"]
    cg_run = _straight(cli, "cycle-gan-vae", cg_args, tmp_path)
    weights = _weights(cg_run, 6)
    assert {k.split(".")[0] for k in weights} == {"G_A", "G_B", "D_A", "D_B", "E", "Dec"}
    vae_weights = _weights(vae_run, 6)
    assert torch.equal(weights["Dec.fc.weight"], vae_weights["G.fc.weight"])  # the VAE stayed frozen
    state = json.loads((cg_run / "config.json").read_text())["model"]
    assert state["vae_config"]["z_dim"] == 8 and state["resolution"] == 16
    shutil.rmtree(moved)  # the checkpoint holds the VAE: translation needs no VAE run
    out = tmp_path / "translated"
    result = cli("translate", "--ckpt", cg_run, domains / "testA", "--grid", "--out", out, "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["outputs"]) == 2
    too_big = cli("translate", "--ckpt", cg_run, domains / "testA", "--size", "32", "--out", tmp_path / "x")
    assert too_big.exit_code == 2 and "only 16x16" in too_big.stderr  # a bad number: a usage error
    resumed = cli("train", "cycle-gan-vae", "--resume", cg_run, "--steps", "7", "--device", "cpu", "--quiet")
    assert resumed.exit_code == 0, resumed.output
    evaluated = cli("eval", "translation", "--ckpt", cg_run, "--data", domains, "--no-inception", "--device", "cpu",
                    "--json", "--quiet")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["directions"]["a2b"]["pairs"]["n"] == 2
    not_vae = cli("train", "cycle-gan-vae", "--vae", cg_run, "--data", domains, "--out", tmp_path / "y", *RUN)
    assert not_vae.exit_code == 1 and "not a VAE" in not_vae.stderr


def test_nst_losses_vanish_at_their_targets(vgg_file: Path) -> None:
    from facegan_cli.features.vgg19 import VGG19Extractor
    from facegan_cli.train.cyclegan_trainer import NSTLosses

    nst = NSTLosses(VGG19Extractor(vgg_file, "cpu", pool="avg"))
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    content, style = nst(x, x, y)
    assert float(content) == 0.0 and float(style) > 0
    content, style = nst(y, x, y)
    assert float(content) > 0 and float(style) == pytest.approx(0.0, abs=1e-12)
    out = x.clone().requires_grad_(True)
    sum(nst(out, y, y)).backward()
    assert out.grad is not None and out.grad.abs().sum() > 0  # the terms train G through the frozen VGG19


def test_nst_variant_trains_calibrates_and_resumes(cli, domains: Path, vgg_file: Path, tmp_path: Path) -> None:
    args = ["--data", domains, "--preset", "thesis64", "--resolution", "16", "--ngf", "4", "--ndf", "4",
            "--n-blocks", "1", "--n-layers-d", "2", "--identity-mode", "nst", "--vgg-weights", vgg_file,
            "--pool-size", "2"]
    run = _same_as_straight(cli, "cycle-gan", args, tmp_path, steps=4, split=2)
    from facegan_cli.core.checkpoint import load_checkpoint

    weights = load_checkpoint(run).load_state()["trainer"]["nst_weights"]
    assert len(weights) == 2 and all(w > 0 for w in weights)
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert 0.2 < first["idt_A"] < 3  # each of the two calibrated terms about 0.5 at the start
    model = json.loads((run / "config.json").read_text())["model"]
    assert model["identity_mode"] == "nst" and model["vgg_sha256"] and model["lambda_content"] is None
    stray = cli("train", "cycle-gan", "--data", domains, "--lambda-style", "3", "--out", tmp_path / "z", *RUN)
    assert stray.exit_code == 1 and "--identity-mode nst" in stray.stderr
