"""`facegan metrics report`, the metric registry, generator-sample caching, stdin inputs and SWD levels.

The report's values must be its single commands' to the last digit, with one Inception pass per input
(counted by instrumenting the extractor); a second report, or a second metric on the same checkpoint, is
served by the feature cache (no pass at all). Tiny sets (8 images, 8 samples) keep it to seconds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import invoke_cli
from metrics_helpers import (  # noqa: F401
    MetricsWorld,
    make_generator,
    metrics_args,
    run_cli,
    run_json,
    world,
)

from facegan_cli.features.inception import InceptionExtractor
from facegan_cli.metrics import registry

PACKAGE = Path(__file__).resolve().parents[2] / "facegan_cli"


@pytest.fixture
def fresh(world: MetricsWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MetricsWorld:  # noqa: F811
    monkeypatch.setenv("TORCH_HOME", str(world.torch_home))
    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path / "home"))
    return world


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the Inception extractor's passes (one call of `features` per input featurised)."""
    calls: list[int] = []
    original = InceptionExtractor.features

    def counted(self: InceptionExtractor, batches: Any, taps: Any) -> Any:
        calls.append(1)
        return original(self, batches, taps)

    monkeypatch.setattr(InceptionExtractor, "features", counted)
    yield calls


@pytest.fixture(scope="module")
def generator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_generator(tmp_path_factory.mktemp("gen") / "run")


def test_report_of_fid_and_kid_in_one_pass_per_input_then_from_the_cache(
    fresh: MetricsWorld, generator: Path, passes: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cheap form of the next test (the first Inception block only, --dims 64), in the default suite."""
    common = ["--ckpt", generator, "--n", 8, "--dims", 64, *metrics_args(fresh)]
    fid = run_json("metrics", "fid", fresh.set_a, "--no-cache", *common)
    kid = run_json("metrics", "kid", fresh.set_a, "--no-cache", *common)
    assert len(passes) == 4
    report = run_json("metrics", "report", fresh.set_a, "--metrics", "kid,fid", *common)
    assert len(passes) == 6 and list(report["results"]) == ["kid", "fid"]
    assert report["results"]["fid"]["values"] == fid["values"] and report["results"]["kid"]["values"] == kid["values"]
    assert report["values"] == {"kid.kid_mean": kid["value"], "kid.kid_std": kid["std"], "fid.fid": fid["value"]}
    # The generator's samples were cached like the real set: a second metric on the checkpoint needs no pass.
    again = run_json("metrics", "fid", fresh.set_a, *common)
    assert len(passes) == 6 and again["values"] == fid["values"] and [i["cached"] for i in again["inputs"]] == [True] * 2


@pytest.mark.slow
def test_report_equals_the_single_commands_in_one_pass_per_input(
    fresh: MetricsWorld, generator: Path, passes: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = ["--ckpt", generator, "--n", 8, *metrics_args(fresh)]
    # The four single commands, featurising for themselves (is reads another layer: a third pass).
    singles = {
        "fid": run_json("metrics", "fid", fresh.set_a, *common),
        "kid": run_json("metrics", "kid", fresh.set_a, *common),
        "is": run_json("metrics", "is", "--splits", 4, *common),
        "pr": run_json("metrics", "pr", fresh.set_a, *common),
    }
    assert len(passes) == 3
    # The report, with a feature cache of its own: one pass per input for the four metrics, the same numbers.
    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path / "report-home"))
    report = run_json("metrics", "report", fresh.set_a, "--metrics", "fid,kid,is,pr", "--splits", 4, *common)
    assert len(passes) == 3 + 2
    assert report["metrics"] == ["fid", "kid", "is", "pr"] and report["feature_passes"] == {
        str(fresh.set_a): 1, str(generator / "checkpoints" / "ckpt-000000003.safetensors"): 1}
    for name, single in singles.items():
        assert report["results"][name]["values"] == single["values"], name
        assert {f"{name}.{k}": v for k, v in single["values"].items()}.items() <= report["values"].items()
    # A second report, and another metric of the same checkpoint, cost no Inception pass: the real set and
    # the samples (keyed by checkpoint SHA-256, seed and count) come from the feature cache.
    again = run_json("metrics", "report", fresh.set_a, "--metrics", "fid,kid,is,pr", "--splits", 4, *common)
    is_alone = run_json("metrics", "is", "--splits", 4, *common)
    assert len(passes) == 5 and again["values"] == report["values"] and again["feature_passes"] == {}
    assert all(item["cached"] for item in again["results"]["fid"]["inputs"])
    assert is_alone["values"] == singles["is"]["values"] and is_alone["inputs"][0]["cached"]


def test_report_table_and_bad_metric_lists(fresh: MetricsWorld) -> None:
    shown = run_cli("metrics", "report", fresh.set_a, fresh.set_b, "--metrics", "fid", "--dims", 64,
                    *metrics_args(fresh))
    assert shown.exit_code == 0, shown.output
    assert "report (pytorch-fid)" in shown.stdout and "fid" in shown.stdout and "Inception pass" in shown.stdout
    unknown = run_cli("metrics", "report", fresh.set_a, fresh.set_b, "--metrics", "fid,ssim", *metrics_args(fresh))
    assert unknown.exit_code == 2 and "ssim" in unknown.output
    one = run_cli("metrics", "report", fresh.set_a, "--metrics", "fid", *metrics_args(fresh))
    assert one.exit_code == 1 and "compares 2 input(s) but got 1" in one.output and "Traceback" not in one.output


def test_report_with_swd_and_msssim_equals_their_commands(fresh: MetricsWorld) -> None:
    both, reading = (fresh.set_a, fresh.set_b), ("--device", "cpu", "--workers", 1)
    report = run_json("metrics", "report", *both, "--metrics", "swd,msssim", "--pairs", 6, *metrics_args(fresh))
    swd = run_json("metrics", "swd", *both, "--n", 50_000, *reading)
    msssim = run_json("metrics", "msssim", fresh.set_b, "--pairs", 6, *reading)
    assert report["results"]["swd"]["values"] == swd["values"]
    assert report["results"]["msssim"]["values"] == msssim["values"]  # one-input metrics score the last input
    assert report["feature_passes"] == {}  # pixels only: the Inception network never ran


def test_stdin_list_as_a_metric_input(fresh: MetricsWorld) -> None:
    listed = "".join(f"{p}\n" for p in sorted(fresh.set_a.glob("*.png")))
    piped = invoke_cli(["metrics", "fid", "-", fresh.set_b, "--dims", 64, *metrics_args(fresh), "--json", "--quiet"],
                       input=listed)
    assert piped.exit_code == 0, piped.output
    doc = json.loads(piped.stdout)
    folder = run_json("metrics", "fid", fresh.set_a, fresh.set_b, "--dims", 64, *metrics_args(fresh))
    assert doc["inputs"][0]["kind"] == "list" and doc["inputs"][0]["path"] == "-" and doc["n1"] == 8
    assert doc["value"] == pytest.approx(folder["value"], rel=1e-9)
    empty = invoke_cli(["metrics", "fid", "-", fresh.set_b, *metrics_args(fresh)], input="")
    assert empty.exit_code == 1 and "read no paths from stdin" in empty.output
    missing = invoke_cli(["metrics", "fid", "-", fresh.set_b, *metrics_args(fresh)], input="/nonexistent/x.png\n")
    assert missing.exit_code == 1 and "/nonexistent/x.png" in missing.output and "Traceback" not in missing.output


def test_swd_at_a_level_of_a_levels_dataset(
    fresh: MetricsWorld, generator: Path, prepare_synthetic: Callable[..., Path]
) -> None:
    data = prepare_synthetic("celeba-progan", size=64, levels=True, crop="progan")  # 64, 32, 16, 8, 4
    # The 32x32 generator against the 64x64 dataset: scored at its own resolution, on the level of that size.
    reading = ("--device", "cpu", "--workers", 1)
    auto = run_json("metrics", "swd", data, "--ckpt", generator, "--n", 8, *reading)
    explicit = run_json("metrics", "swd", data, "--ckpt", generator, "--n", 8, "--resolution", 32, *reading)
    assert auto["resolution"] == 32 and auto["levels"] == [32, 16] and auto["values"] == explicit["values"]
    assert auto["inputs"][0]["resolution"] == 32 and auto["inputs"][1]["kind"] == "generator"
    # Any level of the dataset, on both sides.
    level16 = run_json("metrics", "swd", data, data, "--n", 8, "--resolution", 16, *reading)
    assert level16["levels"] == [16] and [i["resolution"] for i in level16["inputs"]] == [16, 16]
    top = run_json("metrics", "swd", data, data, "--n", 8, *reading)
    assert top["levels"] == [64, 32, 16] and top["values"]["swd_16"] != level16["values"]["swd_16"]
    wrong = run_cli("metrics", "swd", data, "--ckpt", generator, "--n", 8, "--resolution", 16, *reading)
    assert wrong.exit_code == 1 and "--resolution 32" in wrong.output
    absent = run_cli("metrics", "swd", data, data, "--resolution", 24, *reading)
    assert absent.exit_code == 1 and "no 24x24 images" in absent.output


@pytest.mark.unit
def test_registry_names_and_one_call_site_per_estimator() -> None:
    from facegan_cli.metrics.run import REPORT_PARTS
    from facegan_cli.metrics.settings import METRIC_NAMES

    assert tuple(registry.METRICS) == METRIC_NAMES  # what the CLI lists without importing the registry (torch)
    assert set(registry.TRAINING_METRICS) == {"fid", "kid", "is", "pr", "swd"}
    assert set(REPORT_PARTS) == set(registry.METRICS)  # `metrics report` computes every registered metric
    assert registry.parse_names(" FID, kid,fid ") == ("fid", "kid")
    with pytest.raises(Exception, match="ssim"):
        registry.parse_names("fid,ssim")
    assert registry.inception_taps(["fid", "kid", "is", "pr", "swd"], registry.Options()) == ["2048", "logits_unbiased"]
    # The Frechet distance and the KID estimator are called from one place each (the registry).
    for function in ("frechet_distance", "kernel_inception_distance"):
        calls = [(path.relative_to(PACKAGE).as_posix(), line) for path in PACKAGE.rglob("*.py")
                 for line in path.read_text().splitlines()
                 if re.search(rf"(?<!def ){function}\(", line)]
        assert [path for path, _ in calls] == ["metrics/registry.py"], calls


@pytest.mark.unit
def test_generated_samples_fingerprint_keys(tmp_path: Path) -> None:
    import torch

    from facegan_cli.models.generated_sources import checkpoint_source

    run = make_generator(tmp_path / "run")
    cpu = torch.device("cpu")
    base = checkpoint_source(run, cpu, n=8, seed=0).fingerprint
    assert base is not None and base == checkpoint_source(run, cpu, n=8, seed=0).fingerprint
    assert base != checkpoint_source(run, cpu, n=9, seed=0).fingerprint
    assert base != checkpoint_source(run, cpu, n=8, seed=1).fingerprint
    other = make_generator(tmp_path / "other", seed=2)  # other weights
    assert checkpoint_source(other, cpu, n=8, seed=0).fingerprint not in (None, base)
    assert np.isscalar(len(base))
