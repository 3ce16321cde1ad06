"""facegan_cli.data"""
