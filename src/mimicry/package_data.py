"""The files mimicry ships beside its code: the Stan program and the JSON schemas.

They are package data (pyproject.toml, [tool.setuptools.package-data]), found through
importlib.resources wherever the package is installed: a checkout's src/ or a
site-packages folder. The workflow reads them from here too, so each exists once.
"""

from importlib.resources import files
from pathlib import Path

# Paths on disk: the package is installed as files (never imported from a zip), and
# Stan, jsonschema and Snakemake's validate all read a file by its path.
STAN_PROGRAM = Path(files("mimicry") / "bayes" / "stan" / "asymptotic_regression.stan")
SCHEMAS = Path(files("mimicry.config") / "schemas")
CONFIG_SCHEMA = SCHEMAS / "config.schema.yaml"
PARTICIPANTS_SCHEMA = SCHEMAS / "participants.schema.yaml"
