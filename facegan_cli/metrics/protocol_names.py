"""The names of the FID input protocols (metrics/protocols.py), for the options that offer them: declared
here, without torch, so `facegan metrics --help` loads none; protocols.py checks it defines exactly these."""

from __future__ import annotations

PROTOCOL_NAMES = ("pytorch-fid", "torch-fidelity", "clean")
DEFAULT_PROTOCOL = "pytorch-fid"
