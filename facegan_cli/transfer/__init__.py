"""facegan_cli.transfer"""
