"""DCGAN's update step against a literal transcription of pytorch/examples dcgan/main.py."""

from __future__ import annotations

import copy

import pytest
import torch
from references.dcgan_reference import examples_step

from facegan_cli.core.device import Precision
from facegan_cli.models.registry import resolve_config
from facegan_cli.train.dcgan_trainer import DCGANTrainer
from facegan_cli.train.trainer import TrainContext

CPU = torch.device("cpu")


def _recipe(freeze: bool = True, channels_last: bool = False) -> DCGANTrainer:
    torch.manual_seed(0)
    trainer = DCGANTrainer(resolve_config("dcgan", "radford64", {"width": 8, "g_width": 8, "batch": 16}))
    trainer.setup(TrainContext(CPU, Precision(CPU, channels_last=channels_last)))
    trainer.distributed = not freeze  # what switches D's freezing in the G step off (as DDP does)
    return trainer


@pytest.mark.parametrize("channels_last", [False, True])
def test_step_matches_pytorch_examples(channels_last: bool) -> None:
    ours = _recipe(channels_last=channels_last)
    G, D = copy.deepcopy(ours.modules["G"]), copy.deepcopy(ours.modules["D"])
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    data = torch.rand(3, 16, 3, 64, 64) * 2 - 1
    torch.manual_seed(1)
    for step in range(3):
        ours.train_step({"images": data[step]}, step)
    torch.manual_seed(1)
    for step in range(3):
        examples_step(G, D, optG, optD, data[step], 100)
    for name, ref in (("G", G), ("D", D)):
        mine = ours.modules[name].state_dict()
        for key, value in ref.state_dict().items():
            torch.testing.assert_close(mine[key], value, rtol=1e-5, atol=1e-6, msg=f"{name}.{key}")


def test_freezing_d_in_g_step_changes_nothing() -> None:
    a, b = _recipe(freeze=True), _recipe(freeze=False)
    data = torch.rand(2, 16, 3, 64, 64) * 2 - 1
    for trainer in (a, b):
        torch.manual_seed(5)
        for step in range(2):
            trainer.train_step({"images": data[step]}, step)
    for name in ("G", "D"):
        for key, value in a.modules[name].state_dict().items():
            torch.testing.assert_close(value, b.modules[name].state_dict()[key], rtol=0, atol=0)
    assert all(p.requires_grad for p in a.modules["D"].parameters())
