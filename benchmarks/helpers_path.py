"""Puts tests/ on sys.path, so that a benchmark imports the test helpers
(tests/helpers/, e.g. `from helpers.devtools import copy_workflow`) after
`import helpers_path`. Benchmarks run as scripts (python benchmarks/x.py), which puts
benchmarks/ itself on sys.path."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
