"""CycleGAN against junyanz's code (tests/references/cyclegan_reference.py): networks, init, parameter counts,
the update step, the history buffer and the schedule; and seed 004's options."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from references.cyclegan_reference import CycleGANModel, define_networks, linear_rule
from references.cyclegan_reference import ImagePool as RefPool

from facegan_cli.core.device import Precision
from facegan_cli.models import cyclegan
from facegan_cli.models.registry import count_parameters, resolve_config
from facegan_cli.train.cyclegan_trainer import CycleGANTrainer, ImagePool, lr_factor, total_variation
from facegan_cli.train.trainer import TrainContext

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")


def _recipe(preset: str = "junyanz256", epoch_steps: int = 1000, channels_last: bool = False, **overrides: object
            ) -> CycleGANTrainer:
    torch.manual_seed(0)
    tiny = {"resolution": 32, "load_size": 32, "ngf": 8, "ndf": 8, "n_blocks": 2, "batch": 2, "pool_size": 3}
    config = resolve_config("cycle-gan", preset, {**tiny, **overrides})
    config["data_resolution"] = config["load_size"]
    trainer = CycleGANTrainer(config)
    trainer.setup(TrainContext(CPU, Precision(CPU, channels_last=channels_last)))
    trainer.set_epoch_length(epoch_steps)
    return trainer


def _batches(steps: int, size: int = 32, batch: int = 2) -> torch.Tensor:
    return torch.rand(steps, 2, batch, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_parameter_counts_match_junyanz() -> None:
    # The preset's own G and D counts are declared in models/cyclegan.py and checked by the family contract.
    config = resolve_config("cycle-gan", "junyanz256")
    G = cyclegan.build_generator(config)
    assert count_parameters(cyclegan.build_generator({**config, "n_blocks": 6})) == 7_837_699
    assert count_parameters(G.model[10]) == 1_180_160  # one ResnetBlock(256)
    parts = [G.model[i] for i in (1, 4, 7, 19, 22, 26)]  # c7-64, d128, d256, u128, u64, c7-3
    assert [count_parameters(p) for p in parts] == [9_472, 73_856, 295_168, 295_040, 73_792, 9_411]
    for upsample in ("nearest", "bilinear"):
        for padding in ("zero", "reflect"):
            assert count_parameters(cyclegan.build_generator({**config, "upsample": upsample, "padding": padding})) \
                == 11_378_179
    assert count_parameters(cyclegan.build_discriminator({**config, "pack": 2})) == 2_767_809
    assert count_parameters(cyclegan.build_discriminator({**config, "n_layers_d": 2})) == 662_977
    assert count_parameters(cyclegan.build_discriminator({**config, "n_layers_d": 2, "pack": 2})) == 666_049


def test_networks_and_init_are_junyanz_from_the_same_seed() -> None:
    """Built and initialised in J's order from one seed, facegan's four networks are J's, key for key, and
    compute the same images and patch scores."""
    config = resolve_config("cycle-gan", "thesis64", {"upsample": "deconv", "padding": "zero"})
    config["data_resolution"] = 64
    torch.manual_seed(4)
    ref = define_networks(n_blocks=6)
    torch.manual_seed(4)
    ours = CycleGANTrainer(config)
    ours.setup(TrainContext(CPU, Precision(CPU, channels_last=False)))
    for name in ("G_A", "G_B", "D_A", "D_B"):
        mine, theirs = ours.modules[name].state_dict(), ref[name].state_dict()
        assert list(mine) == list(theirs)
        assert all(torch.equal(mine[k], theirs[k]) for k in mine), name
    weights = torch.cat([p.detach().flatten() for n, p in ours.modules["G_A"].named_parameters() if n.endswith("weight")])
    biases = torch.cat([p.detach().flatten() for n, p in ours.modules["G_A"].named_parameters() if n.endswith("bias")])
    assert abs(float(weights.std()) - 0.02) < 1e-3 and abs(float(weights.mean())) < 1e-4 and not biases.any()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(ours.modules["G_A"](x), ref["G_A"](x))
        assert torch.equal(ours.modules["D_B"](x), ref["D_B"](x))


@pytest.mark.parametrize("gan_mode", ["lsgan", "vanilla", "wgangp"])
def test_steps_equal_junyanz_optimize_parameters(gan_mode: str) -> None:
    """Six steps (the 3-image pools fill, then swap) from the same weights, batches and Python seed: every
    weight of G_A, G_B, D_A and D_B equals J's, bit for bit (wgangp without a penalty, as J's CycleGAN)."""
    ours = _recipe(gan_mode=gan_mode, lambda_gp=0.0)
    nets = {k: copy.deepcopy(v) for k, v in ours.modules.items()}
    ref = CycleGANModel(nets, gan_mode=gan_mode, pool_size=3)
    data = _batches(6)
    random.seed(5)
    for step in range(6):
        losses = ours.train_step({"A": data[step, 0], "B": data[step, 1]}, step)
    random.seed(5)
    for step in range(6):
        ref.set_input(data[step, 0], data[step, 1])
        ref.optimize_parameters()
    assert ours.pool_A.count == ours.pool_B.count == 3
    for name, net in nets.items():
        mine = ours.modules[name].state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(mine[key], value), f"{name}.{key}"
    for key in ("G_A", "G_B", "cycle_A", "cycle_B", "D_A", "D_B"):
        assert torch.equal(losses[key], ref.losses[key].detach()), key


def test_channels_last_step_is_the_same_step() -> None:
    """facegan's CPU default (channels_last) changes only rounding: the same losses, and weights within what
    rounding can move one Adam step. A conv bias before InstanceNorm has a zero gradient up to rounding, which
    Adam's first step turns into +-lr either way: two rounding noises may differ by 2 lr."""
    plain, nhwc = _recipe(), _recipe(channels_last=True)
    data = _batches(1)
    losses = []
    for trainer in (plain, nhwc):
        random.seed(1)
        losses.append(trainer.train_step({"A": data[0, 0], "B": data[0, 1]}, 0))
    for key, value in losses[0].items():
        torch.testing.assert_close(losses[1][key], value, rtol=1e-4, atol=1e-6)
    for name in plain.modules:
        for key, value in plain.modules[name].state_dict().items():
            torch.testing.assert_close(nhwc.modules[name].state_dict()[key], value, rtol=0, atol=2 * 2e-4 + 1e-6)


def test_image_pool_is_junyanz_pool_and_round_trips() -> None:
    ours, ref = ImagePool(4), RefPool(4)
    batches = torch.rand(12, 3, 3, 2, 2)
    random.seed(9)
    got = [ours.query(b) for b in batches]
    random.seed(9)
    expected = [ref.query(b) for b in batches]
    assert all(torch.equal(g, e) for g, e in zip(got, expected))
    assert ours.count == 4 and torch.equal(ours.images, torch.cat(ref.images))
    assert any(not torch.equal(g, b) for g, b in zip(got, batches))  # the full pool swapped some out
    restored = ImagePool(4)
    restored.load(ours.state(), CPU)
    state = random.getstate()
    out1 = ours.query(batches[0])
    random.setstate(state)
    assert torch.equal(restored.query(batches[0]), out1)
    assert torch.equal(ImagePool(0).query(batches[0]), batches[0])


def test_linear_decay_is_junyanz_rule() -> None:
    rule = linear_rule(100, 100)
    for epoch in (0, 50, 99, 100, 101, 150, 199):
        assert lr_factor(epoch * 7 + 3, 7, 100, 100) == pytest.approx(rule(epoch))
    assert 2e-4 * lr_factor(99 * 7, 7, 100, 100) == 2e-4
    assert 2e-4 * lr_factor(100 * 7, 7, 100, 100) == pytest.approx(1.98e-4, rel=1e-3)
    assert 2e-4 * lr_factor(199 * 7, 7, 100, 100) == pytest.approx(1.98e-6, rel=1e-3)
    trainer = _recipe(epoch_steps=2, n_epochs=1, n_epochs_decay=2)
    data = _batches(5)
    seen = []
    for step in range(5):
        seen.append([g["lr"] for opt in trainer.optimizers.values() for g in opt.param_groups])
        trainer.train_step({"A": data[step, 0], "B": data[step, 1]}, step)
    assert [s[0] for s in seen] == pytest.approx([2e-4, 2e-4, 2e-4 * 2 / 3, 2e-4 * 2 / 3, 2e-4 / 3])
    assert all(len(set(s)) == 1 for s in seen)  # G and D share the rate


def test_random_crops_resize_then_crop_on_the_device() -> None:
    trainer = _recipe(resolution=24, load_size=32)
    trainer.config["data_resolution"] = 16
    images = torch.rand(3, 3, 16, 16) * 2 - 1
    torch.manual_seed(2)
    crops = trainer.fit(images)
    assert crops.shape == (3, 3, 24, 24) and crops.abs().max() <= 1
    up = torch.nn.functional.interpolate(images, size=(32, 32), mode="bicubic", align_corners=False).clamp(-1, 1)
    torch.manual_seed(2)
    offsets = torch.randint(0, 9, (3, 2)).tolist()
    for i, (y, x) in enumerate(offsets):
        assert torch.equal(crops[i], up[i, :, y : y + 24, x : x + 24])
    centre = trainer.fit(images, random_crop=False)
    assert torch.equal(centre, up[:, :, 4:28, 4:28])


def test_thesis_options_change_the_step() -> None:
    """Each of seed 004's options changes what the step computes; the baseline has none of them."""
    data = _batches(1)
    batch = {"A": data[0, 0], "B": data[0, 1]}
    base = _recipe()
    assert base.config["lambda_tv"] == 0 and base.config["d_noise_std"] == 0
    random.seed(0)
    torch.manual_seed(0)
    reference = base.train_step(dict(batch), 0)
    assert float(reference["tv"]) == 0
    for overrides in ({"lambda_tv": 0.1}, {"identity_mode": "thesis"}, {"d_noise_std": 0.1},
                      {"upsample": "nearest"}, {"padding": "reflect"}, {"pack": 2}):
        trainer = _recipe(**overrides)
        random.seed(0)
        torch.manual_seed(0)
        losses = trainer.train_step(dict(batch), 0)
        assert not torch.equal(losses["loss_G"], reference["loss_G"]), overrides
    thesis = _recipe(identity_mode="thesis")
    x = data[0, 0]
    with torch.no_grad():
        fake_b = thesis.modules["G_A"](x)
    losses = thesis.train_step({"A": x, "B": data[0, 1]}, 0)
    assert float(losses["idt_A"]) == pytest.approx(float((fake_b - x).abs().mean()) * 10 * 0.5, rel=1e-5)


def test_noise_anneals_to_zero_and_tv_loss() -> None:
    trainer = _recipe(d_noise_std=0.1, epoch_steps=10, n_epochs=6, n_epochs_decay=4)  # 100 steps of schedule
    assert [trainer.noise_std(s) for s in (0, 50, 100, 150)] == pytest.approx([0.1, 0.05, 0.0, 0.0])
    assert _recipe().noise_std(0) == 0.0
    flat = torch.zeros(1, 3, 8, 8)
    assert float(total_variation(flat)) == pytest.approx(1e-4)  # sqrt(1e-8)
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 3, 8, 8)
    assert float(total_variation(ramp)) == pytest.approx(1.0, abs=1e-6)  # dx = 1, dy = 0 everywhere


def test_pacgan_packs_consecutive_images_on_channels() -> None:
    x = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 2, 2)
    packed = cyclegan.pack_images(x, 2)
    assert packed.shape == (2, 6, 2, 2)
    assert packed[0, :3].eq(0).all() and packed[0, 3:].eq(1).all() and packed[1, 3:].eq(3).all()
    with pytest.raises(ValueError, match="pack"):
        cyclegan.pack_images(x[:3], 2)
    trainer = _recipe(pack=2)
    assert trainer.modules["D_A"].model[0].in_channels == 6


def test_resize_convolution_has_no_checkerboard_at_init() -> None:
    """A constant input: nearest resize-convolution gives a flat interior; transposed convs (stride 2,
    kernel 3) overlap unevenly and leave a period-2 pattern (the checkerboard seed 004 removes)."""
    x = torch.full((1, 8, 8, 8), 0.5)
    deconv = torch.nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1, bias=False)
    resize = torch.nn.Sequential(torch.nn.Upsample(scale_factor=2, mode="nearest"),
                                 torch.nn.Conv2d(8, 1, 3, padding=1, bias=False))
    for net in (deconv, resize):
        torch.nn.init.constant_(net.weight if net is deconv else net[1].weight, 0.1)
    with torch.no_grad():
        a, b = deconv(x)[0, 0, 2:-2, 2:-2], resize(x)[0, 0, 2:-2, 2:-2]
    assert float(a.max() - a.min()) > 0.1 and float(b.max() - b.min()) < 1e-6
