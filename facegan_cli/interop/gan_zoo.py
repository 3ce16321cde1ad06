"""facebookresearch/pytorch_GAN_zoo: PGAN checkpoints, recognised and refused with the reason.

Its BaseGAN.save writes `{label}_s{scale}_i{iteration}.pt` holding {'config': a BaseConfig object, 'netG',
'netD', 'avgG'}; the torch.hub releases are such files (e.g. `celebaHQ_s6_i80000-6196db68.pth`). The pickled
BaseConfig object is exactly what facegan's weights-only reader refuses, so the file is refused unread, with
the one line that saves the averaged generator's state dict (tensors only) in the user's own environment.

A state dict of tensors from it (formatLayer, groupScale0, scaleLayers, toRGBLayers) is laid out unlike
facegan's progan family (Karras et al.'s original: blocks.N.dense / conv0 / conv1, to_rgb.N), with its own
equalised-learning-rate constants; facegan has no transcription of pytorch_GAN_zoo's forward pass to verify a
mapping against, so such a file is refused too, naming what it holds, rather than imported approximately.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from facegan_cli.core.errors import FaceganError
from facegan_cli.interop.foreign import ForeignFile, strip_module_prefix
from facegan_cli.interop.sources import Imported, ImportRequest, Source, register

PROJECT = "facebookresearch/pytorch_GAN_zoo"
_NAME = re.compile(r"^(?P<label>.+)_s(?P<scale>\d+)_i(?P<epoch>\d+)(?:-[0-9a-f]{6,})?\.(?:pt|pth)$")
CONVERSION = (
    "python -c \"import torch; m = torch.hub.load('facebookresearch/pytorch_GAN_zoo:hub', 'PGAN', "
    "model_name='celebAHQ-512', pretrained=True, useGPU=False); "
    "torch.save(m.getOriginalAvgG().state_dict(), 'pgan-celebAHQ-512-avgG.pth')\""
)
_ZOO_KEYS = ("formatLayer.", "groupScale0.", "scaleLayers.", "toRGBLayers.")


def select(paths: Sequence[Path], request: ImportRequest) -> list[Path] | None:
    found = [p for p in paths if _NAME.match(p.name)]
    if not found:
        return None
    return [max(found, key=lambda p: (int(_NAME.match(p.name).group("scale")),  # type: ignore[union-attr]
                                      int(_NAME.match(p.name).group("epoch"))))]  # type: ignore[union-attr]


def convert(files: list[ForeignFile], request: ImportRequest) -> Imported:
    file = files[0]
    tensors = strip_module_prefix(file.tensors)
    held = sorted({k.split(".")[0] for k in tensors})
    if any(k.startswith(_ZOO_KEYS) for k in tensors):
        reason = (f"it is a pytorch_GAN_zoo PGAN network ({', '.join(held[:5])}), which is not laid out as "
                  "facegan's progan family (Karras et al.'s original layers) and has its own equalised "
                  "learning-rate constants; facegan has no verified mapping between the two")
    else:
        reason = f"its tensors ({', '.join(held[:5])}) are not a PGAN network facegan knows"
    raise FaceganError(
        f"{file.path} cannot be imported: {reason}, so nothing was imported.",
        "Train the progan family instead (`facegan train progan`), or sample the model with pytorch_GAN_zoo "
        "itself.",
    )


register(Source(
    name="gan-zoo", project=PROJECT, priority=40, select=select, convert=convert, families=("progan",),
    describe="PGAN `{label}_s{scale}_i{iteration}.pt` (refused: see README, Bring your own models)",
    pickled_fix=(
        "pytorch_GAN_zoo stores its configuration as a pickled BaseConfig object beside the weights. In your own "
        f"environment, with pytorch_GAN_zoo installed, save the generator's tensors alone: {CONVERSION}; "
        "facegan has no verified mapping of PGAN's layers onto its progan family yet, so that file is refused "
        "too, with the reason."
    ),
))
