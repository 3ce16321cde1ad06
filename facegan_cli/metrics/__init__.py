"""facegan_cli.metrics"""
