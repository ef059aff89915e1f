"""Build configuration that pyproject.toml cannot say: the top-level schemas/ folder is shipped
inside the package as the data package `reconciler.schemas`, so the schema exists once in the
repository and once in the wheel (tests/test_packaging.py checks the two are identical)."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["reconciler*"]), "reconciler.schemas"],
    package_dir={"reconciler.schemas": "schemas"},
    package_data={"reconciler": ["py.typed"], "reconciler.schemas": ["*.json"]},
)
