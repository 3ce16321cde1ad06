"""The style-transfer presets' losses equal transcriptions of their references on the same images and the
same (random-initialised, torchvision-format) VGG19, to 1e-5 relative; the spec's conversion factors hold.

References (tests/references/nst_reference.py): the PyTorch tutorial's gram_matrix / StyleLoss /
ContentLoss inside its own model (torchvision's `features` renamed, losses inserted after the convs),
Gatys's GramMatrix / GramMSELoss with his 1e3/n^2 weights on the r-layers, and the thesis's E_l and
1/2-sum content loss (float64).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from references import nst_reference as ref
from transfer_helpers import faces, style, vgg_file_fixture  # noqa: F401 (fixture)

from facegan_cli.features.vgg19 import IMAGENET_MEAN, IMAGENET_STD, TAP_CHANNELS, TAP_INDEX, VGG19Extractor
from facegan_cli.transfer.nst import build_objective, resolve_settings
from facegan_cli.transfer.style_losses import content_error, content_factor, gram, style_error, style_factor

SIDE = 32
RTOL = 1e-5


@pytest.fixture(scope="module")
def pictures(celebahq_sample: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two real faces, a real style image of another aspect (mosaic, 470x391 -> 38x32) and a point away from
    the content (the faces plus a little noise) where the losses are measured."""
    content = faces(celebahq_sample, 2, SIDE)
    painting = torch.nn.functional.interpolate(style("mosaic.jpg", SIDE), size=(SIDE, 38), mode="bilinear",
                                               antialias=True, align_corners=False)
    noise = torch.randn(content.shape, generator=torch.Generator().manual_seed(0)) * 0.1
    return content, painting, (content + noise).clamp(0, 1)


def _torchvision_features(vgg_file: Path, pool: str) -> torch.nn.Sequential:
    state = torch.load(vgg_file, weights_only=True)
    with torch.device("meta"):  # no random initialisation of the 143M parameters (the classifier's too)
        net = torchvision.models.vgg19(weights=None).features
    net.load_state_dict({k[len("features."):]: v for k, v in state.items()}, assign=True)
    if pool == "avg":
        for i, layer in enumerate(net):
            if isinstance(layer, torch.nn.MaxPool2d):
                net[i] = torch.nn.AvgPool2d(2, 2)
    return net.eval().requires_grad_(False)


def _taps(cnn: torch.nn.Sequential, x: torch.Tensor, names: list[str]) -> list[torch.Tensor]:
    """The reference network's maps at `names` (torchvision indices), in one pass of ImageNet-normalised x."""
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    found: dict[int, torch.Tensor] = {}
    wanted = {TAP_INDEX[name] for name in names}
    for index, layer in enumerate(cnn[: max(wanted) + 1]):
        x = layer(x)
        if index in wanted:
            found[index] = x
    return [found[TAP_INDEX[name]] for name in names]


def _close(ours: float, theirs: float) -> None:
    assert ours == pytest.approx(theirs, rel=RTOL), (ours, theirs)


def test_tutorial_preset_equals_the_tutorial(vgg_file: Path, pictures) -> None:
    content, painting, image = pictures
    painting = painting[..., 3 : 3 + SIDE]  # the tutorial's model runs the style image through its content loss
    settings = resolve_settings("tutorial")
    objective, _ = build_objective(VGG19Extractor(vgg_file, pool=settings.pool), settings, content, [painting])
    terms = objective.measure(image)
    cnn = _torchvision_features(vgg_file, "max")
    for i in range(content.shape[0]):  # the tutorial transfers one image at a time
        model, style_losses, content_losses = ref.tutorial_model(cnn, IMAGENET_MEAN, IMAGENET_STD, painting,
                                                                 content[i : i + 1])
        with torch.no_grad():
            style_score, content_score = ref.tutorial_scores(model, style_losses, content_losses, image[i : i + 1])
        _close(float(terms.content[i]), float(content_score))
        record = terms.record(i)
        _close(record["style_total"], float(style_score))
        for layer, loss in zip(settings.style_layers, style_losses, strict=True):
            _close(record["style"][layer], 1e6 * float(loss.loss))
        _close(record["total"], float(style_score + content_score))


def test_gatys_preset_equals_gatys_notebook_losses(vgg_file: Path, pictures) -> None:
    content, painting, image = pictures
    settings = resolve_settings("gatys")
    objective, _ = build_objective(VGG19Extractor(vgg_file, pool=settings.pool), settings, content, [painting])
    terms = objective.measure(image)
    cnn = _torchvision_features(vgg_file, "max")  # the notebook's VGG() pools by max unless told otherwise

    def r_layers(x: torch.Tensor, names: list[str]) -> list[torch.Tensor]:
        return _taps(cnn, x, names)

    style_names = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    with torch.no_grad():
        style_targets = [ref.GatysGramMatrix()(a) for a in r_layers(painting, style_names)]
        for i in range(content.shape[0]):
            content_targets = r_layers(content[i : i + 1], ["relu4_2"])
            losses = ref.gatys_layer_losses(r_layers(image[i : i + 1], style_names), r_layers(image[i : i + 1],
                                            ["relu4_2"]), style_targets, content_targets)
            record = terms.record(i)
            for layer, loss in zip(settings.style_layers, losses[:5], strict=True):
                _close(record["style"][layer], float(loss))
            _close(record["content"], float(losses[5]))
            _close(record["total"], float(sum(losses)))


def test_thesis_preset_equals_the_thesis_E_l(vgg_file: Path, pictures) -> None:
    content, painting, image = pictures
    square = painting[..., :SIDE]  # the thesis's E_l compares maps of the same size
    settings = resolve_settings("thesis")
    assert settings.content_layers == ("conv3_2",) and settings.pool == "avg" and settings.act == "post_relu"
    extractor = VGG19Extractor(vgg_file, pool="avg")
    objective, _ = build_objective(extractor, settings, content, [square])
    terms = objective.measure(image)
    cnn = _torchvision_features(vgg_file, "avg")

    names = ["relu" + layer[4:] for layer in settings.style_layers]
    with torch.no_grad():
        style_maps = _taps(cnn, square, names)
        for i in range(content.shape[0]):
            record = terms.record(i)
            image_maps = _taps(cnn, image[i : i + 1], [*names, "relu3_2"])
            for layer, f, s in zip(settings.style_layers, image_maps, style_maps, strict=False):
                _close(record["style"][layer], settings.style_weight * 0.2 * float(ref.thesis_E(f, s)))
            c = ref.thesis_content(image_maps[-1], _taps(cnn, content[i : i + 1], ["relu3_2"])[0])
            _close(record["content"], float(c))


def test_conversion_factors_between_the_conventions(vgg_file: Path, pictures) -> None:
    content, painting, image = pictures
    extractor = VGG19Extractor(vgg_file, pool="avg")
    with torch.no_grad():
        a = extractor(image, ["relu2_1", "relu4_1"])
        b = extractor(content, ["relu2_1", "relu4_1"])
    for tap in ("relu2_1", "relu4_1"):
        c, hw = TAP_CHANNELS[tap], a[tap].shape[-1] * a[tap].shape[-2]
        per_norm = {norm: style_error(gram(a[tap], norm), gram(b[tap], norm), norm, hw) for norm in ref_norms()}
        # E_tutorial = (4 / C^2) E_thesis; E_gatys = 4 E_thesis (spec section 2).
        torch.testing.assert_close(per_norm["tutorial"], 4 / c**2 * per_norm["thesis"], rtol=RTOL, atol=0)
        torch.testing.assert_close(per_norm["gatys"], 4 * per_norm["thesis"], rtol=RTOL, atol=0)
        for norm in ref_norms():
            torch.testing.assert_close(per_norm[norm], style_factor(norm, c) * per_norm["thesis"], rtol=RTOL, atol=0)
        # MSE content = (2 / (C H W)) * 1/2 sum.
        mse, half = content_error(a[tap], b[tap], "tutorial"), content_error(a[tap], b[tap], "thesis")
        torch.testing.assert_close(mse, 2 / a[tap][0].numel() * half, rtol=RTOL, atol=0)
        torch.testing.assert_close(mse, content_factor("gatys", a[tap][0].numel()) * half, rtol=RTOL, atol=0)
        assert torch.equal(mse, content_error(a[tap], b[tap], "gatys"))


def ref_norms() -> tuple[str, ...]:
    return ("tutorial", "gatys", "thesis")


def test_batched_losses_are_per_image(vgg_file: Path, pictures) -> None:
    """Images optimised together do not mix: each image's terms equal its terms alone."""
    content, painting, image = pictures
    settings = resolve_settings("tutorial")
    extractor = VGG19Extractor(vgg_file)
    together = build_objective(extractor, settings, content, [painting])[0].measure(image)
    alone = build_objective(extractor, settings, content[1:], [painting])[0].measure(image[1:])
    assert together.record(1)["total"] == pytest.approx(alone.record(0)["total"], rel=RTOL)
