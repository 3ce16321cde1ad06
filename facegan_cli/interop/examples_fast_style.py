"""pytorch/examples fast_neural_style: a TransformerNet file (`candy.pth`, `mosaic.pth`, `udnie.pth`,
`rain_princess.pth`, or a `.model` their `train` writes) onto the fast-style family.

Their files are `torch.save(transformer.state_dict())`; the released four also carry InstanceNorm
`running_mean`/`running_var` keys that PyTorch < 0.4 saved and that their `stylize` deletes with a regex before
loading. models.fast_style.from_examples_state_dict does the same and maps their key names onto facegan's
network; any other missing or extra key, or a shape that does not fit, refuses the file. Their names are the
user's (any `.pth` / `.model`), so this source is tried after every project that names its files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from facegan_cli.core.errors import FaceganError
from facegan_cli.interop import sources
from facegan_cli.interop.foreign import ForeignFile
from facegan_cli.interop.sources import Imported, ImportRequest, Source
from facegan_cli.models import fast_style

PROJECT = "pytorch/examples (fast_neural_style)"
FAMILY = fast_style.FAMILY
SUFFIXES = (".pth", ".model")


def select(paths: Sequence[Path], request: ImportRequest) -> list[Path] | None:
    found = [p for p in paths if p.suffix in SUFFIXES]
    if not found:
        return None
    if len(found) > 1:
        raise FaceganError(
            f"{len(found)} files were given ({', '.join(p.name for p in found[:4])}); a fast_neural_style model is "
            "one file, and each import makes one run.",
            "Import one style at a time: facegan import candy.pth --out runs/candy.",
        )
    return found


def convert(files: list[ForeignFile], request: ImportRequest) -> Imported:
    (file,) = files
    try:
        weights, inferred = fast_style.from_examples_state_dict(file.tensors)
    except fast_style.ForeignWeights as exc:
        raise FaceganError(
            f"{file.path} is not pytorch/examples' fast_neural_style TransformerNet: {exc}; nothing was imported.",
            "Pass one of their released models (candy.pth, mosaic.pth, udnie.pth, rain_princess.pth) or a .model "
            "file their `train` wrote; other projects' files keep the names their project gives them.",
        ) from None
    model = fast_style.examples_config()
    network = fast_style.TransformerNet(model)
    network.load_state_dict(weights)
    return Imported(project=PROJECT, source="examples-fast-style", family=FAMILY, model=model,
                    networks={fast_style.NETWORK: network.eval()}, files=files, inferred=inferred,
                    notes=["the style image and VGG16 of their training are unknown: fine-tuning needs --style-image"])


sources.register(Source(
    example="facegan import saved_models/candy.pth --out runs/candy",
    name="examples-fast-style", project=PROJECT, priority=90, select=select, convert=convert, families=(FAMILY,),
    describe="fast_neural_style TransformerNet files (their released candy.pth, mosaic.pth, udnie.pth, "
    "rain_princess.pth, or a .model from their train)",
))
