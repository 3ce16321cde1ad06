"""ProGAN's update step: the gradient penalty, the whole step against a plain implementation, EMA, resets."""

from __future__ import annotations

import copy

import pytest
import torch
from references.progan_reference import plain_step
from torch.func import functional_call

from facegan_cli.core.device import Precision
from facegan_cli.core.errors import FaceganError
from facegan_cli.models.progan import ProDiscriminator, apply_overrides
from facegan_cli.models.registry import build_generator, resolve_config
from facegan_cli.train.gan_objectives import gradient_penalty
from facegan_cli.train.progan_trainer import ProGANTrainer
from facegan_cli.train.trainer import TrainContext

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


def _config(resolution: int = 16, preset: str = "v2", **extra: object) -> dict:
    config = apply_overrides(resolve_config("progan", preset, {"phase_kimg": 0.032}), resolution, 8)
    config["batch_sizes"] = {r: 8 for r in config["batch_sizes"]}
    config.update(extra)
    return config


def _recipe(channels_last: bool = False, **extra: object) -> ProGANTrainer:
    torch.manual_seed(0)
    trainer = ProGANTrainer(_config(**extra))
    trainer.setup(TrainContext(CPU, Precision(CPU, channels_last=channels_last)))
    return trainer


def _small_d() -> ProDiscriminator:
    torch.manual_seed(2)
    D = ProDiscriminator(8, fmap_max=4, mbstd_group=2)
    D.set_phase(8, fading=True, alpha=0.3)
    return D


def test_gradient_penalty_against_a_jacobian_by_hand() -> None:
    D = _small_d()
    real, fake = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    mix = torch.rand(4, 1, 1, 1)
    gp = gradient_penalty(lambda x: D(x, 0.3), torch.lerp(real, fake, mix))
    # By hand: the full Jacobian of the 4 scores w.r.t. the 4 mixed images (the stddev layer couples them);
    # the penalty's gradient is that of the summed scores, i.e. the Jacobian summed over scores.
    x_hat = real + mix * (fake - real)
    jac = torch.autograd.functional.jacobian(lambda x: D(x, 0.3), x_hat)  # [4, 4, 3, 8, 8]
    grads = jac.sum(dim=0)
    expected = (grads.flatten(1).norm(dim=1) - 1) ** 2
    torch.testing.assert_close(gp, expected, rtol=1e-5, atol=1e-6)
    assert gp.requires_grad  # differentiable, so D is trained on it (create_graph)


def test_gradient_penalty_second_derivative_matches_finite_differences() -> None:
    """D is trained on the penalty, so its gradient w.r.t. D's weights (a second derivative) must be right."""
    D = _small_d().double()
    real, fake = torch.randn(4, 3, 8, 8, dtype=torch.float64), torch.randn(4, 3, 8, 8, dtype=torch.float64)
    mix = torch.rand(4, 1, 1, 1, dtype=torch.float64)
    name = "blocks.1.conv0.weight"
    weight = dict(D.named_parameters())[name].detach().clone()

    def penalty(w: torch.Tensor) -> torch.Tensor:
        def critic(x: torch.Tensor, alpha: float) -> torch.Tensor:
            return functional_call(D, {name: w}, (x, alpha))

        return gradient_penalty(lambda x: critic(x, 0.3), torch.lerp(real, fake, mix)).mean()

    w = weight.clone().requires_grad_(True)
    (analytic,) = torch.autograd.grad(penalty(w), w)
    assert analytic.abs().sum() > 0
    h = 1e-6
    for seed in range(3):
        direction = torch.randn(weight.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        numeric = (penalty(weight + h * direction) - penalty(weight - h * direction)) / (2 * h)
        assert numeric.item() == pytest.approx((analytic * direction).sum().item(), rel=1e-4, abs=1e-8)


def _plain_copy(trainer: ProGANTrainer) -> tuple:
    G, D, G_ema = (copy.deepcopy(trainer.modules[k]).to(memory_format=torch.contiguous_format) for k in ("G", "D", "G_ema"))
    cfg = trainer.config
    lr = trainer.schedule.learning_rate(G.output_resolution)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=tuple(cfg["betas"]), eps=cfg["adam_eps"])
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=tuple(cfg["betas"]), eps=cfg["adam_eps"])
    return G, D, G_ema, opt_g, opt_d


@pytest.mark.parametrize(("images", "channels_last"), [(52, False), (52, True), (130, False)])
def test_step_matches_a_plain_implementation(images: int, channels_last: bool) -> None:
    """images 52: the 8x8 fade-in at alpha 0.625; 130: 16x16 stabilisation."""
    ours = _recipe(channels_last=channels_last)
    phase = ours.phase(images)
    ours.enter_phase(phase)
    ours.begin_step(images)
    alpha, fading = ours.schedule.alpha(images), ours.schedule.is_fading(phase.index)
    G, D, G_ema, opt_g, opt_d = _plain_copy(ours)
    data = torch.rand(3, 8, 3, phase.resolution, phase.resolution) * 2 - 1
    torch.manual_seed(1)
    for step in range(3):
        ours.train_step({"images": data[step]}, step)
    torch.manual_seed(1)
    for step in range(3):
        plain_step(G, D, G_ema, opt_g, opt_d, data[step], alpha, fading, ours.z_dim)
    for name, ref in (("G", G), ("D", D), ("G_ema", G_ema)):
        mine = ours.modules[name].state_dict()
        for key, value in ref.state_dict().items():
            torch.testing.assert_close(mine[key], value, rtol=1e-4, atol=1e-5, msg=f"{name}.{key}")
    # The step trained something, and only the layers of this phase.
    fresh = _recipe()
    changed = {k for k, v in ours.modules["G"].state_dict().items() if not torch.equal(v, fresh.modules["G"].state_dict()[k])}
    active = {f"blocks.{i}." for i in range(ours.G.stage + 1)} | {f"to_rgb.{ours.G.stage}."}
    if fading:
        active.add(f"to_rgb.{ours.G.stage - 1}.")
    assert changed and all(any(k.startswith(a) for a in active) for k in changed)


def test_ema_follows_the_generator() -> None:
    trainer = _recipe()
    before = {k: v.clone() for k, v in trainer.modules["G"].state_dict().items()}
    ema_before = {k: v.clone() for k, v in trainer.modules["G_ema"].state_dict().items()}
    assert all(torch.equal(before[k], ema_before[k]) for k in before)  # G_ema starts as a copy of G
    trainer.train_step({"images": torch.rand(8, 3, 4, 4) * 2 - 1}, 0)
    after, ema = trainer.modules["G"].state_dict(), trainer.modules["G_ema"].state_dict()
    for key in before:
        expected = after[key] + 0.999 * (before[key] - after[key])
        torch.testing.assert_close(ema[key], expected, rtol=1e-6, atol=1e-7, msg=key)
    assert any(not torch.equal(ema[k], after[k]) for k in after)


def test_each_phase_starts_with_fresh_adam_and_its_learning_rate() -> None:
    trainer = _recipe()
    trainer.train_step({"images": torch.rand(8, 3, 4, 4) * 2 - 1}, 0)
    assert len(trainer.optimizers["G"].state) > 0
    trainer.enter_phase(trainer.phase(40))
    assert all(len(opt.state) == 0 for opt in trainer.optimizers.values())
    big = ProGANTrainer(apply_overrides(resolve_config("progan", "v2"), 1024, 4))
    assert big.schedule.learning_rate(1024) == 1.5e-3
    assert big.phase(10**9).resolution == 1024


def test_meta_records_the_phase_so_a_checkpoint_rebuilds_as_trained() -> None:
    trainer = _recipe()
    trainer.enter_phase(trainer.phase(52))
    trainer.begin_step(52)
    meta = trainer.meta()
    assert meta["generator"] == "G_ema" and meta["model"]["grown"] == {"resolution": 8, "fading": True, "alpha": 0.625}
    rebuilt = build_generator("progan", meta["model"])
    rebuilt.load_state_dict(trainer.modules["G_ema"].state_dict())
    z = torch.randn(3, trainer.z_dim)
    with torch.no_grad():
        assert torch.equal(rebuilt(z), trainer.sample(z))
    assert trainer.sample(z).shape == (3, 3, 8, 8)


def test_stddev_group_must_divide_every_minibatch() -> None:
    config = apply_overrides(resolve_config("progan", "paper", {"mbstd_group": 4}), 256, 4)
    trainer = ProGANTrainer(config)
    with pytest.raises(FaceganError, match="14 images per process"):
        trainer.setup(TrainContext(CPU, Precision(CPU)))
