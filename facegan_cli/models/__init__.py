"""facegan_cli.models"""
