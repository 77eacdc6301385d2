"""The conda environments of the rules: present, parseable and pinned like the lock file."""

import re

import pytest
import yaml

from helpers.devtools import PROJECT_ROOT

# conda-forge names that differ from the PyPI names in requirements.lock
CONDA_TO_PYPI = {"mne-base": "mne"}
# packages that exist only on conda-forge (CmdStan itself) or are the interpreter
NOT_IN_LOCK = {"python", "cmdstan"}


def locked_versions():
    lines = (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
    pins = (line.split("==") for line in lines if "==" in line)
    return {name.lower(): version for name, version in pins}


def rule_environments():
    """Rule file -> env files named by its conda: directives."""
    found = {}
    for rules in sorted((PROJECT_ROOT / "workflow" / "rules").glob("*.smk")):
        text = rules.read_text()
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', text):
            found.setdefault(rules.name, []).append((rules.parent / env).resolve())
    return found


def test_every_rule_names_an_existing_environment():
    environments = rule_environments()
    assert environments, "no conda: directives found"
    for rules, envs in environments.items():
        for env in envs:
            assert env.is_file(), f"{rules}: {env} does not exist"


@pytest.mark.parametrize(
    "env", sorted((PROJECT_ROOT / "envs").glob("*.yaml")), ids=lambda p: p.name
)
def test_environment_pins_agree_with_the_lock_file(env):
    spec = yaml.safe_load(env.read_text())
    assert "conda-forge" in spec["channels"]
    locked = locked_versions()
    for dependency in spec["dependencies"]:
        name, _, version = dependency.partition("=")
        if name in NOT_IN_LOCK:
            continue
        pypi_name = CONDA_TO_PYPI.get(name, name).lower()
        assert pypi_name in locked, f"{env.name}: {name} is not in requirements.lock"
        assert (
            version == locked[pypi_name]
        ), f"{env.name}: {name}={version} but requirements.lock has {locked[pypi_name]}"
