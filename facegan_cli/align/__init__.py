"""facegan_cli.align"""
