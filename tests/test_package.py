"""mimicry as an installable package: its dependencies and the files it ships."""

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest
from helpers.imports import distributions, package_imports, third_party
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helpers.devtools import PROJECT_ROOT
from mimicry.package_data import CONFIG_SCHEMA, PARTICIPANTS_SCHEMA, STAN_PROGRAM

PROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
PYSTAN_EXTRA = PROJECT["optional-dependencies"]["pystan"]
# Where the installed package must find its data, read back in the fresh environment.
LOCATE = """
import json, sys
from mimicry import package_data

json.dump({
    "package": package_data.__file__,
    "stan": str(package_data.STAN_PROGRAM),
    "program": package_data.STAN_PROGRAM.read_text(),
    "config_schema": package_data.CONFIG_SCHEMA.read_text(),
    "sheet_schema": package_data.PARTICIPANTS_SCHEMA.read_text(),
}, sys.stdout)
"""


def requirements(specifiers):
    return {canonicalize_name(r.name): r for r in map(Requirement, specifiers)}


def locked_versions():
    lines = (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
    pins = (line.split("==") for line in lines if "==" in line)
    return {canonicalize_name(name): version for name, version in pins}


def test_every_imported_library_is_a_declared_dependency():
    declared = set(requirements(PROJECT["dependencies"]))
    extra = set(requirements(PYSTAN_EXTRA))
    imported = third_party(package_imports())
    assert {"arviz", "jsonschema", "stan", "h5netcdf"} <= imported
    undeclared = {}
    for module in sorted(imported):
        providers = {canonicalize_name(d) for d in distributions().get(module, [])}
        assert providers, f"{module} is imported by src/mimicry but not installed"
        if not providers & (declared | extra):
            undeclared[module] = sorted(providers)
    assert not undeclared, f"imported but not in pyproject.toml: {undeclared}"
    # PyStan is the optional backend: the package imports it only where it samples.
    assert {"pystan", "httpstan"} <= extra and not {"pystan", "httpstan"} & declared


def test_dependencies_are_compatible_releases_of_the_locked_versions():
    locked = locked_versions()
    for name, requirement in requirements(
        PROJECT["dependencies"] + PYSTAN_EXTRA
    ).items():
        assert name in locked, f"{name} is not in requirements.lock"
        assert (
            str(requirement.specifier) == f"~={locked[name]}"
        ), f"pyproject.toml has {requirement}, requirements.lock {name}=={locked[name]}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a copy of the package's sources (the checkout stays clean)."""
    sources = tmp_path_factory.mktemp("sources")
    for part in ("pyproject.toml", "src"):
        source = PROJECT_ROOT / part
        if source.is_dir():
            shutil.copytree(
                source,
                sources / part,
                ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"),
            )
        else:
            shutil.copy2(source, sources / part)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(dist),
            str(sources),
        ],
        check=True,
    )
    (built,) = dist.glob("mimicry-*.whl")
    return built


def test_wheel_ships_the_stan_program_and_the_schemas(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "mimicry/bayes/stan/asymptotic_regression.stan",
        "mimicry/config/schemas/config.schema.yaml",
        "mimicry/config/schemas/participants.schema.yaml",
    } <= names


@pytest.mark.workflow
def test_installed_package_finds_its_data_without_the_checkout(wheel, tmp_path):
    """pip install of the wheel into a fresh venv (no dependencies, no network); run
    from an empty folder, the package reads its Stan program and schemas from the
    venv, the same text as the checkout's."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            str(wheel),
        ],
        check=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(python), "-c", LOCATE],
        cwd=elsewhere,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(result.stdout)
    assert found["package"].startswith(str(venv))
    assert found["stan"].startswith(str(venv))
    assert found["program"] == STAN_PROGRAM.read_text()
    assert found["config_schema"] == CONFIG_SCHEMA.read_text()
    assert found["sheet_schema"] == PARTICIPANTS_SCHEMA.read_text()
