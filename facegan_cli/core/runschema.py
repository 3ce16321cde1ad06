"""What a run directory's own files may hold: the fields of config.json's "train" section, the top level of
config.json, and run.json, with their types and ranges.

These files are plain JSON that a user may edit (or damage). A value of the wrong type or out of range
used to surface much later as "internal error ... This is a facegan bug" (a `ckpt_every` of 0 divides by
zero, a `seed` of "abc" reaches the RNG, a `status` of 5 reaches string formatting); here each is found
when the file is read, and reported as one paragraph naming the file, the field and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

STATUSES = ("running", "stopped", "finished", "failed")


def _int(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _number(positive: bool) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        return ok and (v > 0 if positive else True)

    return check


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _text(v: Any) -> bool:
    return isinstance(v, str)


# The loop's settings (train.loop.LoopSettings), as config.json's "train" section stores them:
# field -> (check, what a valid value is).
TRAIN_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "steps": (_int(0), "a whole number of at least 0"),  # 0 in runs measured in kimg (progressive growing)
    "epochs": (_optional(_number(True)), "a positive number or null"),
    "seed": (_int(-(2**63)), "a whole number"),  # --seed takes any integer
    "log_every": (_int(1), "a whole number of at least 1"),
    "ckpt_every": (_int(1), "a whole number of at least 1"),
    "sample_every": (_int(1), "a whole number of at least 1"),
    "keep": (_int(0), "a whole number of at least 0"),
    "n_samples": (_int(1), "a whole number of at least 1"),
    "mirror": (_bool, "true or false"),
    "amp": (_bool, "true or false"),
    "channels_last": (_bool, "true or false"),
    "compile": (_bool, "true or false"),
    "tensorboard": (_optional(_bool), "true, false or null"),
    "kimg": (_optional(_number(True)), "a positive number or null"),
    "eval": (_optional(_text), "a list of metrics as text (e.g. \"fid\") or null"),
    "eval_every": (_optional(_int(1)), "a whole number of at least 1 or null"),
    "eval_ref": (_optional(_text), "a path or null"),
    "eval_n": (_int(1), "a whole number of at least 1"),
    "eval_weights": (_optional(_text), "a path or null"),
}


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def config_problem(config: Any) -> str:
    """What is wrong with a parsed config.json ("" when nothing): its sections' types, and every field of
    its "train" section (unknown fields too: LoopSettings would not take them)."""
    if not isinstance(config, dict):
        return f"it holds a JSON {type(config).__name__}, not an object"
    missing = [key for key in ("family", "model", "data", "train") if key not in config]
    if missing:
        return f"it lacks {'/'.join(missing)}, so it is not a facegan run configuration"
    if not isinstance(config["family"], str):
        return f"family is {_describe(config['family'])}, not a family name"
    for section in ("model", "data", "train"):
        if not isinstance(config[section], dict):
            return f"{section} is a JSON {type(config[section]).__name__}, not an object of settings"
    for key, value in config["train"].items():
        if key not in TRAIN_FIELDS:
            return f"train.{key} is not a training setting this facegan knows"
        check, wanted = TRAIN_FIELDS[key]
        if not check(value):
            return f"train.{key} is {_describe(value)}, not {wanted}"
    return ""


def status_problem(status: Any) -> str:
    """What is wrong with a parsed run.json ("" when nothing)."""
    if not isinstance(status, dict):
        return f"it holds a JSON {type(status).__name__}, not an object"
    checks: dict[str, tuple[Callable[[Any], bool], str]] = {
        "status": (lambda v: v in STATUSES, f"one of {', '.join(STATUSES)}"),
        "step": (_optional(_int(0)), "a whole number of at least 0 or null"),
        "kimg": (_optional(_number(False)), "a number or null"),
        "time": (_optional(_number(False)), "a time in seconds"),
        "pid": (_optional(_int(0)), "a process id"),
        "reason": (_optional(_text), "text or null"),
    }
    if "status" not in status:
        return "it has no status"
    for key, (check, wanted) in checks.items():
        if key in status and not check(status[key]):
            return f"{key} is {_describe(status[key])}, not {wanted}"
    return ""
