"""Transcriptions of the reference implementations facegan is checked against, shared by tests and benchmarks.

dcgan_reference: pytorch/examples dcgan/main.py's step and data pipeline; progan_reference: a plain fp32
ProGAN step; stargan_reference: yunjey/stargan's solver iteration (the one copy); align_reference: NVIDIA's
FFHQ alignment procedure. Imported as `references.<module>`: pytest puts tests/ on sys.path (pyproject's
pythonpath) and the benchmarks insert it themselves. (Not `tests.references`: an installed package named
`tests` would shadow this folder.)
"""
