"""`facegan export`: one family of each kind (a generator, a translator, an editor) to ONNX and TorchScript on
the CPU, loaded back and equal to the eager network within 1e-4; a translator exported once runs at two sizes;
a file that does not reproduce the network is not left behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import invoke_cli
from interop_helpers import examples_outf, junyanz_folder, yunjey_models

pytestmark = pytest.mark.usefixtures("one_thread")
MAKERS: dict[str, Callable[[Path], Path]] = {"generator": examples_outf, "translator": junyanz_folder,
                                             "editor": yunjey_models}


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_export_round_trip(tmp_path: Path, cli_json, kind: str, fmt: str) -> None:
    cli_json("import", MAKERS[kind](tmp_path), "--out", tmp_path / "run")
    out = tmp_path / f"net.{fmt}"
    doc = cli_json("export", tmp_path / "run", "--format", fmt, "--out", out)
    assert out.is_file() and doc["max_abs_diff"] <= 1e-4 and len(doc["diffs"]) == 2
    if kind == "translator":  # the second probe is another height and width through the same file
        sizes = doc["inputs"]["image_in"]
        assert sizes[0][2:] != sizes[1][2:]


def test_translator_onnx_runs_at_any_multiple_of_4(tmp_path: Path, cli_json) -> None:
    import onnxruntime

    from facegan_cli.models.translation import load_translator

    cli_json("import", junyanz_folder(tmp_path), "--out", tmp_path / "run")
    cli_json("export", tmp_path / "run", "--format", "onnx", "--net", "G_B", "--out", tmp_path / "g.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    translator = load_translator(tmp_path / "run")
    for shape in ((1, 3, 44, 60), (3, 3, 96, 32)):
        x = torch.rand(shape) * 2 - 1
        got = session.run(None, {"image_in": x.numpy()})[0]
        assert np.abs(got - translator.translate(x, "b2a").numpy()).max() <= 1e-4


def test_export_that_does_not_match_leaves_no_file(tmp_path: Path, cli_json, monkeypatch) -> None:
    from facegan_cli.interop import export

    cli_json("import", examples_outf(tmp_path), "--out", tmp_path / "run")
    monkeypatch.setattr(export, "TOLERANCE", -1.0)  # every difference, even 0, is now "too large"
    result = invoke_cli(["export", tmp_path / "run", "--format", "torchscript", "--out", tmp_path / "g.pt"])
    assert result.exit_code == 1 and "was not kept" in result.stderr
    assert not (tmp_path / "g.pt").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".g.pt")]


def test_export_refuses_a_kind_it_cannot_export(tmp_path: Path) -> None:
    result = invoke_cli(["export", tmp_path / "missing", "--format", "onnx"])
    assert result.exit_code == 1 and "does not exist" in result.stderr


def test_exported_editor_is_the_edit_path(tmp_path: Path, cli_json) -> None:
    """The editor is exported as a copy of G whose InstanceNorms keep no statistics: in inference mode that is
    exactly `facegan edit`'s (and yunjey's test's) training-mode G with each image's own statistics."""
    from facegan_cli.interop.export import per_image_statistics
    from facegan_cli.models.editing import load_editor

    cli_json("import", yunjey_models(tmp_path), "--out", tmp_path / "run")
    editor = load_editor(tmp_path / "run")
    for module in editor.G.modules():  # running statistics far from an image's own, so using them would show
        if isinstance(module, torch.nn.InstanceNorm2d):
            module.running_mean.fill_(3.0)
    x, c = torch.rand(2, 3, 64, 64) * 2 - 1, torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 1]])
    with torch.no_grad():
        exported = per_image_statistics(editor.G)(x, c)
    assert torch.allclose(exported, editor.translate(x, c), atol=1e-6)
    assert float(editor.G.main[1].running_mean.max()) == 3.0  # the editor's own G is untouched
