"""Packaging glue that pyproject.toml cannot express: ship the repository's ``models/`` (the bundled weights, kept
there for the docs, tests and training commands) inside the wheel as the package-data folder ``sr_core/_bundled``
(found by :func:`sr_core.paths.bundled_models_dir`). Everything else (metadata, dependencies, extras, entry point) is
declared in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["sr_core", "sr_core.*"]), "sr_core.assets", "sr_core._bundled"],
    package_dir={"sr_core._bundled": "models"},
    package_data={"sr_core.assets": ["*.geojson"], "sr_core._bundled": ["sr-small.pt", "pixel-baseline.npz", "*.md"]},
)
