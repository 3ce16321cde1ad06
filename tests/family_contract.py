"""The contract every model family meets, as one function any test module can call for any registered family.

`check_family_contract(family, work)` checks, through the same commands a user runs:

(a) counts: every configuration in the family's `reference_counts` (models.registry.Reference), built as
    `facegan models summary` builds it, has the declared parameter counts; a family declaring none fails;
(b) a step: `facegan train FAMILY` with the family's tiny settings (TrainSpec.tiny) finishes, and the
    losses it logs are finite and its weights moved;
(c) resume: the tiny run (a checkpoint every step) and a copy of it cut back to its middle checkpoint, as an
    interrupted run leaves it, and continued with `--resume`, end with the same weights (torch.equal, every
    tensor of every module);
(d) loading: models.loading.load_model gives the model of the family's kind, which runs a forward pass;
(e) the kind's command (registry.KINDS): sample / edit / translate / transfer features / transfer fast / eval
    attributes exits 0 and writes its outputs;
(f) export: `facegan export` of the tiny run to TorchScript and ONNX loads back and equals the eager network
    within 1e-4 (generators, translators, editors, stylizers); a kind export does not cover is refused, exit 1.

It raises one AssertionError whose message starts with the family's name and lists every part that failed.
The tiny run's data: an image folder per data option of the TrainSpec unless `data` gives that option (a
family that needs labels, pairs, weights or another run passes them by option name); `command_args` are
extra arguments of the kind's command.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
import typer.testing
from train_helpers import write_image_folder
from typer.testing import CliRunner, Result

from facegan_cli.core.checkpoint import Checkpoint, list_checkpoints, load_checkpoint
from facegan_cli.core.options import Opt
from facegan_cli.models import registry
from facegan_cli.models.attr_classifier import LoadedClassifier
from facegan_cli.models.editing import AttributeEditor
from facegan_cli.models.fast_style import LoadedStylizer
from facegan_cli.models.feature_translator import LoadedFeatureTranslator
from facegan_cli.models.loading import LoadedGenerator, load_model
from facegan_cli.models.summary import summarize
from facegan_cli.models.translation import Translator
from facegan_cli.train.spec import TrainSpec, command_options, training_spec

DEFAULT_STEPS = 4  # the tiny run's length when its TrainSpec.tiny names none (steps families)
RUN = ["--device", "cpu", "--quiet", "--no-tensorboard", "--seed", "1", "--log-every", "1", "--sample-every", "1000",
       "--keep", "1000"]
IMAGE_SIZE = 32  # the image folders standing in for a family's data, and the kind commands' inputs


def check_family_contract(
    family: str,
    work: Path,
    data: dict[str, Any] | None = None,
    command_args: Sequence[Any] = (),
    tiny: dict[str, Any] | None = None,
) -> None:
    """Check `family` against the contract (see the module docstring); runs and data go under `work`.

    `tiny` replaces the TrainSpec's declared tiny settings (a test of a family without a declaration).
    """
    found = registry.families()
    if family not in found:
        raise AssertionError(f"{family}: not a registered family (registered: {', '.join(sorted(found))})")
    entry = found[family]
    failures: list[str] = []

    def part(name: str, check: Callable[..., Any], *args: Any) -> Any:
        try:
            return check(*args)
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
        except Exception as exc:  # a crash is a failure of the part, named with the family like the others
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
        return None

    part("reference counts", check_reference_counts, entry)
    spec = part("training", training_spec, family)
    settings = tiny if tiny is not None else (spec.tiny if spec is not None else None)
    if spec is None:
        if not entry.training:
            failures.append("training: the family names no TrainSpec (Family.training), so it cannot be trained")
    elif settings is None:
        failures.append("training: its TrainSpec declares no tiny run (TrainSpec.tiny: option values of a "
                        "seconds-long CPU run)")
    else:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("FACEGAN_HOME", str(work / "facegan-home"))  # caches of weights and features stay here
            from facegan_cli.cli import build_app  # built now: families registered by tests are included

            app = build_app()
            # Typer turns the app into its click command on every invoke (a third of a second): once is enough.
            get_command = getattr(typer.testing, "_get_command", None)
            if get_command is not None:
                command = get_command(app)
                env.setattr(typer.testing, "_get_command", lambda _app: command)
            contract = part("training step", _Run, family, entry, spec, settings, work, dict(data or {}), app)
            trained = contract is not None and part("training step", contract.train)
            if trained:
                part("resume", contract.check_resume)
                part("loading", contract.check_loading)
                part("command", contract.check_command, list(command_args))
                part("export", contract.check_export)
    if failures:
        raise AssertionError(f"{family} fails the family contract:\n- " + "\n- ".join(failures))


# --- (a) reference parameter counts --------------------------------------------------------------------------


def check_reference_counts(entry: registry.Family) -> None:
    if not entry.reference_counts:
        raise AssertionError(
            "the family declares no reference parameter counts (Family.reference_counts: the counts of its "
            "networks in at least one configuration, from its reference implementation or paper)"
        )
    wrong = []
    for name, reference in entry.reference_counts.items():
        preset = reference.preset or name
        try:
            # Counts do not depend on the device; on "meta" no weights are allocated or initialised (seconds saved
            # on the 50M-parameter networks). A builder that needs real tensors is built on the CPU instead.
            with torch.device("meta"):
                doc = summarize(entry.name, preset, reference.options)
        except Exception:
            doc = summarize(entry.name, preset, reference.options)
        for network, count in reference.counts.items():
            if network not in doc:
                built = [k for k, v in doc.items() if isinstance(v, dict) and "parameters" in v]
                wrong.append(f"{name}: no network {network!r} (it builds {', '.join(built)})")
            elif doc[network]["parameters"] != count:
                wrong.append(f"{name}: {network} has {doc[network]['parameters']:,} parameters, the reference "
                             f"{count:,} ({reference.source or 'source not given'})")
    assert not wrong, "; ".join(wrong)


# --- (b) to (e): the tiny run and what uses it -----------------------------------------------------------------


def option_args(options: Sequence[Opt], values: dict[str, Any]) -> list[str]:
    """Command-line arguments for option values by Opt.name (a switch: its on or off form)."""
    by_name = {opt.name: opt for opt in options}
    args: list[str] = []
    for name, value in values.items():
        opt = by_name.get(name)
        if opt is None:
            raise AssertionError(f"tiny setting {name!r} is no option of the command (check TrainSpec.tiny)")
        flag = max(opt.flags, key=len)
        if opt.type is bool:
            on, _, off = flag.partition("/")
            if not off:
                off = "--no-" + on.removeprefix("--")
            args.append(on if value else off)
        else:
            args += [flag.split("/")[0], str(value)]
    return args


def _weights(ckpt: Checkpoint) -> dict[str, torch.Tensor]:
    return {f"{module}.{key}": tensor for module, state in ckpt.modules.items() for key, tensor in state.items()}


class _Run:
    """The tiny runs of one family (straight, and split + resumed) and the checks on them."""

    def __init__(self, family: str, entry: registry.Family, spec: TrainSpec, tiny: dict[str, Any], work: Path,
                 data: dict[str, Any], app: Any) -> None:
        self.family, self.entry, self.spec, self.work, self.app = family, entry, spec, work, app
        self.runner = CliRunner()
        settings = dict(tiny)
        self.length = spec.length  # "steps" or "kimg"
        total = settings.pop(self.length, DEFAULT_STEPS if self.length == "steps" else None)
        if total is None:
            raise AssertionError(f"its TrainSpec.tiny gives no {self.length} (the length of a phased run)")
        self.total = total
        for i, option in enumerate(spec.data_options.values()):
            if option not in data:
                data[option] = write_image_folder(work / "data" / option, n=8, size=IMAGE_SIZE, seed=10 + i)
        preset = Opt("preset", ("--preset",), str)
        own = command_options(entry, spec)
        self.args = option_args([preset, *own, *spec.loop_options()], settings) + option_args(own, data)
        self.straight, self.resumed = work / "straight", work / "resumed"

    def invoke(self, *args: Any) -> Result:
        return self.runner.invoke(self.app, [str(a) for a in args])

    def expect(self, what: str, result: Result) -> Result:
        if result.exit_code != 0:
            detail = (result.output or "")[-1500:].strip()
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                detail += f" ({type(result.exception).__name__}: {result.exception})"
            raise AssertionError(f"`facegan {what}` exited {result.exit_code}: {detail}")
        return result

    def train(self) -> bool:
        # A checkpoint in the middle for the resume check: half way (steps), every step (phased: steps unknown).
        every = max(1, self.total // 2) if self.length == "steps" else 1
        result = self.expect(f"train {self.family}", self.invoke(
            "train", self.family, *self.args, "--out", self.straight, f"--{self.length}", self.total, *RUN,
            "--ckpt-every", every, "--json"))
        doc = json.loads(result.stdout)
        assert doc["status"] == "finished", f"the tiny run ended {doc['status']!r}"
        if self.length == "steps":
            assert doc["step"] == self.total, f"the tiny run of {self.total} steps ended at step {doc['step']}"
        lines = [json.loads(line) for line in (self.straight / "metrics.jsonl").read_text().splitlines()]
        assert lines, "metrics.jsonl is empty after the tiny run (logged every step)"
        first = lines[0]
        bad = [k for k, v in first.items() if isinstance(v, float) and not math.isfinite(v)]
        assert not bad, f"the first step logged non-finite {', '.join(bad)}: {first}"
        return True

    def check_resume(self) -> None:
        kept = list_checkpoints(self.straight / "checkpoints")
        assert len(kept) >= 2, f"the tiny run wrote {len(kept)} checkpoint(s) (one per step); it needs 2 steps or more"
        middle = load_checkpoint(kept[(len(kept) - 1) // 2])
        final = load_checkpoint(self.straight)
        # The run as an interruption after the middle checkpoint leaves it: the later checkpoints never written.
        shutil.copytree(self.straight, self.resumed)
        for later in kept[(len(kept) - 1) // 2 + 1 :]:
            for file in (self.resumed / "checkpoints").glob(f"{later.stem}.*"):
                file.unlink()
        self.expect(f"train {self.family} --resume", self.invoke(
            "train", self.family, "--resume", self.resumed, "--device", "cpu", "--quiet"))
        resumed = load_checkpoint(self.resumed)
        assert resumed.step == final.step, f"the resumed run ended at step {resumed.step}, the straight one at {final.step}"
        a, b = _weights(final), _weights(resumed)
        assert a.keys() == b.keys(), f"the resumed run saved other tensors: {sorted(a.keys() ^ b.keys())[:5]}"
        differ = [k for k in a if not torch.equal(a[k], b[k])]
        assert not differ, (
            f"resumed from step {middle.step} to {final.step}, {len(differ)} of {len(a)} tensors differ from the "
            f"straight run's (not bit-exact): {', '.join(differ[:5])}"
        )
        before = _weights(middle)
        assert any(k in before and before[k].shape == a[k].shape and not torch.equal(before[k], a[k]) for k in a), (
            f"no weight changed between steps {middle.step} and {final.step}: the steps train nothing")

    def check_loading(self) -> None:
        kind = self.entry.kind
        model = load_model(self.straight, "cpu", kind=kind)
        expected = KIND_MODELS.get(kind)
        assert expected is not None, f"the contract has no model class for the kind {kind!r} (add it to KIND_MODELS)"
        assert isinstance(model, expected[0]), f"load_model gave a {type(model).__name__}, not the {kind} kind's {expected[0].__name__}"
        expected[1](model)

    def check_command(self, extra: list[Any]) -> None:
        kind = self.entry.kind
        command = KIND_COMMANDS.get(kind)
        assert command is not None, (f"the contract has no command for the kind {kind!r} (`{registry.KINDS[kind][1]}`; "
                                     "add it to KIND_COMMANDS)")
        inputs = write_image_folder(self.work / "inputs", n=2, size=IMAGE_SIZE, seed=99)
        out = self.work / "command"
        args, outputs = command(self.straight, inputs, out)
        name = registry.KINDS[kind][1].split(" --")[0].removeprefix("facegan ")
        result = self.expect(name, self.invoke(*args, *extra, "--device", "cpu", "--json", "--quiet"))
        written = outputs(json.loads(result.stdout))
        assert written, f"`facegan {name}` reported no outputs"
        missing = [str(p) for p in written if not Path(p).exists()]
        assert not missing, f"`facegan {name}` reported outputs that do not exist: {', '.join(missing)}"


    def check_export(self) -> None:
        from facegan_cli.interop.export import EXPORTABLE, TOLERANCE

        for fmt in ("torchscript", "onnx"):
            out = self.work / f"export-{fmt}"
            result = self.invoke("export", self.straight, "--format", fmt, "--out", out, "--json", "--quiet")
            if self.entry.kind not in EXPORTABLE:
                assert result.exit_code == 1 and "exports generators" in result.output, (
                    f"`facegan export` of a {self.entry.kind} exited {result.exit_code}, not 1 with the reason")
                assert not out.exists(), "a refused export left a file"
                continue
            doc = json.loads(self.expect(f"export --format {fmt}", result).stdout)
            assert out.is_file(), f"`facegan export --format {fmt}` wrote no file"
            assert doc["max_abs_diff"] <= TOLERANCE, f"the {fmt} export differs from eager by {doc['max_abs_diff']}"


# --- what each kind loads as, and its command --------------------------------------------------------------------


def _finite(t: torch.Tensor, shape: tuple[int, ...], what: str) -> None:
    assert tuple(t.shape) == shape, f"{what} has shape {tuple(t.shape)}, not {shape}"
    assert bool(torch.isfinite(t).all()), f"{what} is not finite"


def _forward_generator(model: LoadedGenerator) -> None:
    images = model.generate(torch.randn(2, model.z_dim, generator=torch.Generator().manual_seed(0)))
    _finite(images, (2, 3, model.resolution, model.resolution), "the generated batch")


def _forward_editor(model: AttributeEditor) -> None:
    x, r = torch.zeros(2, 3, model.resolution, model.resolution), model.resolution
    _finite(model.translate(x, torch.ones(2, len(model.attrs))), (2, 3, r, r), "the edited batch")
    _finite(model.predict(x), (2, len(model.attrs)), "the predicted attributes")


def _forward_translator(model: Translator) -> None:
    r = model.resolution
    _finite(model.batches(torch.zeros(2, 3, r, r), "a2b", 2), (2, 3, r, r), "the translated batch")


def _forward_classifier(model: LoadedClassifier) -> None:
    r = model.resolution
    _finite(model.logits(torch.zeros(2, 3, r, r)), (2, len(model.attrs)), "the logits")


def _forward_feature_translator(model: LoadedFeatureTranslator) -> None:
    features = {name: torch.randn(1, net.net[0].in_channels, 4, 4) for name, net in model.module.translators.items()}
    translated = model.translate(features)
    assert translated.keys() == features.keys(), "the translated features are not those given"
    for name, value in translated.items():
        _finite(value, tuple(features[name].shape), f"the translated {name}")


def _forward_stylizer(model: LoadedStylizer) -> None:
    _finite(model.stylize(torch.rand(2, 3, 16, 24) * 255), (2, 3, 16, 24), "the stylised batch")


# kind -> (the class load_model returns for it, a forward pass on it)
KIND_MODELS: dict[str, tuple[type, Callable[[Any], None]]] = {
    "generator": (LoadedGenerator, _forward_generator),
    "editor": (AttributeEditor, _forward_editor),
    "translator": (Translator, _forward_translator),
    "classifier": (LoadedClassifier, _forward_classifier),
    "feature-translator": (LoadedFeatureTranslator, _forward_feature_translator),
    "stylizer": (LoadedStylizer, _forward_stylizer),
}

Outputs = Callable[[dict[str, Any]], list[str]]
# kind -> (run, input images, output folder) -> (the command's arguments, the outputs its JSON reports)
KIND_COMMANDS: dict[str, Callable[[Path, Path, Path], tuple[list[Any], Outputs]]] = {
    "generator": lambda run, inputs, out: (
        ["sample", "--ckpt", run, "--n", 4, "--out", out / "samples.png"], lambda doc: [*doc["files"]]),
    "editor": lambda run, inputs, out: (
        ["edit", "--ckpt", run, "--input", inputs, "--out", out], lambda doc: [e["output"] for e in doc["edits"]]),
    "translator": lambda run, inputs, out: (
        ["translate", inputs, "--ckpt", run, "--out", out], lambda doc: [o["output"] for o in doc["outputs"]]),
    "feature-translator": lambda run, inputs, out: (
        ["transfer", "features", inputs, "--ckpt", run, "--out", out, "--steps", 1],
        lambda doc: [i["output"] for i in doc["images"]]),
    "stylizer": lambda run, inputs, out: (
        ["transfer", "fast", inputs, "--ckpt", run, "--out", out], lambda doc: [o["output"] for o in doc["outputs"]]),
    # The classifier judges an editor's edits: the editor, its data and the Inception file come as extra args.
    "classifier": lambda run, inputs, out: (["eval", "attributes", "--classifier", run], lambda doc: _judged(doc, run)),
}


def _judged(doc: dict[str, Any], run: Path) -> list[Path]:
    """`eval attributes` writes no files: its classifier (the run) must have judged the edits (a success rate)."""
    rates = [cell.get("success_rate") for row in doc["rows"] for cell in row["cells"].values() if cell]
    assert any(rate is not None for rate in rates), f"the classifier gave no success rate: {doc['rows']}"
    return [run]
