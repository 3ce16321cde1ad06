"""Only what pyproject.toml cannot say: the dataset recipes stay at the top of the source tree
(data_recipes/, where users look for them) and are shipped inside the package of the wheel, as
facegan_cli/data_recipes/*.toml (prepare/recipes.py finds them in either place)."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["facegan_cli*"]), "facegan_cli.data_recipes"],
    package_dir={"facegan_cli.data_recipes": "data_recipes"},
    package_data={"facegan_cli.data_recipes": ["*.toml"]},
)
