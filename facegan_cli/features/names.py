"""The variants the feature extractors offer, by name, for the options that choose them: declared without
torch, so `facegan transfer --help` imports none (the extractors import these)."""

from __future__ import annotations

POOLS = ("max", "avg")  # VGG19's pooling (features/vgg19.py)
ACTIVATIONS = ("post_relu", "pre_relu")  # which side of a VGG19 ReLU a tap reads
