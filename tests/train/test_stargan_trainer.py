"""StarGAN's update step: penalty, targets, lr decay, and the step against a transcription of yunjey's solver."""

from __future__ import annotations

import copy

import pytest
import torch
from references.stargan_reference import solver_iteration
from torch import nn

from facegan_cli.core.device import Precision
from facegan_cli.core.errors import FaceganError
from facegan_cli.models.registry import resolve_config
from facegan_cli.models.stargan import StarDiscriminator, apply_edits, create_labels, instance_statistics
from facegan_cli.train.gan_objectives import gradient_penalty
from facegan_cli.train.stargan_trainer import StarGANTrainer, decayed_lr
from facegan_cli.train.trainer import TrainContext

CPU = torch.device("cpu")
ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _recipe(family: str = "stargan", **overrides: object) -> StarGANTrainer:
    torch.manual_seed(0)
    tiny = {"resolution": 16, "g_width": 8, "d_width": 8, "g_repeat": 1, "d_repeat": 4, "batch": 4, "n_critic": 2}
    config = resolve_config(family, None, {**tiny, **overrides})
    trainer = StarGANTrainer(config, family)
    trainer.setup(TrainContext(CPU, Precision(CPU, channels_last=False)))
    return trainer


class _LinearCritic(nn.Module):
    """D_src(x) = <w, x> per image (and no class head): its input gradient is w for every image."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return (x * self.w).sum(dim=(1, 2, 3)).view(-1, 1, 1, 1), None


def test_gradient_penalty_of_a_linear_critic() -> None:
    w = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(0))
    x = torch.randn(5, 3, 4, 4)
    penalty = gradient_penalty(lambda images: _LinearCritic(w)(images)[0], x).mean()
    torch.testing.assert_close(penalty, (w.norm() - 1) ** 2)


def test_gradient_penalty_against_per_image_autograd() -> None:
    torch.manual_seed(0)
    D = StarDiscriminator(16, c_dim=3, width=8, repeat=4)
    x_hat = torch.randn(3, 3, 16, 16)
    norms = []
    for i in range(3):  # one image at a time: D has no batch coupling, so this is each image's gradient
        xi = x_hat[i : i + 1].clone().requires_grad_(True)
        src, _ = D(xi)
        (grad,) = torch.autograd.grad(src.sum(), xi)
        norms.append(grad.flatten().norm())
    expected = torch.stack([(n - 1) ** 2 for n in norms]).mean()
    penalty = gradient_penalty(lambda images: D(images)[0], x_hat.clone()).mean()
    torch.testing.assert_close(penalty, expected, rtol=1e-5, atol=1e-6)
    # The penalty is differentiable with respect to D's weights (create_graph), as WGAN-GP needs.
    penalty.backward()
    assert D.main[0].weight.grad is not None and D.main[0].weight.grad.abs().sum() > 0


def test_create_labels_hair_exclusive_others_flipped() -> None:
    c = torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 1]])
    targets = create_labels(c, ATTRS)
    assert len(targets) == 5
    assert targets[0].tolist() == [[1, 0, 0, 1, 0], [1, 0, 0, 0, 1]]  # black hair
    assert targets[1].tolist() == [[0, 1, 0, 1, 0], [0, 1, 0, 0, 1]]  # blond hair
    assert targets[2].tolist() == [[0, 0, 1, 1, 0], [0, 0, 1, 0, 1]]  # brown hair
    assert targets[3].tolist() == [[1, 0, 0, 0, 0], [0, 1, 0, 1, 1]]  # gender flipped
    assert targets[4].tolist() == [[1, 0, 0, 1, 1], [0, 1, 0, 0, 0]]  # age flipped
    assert c.tolist() == [[1, 0, 0, 1, 0], [0, 1, 0, 0, 1]]  # the input is not modified
    # Any subset of CelebA's attributes: Gray_Hair joins the hair group, Smiling is flipped.
    attrs = ["Smiling", "Gray_Hair", "Black_Hair"]
    targets = create_labels(torch.tensor([[1.0, 0, 1]]), attrs)
    assert [t.tolist() for t in targets] == [[[0, 0, 1]], [[1, 1, 0]], [[1, 0, 1]]]


def test_apply_edits() -> None:
    c = torch.tensor([[1.0, 0, 0, 1, 0]])
    assert apply_edits(c, ATTRS, {"Blond_Hair": 1}, []).tolist() == [[0, 1, 0, 1, 0]]
    assert apply_edits(c, ATTRS, {}, ["Male", "Young"]).tolist() == [[1, 0, 0, 0, 1]]
    assert apply_edits(c, ATTRS, {"Black_Hair": 0}, []).tolist() == [[0, 0, 0, 1, 0]]
    with pytest.raises(FaceganError, match="Smiling"):
        apply_edits(c, ATTRS, {}, ["Smiling"])
    with pytest.raises(FaceganError, match="0 or 1"):
        apply_edits(c, ATTRS, {"Male": 2}, [])


def test_lr_decay_reaches_zero_at_the_last_step() -> None:
    assert decayed_lr(1e-4, 0, 200_000, 100_000) == 1e-4
    assert decayed_lr(1e-4, 100_000, 200_000, 100_000) == 1e-4
    assert decayed_lr(1e-4, 150_000, 200_000, 100_000) == pytest.approx(5e-5)
    assert decayed_lr(1e-4, 200_000, 200_000, 100_000) == 0.0
    assert decayed_lr(1e-4, 5, 10, 0) == 1e-4  # no decay asked for
    trainer = _recipe()
    trainer.set_run_length(6)  # decay over the last 3 steps (half the run)
    real, labels = torch.rand(4, 3, 16, 16) * 2 - 1, torch.tensor([[1.0, 0, 0, 1, 0]] * 2 + [[0, 1, 0, 0, 1]] * 2)
    seen = []
    for step in range(6):
        seen.append(trainer.optimizers["D"].param_groups[0]["lr"])
        trainer.train_step({"images": real, "labels": labels}, step)
    assert seen[0] == 1e-4 and seen[3] == 1e-4
    assert seen[4] == pytest.approx(1e-4 * 2 / 3) and seen[5] == pytest.approx(1e-4 / 3)
    assert trainer.optimizers["D"].param_groups[0]["lr"] == 0.0
    assert trainer.optimizers["G"].param_groups[0]["lr"] == 0.0


def _yunjey_steps(G: nn.Module, D: nn.Module, data: torch.Tensor, labels: torch.Tensor, cfg: dict) -> None:
    """yunjey/stargan solver.train(), CelebA branch (references/stargan_reference.py), at constant rates."""
    g_opt = torch.optim.Adam(G.parameters(), cfg["lr"], [0.5, 0.999])
    d_opt = torch.optim.Adam(D.parameters(), cfg["lr"], [0.5, 0.999])
    for i in range(data.shape[0]):
        solver_iteration(G, D, g_opt, d_opt, data[i], labels[i], i, n_critic=cfg["n_critic"],
                         lambda_cls=cfg["lambda_cls"], lambda_rec=cfg["lambda_rec"], lambda_gp=cfg["lambda_gp"])


def _batches(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    data = torch.rand(steps, 4, 3, 16, 16, generator=gen) * 2 - 1
    labels = (torch.rand(steps, 4, 5, generator=gen) < 0.5).float()
    return data, labels


def test_step_matches_yunjey_solver() -> None:
    ours = _recipe(decay_fraction=0.0)
    G, D = copy.deepcopy(ours.modules["G"]), copy.deepcopy(ours.modules["D"])
    data, labels = _batches(4)
    torch.manual_seed(7)
    for step in range(4):
        losses = ours.train_step({"images": data[step], "labels": labels[step]}, step)
    assert float(losses["G_rec"]) > 0 and float(losses["gp"]) > 0
    torch.manual_seed(7)
    _yunjey_steps(G, D, data, labels, ours.config)
    for name, ref in (("G", G), ("D", D)):
        mine = ours.modules[name].state_dict()
        for key, value in ref.state_dict().items():
            torch.testing.assert_close(mine[key], value, rtol=1e-4, atol=1e-6, msg=f"{name}.{key}")


def test_g_updates_every_n_critic_steps_and_rec_ablation() -> None:
    data, labels = _batches(2)
    trainer = _recipe(n_critic=2)
    g0 = copy.deepcopy(trainer.modules["G"].state_dict())
    trainer.train_step({"images": data[0], "labels": labels[0]}, 0)
    assert all(torch.equal(v, trainer.modules["G"].state_dict()[k]) for k, v in g0.items() if "running" not in k)
    trainer.train_step({"images": data[1], "labels": labels[1]}, 1)
    assert not torch.equal(g0["main.0.weight"], trainer.modules["G"].state_dict()["main.0.weight"])
    # --lambda-rec 0: no reconstruction term, so G's first update differs from the default's.
    ablated = _recipe(n_critic=1, lambda_rec=0.0)
    full = _recipe(n_critic=1)
    for trainer in (ablated, full):
        torch.manual_seed(1)
        out = trainer.train_step({"images": data[0], "labels": labels[0]}, 0)
    assert float(out["G_rec"]) > 0
    torch.manual_seed(1)
    assert float(_recipe(n_critic=1, lambda_rec=0.0).train_step({"images": data[0], "labels": labels[0]}, 0)["G_rec"]) == 0.0
    assert not torch.equal(ablated.modules["G"].state_dict()["main.0.weight"],
                           full.modules["G"].state_dict()["main.0.weight"])


def test_bce_loss_has_no_penalty() -> None:
    data, labels = _batches(1)
    trainer = _recipe("ccagan", loss="bce", n_critic=1)
    torch.manual_seed(0)
    losses = trainer.train_step({"images": data[0], "labels": labels[0]}, 0)
    assert float(losses["gp"]) == 0.0
    # D's adversarial term is BCE(real, 1) + BCE(fake, 0) over patches: positive, ~2 log 2 at the start.
    assert 0.5 < float(losses["D_adv"]) < 3.0 and torch.isfinite(losses["loss_G"])


def test_sample_grid_uses_instance_statistics_and_changes_nothing() -> None:
    trainer = _recipe()
    data, labels = _batches(1)
    trainer.set_sample_inputs({"images": data[0], "labels": labels[0]})
    G = trainer.modules["G"]
    before = copy.deepcopy(G.state_dict())
    grid = trainer.sample(torch.empty(4, 0))
    assert grid.shape == (4 * 6, 3, 16, 16)
    torch.testing.assert_close(grid[0::6], data[0])  # the first column holds the inputs
    assert all(torch.equal(v, G.state_dict()[k]) for k, v in before.items()) and G.training
    with instance_statistics(G):
        expected = G(data[0], create_labels(labels[0], ATTRS)[1])
    torch.testing.assert_close(grid[2::6], expected)
    G.eval()  # eval() would use the running statistics instead: a different picture
    with torch.no_grad():
        assert not torch.allclose(G(data[0], create_labels(labels[0], ATTRS)[1]), expected)
