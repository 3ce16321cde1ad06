"""facegan_cli.train"""
