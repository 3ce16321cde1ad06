"""Transcriptions of the neural-style-transfer references, written from their descriptions (the code of
those projects is not copied): what facegan's `transfer style` presets and `transfer.losses` are checked
against, and what benchmarks/bench_transfer.py runs as "the tutorial's own loop".

1. The PyTorch tutorial (pytorch/tutorials, advanced_source/neural_style_tutorial.py):
   - gram_matrix(input): a batch a x b maps of c x d viewed as an (a*b) x (c*d) matrix F; F F^T divided by
     a*b*c*d (the tutorial runs with a = 1).
   - ContentLoss(target): keeps the detached target; forward(input) records F.mse_loss(input, target) in
     `.loss` and returns input unchanged (a transparent layer).
   - StyleLoss(target_feature): keeps the detached Gram matrix of the target; forward records
     F.mse_loss(gram_matrix(input), target) and returns input.
   - The model: a Normalization layer ((img - mean) / std), then the VGG19 `features` layers renamed
     conv_i / relu_i / pool_i (i counting convolutions), every ReLU replaced by an out-of-place one, a
     ContentLoss after conv_4 and a StyleLoss after conv_1..conv_5, and everything after the last loss
     layer cut off.
   - run_style_transfer(..., num_steps=300, style_weight=1e6, content_weight=1): LBFGS([input_img]) with
     its defaults; `while run[0] <= num_steps: optimizer.step(closure)` where the closure clamps the image
     to [0, 1] in place (no grad), zeroes the gradients, runs the model, sums the style losses times
     style_weight and the content losses times content_weight, back-propagates their sum, counts the call
     and returns the sum; one last clamp after the loop.
2. Gatys's notebook (leongatys/PytorchNeuralStyleTransfer, NeuralStyleTransfer.ipynb):
   - GramMatrix: b x c x h x w viewed as b x c x (h*w); bmm(F, F^T) divided by h*w.
   - GramMSELoss(input, target): nn.MSELoss()(GramMatrix()(input), target).
   - loss = sum of weights[a] * loss_fns[a](out[a], targets[a]) over the style layers r11, r21, r31, r41,
     r51 (GramMSELoss, weights 1e3 / n^2 for n in 64, 128, 256, 512, 512) and the content layer r42
     (nn.MSELoss, weight 1e0); r-layers are post-ReLU.
3. Seed 004's E_l (and Gatys et al. 2016's): G = F F^T (F: C x M^2), E_l = sum (G - S)^2 / (4 C^2 M^4);
   L_content = 1/2 sum (F - P)^2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# --- 1. the PyTorch tutorial ---------------------------------------------------------------------------


def tutorial_gram_matrix(feature_maps: torch.Tensor) -> torch.Tensor:
    a, b, c, d = feature_maps.size()
    flat = feature_maps.view(a * b, c * d)
    return torch.mm(flat, flat.t()).div(a * b * c * d)


class TutorialContentLoss(nn.Module):
    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target = target.detach()
        self.loss = torch.tensor(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(x, self.target)
        return x


class TutorialStyleLoss(nn.Module):
    def __init__(self, target_feature: torch.Tensor) -> None:
        super().__init__()
        self.target = tutorial_gram_matrix(target_feature).detach()
        self.loss = torch.tensor(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(tutorial_gram_matrix(x), self.target)
        return x


class TutorialNormalization(nn.Module):
    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return (img - self.mean.to(img.device)) / self.std.to(img.device)


TUTORIAL_CONTENT = ("conv_4",)
TUTORIAL_STYLE = ("conv_1", "conv_2", "conv_3", "conv_4", "conv_5")


def tutorial_model(
    cnn: nn.Sequential, mean: Sequence[float], std: Sequence[float], style_img: torch.Tensor,
    content_img: torch.Tensor, content_layers: Sequence[str] = TUTORIAL_CONTENT,
    style_layers: Sequence[str] = TUTORIAL_STYLE,
) -> tuple[nn.Sequential, list[TutorialStyleLoss], list[TutorialContentLoss]]:
    """The tutorial's get_style_model_and_losses: the renamed layers with loss layers inserted, cut after
    the last one."""
    model = nn.Sequential(TutorialNormalization(mean, std)).to(content_img.device)
    content_losses: list[TutorialContentLoss] = []
    style_losses: list[TutorialStyleLoss] = []
    convs = 0
    for layer in cnn.children():
        if isinstance(layer, nn.Conv2d):
            convs += 1
            name = f"conv_{convs}"
        elif isinstance(layer, nn.ReLU):
            name = f"relu_{convs}"
            layer = nn.ReLU(inplace=False)
        elif isinstance(layer, nn.MaxPool2d | nn.AvgPool2d):
            name = f"pool_{convs}"
        else:
            raise RuntimeError(f"unexpected layer {type(layer).__name__}")
        model.add_module(name, layer)
        if name in content_layers:
            loss = TutorialContentLoss(model(content_img).detach())
            model.add_module(f"content_loss_{convs}", loss)
            content_losses.append(loss)
        if name in style_layers:
            loss = TutorialStyleLoss(model(style_img).detach())
            model.add_module(f"style_loss_{convs}", loss)
            style_losses.append(loss)
    last = max(i for i, m in enumerate(model) if isinstance(m, TutorialContentLoss | TutorialStyleLoss))
    return model[: last + 1], style_losses, content_losses


def tutorial_scores(
    model: nn.Sequential, style_losses: list[TutorialStyleLoss], content_losses: list[TutorialContentLoss],
    image: torch.Tensor, style_weight: float = 1e6, content_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One evaluation as the closure computes it: (style_score, content_score), weighted."""
    model(image)
    style_score = sum((sl.loss for sl in style_losses), torch.tensor(0.0, device=image.device))
    content_score = sum((cl.loss for cl in content_losses), torch.tensor(0.0, device=image.device))
    return style_score * style_weight, content_score * content_weight


def tutorial_run(
    cnn: nn.Sequential, mean: Sequence[float], std: Sequence[float], content_img: torch.Tensor,
    style_img: torch.Tensor, input_img: torch.Tensor, num_steps: int = 300, style_weight: float = 1e6,
    content_weight: float = 1.0,
) -> tuple[torch.Tensor, int]:
    """The tutorial's run_style_transfer (one image, fp32); returns the image and the closure calls made."""
    model, style_losses, content_losses = tutorial_model(cnn, mean, std, style_img, content_img)
    input_img.requires_grad_(True)
    model.eval()
    model.requires_grad_(False)
    optimizer = torch.optim.LBFGS([input_img])
    run = [0]
    while run[0] <= num_steps:

        def closure() -> torch.Tensor:
            with torch.no_grad():
                input_img.clamp_(0, 1)
            optimizer.zero_grad()
            style_score, content_score = tutorial_scores(
                model, style_losses, content_losses, input_img, style_weight, content_weight
            )
            loss = style_score + content_score
            loss.backward()
            run[0] += 1
            return style_score + content_score

        optimizer.step(closure)  # type: ignore[arg-type]
    with torch.no_grad():
        input_img.clamp_(0, 1)
    return input_img, run[0]


# --- 2. Gatys's notebook -------------------------------------------------------------------------------


class GatysGramMatrix(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.size()
        flat = x.view(b, c, h * w)
        return torch.bmm(flat, flat.transpose(1, 2)).div_(h * w)


class GatysGramMSELoss(nn.Module):
    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.MSELoss()(GatysGramMatrix()(x), target)


GATYS_STYLE_WEIGHTS = [1e3 / n**2 for n in (64, 128, 256, 512, 512)]
GATYS_CONTENT_WEIGHTS = [1e0]


def gatys_layer_losses(
    style_out: Sequence[torch.Tensor], content_out: Sequence[torch.Tensor], style_targets: Sequence[torch.Tensor],
    content_targets: Sequence[torch.Tensor],
) -> list[torch.Tensor]:
    """weights[a] * loss_fns[a](A, targets[a]) for the style layers, then the content layer."""
    outs = [*style_out, *content_out]
    targets = [*style_targets, *content_targets]
    fns: list[nn.Module] = [GatysGramMSELoss()] * len(style_out) + [nn.MSELoss()] * len(content_out)
    weights = GATYS_STYLE_WEIGHTS[: len(style_out)] + GATYS_CONTENT_WEIGHTS * len(content_out)
    return [weights[a] * fns[a](out, targets[a]) for a, out in enumerate(outs)]


# --- 3. the thesis --------------------------------------------------------------------------------------


def thesis_E(features: torch.Tensor, style_features: torch.Tensor) -> torch.Tensor:
    """E_l of one image (1 x C x M x M maps) against a style image's maps of the same size (float64)."""
    _, c, h, w = features.shape
    f = features.double().reshape(c, h * w)
    s = style_features.double().reshape(c, h * w)
    g, a = f @ f.T, s @ s.T
    m_squared = h * w  # M^2 positions, so M^4 = (h w)^2
    return ((g - a) ** 2).sum() / (4 * c**2 * m_squared**2)


def thesis_content(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((features.double() - target.double()) ** 2).sum()
