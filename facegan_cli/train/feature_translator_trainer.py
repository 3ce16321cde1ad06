"""Latent Features Transfer's translators trained on the generic loop (`facegan train feature-translator`).

Paired data arrives as two image streams, A and B, where B follows A's order (Images(order_of="A")): row i
of both is one pair (a photo and its painting). `--direction a2b` learns photo features -> painting
features (source A, target B), `b2a` the reverse; the thesis trains one model per direction.

Every step: the frozen VGG19 (features.vgg19, average pooling) gives z(x) of the source batch and z(y) of the
target batch; the translators map z(x) to T(z(x)); the loss is seed 004's L = alpha L_style + beta L_content
between T(z(x)) and z(y) (transfer.lft), averaged over the batch. The optimiser is Adam (lr 1e-3, preset
adam64, DEFAULT) or the thesis's plain SGD at lr 2 (thesis64); the rate is constant for `n_epochs` and falls
linearly to 0 over `n_epochs_decay` (junyanz's rule, by epoch: 500 + 100 in the thesis), recomputed from
the step so that a resume is exact. The translator module also folds every batch into its running mean
images of both domains (synthesis may start from them).

Data (`--data ROOT`): `facegan prepare pairs` output (junyanz's layout, trainA/ trainB/ testA/ testB/ with
the same file names in A and B of a split), or `facegan prepare synthetic --style painting` output (trainA/
with its true paintings under truth/trainA/); or two sources with --data-a/--data-b whose files pair by name.
When the root has a test split (testA/ with testB/ or truth/testA/), the finished run reports how close the
held-out translated features come to the true targets' features, against the untranslated ones (--json,
RUN/heldout.json).

The sample grids synthesise images from the translated features of the first pairs (a short synthesis of
`--sample-steps` Adam steps from the source): rows of source | synthesis | true target.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from facegan_cli.core import weights as W
from facegan_cli.core.atomic import write_json
from facegan_cli.core.device import resolve_device
from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.options import Opt
from facegan_cli.core.ownership import record as record_written
from facegan_cli.core.rundir import RunDir
from facegan_cli.data.pairs import resolve_pairs
from facegan_cli.data.sources import open_image_set
from facegan_cli.models import registry
from facegan_cli.models.feature_translator import (
    FAMILY,
    build_translator,
    check_config,
    load_feature_translator,
)
from facegan_cli.models.registry import resolve_config
from facegan_cli.train.loop import TrainResult
from facegan_cli.train.spec import DOMAIN_DATA, PAIR_OPTIONS, RESUMABLE_LR, TrainPlan, TrainSpec
from facegan_cli.train.trainer import Images, Stream, TrainContext, Trainer
from facegan_cli.train.translation import lr_factor
from facegan_cli.transfer.lft import (
    extract,
    feature_distances,
    feature_taps,
    lft_loss,
    synthesize,
    trained_extractor,
)


def decay_factor(step: int, epoch_steps: int, n_epochs: int, n_epochs_decay: int) -> float:
    """junyanz's linear rule by epoch: 1 for `n_epochs` epochs, then falling to 0 over `n_epochs_decay`."""
    return max(0.0, lr_factor(step, epoch_steps, n_epochs, n_epochs_decay))


class FeatureTranslatorTrainer(Trainer):
    family = FAMILY
    generator_key = "T"
    grid_columns = 3

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.epoch_steps = 1
        self._sample: dict[str, torch.Tensor] = {}

    @property
    def value_range(self) -> tuple[float, float]:
        return (0.0, 1.0)  # VGG19 takes [0, 1] pixels

    @property
    def z_dim(self) -> int:
        return 0

    def streams(self) -> dict[str, Stream]:
        return {"A": Images(), "B": Images(order_of="A")}

    def build(self, ctx: TrainContext) -> None:
        self.vgg = trained_extractor(self.config, self.config.get("vgg_weights"), ctx.device)
        net = ctx.precision.module(build_translator(self.config))
        self.modules = {"T": net}
        self.net = net
        params = net.parameters()
        lr = float(self.config["lr"])
        self.optimizers = {"T": torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999)) if self.config["optimizer"] == "adam"
                           else torch.optim.SGD(params, lr=lr)}
        self.taps = feature_taps(self.config)

    def wrap_networks(self, wrap: Any) -> None:
        self.net = wrap(self.net)

    def set_epoch_length(self, steps: int) -> None:
        self.epoch_steps = int(steps)

    def _pair(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = batch["A"].float(), batch["B"].float()
        return (a, b) if self.config["direction"] == "a2b" else (b, a)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        opt = self.optimizers["T"]
        factor = decay_factor(step, self.epoch_steps, int(self.config["n_epochs"]), int(self.config["n_epochs_decay"]))
        for group in opt.param_groups:
            group["lr"] = float(self.config["lr"]) * factor
        source, target = self._pair(batch)
        with torch.no_grad():
            zs = extract(self.vgg, source, self.taps)
            zt = extract(self.vgg, target, self.taps)
        total, content, style = lft_loss(self.net(zs), zt, self.config)
        loss = total.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        self.modules["T"].update_means(source, target)
        return {"loss": loss.detach(), "content": content.mean().detach(), "style": style.mean().detach()}

    def set_sample_inputs(self, batch: dict[str, torch.Tensor]) -> None:
        source, target = self._pair({k: v[:4] for k, v in batch.items()})
        self._sample = {"source": source.clone(), "target": target.clone()}

    def sample(self, z: torch.Tensor) -> torch.Tensor:
        if not self._sample:
            raise FaceganError("No sample pairs were handed to the trainer.", "This is a facegan bug.")
        source, target = self._sample["source"], self._sample["target"]
        net = self.modules["T"]
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                targets = net(extract(self.vgg, source, self.taps))
            steps = int(self.config.get("sample_steps", 20))
            with torch.enable_grad():  # the synthesis differentiates w.r.t. the image, whatever the caller's mode
                made = synthesize(self.vgg, targets, self.config, source, steps, "adam", 2.0).images
        finally:
            net.train(was_training)
        return torch.stack([source, made, target], dim=1).flatten(0, 1).float()

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "value_range": [0.0, 1.0]}


# --- `facegan train feature-translator` -----------------------------------------------------------------


def configure(values: dict[str, Any]) -> TrainPlan:
    """Option values -> the translator's configuration (with the VGG19 it trains on), the pairs, the length."""
    config = resolve_config(FAMILY, values.get("preset"), registry.get_family(FAMILY).config.given(values))
    if values.get("style_layer_weights") is not None:
        try:
            weights = [float(x) for x in str(values["style_layer_weights"]).split(",")]
        except ValueError:
            raise UsageProblem(f"--style-layer-weights {values['style_layer_weights']!r} is not a list of numbers.",
                               "Write it like --style-layer-weights 0.5,1,1.5,3,4.") from None
        if not all(math.isfinite(w) and w >= 0 for w in weights):
            # A NaN or infinite weight makes the first loss NaN, which the loop would blame on the learning rate.
            raise UsageProblem(f"--style-layer-weights {values['style_layer_weights']}: every weight must be a "
                               "finite number >= 0.", "Write it like --style-layer-weights 0.5,1,1.5,3,4.")
        config["style_layer_weights"] = weights
    try:
        check_config(config)
    except ValueError as exc:  # every value it checks comes from an option
        raise UsageProblem(f"This feature-translator configuration cannot be trained: {exc}.",
                           "Change the option named.") from exc
    data, held = resolve_pairs(values)  # after the options: a wrong value is reported before any data is read
    resolved = W.resolve("vgg19", Path(values["vgg_weights"]) if values.get("vgg_weights") else None)
    config["vgg_weights"] = str(resolved.path.resolve()) if values.get("vgg_weights") else None
    config["vgg_sha256"] = resolved.sha256
    config["heldout"] = held
    steps, epochs = values.get("steps"), values.get("epochs")
    length = {} if steps or epochs else {"epochs": float(config["n_epochs"]) + float(config["n_epochs_decay"])}
    return TrainPlan(config, data, length)


def report(result: TrainResult, device: str) -> dict[str, Any]:
    """Held-out pairs: translated vs untranslated features against the true targets' (RUN/heldout.json)."""
    config = RunDir.open(result.run_dir, lock=False).config()["model"]
    held = config.get("heldout")
    if not held:
        return {}
    torch_device = resolve_device(device)
    model = load_feature_translator(result.run_dir, torch_device)
    extractor = trained_extractor(config, config.get("vgg_weights"), torch_device)
    side = int(config["resolution"])
    pictures = {k: torch.from_numpy(open_image_set(path, resolution=side).load_array()).permute(0, 3, 1, 2)
                .to(torch_device).float() / 255.0 for k, path in held.items()}
    source, target = (pictures["A"], pictures["B"]) if config["direction"] == "a2b" else (pictures["B"], pictures["A"])
    distances = feature_distances(extractor, model.module, config, source, target)
    heldout = {"A": held["A"], "B": held["B"], "direction": config["direction"], **distances}
    write_json(result.run_dir / "heldout.json", heldout)
    record_written(result.run_dir, written=[result.run_dir / "heldout.json"])  # --force may replace it with the run
    rows = [[kind, f"{heldout[kind]['loss']:.4g}", f"{heldout[kind]['content']:.4g}", f"{heldout[kind]['style']:.4g}"]
            for kind in ("translated", "untranslated")]
    return {"heldout": heldout, "tables": [{
        "title": f"held-out features vs the true targets' ({heldout['pairs']} pairs, mean per pair)",
        "columns": ["features", "L", "L_content", "sum a_l E_l"], "rows": rows,
    }]}


OPTIONS = (
    *PAIR_OPTIONS,
    Opt("style_layer_weights", ("--style-layer-weights",), str, None,
        "a_l of conv1_1..conv5_1, comma-separated (0.5,1,1.5,3,4)."),
)  # and the options of models.feature_translator.FeatureTranslatorConfig's fields

TRAINING = TrainSpec(
    summary="Train Latent Features Transfer's per-feature translators on paired images (seed 004).\n\n"
    "VGG19 features (average pooling, post-ReLU) of the source image, content conv3_2 and style conv1_1..conv5_1, "
    "go through one translator each (three convolutions, each followed by an InstanceNorm, LeakyReLU after the first two); the loss to "
    "the paired target's features is alpha * sum a_l E_l + beta * 1/2 sum (F - P)^2 with the thesis's E_l, "
    "a = 0.5,1,1.5,3,4, alpha/beta = 1e-5. Presets: adam64 (Adam 1e-3, DEFAULT) and thesis64 (SGD at lr 2, the "
    "thesis's rate, which diverges with this loss within a few steps: kept to reproduce it, the NaN stop ends "
    "such a run); 64x64, batch 8, 500 epochs then 100 of linear decay. With a test split in --data, the "
    "finished run reports held-out translated vs untranslated feature losses. Ctrl-C saves; --resume continues "
    "exactly. Use the result with `facegan transfer features --ckpt RUN INPUT... --out OUT`.",
    example="facegan train feature-translator --data pairs/ --direction a2b --out runs/lft-a2b",
    options=OPTIONS,
    configure=configure,
    trainer=FeatureTranslatorTrainer,
    data_options=DOMAIN_DATA,
    data_root_option="data",
    loop_defaults={"log_every": 50, "ckpt_every": 1000, "sample_every": 2000, "keep": 2, "mirror": False,
                   "tensorboard": None},
    loop_help={"steps": "(default: --n-epochs + --n-epochs-decay epochs)", "mirror": "Pairs are flipped together."},
    resumable=RESUMABLE_LR,
    report=report,
    tiny={"translator": "dense", "resolution": 32, "batch": 4, "sample_steps": 1},
)
