"""It learns: CycleGAN trained on the synthetic photo and painting domains on the CPU translates held-out
faces close to their true translations, both ways (slow).

`prepare synthetic --style painting`: 1000 faces at 32x32, 450 photos (trainA) and 450 paintings of other
faces (trainB), 50 + 50 held-out identities (testA, testB) with their true translations (truth/). The
baseline (junyanz256's losses, pools, optimisers, init and deconv generator; 6 residual blocks, the
paper's choice below 128 px) and thesis64 (nearest resize-convolution, reflection padding, annealed D-input
noise, TV loss) train for 3000 steps of batch 1, narrowed to 32 filters so that each takes minutes on one
CPU thread; load = crop = 32 (no jitter at this size) and junyanz's linear decay over epochs 4-7.

On the held-out faces, each direction's translation must be far closer to the true translation (L1 in
[-1, 1] units) than the untranslated input is: below 0.7 times the input's L1.

Measured (`pytest tests/train/test_cyclegan_learns.py -m slow`, 2-core CPU shared with other work, one torch
thread: about 20 minutes for both), held-out L1 of the translation vs of the untranslated input, PSNR in dB:
  junyanz256  a2b 0.132 vs 0.313 (21.6 vs 13.9 dB)   b2a 0.182 vs 0.311 (18.8 vs 14.0 dB)
  thesis64    a2b 0.120 vs 0.313 (22.5 vs 13.9 dB)   b2a 0.157 vs 0.311 (20.3 vs 14.0 dB)
(reconstruction L1 0.19 / 0.13 and 0.16 / 0.10; adversarial accuracy 0.90 / 0.98 and 0.88 / 0.76). At 1000
steps translations were not yet better than the input (L1 0.17-0.26); at 1500 they were (0.14-0.22).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import invoke_cli

from facegan_cli.evaluation.translation_scores import TranslationEvaluation
from facegan_cli.metrics.run import Settings
from facegan_cli.prepare.synthetic import write_synthetic

STEPS = 3000
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def domains(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("learn") / "photo2painting"
    write_synthetic(out, n=1000, size=32, style="painting", workers=2)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["junyanz256", "thesis64"])
def test_cyclegan_translates_held_out_faces(preset: str, domains: Path, tmp_path: Path) -> None:
    run = tmp_path / preset
    result = invoke_cli([str(a) for a in (
        "train", "cycle-gan", "--data", domains, "--out", run, "--preset", preset, "--resolution", 32,
        "--load-size", 32, "--n-blocks", 6, "--ngf", 32, "--ndf", 32, "--steps", STEPS, "--n-epochs", 4,
        "--n-epochs-decay", 3, "--log-every", 100, "--ckpt-every", 1000, "--sample-every", 1000, "--device", "cpu",
        "--no-tensorboard", "--json", "--quiet")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["step"] == STEPS
    doc = TranslationEvaluation(Settings(device="cpu"), data=domains, inception=False).run(run)
    report = {d: {k: round(v, 4) for k, v in r["pairs"].items()} | {"reconstruction_l1": round(r["reconstruction_l1"], 4),
              "adversarial_accuracy": round(r["adversarial_accuracy"], 3)} for d, r in doc["directions"].items()}
    print(preset, json.dumps(report))
    for direction, r in doc["directions"].items():
        pairs = r["pairs"]
        assert pairs["n"] == 50
        assert pairs["l1"] < 0.7 * pairs["input_l1"], (direction, pairs)
        assert pairs["psnr"] > pairs["input_psnr"], (direction, pairs)
