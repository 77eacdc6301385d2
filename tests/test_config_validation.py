"""Config validation: hints for misspelled keys, numbers given as text on the command line.

Unit tests call study.validate_config; the real Snakemake runs check that the workflow
stops with the same hint before any job and that nested --config numbers work.
"""

import copy
import re

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config

from mimicry.config.schema import load_schema
from helpers.devtools import PROJECT_ROOT, job_counts, run_snakemake
from mimicry.config.validation import ConfigError, load_config, validate_config
from mimicry.package_data import CONFIG_SCHEMA

SCHEMA = load_schema(CONFIG_SCHEMA)
CELL = {"a": 0.1, "b": 0.0, "c": 0.5}
EFFECT = {
    "group": "naltrexone",
    "muscle": "ZM",
    "condition": "AngryToHappy",
    "parameter": "a",
    "value": 0.1,
}


@pytest.fixture(scope="module")
def config_file():
    with open(PROJECT_ROOT / "config" / "config.yaml") as handle:
        return yaml.safe_load(handle)


def validated(config_file, overrides):
    config = copy.deepcopy(config_file)
    update_config(config, overrides)
    validate_config(config, CONFIG_SCHEMA)
    return config


MISSPELLED = {
    "top level": ({"sed": 3}, "sed", "seed"),
    "nested section": (
        {"models": {"diagnostics": {"max_rhatt": 1.1}}},
        "models.diagnostics.max_rhatt",
        "models.diagnostics.max_rhat",
    ),
    "array item": (
        {"simulation": {"drug_effects": [{**EFFECT, "grup": "placebo"}]}},
        "simulation.drug_effects[0].grup",
        "simulation.drug_effects[0].group",
    ),
    "mapping entry": (
        {"simulation": {"cells": {"ZM": {"AngryToHappy": {**CELL, "cc": 1.0}}}}},
        "simulation.cells.ZM.AngryToHappy.cc",
        "simulation.cells.ZM.AngryToHappy.c",
    ),
}


@pytest.mark.parametrize("case", MISSPELLED, ids=list(MISSPELLED))
def test_unknown_key_at_any_depth_names_the_closest_known_key(config_file, case):
    overrides, key, suggestion = MISSPELLED[case]
    expected = f"config key '{key}' is not known; did you mean '{suggestion}'?"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        validated(config_file, overrides)


def test_unknown_key_without_a_close_match_lists_the_known_keys(config_file):
    with pytest.raises(ConfigError) as error:
        validated(config_file, {"stan": {"zzzzzz": 1}})
    message = str(error.value)
    assert message.startswith("config key 'stan.zzzzzz' is not known; known keys here:")
    assert all(key in message for key in SCHEMA["properties"]["stan"]["properties"])


def test_every_unknown_key_is_reported_at_once(config_file):
    with pytest.raises(ConfigError) as error:
        validated(config_file, {"sed": 1, "stan": {"chainz": 2}})
    assert str(error.value).splitlines() == [
        "config key 'sed' is not known; did you mean 'seed'?",
        "config key 'stan.chainz' is not known; did you mean 'stan.chains'?",
    ]


def test_valid_config_gets_the_schema_defaults(config_file):
    config = validated(config_file, {})
    stan = SCHEMA["properties"]["stan"]["properties"]
    assert config["stan"] == {name: key["default"] for name, key in stan.items()}


def test_load_config_merges_nested_mappings_like_snakemake():
    files = [PROJECT_ROOT / "config" / name for name in ("config.yaml", "quick.yaml")]
    base, quick = (yaml.safe_load(path.read_text()) for path in files)
    config = load_config(*files)
    assert config["simulation"]["cells"] == base["simulation"]["cells"]
    trials = quick["simulation"]["trials_per_condition"]
    assert config["simulation"]["trials_per_condition"] == trials
    assert trials != base["simulation"]["trials_per_condition"]


# Values as Snakemake's --config delivers them inside a mapping: text.
TEXT_NUMBERS = {
    "integer": ({"stan": {"chains": "2"}}, ("stan", "chains"), 2),
    "number": ({"stan": {"adapt_delta": "0.95"}}, ("stan", "adapt_delta"), 0.95),
    "integer or null": ({"stan": {"seed": "7"}}, ("stan", "seed"), 7),
    "array items": (
        {"preprocess": {"band_hz": ["20", "99.5"]}},
        ("preprocess", "band_hz"),
        [20, 99.5],
    ),
    "oneOf integer": (
        {"preprocess": {"notch_harmonics": "7"}},
        ("preprocess", "notch_harmonics"),
        7,
    ),
    "oneOf array": (
        {"preprocess": {"notch_harmonics": ["1", "3"]}},
        ("preprocess", "notch_harmonics"),
        [1, 3],
    ),
    "mapping entry": (
        {"simulation": {"cells": {"ZM": {"AngryToHappy": {"a": "-0.2"}}}}},
        ("simulation", "cells", "ZM", "AngryToHappy", "a"),
        -0.2,
    ),
    "boolean": ({"simulation": {"keep_raw": "true"}}, ("simulation", "keep_raw"), True),
    "boolean in capitals": (
        {"recording": {"check_channels": "False"}},
        ("recording", "check_channels"),
        False,
    ),
    "null": (
        {"models": {"predictive_draws": "null"}},
        ("models", "predictive_draws"),
        None,
    ),
    "null as ~": ({"preprocess": {"mains_hz": "~"}}, ("preprocess", "mains_hz"), None),
}


def value_at(config, path):
    for key in path:
        config = config[key]
    return config


@pytest.mark.parametrize("case", TEXT_NUMBERS, ids=list(TEXT_NUMBERS))
def test_text_spelling_a_number_becomes_that_number(config_file, case):
    overrides, path, expected = TEXT_NUMBERS[case]
    value = value_at(validated(config_file, overrides), path)
    # repr tells 2 from 2.0: an integer key gets an int.
    assert repr(value) == repr(expected)


@pytest.mark.parametrize("text", ["2.5", "two", "2 "])
def test_text_that_is_not_an_integer_is_still_rejected(config_file, text):
    with pytest.raises(WorkflowError, match=re.escape(f"'{text}' is not of type")):
        validated(config_file, {"stan": {"chains": text}})


def test_text_stays_text_where_the_schema_accepts_text(config_file):
    config = validated(
        config_file, {"channels": {"ZM": "5"}, "stan": {"cache_dir": "1"}}
    )
    assert (config["channels"]["ZM"], config["stan"]["cache_dir"]) == ("5", "1")


# --- real Snakemake runs ------------------------------------------------------------


@pytest.mark.workflow
@pytest.mark.parametrize(
    "config_args, expected",
    [
        (["--config", "sed=3"], "config key 'sed' is not known; did you mean 'seed'?"),
        (
            ["--config", "stan={chainz: 3}"],
            "config key 'stan.chainz' is not known; did you mean 'stan.chains'?",
        ),
        (
            ["--configfile", "typo.yaml"],
            "config key 'models.diagnostics.max_rhatt' is not known; "
            "did you mean 'models.diagnostics.max_rhat'?",
        ),
    ],
    ids=["top level", "nested --config", "nested --configfile"],
)
def test_misspelled_key_stops_the_dry_run_with_a_hint(
    workflow_copy, config_args, expected
):
    typo = {"models": {"diagnostics": {"max_rhatt": 1.1}}}
    (workflow_copy / "typo.yaml").write_text(yaml.safe_dump(typo))
    result = run_snakemake(
        workflow_copy, "-n", "--cores", "2", *config_args, check=False
    )
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr
    assert not (workflow_copy / "resources").exists()


def fit_threads(output):
    return re.findall(r"rule fit_model:\n(?:    .*\n)*?    threads: (\d+)", output)


@pytest.mark.workflow
def test_nested_numbers_on_the_command_line_reach_the_jobs(workflow_copy):
    chains = SCHEMA["properties"]["stan"]["properties"]["chains"]["default"] - 1
    result = run_snakemake(
        workflow_copy, "-n", "--cores", "8", "--config", f"stan={{chains: {chains}}}"
    )
    # A fit runs its chains in parallel: one thread per chain.
    assert job_counts(result.stdout)["fit_model"] == 2
    assert fit_threads(result.stdout) == [str(chains)] * 2


@pytest.mark.workflow
def test_nested_text_that_is_not_a_number_stops_the_dry_run(workflow_copy):
    result = run_snakemake(
        workflow_copy,
        "-n",
        "--cores",
        "2",
        "--config",
        "stan={chains: many}",
        check=False,
    )
    assert result.returncode != 0
    assert "'many' is not of type 'integer'" in result.stdout + result.stderr
