"""The names the latent commands' options offer, declared without torch (`facegan latent --help` imports
none); latent/nearest.py checks its spaces are these."""

from __future__ import annotations

SPACE_NAMES = ("pixel", "inception")  # nearest.SPACES: where nearest-neighbour distances are measured
