"""facegan_cli.latent"""
