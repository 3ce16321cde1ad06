"""`facegan models`: the model families, their presets and their exact architectures."""

from __future__ import annotations

from typing import Annotated, Any

import torch
import typer
from rich.table import Table
from torch import nn

from facegan_cli.cli.common import DebugOpt, JsonOpt, QuietOpt, command, emit_json, result_console
from facegan_cli.core.errors import FaceganError
from facegan_cli.models import registry
from facegan_cli.models.dcgan import apply_depth

app = typer.Typer(help="The model families, their presets and parameter counts.", no_args_is_help=True)


@app.command("list", epilog="Example: facegan models list --json")
@command
def list_models(json_out: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False) -> None:
    """List the model families and their presets (the default preset first)."""
    entries = []
    for name, family in sorted(registry.families().items()):
        presets = [family.default_preset] + [p for p in family.presets if p != family.default_preset]
        entries.append(
            {
                "family": name,
                "description": family.describe,
                "default_preset": family.default_preset,
                "presets": presets,
            }
        )
    if json_out:
        emit_json({"families": entries})
        return
    table = Table(title="facegan model families")
    for column in ("family", "presets (default first)", "description"):
        table.add_column(column)
    for entry in entries:
        table.add_row(entry["family"], ", ".join(entry["presets"]), entry["description"])
    result_console().print(table)


def _resolve(family: str, preset: str | None, overrides: dict[str, Any], depth: int | None) -> dict[str, Any]:
    config = registry.resolve_config(family, preset)
    if depth is not None:
        if family != "dcgan":
            raise FaceganError(f"--depth applies to the dcgan family, not {family}.", "Leave --depth out.")
        try:
            config = apply_depth(config, depth)
        except ValueError as exc:
            raise FaceganError(
                f"--depth {depth} does not apply to {family} preset {config['preset']} ({exc}).",
                "Leave --depth out, or use --depth 4 with heikka32 or radford64.",
            ) from exc
    # Explicit width options win over what --depth chose, so `--depth 4 --width 256` does what it says.
    config.update({key: value for key, value in overrides.items() if value is not None})
    return config


def _reported_parameters(net: nn.Module) -> int:
    """Parameters as the family's paper counts them: a progressive network's full-resolution path only
    (its intermediate toRGB/fromRGB layers are left out), every parameter otherwise."""
    counter = getattr(net, "path_parameters", None)
    return int(counter()) if callable(counter) else registry.count_parameters(net)


def _leaf_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, module) for name, module in net.named_modules() if next(module.children(), None) is None]


def _own_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def _layer_rows(net: nn.Module, example: torch.Tensor | None) -> list[tuple[str, str, str, int]]:
    """(name, type, output shape, parameters) of every leaf layer, in the order they run.

    Shapes come from one forward pass of `example`; families whose networks take more than one input
    (a level, labels) get the layer list without shapes.
    """
    rows: list[tuple[str, str, str, int]] = []

    def record(name: str) -> Any:
        def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
            shape = "x".join(str(d) for d in output.shape[1:]) if isinstance(output, torch.Tensor) else "?"
            rows.append((name, type(module).__name__, shape, _own_parameters(module)))

        return hook

    handles = [module.register_forward_hook(record(name)) for name, module in _leaf_layers(net)]
    try:
        if example is not None:
            with torch.no_grad():
                net.eval()(example)
    except (RuntimeError, TypeError, ValueError):
        rows.clear()
    finally:
        for handle in handles:
            handle.remove()
    if not rows:
        rows = [
            (name, type(module).__name__, "?", _own_parameters(module)) for name, module in _leaf_layers(net)
        ]
    return rows


def _layer_table(title: str, rows: list[tuple[str, str, str, int]], total: int) -> Table:
    table = Table(title=title)
    table.add_column("layer")
    table.add_column("type")
    table.add_column("output (C x H x W)")
    table.add_column("parameters", justify="right")
    for name, kind, shape, params in rows:
        table.add_row(name, kind, shape, f"{params:,}")
    table.add_row("total", "", "", f"{total:,}", style="bold")
    return table


@app.command(
    "summary",
    epilog="Example: facegan models summary dcgan --preset heikka32 --depth 4 --d-first-bn --json",
)
@command
def summary(
    family: Annotated[str, typer.Argument(help="Model family, e.g. dcgan (see `facegan models list`).")],
    preset: Annotated[
        str | None, typer.Option("--preset", help="Preset of the family (default: its default).")
    ] = None,
    depth: Annotated[
        int | None,
        typer.Option("--depth", help="DCGAN: 4 for heikka32's 4-layer 512-wide variant (default: 5)."),
    ] = None,
    width: Annotated[
        int | None, typer.Option("--width", help="DCGAN: filters of D's first layer (default: the preset's).")
    ] = None,
    g_width: Annotated[
        int | None,
        typer.Option("--g-width", help="DCGAN: filters of G's last hidden layer (default: the preset's)."),
    ] = None,
    d_first_bn: Annotated[
        bool | None,
        typer.Option(
            "--d-first-bn/--no-d-first-bn",
            help="DCGAN: batch norm on D's first layer (default: the preset's).",
        ),
    ] = None,
    resolution: Annotated[
        int | None,
        typer.Option("--resolution", help="ProGAN: target resolution, 4..1024 (default: the preset's 1024)."),
    ] = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Parameter counts of a family's generator and discriminator (with a per-layer table unless --json).

    dcgan presets: radford64 (pytorch/examples), heikka32 (seed 001), keras64 (seed 003, whose article
    names no numbers: its sizes come from the Keras CelebA DCGAN example it paraphrases). progan counts
    the full-resolution path as the paper does (final toRGB, first fromRGB); --json also gives
    all_parameters, every stage's toRGB/fromRGB included.
    """
    overrides = {"width": width, "g_width": g_width, "d_first_bn": d_first_bn}
    config = _resolve(family, preset, overrides, depth)
    if resolution is not None:
        if "resolution" not in config or family == "dcgan":
            raise FaceganError(
                f"--resolution applies to the progan family, not {family}.",
                "Leave --resolution out, or use `facegan models summary progan --resolution 256`.",
            )
        if resolution < 4 or resolution > 1024 or resolution & (resolution - 1):
            raise FaceganError(
                f"--resolution {resolution} is not a power of two from 4 to 1024.", "Use e.g. --resolution 256."
            )
        config["resolution"] = resolution
    try:
        generator = registry.build_generator(family, config)
        discriminator = registry.build_discriminator(family, config)
    except (KeyError, ValueError) as exc:
        raise FaceganError(
            f"{family} preset {config['preset']} cannot be built with these options ({exc}).",
            "Check --width/--g-width/--depth against `facegan models summary --help`.",
        ) from exc
    g_params, d_params = _reported_parameters(generator), _reported_parameters(discriminator)
    if json_out:
        g_info: dict[str, int] = {"parameters": g_params}
        d_info: dict[str, int] = {"parameters": d_params}
        g_all, d_all = registry.count_parameters(generator), registry.count_parameters(discriminator)
        if (g_all, d_all) != (g_params, d_params):
            g_info["all_parameters"], d_info["all_parameters"] = g_all, d_all
        emit_json(
            {
                "family": family,
                "preset": config["preset"],
                "config": config,
                "generator": g_info,
                "discriminator": d_info,
            }
        )
        return
    z = torch.zeros(1, int(config["z_dim"])) if "z_dim" in config else None
    res = config.get("resolution")
    image = torch.zeros(1, 3, int(res), int(res)) if res else None
    g_rows, d_rows = _layer_rows(generator, z), _layer_rows(discriminator, image)
    console = result_console()
    console.print(
        f"{family} {config['preset']}: generator {g_params:,} parameters, discriminator {d_params:,} parameters"
    )
    console.print(_layer_table("generator", g_rows, g_params))
    console.print(_layer_table("discriminator", d_rows, d_params))
