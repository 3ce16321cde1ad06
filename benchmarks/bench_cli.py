"""Start-up time of the `facegan` command against the floor any Typer CLI pays: `python -c "import typer"`.

    .venv/bin/python benchmarks/bench_cli.py --runs 10 [--before /path/to/an/older/checkout]

Each command runs --runs times in a fresh interpreter (this one's executable), interleaved round by round
so that a change in the machine's load hits every command alike; the median wall time of each is printed
with its gap to the floor. facegan runs from this checkout (`python -m facegan_cli`, PYTHONPATH set to it);
`train dcgan --help` and `models list` are timed with a current declarations snapshot and (the first) with
none, where they import the families as before the snapshot. --before adds the same two commands of another checkout (e.g. main before lazy start-up) for context, and
a bare two-command Typer app's --help shows what Typer's own help renderer costs.
The goal (issue 24): `facegan --version` and `facegan --help` within 0.15 s of the floor; `--help` is also timed
without its snapshot (the first call in a terminal, or a cache folder that cannot be written). The load average
at the start and at the end is printed with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 0.15


# A bare Typer app of two commands: what any Typer CLI pays for --help (Typer's rich help renderer, which
# imports rich.markdown and markdown_it), the floor of `facegan --help` beside that of `import typer`.
BARE_APP = ("import typer\napp = typer.Typer()\napp.command()(lambda: None)\n"
            "app.command('other')(lambda: None)\napp(prog_name='bare')")


def _timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    # cwd: not the checkout, where `python -m facegan_cli` would find this tree whatever PYTHONPATH says
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          cwd=Path(__file__).resolve().anchor)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--before", type=Path, help="another checkout to time the same commands of")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    python = sys.executable
    base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # COLUMNS fixed: --help's layout (and so its work) must not depend on the terminal.
    here = {**base, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "python -c 'import typer' (floor)": ([python, "-c", "import typer"], base),
        "bare Typer app --help": ([python, "-c", BARE_APP, "--help"], {**base, "COLUMNS": "100"}),
    }
    # The root's help is written back from its snapshot (cli/help_snapshot.py) and the family commands describe
    # themselves from the declarations snapshot (cli/declarations.py): timed with current snapshots (written by
    # the warm-up round) and with none (a cache folder that cannot be made: what the first call pays).
    with_snapshot = {**here, "FACEGAN_HOME": tempfile.mkdtemp(prefix="facegan-bench-")}
    no_snapshot = {**here, "FACEGAN_HOME": os.path.join(os.devnull, "facegan")}
    commands["facegan --version"] = ([python, "-m", "facegan_cli", "--version"], with_snapshot)
    commands["facegan --help"] = ([python, "-m", "facegan_cli", "--help"], with_snapshot)
    commands["facegan --help (no snapshot)"] = ([python, "-m", "facegan_cli", "--help"], no_snapshot)
    commands["facegan train dcgan --help (snapshot)"] = ([python, "-m", "facegan_cli", "train", "dcgan", "--help"],
                                                         with_snapshot)
    commands["facegan models list (snapshot)"] = ([python, "-m", "facegan_cli", "models", "list"], with_snapshot)
    commands["facegan train dcgan --help (no snapshot)"] = ([python, "-m", "facegan_cli", "train", "dcgan", "--help"],
                                                            no_snapshot)
    if args.before is not None:
        before = {**base, "PYTHONPATH": str(args.before.resolve()), "COLUMNS": "100"}
        commands["before: facegan --version"] = ([python, "-m", "facegan_cli", "--version"], before)
        commands["before: facegan --help"] = ([python, "-m", "facegan_cli", "--help"], before)

    load_start = os.getloadavg()
    for command, env in commands.values():  # warm the file cache and the bytecode
        _timed(command, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, (command, env) in commands.items():
            times[name].append(_timed(command, env))
    load_end = os.getloadavg()

    medians = {name: statistics.median(values) for name, values in times.items()}
    floor = medians["python -c 'import typer' (floor)"]
    print(f"load average at start {load_start[0]:.2f} / {load_start[1]:.2f} / {load_start[2]:.2f}, "
          f"at end {load_end[0]:.2f} / {load_end[1]:.2f} / {load_end[2]:.2f}; {os.cpu_count()} CPUs; "
          f"median of {args.runs} runs each")
    print(f"| command | median s | min s | gap to floor s | goal (<= {GOAL_S} s) |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, median in medians.items():
        gap = median - floor
        verdict = "met" if gap <= GOAL_S else "NOT met"
        verdict = verdict if name in ("facegan --version", "facegan --help") else ""
        print(f"| {name} | {median:.3f} | {min(times[name]):.3f} | {gap:+.3f} | {verdict} |")
    if args.json is not None:
        args.json.write_text(json.dumps({"runs": args.runs, "load_start": load_start, "load_end": load_end,
                                         "times": times, "medians": medians}, indent=2))


if __name__ == "__main__":
    main()
