"""StarGAN, CCA-GAN and StarGAN+SAGAN networks: exact sizes (specs/ccagan.md) and the attention maths."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from facegan_cli.models.attention import CrossChannelAttention, SelfAttention
from facegan_cli.models.registry import build_discriminator, build_generator, count_parameters, resolve_config
from facegan_cli.models.stargan import StarDiscriminator, StarGenerator, attention_modules

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.unit
@pytest.mark.parametrize("family", ["stargan", "ccagan", "stargan-sagan"])
def test_default_presets_are_128_with_5_attributes(family: str) -> None:
    """The configuration of the reference counts (specs/ccagan.md), which the family declares and the family
    contract checks."""
    config = resolve_config(family, None)
    assert config["resolution"] == 128 and len(config["attrs"]) == 5


def test_cca_placements() -> None:
    # all: input conv, 2 downs, 12 residual convs, 2 transposed convs, output conv = 18 in G, 1 in D.
    counts = {}
    for placement in ("all", "encoder", "none"):
        config = resolve_config("ccagan", None, {"cca_placement": placement})
        G, D = build_generator("ccagan", config), build_discriminator("ccagan", config)
        counts[placement] = (len(attention_modules(G)), len(attention_modules(D)))
        channels = [m.channels for m in attention_modules(G)]
        if placement == "all":
            assert channels == [8, 64, 128] + [256] * 12 + [256, 128, 64]
    assert counts == {"all": (18, 1), "encoder": (3, 1), "none": (0, 0)}
    stargan = resolve_config("stargan", None)
    none = resolve_config("ccagan", None, {"cca_placement": "none"})
    assert count_parameters(build_generator("ccagan", none)) == count_parameters(build_generator("stargan", stargan))


def test_sagan_placement_and_shapes() -> None:
    config = resolve_config("stargan-sagan", None)
    G, D = build_generator("stargan-sagan", config), build_discriminator("stargan-sagan", config)
    g_attn, d_attn = attention_modules(G), attention_modules(D)
    assert len(g_attn) == 1 and len(d_attn) == 1
    sizes = {}
    for name, block in (("G", g_attn[0]), ("D", d_attn[0])):
        block.register_forward_hook(lambda m, i, o, name=name: sizes.__setitem__(name, tuple(o.shape[1:])))
    with torch.no_grad():
        x = torch.zeros(1, 3, 128, 128)
        G(x, torch.zeros(1, 5))
        D(x)
    assert sizes == {"G": (128, 64, 64), "D": (128, 32, 32)}  # after G's first up, after D's second conv


@pytest.mark.unit
def test_forward_shapes_small() -> None:
    torch.manual_seed(0)
    G = StarGenerator(c_dim=3, width=8, repeat=2, attention="cca", cca_placement="all")
    D = StarDiscriminator(32, c_dim=3, width=8, repeat=4, attention="cca", cca_placement="all")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    c = torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    y = G(x, c)
    assert y.shape == x.shape and y.abs().max() <= 1
    src, cls = D(y)
    assert src.shape == (2, 1, 2, 2) and cls.shape == (2, 3)
    # The label channels reach the output: other targets, other images.
    assert not torch.allclose(G(x, 1 - c), y)


@pytest.mark.unit
def test_discriminator_rejects_too_many_layers() -> None:
    with pytest.raises(ValueError, match="divisible"):
        StarDiscriminator(32, c_dim=5, repeat=6)


@pytest.mark.unit
def test_cca_is_identity_at_gamma_zero() -> None:
    torch.manual_seed(0)
    block = CrossChannelAttention(16)
    assert block.gamma.item() == 0.0
    x = torch.randn(2, 16, 8, 6)
    assert torch.equal(block(x), x)
    # ... and a whole CCA-GAN G at init equals the same StarGAN G with the modules taken out.
    torch.manual_seed(1)
    G = StarGenerator(c_dim=2, width=8, repeat=1, attention="cca", cca_placement="all")
    plain = StarGenerator(c_dim=2, width=8, repeat=1)
    own = G.state_dict()
    plain_keys = list(plain.state_dict())
    non_attn = [k for k in own if not _is_attention_key(G, k)]
    assert len(non_attn) == len(plain_keys)
    plain.load_state_dict({dst: own[src] for src, dst in zip(non_attn, plain_keys)})
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    torch.testing.assert_close(G(x, c), plain(x, c), rtol=0, atol=0)


def _is_attention_key(net: torch.nn.Module, key: str) -> bool:
    names = {name for name, m in net.named_modules() if isinstance(m, (CrossChannelAttention, SelfAttention))}
    return any(key.startswith(name + ".") for name in names)


@pytest.mark.unit
def test_cca_attention_is_row_by_row_over_channel_flattened_pixels() -> None:
    torch.manual_seed(0)
    block = CrossChannelAttention(24)  # Cq = 3, Cv = 12
    with torch.no_grad():
        block.gamma.fill_(0.7)
    x = torch.randn(2, 24, 5, 7)  # H = 5 rows of W = 7 pixels
    alpha = block.attention(x)
    assert alpha.shape == (2, 5, 5)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(2, 5))
    q, k, v = block.query(x), block.key(x), block.value(x)
    # q_j . k_i summed over every channel and pixel of the two rows; softmax over the key row i.
    energy = torch.einsum("bcjw,bciw->bji", q, k)
    expected_alpha = torch.softmax(energy, dim=-1)
    torch.testing.assert_close(alpha, expected_alpha)
    delta = torch.einsum("bji,bciw->bcjw", expected_alpha, v)
    expected = 0.7 * F.conv2d(delta, block.proj.weight, block.proj.bias) + x
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)
    # Explicit loop over one output row, as the paper's equation 3 reads.
    j = 3
    row = sum(expected_alpha[:, j, i, None, None] * v[:, :, i, :] for i in range(5))
    torch.testing.assert_close(delta[:, :, j, :], row, rtol=1e-5, atol=1e-5)


@pytest.mark.unit
def test_cca_channel_sizes_floor_at_one() -> None:
    block = CrossChannelAttention(3)  # D's input module: Cq = Cv = 1, 19 parameters
    assert block.query.out_channels == 1 and block.value.out_channels == 1
    assert count_parameters(block) == 19


@pytest.mark.unit
def test_sagan_block_against_direct_computation() -> None:
    torch.manual_seed(0)
    block = SelfAttention(16)  # Cq = 2, Cv = 8
    with torch.no_grad():
        block.gamma.fill_(-0.3)
    x = torch.randn(2, 16, 6, 4)
    assert all(m.bias is None for m in (block.theta, block.phi, block.g, block.proj))
    theta = torch.einsum("oc,bchw->bohw", block.theta.weight[:, :, 0, 0], x).flatten(2)  # B x Cq x 24
    phi = F.max_pool2d(torch.einsum("oc,bchw->bohw", block.phi.weight[:, :, 0, 0], x), 2).flatten(2)  # B x Cq x 6
    g = F.max_pool2d(torch.einsum("oc,bchw->bohw", block.g.weight[:, :, 0, 0], x), 2).flatten(2)  # B x Cv x 6
    attn = torch.softmax(torch.einsum("bcn,bcm->bnm", theta, phi), dim=-1)  # B x 24 x 6
    torch.testing.assert_close(block.attention(x), attn)
    out = torch.einsum("bnm,bcm->bcn", attn, g).reshape(2, 8, 6, 4)
    expected = -0.3 * torch.einsum("oc,bchw->bohw", block.proj.weight[:, :, 0, 0], out) + x
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)
    block.gamma.data.zero_()
    assert torch.equal(block(x), x)


@pytest.mark.unit
def test_channels_last_gives_the_same_output() -> None:
    torch.manual_seed(0)
    G = StarGenerator(c_dim=2, width=8, repeat=1, attention="cca", cca_placement="all")
    for m in attention_modules(G):
        m.gamma.data.fill_(0.5)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    ref = G(x, c)
    G_cl = G.to(memory_format=torch.channels_last)
    out = G_cl(x.contiguous(memory_format=torch.channels_last), c)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_models_list_cli(cli_json) -> None:  # type: ignore[no-untyped-def]
    listed = {f["family"] for f in cli_json("models", "list")["families"]}
    assert {"stargan", "ccagan", "stargan-sagan"} <= listed
