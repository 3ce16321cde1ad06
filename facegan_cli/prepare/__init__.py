"""Prepare-time jobs: CelebA crops, CelebA-HQ / FFHQ alignment, synthetic faces, exports, recipes.

They write the prepared-dataset format of `facegan_cli.data.prepared` (and read inputs through
`facegan_cli.data`); nothing in `facegan_cli.data` imports this package.
"""
