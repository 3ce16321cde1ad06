"""pix2pix against junyanz's code (tests/references/pix2pix_reference.py): parameter counts, networks and
initialisation from one seed, and optimize_parameters step for step."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from references.pix2pix_reference import Pix2PixModel, define_networks

from facegan_cli.core.device import Precision
from facegan_cli.models import pix2pix
from facegan_cli.models.registry import count_parameters, resolve_config
from facegan_cli.train.pix2pix_trainer import Pix2PixTrainer
from facegan_cli.train.trainer import TrainContext
from facegan_cli.train.translation import resize_and_crop

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")


def _trainer(seed: int = 0, **overrides: object) -> Pix2PixTrainer:
    torch.manual_seed(seed)
    config = resolve_config("pix2pix", "junyanz256", {"ngf": 4, "ndf": 4, "load_size": 256, "batch": 2,
                                                      **overrides})
    config["data_resolution"] = config["load_size"]
    trainer = Pix2PixTrainer(config)
    trainer.setup(TrainContext(CPU, Precision(CPU, channels_last=False)))
    trainer.set_epoch_length(1000)
    return trainer


def test_summary_gives_junyanz_counts(cli_json) -> None:
    doc = cli_json("models", "summary", "pix2pix")
    assert (doc["generator"]["parameters"], doc["discriminator"]["parameters"]) == (54_413_955, 2_768_705)
    config = resolve_config("pix2pix", "junyanz256")
    assert count_parameters(pix2pix.build_generator({**config, "netg": "unet_128"})) == 41_828_995
    assert count_parameters(pix2pix.build_generator({**config, "netg": "resnet_9blocks"})) == 11_383_427
    # dropout and the direction do not change a count; instance norm gives the convs their biases back
    assert count_parameters(pix2pix.build_generator({**config, "dropout": False})) == 54_413_955
    assert count_parameters(pix2pix.build_discriminator({**config, "norm": "instance"})) == 2_767_809


@pytest.mark.unit
def test_networks_and_init_are_junyanz_from_the_same_seed() -> None:
    torch.manual_seed(3)
    ref = define_networks(num_downs=8, ngf=4, ndf=4)
    ours = _trainer(3)
    for name in ("G", "D"):
        mine, theirs = ours.modules[name].state_dict(), ref[name].state_dict()
        assert list(mine) == list(theirs), name
        assert all(torch.equal(mine[k], theirs[k]) for k in mine), name
    x = torch.rand(2, 3, 256, 256) * 2 - 1
    ours.modules["G"].eval(), ref["G"].eval()
    with torch.no_grad():
        assert torch.equal(ours.modules["G"](x), ref["G"](x))


@pytest.mark.parametrize(("direction", "pool_size", "gan_mode"),
                         [("AtoB", 0, "vanilla"), ("BtoA", 3, "lsgan")])
def test_steps_equal_junyanz_optimize_parameters(direction: str, pool_size: int, gan_mode: str) -> None:
    """Three steps from the same weights, batches and seeds (dropout draws, the pool's choices): every weight
    and batch-norm statistic of G and D, and every loss, equals junyanz's bit for bit."""
    ours = _trainer(direction=direction, pool_size=pool_size, gan_mode=gan_mode)
    nets = {k: copy.deepcopy(v) for k, v in ours.modules.items()}
    ref = Pix2PixModel(nets, pool_size=pool_size, direction=direction, gan_mode=gan_mode)
    data = torch.rand(3, 2, 2, 3, 256, 256, generator=torch.Generator().manual_seed(1)) * 2 - 1
    torch.manual_seed(7), random.seed(7)
    for step in range(3):
        losses = ours.train_step({"A": data[step, 0], "B": data[step, 1]}, step)
    torch.manual_seed(7), random.seed(7)
    for step in range(3):
        ref.set_input(data[step, 0], data[step, 1])
        ref.optimize_parameters()
    for name, net in nets.items():
        mine = ours.modules[name].state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(mine[key], value), f"{name}.{key}"
    for key in ("G_GAN", "G_L1", "loss_G", "D_real", "D_fake"):
        assert torch.equal(losses[key], ref.losses[key].detach()), key


@pytest.mark.unit
def test_a_pair_is_cropped_with_one_draw() -> None:
    a = torch.arange(2 * 3 * 20 * 20, dtype=torch.float32).reshape(2, 3, 20, 20) / 2400 - 1
    torch.manual_seed(0)
    cropped_a, cropped_b = resize_and_crop([a, a.clone()], 20, 16)
    assert torch.equal(cropped_a, cropped_b)
    torch.manual_seed(0)
    alone = resize_and_crop([a], 20, 16)[0]
    assert torch.equal(alone, cropped_a)  # the same draw a single stream makes


@pytest.mark.unit
def test_translator_declares_one_way_conditional_and_stochastic(tmp_path) -> None:
    from facegan_cli.core.errors import UsageProblem

    config = resolve_config("pix2pix", "junyanz256", {"ngf": 4, "ndf": 4, "direction": "BtoA"})
    nets = {"G": pix2pix.build_generator(config).eval(), "D": pix2pix.build_discriminator(config).eval()}
    model = pix2pix.Pix2PixTranslator(nets, "pix2pix", config, 0, tmp_path, CPU)
    assert model.directions == ("b2a",) and not model.reconstructs and model.conditional_d
    assert model.check_direction(None) == "b2a"
    with pytest.raises(UsageProblem, match="translates only b2a"):
        model.check_direction("a2b")
    x = torch.rand(2, 3, 256, 256) * 2 - 1
    assert torch.equal(model.translate(x, "b2a"), model.translate(x, "b2a"))  # eval: deterministic
    model.set_stochastic(True)
    torch.manual_seed(0)
    assert not torch.equal(model.translate(x, "b2a"), model.translate(x, "b2a"))  # dropout samples
    assert model.judged_real(x, "A", x).shape == (2,)
    # A U-Net takes multiples of 256: other sides of at least that are padded to one (apply.whole_image).
    assert model.size_multiple == 256 and model.input_size(512) == 512 and model.input_size(None) == 256
    assert model.input_size(384) == 384
    with pytest.raises(UsageProblem, match="smaller than 256"):
        model.input_size(128)


@pytest.mark.unit
def test_a_cycle_model_declares_both_ways_and_no_stochastic_mode(tmp_path) -> None:
    from facegan_cli.core.errors import UsageProblem
    from facegan_cli.models.cyclegan import CycleGANTranslator

    config = resolve_config("cycle-gan", "thesis64")
    model = CycleGANTranslator({}, "cycle-gan", config, 0, tmp_path, CPU)
    assert model.directions == ("a2b", "b2a") and model.reconstructs and not model.conditional_d
    assert model.generators == {"a2b": "G_A", "b2a": "G_B"}
    model.set_stochastic(False)
    with pytest.raises(UsageProblem, match="no stochastic test mode"):
        model.set_stochastic(True)
