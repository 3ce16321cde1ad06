"""Frozen feature extractors with named taps (the FID Inception network; VGG19 for style transfer)."""
