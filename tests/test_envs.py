"""The conda environments of the rules: present, parseable, pinned like the lock file,
and providing every library the rule's script imports (read statically: nothing is
installed or run)."""

import re

import pytest
import yaml
from helpers.imports import distributions, script_imports, third_party

from helpers.devtools import PROJECT_ROOT

# conda-forge names that differ from the PyPI names in requirements.lock
CONDA_TO_PYPI = {"mne-base": "mne"}
# packages that exist only on conda-forge (CmdStan itself) or are the interpreter
NOT_IN_LOCK = {"python", "cmdstan"}
# A rule that samples the Stan program needs one backend: mimicry.bayes.backend imports
# cmdstanpy (which runs conda-forge's CmdStan) or PyStan inside the functions that sample.
STAN_BACKENDS = ({"cmdstanpy", "cmdstan"}, {"pystan"})


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


def rule_scripts():
    """Rule -> (its conda environment file, its script, whether it reads the Stan
    program), from the rule files' text."""
    found = {}
    for rules in sorted((PROJECT_ROOT / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule |checkpoint )", rules.read_text(), flags=re.M):
            name = re.match(r"(?:rule|checkpoint) (\w+):", block)
            env = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
            script = re.search(r'script:\s*\n\s*"([^"]+)"', block)
            if name:
                assert (
                    env and script
                ), f"{rules.name}: rule {name[1]} lacks conda: or script:"
                found[name[1]] = (
                    (rules.parent / env[1]).resolve(),
                    (rules.parent / script[1]).resolve(),
                    "program=STAN_PROGRAM" in block,
                )
    return found


RULE_SCRIPTS = rule_scripts()


def conda_packages(env):
    spec = yaml.safe_load(env.read_text())
    return {dependency.partition("=")[0] for dependency in spec["dependencies"]}


def conda_names(module):
    """The conda-forge names of the distributions that provide an import name."""
    pypi_to_conda = {pypi: conda for conda, pypi in CONDA_TO_PYPI.items()}
    names = {name.lower() for name in distributions().get(module, [module])}
    return {pypi_to_conda.get(name, name) for name in names}


def test_every_rule_runs_a_script_in_an_environment():
    assert len(RULE_SCRIPTS) > 25
    for rule, (env, script, _) in RULE_SCRIPTS.items():
        assert env.is_file() and script.is_file(), rule


@pytest.mark.parametrize("rule", sorted(RULE_SCRIPTS))
def test_environment_provides_what_the_rule_script_imports(rule):
    """The script's imports and, transitively, the module-level imports of the mimicry
    modules it loads. Snakemake itself and mimicry come from the import path Snakemake
    hands to each script, not from the environment."""
    env, script, _ = RULE_SCRIPTS[rule]
    provided = conda_packages(env)
    imported = third_party(script_imports(script)) - {"snakemake"}
    missing = {
        module: sorted(conda_names(module))
        for module in sorted(imported)
        if not conda_names(module) & provided
    }
    assert not missing, (
        f"rule {rule} ({script.name}) imports what {env.name} does not provide "
        f"(import name: conda names): {missing}"
    )


def test_rules_that_sample_the_stan_program_have_a_backend():
    sampling = {r: v for r, v in RULE_SCRIPTS.items() if v[2]}
    assert {"fit_model", "prior_predictive"} <= set(sampling)
    for rule, (env, _, _) in sampling.items():
        provided = conda_packages(env)
        assert any(backend <= provided for backend in STAN_BACKENDS), (
            f"rule {rule} samples the Stan program, but {env.name} has neither "
            f"{' nor '.join('+'.join(sorted(b)) for b in STAN_BACKENDS)}"
        )
