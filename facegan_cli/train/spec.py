"""How a family is trained from the command line: its options, and the options every family shares.

A family's trainer module defines a `TrainSpec`: its own options (architecture, optimiser, data), its
defaults of the shared loop options, how option values become a model configuration and data streams
(`configure`), which options a resume may change, and an optional report after training. The registry
entry points at it ("module:attribute"); `facegan train FAMILY` is built from it, and `train_family` /
`resume_family` below are what the command calls, so a script can do the same with a dict of values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from facegan_cli.core.errors import FaceganError, UsageProblem
from facegan_cli.core.options import Opt
from facegan_cli.core.rundir import RunDir
from facegan_cli.metrics.in_training import DEFAULT_N as DEFAULT_EVAL_N
from facegan_cli.metrics.in_training import check_metrics
from facegan_cli.models import registry
from facegan_cli.train.loop import LoopSettings, ResumeChanges, TrainResult, run_training

# The options of the generic loop, declared once; a family's TrainSpec.loop_defaults sets its defaults.
LOOP_OPTIONS: tuple[Opt, ...] = (
    Opt("steps", ("--steps",), int, None, "Total optimisation steps. With --resume: train longer.", min=1),
    Opt("epochs", ("--epochs",), float, None, "Train this many epochs instead of --steps.", positive=True),
    Opt("kimg", ("--kimg",), float, None, "Length of training in thousands of images. With --resume: train longer.",
        positive=True),
    Opt("seed", ("--seed",), int, 0, "Seed of weights, noise and data order."),
    Opt("log_every", ("--log-every",), int, 50, "Steps between metrics.jsonl lines.", min=1),
    Opt("ckpt_every", ("--ckpt-every",), int, 500, "Steps between checkpoints.", min=1),
    Opt("sample_every", ("--sample-every",), int, 500, "Steps between sample grids.", min=1),
    Opt("keep", ("--keep",), int, 3, "Checkpoints kept (newest).", min=1),
    Opt("mirror", ("--mirror/--no-mirror",), bool, False, "Random horizontal flips (done on the device)."),
    Opt("amp", ("--amp/--no-amp",), bool, False, "bf16 autocast on CUDA (ignored on CPU)."),
    Opt("channels_last", ("--channels-last/--no-channels-last",), bool, True,
        "channels_last memory format (CPU and CUDA)."),
    Opt("compile", ("--compile/--no-compile",), bool, False, "torch.compile the networks."),
    Opt("tensorboard", ("--tensorboard/--no-tensorboard",), bool, None, "Log to TensorBoard (default: if installed)."),
    Opt("eval", ("--eval",), str, None,
        "Metrics computed while training on the sampling (EMA where kept) generator, on every rank: any of fid, "
        "kid, is, pr, swd, comma-separated (e.g. fid,kid or is,pr). Written to metrics.jsonl and TensorBoard; the first keeps the best generator in "
        "checkpoints/best. Generator families only.", check=check_metrics),
    Opt("eval_every", ("--eval-every",), int, None,
        "Steps between --eval evaluations (default: --ckpt-every); the last step is evaluated too.", min=1),
    Opt("eval_ref", ("--eval-ref",), Path, None,
        "The reference of --eval: a prepared dataset (every split), a folder or zip of images, or a `facegan "
        "metrics stats` .npz (FID only). Its features are computed once and cached."),
    Opt("eval_n", ("--eval-n",), int, DEFAULT_EVAL_N,
        "Samples per evaluation, the same latents every time: above the 2048 feature dimensions, so the FID is "
        "stable from one evaluation to the next (biased upwards next to published FID-50k numbers).", min=2),
    Opt("eval_weights", ("--eval-inception-weights",), Path, None,
        "FID Inception weights for --eval instead of the official pt_inception-2015-12-05-6726825d.pth."),
)
# The data option of single-stream families (a family with other streams declares its own).
DATA_OPTION = Opt("data", ("--data",), Path, None,
                  "Prepared dataset dir, image folder or zip (not needed with --resume; with it: where the same "
                  "data now is, if it moved).")
SPLIT_OPTION = Opt("split", ("--split",), str, "all", "Split of a prepared dataset: train, valid, test or all.")
# The data of families that train on two unpaired image domains, streams "A" and "B" (data.domains.
# resolve_domains): each domain's images, or one folder in junyanz's layout holding both.
DOMAIN_OPTIONS: tuple[Opt, ...] = (
    Opt("data_a", ("--data-a",), Path, None, "Domain A images (e.g. photos): a folder, zip or prepared dataset. With "
        "--resume: where the same data now is."),
    Opt("data_b", ("--data-b",), Path, None, "Domain B images (e.g. paintings), as --data-a."),
    Opt("data", ("--data",), Path, None, "Instead of --data-a/--data-b: a dataset in junyanz's layout (ROOT/trainA, "
        "ROOT/trainB; --split test reads testA/testB). With --resume: where that folder now is (the same data, "
        "checked by its fingerprint)."),
    Opt("split", ("--split",), str, None, "junyanz's layout: train (default) or test; prepared datasets: train, "
        "valid, test or all (default)."),
)
# The data of families that train on pairs (data.pairs.resolve_pairs), streams "A" and "B" in the same order.
PAIR_OPTIONS: tuple[Opt, ...] = (
    Opt("data", ("--data",), Path, None, "Paired images: a `facegan prepare pairs` folder (trainA/ trainB/, optionally "
        "testA/ testB/), a `prepare synthetic --style painting` one (trainA/ with truth/trainA/), or junyanz's aligned "
        "layout (train/ test/ of A|B images side by side)."),
    Opt("data_a", ("--data-a",), Path, None, "Instead of --data: side A of the pairs (e.g. photos), any image source. "
        "With --resume: where the same data now is."),
    Opt("data_b", ("--data-b",), Path, None, "Side B (e.g. paintings), the same file names as --data-a."),
    Opt("split", ("--split",), str, None, "Which split of --data to train on: train (default) or test."),
)
DOMAIN_DATA = {"A": "data_a", "B": "data_b"}  # TrainSpec.data_options of two-domain families (data_root_option "data")
# What most families let a resume change: the learning rate, from then on.
RESUMABLE_LR: dict[str, Callable[[Any], dict[str, Any]]] = {"lr": lambda value: {"lr": value}}
# What a resume may change of the loop: the run's length and its bookkeeping (recorded in config.json).
RESUMABLE_LOOP = ("steps", "epochs", "kimg", "log_every", "ckpt_every", "sample_every", "keep", "tensorboard",
                  "eval_every")
_SETTING_NAMES = {f.name for f in fields(LoopSettings)}


@dataclass
class TrainPlan:
    """What `configure` makes of the option values: the model configuration, the data of every stream
    ({"path", "split"} by stream name), and loop settings the family decides (a preset's length)."""

    model: dict[str, Any]
    data: dict[str, dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainSpec:
    """`facegan train FAMILY`, as data (see the module docstring)."""

    summary: str  # the command's help
    example: str  # one command line, shown as the help's epilog
    options: tuple[Opt, ...]  # the family's own options, in help order
    configure: Callable[[dict[str, Any]], TrainPlan]
    trainer: Callable[[dict[str, Any]], Any]  # the model configuration -> the family's train.trainer.Trainer
    data_options: dict[str, str] = field(default_factory=lambda: {"images": "data"})  # stream -> option name
    # An option that gives every stream's data at once (a folder of one folder per stream), instead of them.
    data_root_option: str | None = None
    length: str = "steps"  # "steps" (--steps/--epochs) or "kimg" (phased runs)
    loop_defaults: dict[str, Any] = field(default_factory=dict)
    loop_help: dict[str, str] = field(default_factory=dict)  # what a shared option means for this family
    resumable: dict[str, Callable[[Any], dict[str, Any]]] = field(default_factory=dict)  # option -> config
    # Extra fields of the result document, from the finished run (e.g. the classifier's held-out accuracy);
    # called with the result and the --device.
    report: Callable[[TrainResult, str], dict[str, Any]] | None = None
    # A tiny run, declared once for the family contract (tests/models/test_family_contract.py) and any test: option
    # values (by Opt.name, the shared loop options included) that train a few steps on a CPU in about a
    # second. The length (steps, or kimg for phased families) is included where the default does not fit;
    # the data and input files are not (the tests give them). None: not declared (the contract fails).
    tiny: dict[str, Any] | None = None

    def loop_options(self) -> list[Opt]:
        """The shared loop options with this family's defaults (only the length options it uses)."""
        skip = {"kimg"} if self.length == "steps" else {"steps", "epochs"}
        return [
            opt.with_default(
                self.loop_defaults.get(opt.name, opt.default),
                f"{opt.help} {self.loop_help[opt.name]}" if opt.name in self.loop_help else None,
            )
            for opt in LOOP_OPTIONS
            if opt.name not in skip
        ]


def training_spec(family: str) -> TrainSpec | None:
    """The TrainSpec a family's registry entry points at (None: the family is not trained by facegan)."""
    entry = registry.get_family(family)
    if not entry.training:
        return None
    return registry.resolve_reference(entry.training)


def command_options(family: registry.Family, spec: TrainSpec) -> list[Opt]:
    """The family's own options of `facegan train FAMILY`: its TrainSpec's, then those its config class
    derives from its fields (one the TrainSpec also declares, by name, is shown once, as the TrainSpec has it)."""
    own = {opt.name for opt in spec.options}
    derived = family.config.options() if family.config is not None else ()
    return [*spec.options, *(opt for opt in derived if opt.name not in own)]


def loop_settings(values: dict[str, Any], decided: dict[str, Any] | None = None) -> LoopSettings:
    """LoopSettings from option values, then the settings the family decided (its TrainPlan.settings)."""
    chosen = {name: values[name] for name in _SETTING_NAMES if values.get(name) is not None}
    chosen.update(decided or {})
    chosen["steps"] = chosen.get("steps") or 0
    return LoopSettings(**chosen)


def train_family(family: str, values: dict[str, Any]) -> dict[str, Any]:
    """Train `family` from option values (what `facegan train FAMILY` parsed); returns the result document."""
    spec = training_spec(family)
    if spec is None:
        raise FaceganError(f"The {family} family is not trained by facegan.", "Pick a family from `facegan models list`.")
    data_given = spec.data_root_option is not None and values.get(spec.data_root_option) is not None
    needed = ("out",) if data_given else (*spec.data_options.values(), "out")
    missing = [f"--{name.replace('_', '-')}" for name in needed if values.get(name) is None]
    if missing:
        raise UsageProblem(
            f"`facegan train {family}` needs {' and '.join(missing)} (or --resume RUN_DIR).",
            f"Example: {spec.example}",
        )
    _check_eval(family, values)
    plan = spec.configure(values)
    plan.model = registry.get_family(family).record(plan.model, f"the configuration of `facegan train {family}`")
    result = run_training(
        spec.trainer, family, plan.model, plan.data, loop_settings(values, plan.settings),
        Path(values["out"]), force=bool(values.get("force")), device=values.get("device") or "auto",
    )
    return _report(spec, result, values.get("device") or "auto")


def _check_eval(family: str, values: dict[str, Any]) -> None:
    """--eval is for generator families and needs its reference; its companions mean nothing without it."""
    if values.get("eval") is None:
        given = [f"--{name.replace('_', '-')}" for name in ("eval_every", "eval_ref", "eval_weights") if values.get(name)]
        if given:
            raise UsageProblem(f"{', '.join(given)} only configure(s) --eval, which was not given.", "Add e.g. --eval fid.")
        return
    kind = registry.get_family(family).kind
    if kind != "generator":
        raise UsageProblem(
            f"--eval scores a generator's samples drawn from latents; {family} is {registry.KINDS[kind][0]}, which "
            "draws none.",
            f"Leave --eval out and evaluate the trained model with `{registry.KINDS[kind][1].format(path='RUN')}`.",
        )
    if values.get("eval_ref") is None:
        raise UsageProblem("--eval needs --eval-ref: the reference images (or their `metrics stats` .npz).",
                           "Pass e.g. --eval-ref data/celeba64.")


def resume_family(family: str, run_dir: Path, given: dict[str, Any], device: str = "auto",
                  values: dict[str, Any] | None = None) -> dict[str, Any]:
    """Continue `run_dir` exactly where it stopped, applying (and recording) the options `given` on the
    command line that a resume can honour; any other option is refused, never silently ignored. A run made
    by `facegan import` (weights only, no data yet) is fine-tuned instead (`values`: every option's value)."""
    spec = training_spec(family)
    if spec is None:
        raise FaceganError(f"The {family} family is not trained by facegan.", "Pick a family from `facegan models list`.")
    config = RunDir.open(run_dir, lock=False).config()
    if config.get("imported_from") and not config.get("data"):
        return _finetune(spec, family, run_dir, config, given, values or given, device)
    changes = resume_changes(spec, given)
    result = run_training(
        spec.trainer, family, {}, {}, loop_settings({}), None, resume=run_dir, device=device,
        changes=changes,
    )
    return _report(spec, result, device)


_ANY_TIME = ("resume", "device", "json", "quiet", "debug", "data_changed_ok")


def _finetune(spec: TrainSpec, family: str, run_dir: Path, config: dict[str, Any], given: dict[str, Any],
              values: dict[str, Any], device: str) -> dict[str, Any]:
    """The first training of an imported run: configured like a new run from the options given, with the
    imported model's settings wherever the command line leaves them (its networks must take the imported
    weights), on the data given; the optimisers start fresh (the imported files hold none)."""
    if config["family"] != family:
        raise FaceganError(f"{run_dir} is a {config['family']} run, not {family}.",
                           f"Use `facegan train {config['family']}`.")
    imported = config["model"]
    types = {opt.name: opt.type for opt in command_options(registry.get_family(family), spec)}
    merged = dict(values)
    for name, kind in types.items():  # the imported setting where the user gave none (and its type is the option's)
        value = imported.get(name)
        if name not in given and value is not None and (type(value) is kind or (kind is float and type(value) is int)):
            merged[name] = value
    merged["preset"] = given.get("preset") or imported.get("preset") or merged.get("preset")
    data_given = spec.data_root_option is not None and merged.get(spec.data_root_option) is not None
    if not data_given and any(merged.get(option) is None for option in spec.data_options.values()):
        needed = " and ".join(f"--{option.replace('_', '-')}" for option in spec.data_options.values())
        raise UsageProblem(
            f"{run_dir} was imported (weights only): fine-tuning it needs the data to train on ({needed}).",
            f"Example: facegan train {family} --resume {run_dir} {needed.split(' and ')[0]} DATA --steps 1000",
        )
    plan = spec.configure(merged)
    entry = registry.get_family(family)
    # Settings that are no option (a DCGAN's z_dim) come from the import too; derived ones from the data.
    derived = {f.name for f in entry.config.settings() if f.metadata.get("derived")} if entry.config else set()
    kept = {k: v for k, v in imported.items() if k in plan.model and k not in given and k not in derived}
    model = entry.record({**plan.model, **kept}, f"the fine-tuning configuration of {run_dir}")
    result = run_training(
        spec.trainer, family, model, plan.data, loop_settings(merged, plan.settings), None, resume=run_dir,
        device=device, finetune=True,
    )
    return _report(spec, result, device)


def resume_changes(spec: TrainSpec, given: dict[str, Any]) -> ResumeChanges:
    """The changes a resume applies for the options `given` (by option name); UsageProblem for the rest."""
    data_names = {option: stream for stream, option in spec.data_options.items()}
    root_option = (spec.data_root_option,) if spec.data_root_option else ()
    refused = [n for n in given if n not in (*RESUMABLE_LOOP, *_ANY_TIME, *spec.resumable, *data_names, *root_option)]
    if refused:
        names = ", ".join(f"--{n.replace('_', '-')}" for n in refused)
        allowed = ", ".join(f"--{n.replace('_', '-')}" for n in (*RESUMABLE_LOOP, *spec.resumable))
        raise UsageProblem(
            f"{names} cannot change when a run is resumed: --resume continues the run exactly, with the settings "
            f"in its config.json. A resume may change {allowed}, and name where the same data now is.",
            f"Leave {names} out, or start a new run with --out.",
        )
    changes = ResumeChanges(data_changed_ok=bool(given.get("data_changed_ok")))
    if root_option and given.get(root_option[0]) is not None:
        # The folder that held every stream, now elsewhere: each stream is found at its old place under it.
        streams = [f"--{n.replace('_', '-')}" for n in given if n in data_names]
        if streams:
            raise UsageProblem(f"--{root_option[0]} gives every stream's data; it cannot be combined with "
                               f"{', '.join(streams)}.", f"Use either --{root_option[0]} ROOT or {', '.join(streams)}.")
        changes.data_root = str(given[root_option[0]])
    for name, value in given.items():
        if name in RESUMABLE_LOOP:
            changes.train[name] = value
        elif name in spec.resumable:
            changes.model.update(spec.resumable[name](value))
        elif name in data_names:
            changes.data[data_names[name]] = str(value)
    return changes


def _report(spec: TrainSpec, result: TrainResult, device: str) -> dict[str, Any]:
    doc = result.to_json()
    if spec.report is not None and result.rank == 0:
        doc.update(spec.report(result, device))
    return doc
