"""A family added from this test module alone: two image domains, two networks, trained, interrupted and
resumed bit-exactly, and sampled, through the same commands as the built-in families.

Nothing under facegan_cli/ knows this family: it registers itself (models.registry.register) with its
networks, trainer (two named streams, "A" and "B"), training options and checkpoint loader, and the CLI
built afterwards (cli.build_app) has `facegan train toy-domains` and samples its checkpoints.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from family_contract import check_family_contract
from safetensors.torch import load_file
from torch import nn
from train_helpers import write_image_folder
from typer.testing import CliRunner

from facegan_cli.core.options import Opt
from facegan_cli.models import registry
from facegan_cli.models.loading import generator_loader, load_generator
from facegan_cli.train.spec import TrainPlan, TrainSpec
from facegan_cli.train.trainer import Images, Stream, TrainContext, Trainer

FAMILY = "toy-domains"
PRESET = {"resolution": 16, "z_dim": 8, "batch": 4, "lr": 1e-2}


class ToyGenerator(nn.Module):
    """z -> a 3 x res x res image in [-1, 1]."""

    def __init__(self, z_dim: int, resolution: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.net = nn.Linear(z_dim, 3 * resolution * resolution)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(z)).view(-1, 3, self.resolution, self.resolution)


def build(config: dict[str, Any]) -> nn.Module:
    return ToyGenerator(int(config["z_dim"]), int(config["resolution"]))


class ToyTrainer(Trainer):
    """One generator per domain, each pulled towards its own domain's batch (per-pixel mean matching)."""

    generator_key = "G_A"
    seen: list[dict[str, torch.Tensor]] = []

    def streams(self) -> dict[str, Stream]:
        return {"A": Images(), "B": Images()}

    def build(self, ctx: TrainContext) -> None:
        self.modules = {"G_A": build(self.config).to(ctx.device), "G_B": build(self.config).to(ctx.device)}
        self.optimizers = {name: torch.optim.Adam(net.parameters(), lr=float(self.config["lr"]))
                           for name, net in self.modules.items()}
        self.nets = dict(self.modules)  # what the step calls; `modules` (saved) stay the plain networks

    def wrap_networks(self, wrap: Any) -> None:
        self.nets = {name: wrap(net) for name, net in self.nets.items()}

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        ToyTrainer.seen.append({k: v.clone() for k, v in batch.items()})
        losses = {}
        for domain in ("A", "B"):
            net, opt = self.nets[f"G_{domain}"], self.optimizers[f"G_{domain}"]
            fake = net(torch.randn(batch[domain].shape[0], self.z_dim, device=self.device))
            loss = (fake.mean(0) - batch[domain].mean(0)).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses[f"loss_{domain}"] = loss.detach()
        return losses


def configure(values: dict[str, Any]) -> TrainPlan:
    config = registry.resolve_config(FAMILY, values.get("preset"))
    data = {"A": {"path": values["data_a"], "split": "all"}, "B": {"path": values["data_b"], "split": "all"}}
    return TrainPlan(config, data)


TRAINING = TrainSpec(
    summary="Train the toy two-domain family.",
    example="facegan train toy-domains --data-a A/ --data-b B/ --out runs/toy",
    options=(Opt("data_a", ("--data-a",), Path, None, "Domain A images."),
             Opt("data_b", ("--data-b",), Path, None, "Domain B images.")),
    configure=configure,
    trainer=ToyTrainer,
    data_options={"A": "data_a", "B": "data_b"},
    loop_defaults={"steps": 6, "ckpt_every": 2, "log_every": 1, "sample_every": 100},
    tiny={},  # the preset is tiny already
)


@pytest.fixture(scope="module")
def cli() -> Iterator[Any]:
    registry.register(registry.Family(
        name=FAMILY, kind="generator", presets={"tiny": PRESET}, default_preset="tiny", build_generator=build,
        describe="a toy family with two image domains", training=TRAINING, loader=generator_loader,
        reference_counts={"tiny": registry.Reference({"generator": 8 * 768 + 768}, source="one Linear(8, 3 x 16 x 16)")},
    ))
    from facegan_cli.cli import build_app

    app, runner = build_app(), CliRunner()
    yield lambda *args: runner.invoke(app, [str(a) for a in args])
    registry.unregister(FAMILY)


@pytest.fixture(scope="module")
def domains(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("domains")
    return write_image_folder(root / "A", n=12, size=16, seed=1), write_image_folder(root / "B", n=8, size=16, seed=2)


def _weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / f"ckpt-{step:09d}.safetensors"))


def test_a_family_from_a_test_module_trains_on_both_streams_and_samples(cli, domains, tmp_path: Path) -> None:
    """Two streams reach the step and the record; the exact resume is the family contract's (below)."""
    a, b = domains
    common = ["--data-a", a, "--data-b", b, "--device", "cpu", "--quiet", "--no-tensorboard", "--seed", 3]
    assert FAMILY in cli("models", "list").stdout

    ToyTrainer.seen = []
    straight = tmp_path / "straight"
    done = cli("train", FAMILY, *common, "--out", straight, "--steps", 6, "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["step"] == 6
    batches = ToyTrainer.seen
    # Every step sees a batch of each named stream.
    assert set(batches[0]) == {"A", "B"} and batches[0]["A"].shape == batches[0]["B"].shape == (4, 3, 16, 16)
    config = json.loads((straight / "config.json").read_text())
    assert set(config["data"]) == {"A", "B"}
    assert config["data"]["A"]["fingerprint"] != config["data"]["B"]["fingerprint"]

    assert {k.split(".")[0] for k in _weights(straight, 6)} == {"G_A", "G_B"}

    moved_data = cli("train", FAMILY, "--resume", straight, "--steps", 7, "--data-b", a, "--device", "cpu", "--quiet")
    assert moved_data.exit_code == 1 and "fingerprint" in moved_data.stderr  # B is not A's data

    grid = tmp_path / "grid.png"
    sampled = cli("sample", "--ckpt", straight, "--out", grid, "--n", 4, "--device", "cpu", "--json")
    assert sampled.exit_code == 0, sampled.output
    assert json.loads(sampled.stdout)["generator"] == "G_A" and grid.exists()
    generator = load_generator(straight)
    assert generator.family == FAMILY and generator.resolution == 16


def test_the_family_meets_the_family_contract(cli, tmp_path: Path) -> None:
    """Registered by this module alone, the family passes the contract every family passes
    (tests/models/test_family_contract.py): counts, a step, exact resume, loading and `facegan sample`."""
    check_family_contract(FAMILY, tmp_path)
