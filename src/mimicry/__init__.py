"""Reanalysis workflow for facial-EMG pharmacology studies (Korb et al. 2023)."""

from importlib.metadata import version

# The version has one source, pyproject.toml, read from the installed package's metadata.
__version__ = version("mimicry")
