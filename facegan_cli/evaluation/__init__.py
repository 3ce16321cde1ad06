"""facegan_cli.evaluation"""
