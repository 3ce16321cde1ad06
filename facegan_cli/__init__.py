"""facegan: prepare face datasets, train face GANs, sample, edit and measure them."""

__version__ = "0.1.0"
