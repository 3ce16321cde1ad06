"""The names the transfer commands' options offer, declared without torch (so `facegan transfer --help`
imports none); the modules that implement them import these, and nst.py checks its presets are these."""

from __future__ import annotations

NST_INITS = ("content", "noise", "mean", "content+noise")  # nst.py: the starting image of style transfer
NST_PRESETS = ("tutorial", "gatys", "thesis")  # nst.PRESETS: the settings of each source
OPTIMIZERS = ("lbfgs", "adam", "sgd")  # optimize.py
NORMS = ("tutorial", "gatys", "thesis")  # style_losses.py: the loss conventions
LFT_INITS = ("input+noise", "input", "mean", "noise")  # lft.py: the starting image of features transfer
SYNTH_OPTIMIZERS = ("adam", "sgd", "lbfgs")  # lft.py
