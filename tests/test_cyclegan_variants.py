"""Seed 004's variants train end to end and resume bit-exactly: PacGAN (--pack 2), the VAE (`train vae`) and the
latent CycleGAN+VAE (`train cycle-gan-vae`), whose checkpoint translates without the VAE run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from facegan_cli.models import cyclegan_vae, vae
from facegan_cli.models.registry import count_parameters, resolve_config
from facegan_cli.prepare.synthetic import write_synthetic
from facegan_cli.train.vae_recipe import vae_loss

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


def test_vae_and_latent_networks_have_the_spec_counts() -> None:
    config = resolve_config("vae", None)
    assert count_parameters(vae.build_encoder(config)) == 1_739_872
    assert count_parameters(vae.build_decoder(config)) == 916_995
    latent = resolve_config("cycle-gan-vae", None)
    assert count_parameters(cyclegan_vae.build_translator(latent)) == 394_368
    assert count_parameters(cyclegan_vae.build_critic(latent)) == 197_633
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


def test_vae_then_latent_cyclegan_train_resume_and_translate(cli, domains: Path, tmp_path: Path) -> None:
    vae_args = ["--data", domains, "--resolution", "16", "--width", "4", "--z-dim", "8", "--batch", "4"]
    vae_run = _same_as_straight(cli, "vae", vae_args, tmp_path)
    assert {k.split(".")[0] for k in _weights(vae_run, 6)} == {"E", "G"}
    sampled = cli("sample", "--ckpt", vae_run, "--n", "4", "--out", tmp_path / "vae.png", "--device", "cpu", "--json")
    assert sampled.exit_code == 0, sampled.output  # a VAE run is a generator

    moved = tmp_path / "vae-elsewhere"
    shutil.copytree(vae_run, moved)
    cg_args = ["--vae", moved, "--data", domains, "--batch", "2", "--pool-size", "3"]
    cg_run = _same_as_straight(cli, "cycle-gan-vae", cg_args, tmp_path)
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
    assert too_big.exit_code == 1 and "only 16x16" in too_big.stderr
    resumed = cli("train", "cycle-gan-vae", "--resume", cg_run, "--steps", "7", "--device", "cpu", "--quiet")
    assert resumed.exit_code == 0, resumed.output
    evaluated = cli("eval", "translation", "--ckpt", cg_run, "--data", domains, "--no-inception", "--device", "cpu",
                    "--json", "--quiet")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["directions"]["a2b"]["pairs"]["n"] == 2
    not_vae = cli("train", "cycle-gan-vae", "--vae", cg_run, "--data", domains, "--out", tmp_path / "y", *RUN)
    assert not_vae.exit_code == 1 and "not a VAE" in not_vae.stderr
