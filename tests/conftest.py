"""Shared fixtures: the project's configuration and throw-away copies of the workflow."""

import pytest

from mimicry.devtools import PROJECT_ROOT, copy_workflow
from mimicry.study import load_config


@pytest.fixture(scope="session")
def default_config():
    return load_config(PROJECT_ROOT / "config" / "config.yaml")


@pytest.fixture(scope="session")
def quick_config():
    return load_config(
        PROJECT_ROOT / "config" / "config.yaml", PROJECT_ROOT / "config" / "quick.yaml"
    )


@pytest.fixture
def workflow_copy(tmp_path):
    return copy_workflow(tmp_path / "workflow-copy")
