"""`facegan import` of files it must refuse: each one paragraph, exit 1, no run left behind, nothing run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from cli_helpers import invoke_cli
from interop_helpers import examples_outf, junyanz_folder, yunjey_models
from references.cyclegan_reference import define_networks, save_networks

pytestmark = pytest.mark.usefixtures("one_thread")


class Payload:
    """An object whose unpickling runs a shell command (what a malicious checkpoint would carry)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.target}",))


def refused(tmp_path: Path, *args: object) -> str:
    """Run `facegan import ARGS --out RUN`, assert the one-paragraph refusal and that no run was left."""
    out = tmp_path / "run"
    result = invoke_cli(["import", *args, "--out", out])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") <= 1, result.stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".run")]
    return result.stderr


def test_planted_payload_is_refused_and_never_runs(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints" / "evil"
    folder.mkdir(parents=True)
    touched = tmp_path / "pwned"
    state = define_networks(ngf=4, n_blocks=1)["G_A"].state_dict()
    torch.save({**state, "model.1.extra": Payload(touched)}, folder / "latest_net_G_A.pth")
    message = refused(tmp_path, folder / "latest_net_G_A.pth")
    assert "pickled Python objects" in message and "nothing in it ran" in message
    assert "weights_only=False" not in message
    assert not touched.exists()


def test_truncated_file(tmp_path: Path) -> None:
    folder = junyanz_folder(tmp_path)
    data = (folder / "latest_net_G_A.pth").read_bytes()
    (folder / "latest_net_G_A.pth").write_bytes(data[: len(data) // 2])
    assert "truncated" in refused(tmp_path, folder)


def test_file_of_another_architecture(tmp_path: Path) -> None:
    """A DCGAN generator under CycleGAN's file name: its tensors are not a ResNet generator's."""
    outf = examples_outf(tmp_path)
    folder = tmp_path / "renamed"
    folder.mkdir()
    (folder / "latest_net_G_A.pth").write_bytes((outf / "netG_epoch_0.pth").read_bytes())
    message = refused(tmp_path, folder / "latest_net_G_A.pth")
    assert "latest_net_G_A.pth" in message and "not" in message


def test_generators_of_different_sizes(tmp_path: Path) -> None:
    folder = junyanz_folder(tmp_path, ngf=8, n_blocks=1)
    save_networks({"G_B": define_networks(ngf=8, n_blocks=2)["G_B"]}, folder)  # 2 blocks where G_A has 1
    assert "different sizes" in refused(tmp_path, folder)


def test_pix2pix_unet_offered_as_cyclegan(tmp_path: Path) -> None:
    """pix2pix's UnetGenerator nests its blocks (model.model.N.model...): offered as cycle-gan it is refused with
    the family it is; detected, it goes to pix2pix, which names the levels it takes."""
    folder = tmp_path / "facades_label2photo"
    folder.mkdir()
    unet = {"model.model.0.weight": torch.zeros(8, 3, 4, 4), "model.model.0.bias": torch.zeros(8),
            "model.model.1.model.1.weight": torch.zeros(16, 8, 4, 4)}
    torch.save(unet, folder / "latest_net_G.pth")
    message = refused(tmp_path, folder / "latest_net_G.pth", "--family", "cycle-gan")
    assert "pix2pix" in message and "--family cycle-gan" in message
    assert "unet_256" in refused(tmp_path, folder / "latest_net_G.pth")  # 1 level: no junyanz U-Net


def test_stargan_attrs_count_must_match(tmp_path: Path) -> None:
    models = yunjey_models(tmp_path, c_dim=5)
    message = refused(tmp_path, models, "--attrs", "Black_Hair,Blond_Hair,Brown_Hair,Male")
    assert "5 attributes" in message and "--attrs" in message


def test_files_of_no_known_project(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\0" * 64)
    assert "facegan reads:" in refused(tmp_path, tmp_path / "weights.bin")


def test_gan_zoo_pickled_config_is_refused_with_the_conversion(tmp_path: Path) -> None:
    """pytorch_GAN_zoo's file holds its config as a pickled object: refused unread, the conversion named."""
    touched = tmp_path / "pwned"
    torch.save({"config": Payload(touched), "netG": {"formatLayer.module.weight": torch.zeros(4, 4)}},
               tmp_path / "celebaHQ_s6_i80000-6196db68.pth")
    message = refused(tmp_path, tmp_path / "celebaHQ_s6_i80000-6196db68.pth")
    assert "getOriginalAvgG" in message and not touched.exists()


def test_epoch_that_was_not_saved(tmp_path: Path) -> None:
    message = refused(tmp_path, junyanz_folder(tmp_path), "--epoch", "7")
    assert "--epoch 7" in message and "latest" in message
