"""Cluster tests start real daemons (munge, MariaDB, slurmdbd, slurmctld, slurmd) as root.

They run only when MIMICRY_CLUSTER_TESTS=1 (`make test-cluster`); plain `pytest` skips them.
"""

import os

import pytest

ENABLED = os.environ.get("MIMICRY_CLUSTER_TESTS") == "1"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "cluster: starts a private single-node SLURM cluster on this machine "
        "(root; set MIMICRY_CLUSTER_TESTS=1 to run)",
    )


def pytest_collection_modifyitems(config, items):
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="cluster test: set MIMICRY_CLUSTER_TESTS=1 to run")
    for item in items:
        if "cluster" in item.keywords:
            item.add_marker(skip)
