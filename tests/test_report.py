"""The report's methods text and captions follow the run's config.

The captions are rendered by the real ``snakemake --report`` (through
``mimicry.reporting.report``) on finished tiny runs, so Jinja, the rule params and docutils all
take part; expected phrases are derived here from the config.
"""

import html
import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from mimicry.reporting import methods
from helpers.devtools import PROJECT_ROOT, job_counts, run_snakemake
from mimicry.config.validation import ConfigError, check_config, load_config
from mimicry.package_data import STAN_PROGRAM
from mimicry.reporting.report import write_report

QUICK = "config/quick.yaml"
PARTICIPANTS = ["placebo", "naltrexone", "amisulpride"] * 2
TINY = {
    "participants": "tiny.tsv",
    "simulation": {
        "trials_per_condition": 6,
        "flawed_participants": {"flat_channel": [], "too_few_trials": []},
    },
}
# The clean simulation (every participant mimics), so that six participants show
# the sign of the curves below.
CLEAN_SIMULATION = yaml.safe_load((PROJECT_ROOT / "config" / "clean.yaml").read_text())[
    "simulation"
]
# Angry, Happy, Neutral by position, the contrast named the other way round.
OTHER = {
    "study": {
        "conditions": ["Angry", "Happy", "Neutral"],
        "mimicry_contrast": ["Happy", "Angry"],
        "title": "Mimicry in *another* study",
        "reference": None,
    },
    "simulation": {
        **CLEAN_SIMULATION,
        "cells": {
            muscle: {
                condition: {"a": a, "b": 0.0, "c": 0.5}
                for condition, a in zip(["Angry", "Happy", "Neutral"], asymptotes)
            }
            for muscle, asymptotes in {
                "ZM": (-0.08, 0.15, 0.0),
                "CS": (0.15, -0.10, 0.0),
            }.items()
        },
    },
    "preprocess": {"mains_hz": None},
    "frequentist": {"random_effects": "intercept"},
    "models": {"likelihood": "normal", "rope": {"a_share_of_mimicry": 0.4}},
}
DEFAULT_TARGETS = (
    "results/report/workflow.rst",
    "results/figures/fig1.png",
    "results/aggregate/qc.tsv",
)
OTHER_TARGETS = (*DEFAULT_TARGETS, "results/stats/lrt.tsv")


def plain(text):
    """Words of an HTML or rst text, without markup."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", text)).replace("*", "")
    return " ".join(text.split())


def report_texts(path):
    """The rendered workflow description and each file's caption, as plain text."""
    page = path.read_text()
    decoder = json.JSONDecoder()
    start = page.index("var workflow_desc = ") + len("var workflow_desc = ")
    description, _ = decoder.raw_decode(page, start)
    captions = {}
    for match in re.finditer(r'"filename": "([^"]+)"', page):
        at = page.index('"caption": ', match.end()) + len('"caption": ')
        captions[match.group(1)] = plain(decoder.raw_decode(page, at)[0])
    return plain(description), captions


def run_and_report(workdir, overrides, targets):
    """Run the targets of the tiny study with the overrides; the config and report."""
    sheet = "participant_id\tgroup\n" + "".join(
        f"sub-{i:03d}\t{group}\n" for i, group in enumerate(PARTICIPANTS, 1)
    )
    (workdir / "tiny.tsv").write_text(sheet)
    configs = [QUICK, "tiny.yaml"]
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    if overrides:
        (workdir / "other.yaml").write_text(yaml.safe_dump(overrides))
        configs.append("other.yaml")
    run_snakemake(workdir, "--cores", "2", *targets, "--configfile", *configs)
    write_report("report.html", (*targets, "--configfile", *configs), cwd=workdir)
    config = load_config(
        workdir / "config/config.yaml", *(workdir / c for c in configs)
    )
    return config, configs, *report_texts(workdir / "report.html")


def contrast(config):
    study = config["study"]
    return study["mimicry_contrast"] or study["conditions"][:2]


def assert_text_follows_config(config, description, captions):
    study, preprocess = config["study"], config["preprocess"]
    # The front page's rst heading: the title over an underline of "=".
    page = re.sub(r"^=+$", "", methods.workflow_description(config), flags=re.M)
    assert description == plain(page)
    assert description.startswith(plain(study["title"]) + " ")
    if study["reference"]:
        assert f"Study: {plain(study['reference'])}." in description
    else:
        assert "Study:" not in description and "Korb" not in description
    first, second = contrast(config)
    label = f"{first} - {second}"
    fig1 = captions["fig1.png"]
    assert label in description and label in fig1
    assert methods.words(study["conditions"]) in fig1
    for name in (*study["conditions"], *study["muscles"], *study["groups"]):
        assert name in description and name in fig1, name
    notches = (
        [
            preprocess["mains_hz"] * k
            for k in range(1, preprocess["notch_harmonics"] + 1)
        ]
        if preprocess["mains_hz"] is not None
        else []
    )
    if notches:
        assert (
            f"notched at {methods.words(f'{f:g}' for f in notches)} Hz" in description
        )
        assert "no notch" not in description
    else:
        assert "no notch filter (preprocess.mains_hz: null)" in description
        assert "notched" not in description
    low, high = preprocess["band_hz"]
    assert f"band-passed {low:g}-{high:g} Hz" in description
    for structure, text in methods.RANDOM_EFFECTS.items():
        chosen = structure == config["frequentist"]["random_effects"]
        stated = f"{text} (frequentist.random_effects: {structure})"
        assert (stated in description) == chosen, structure
    for likelihood, text in methods.LIKELIHOODS.items():
        chosen = likelihood == config["models"]["likelihood"]
        assert (f"{text} (models.likelihood: {likelihood})" in description) == chosen
    for rule in preprocess["rejection"]["rules"]:
        assert f"{rule}:" in description
    rope = config["models"]["rope"]
    assert f"+/- {rope['a_share_of_mimicry']:.0%} of the" in description
    stan = config["stan"]
    assert f"{stan['chains']} chains of {stan['warmup']} warm-up" in description


@pytest.mark.workflow
def test_default_config_gives_the_default_text(workflow_copy):
    config, _, description, captions = run_and_report(
        workflow_copy, None, DEFAULT_TARGETS
    )
    assert config["study"]["mimicry_contrast"] is None
    assert description.startswith("Reanalysis of Korb et al. (2023) Study: Korb")
    assert_text_follows_config(config, description, captions)
    assert "AngryToHappy - HappyToAngry" in captions["fig1.png"]


@pytest.mark.workflow
def test_other_config_changes_captions_and_names_its_contrast(workflow_copy):
    config, configs, description, captions = run_and_report(
        workflow_copy, OTHER, OTHER_TARGETS
    )
    assert_text_follows_config(config, description, captions)
    assert "Happy - Angry" in captions["fig1.png"]
    assert "Angry - Happy" not in description + captions["fig1.png"]
    stats = captions["mimicry_contrasts.tsv"]
    assert stats == plain(methods.frequentist(config) + ".")
    assert methods.RANDOM_EFFECTS["intercept"] in stats and "Happy - Angry" in stats
    assert methods.RANDOM_EFFECTS["condition_shape"] not in stats

    # The table's contrast has the sign the data imply: Happy minus Angry per group.
    results = workflow_copy / "results"
    cells = pd.read_parquet(results / "aggregate" / "cells.parquet")
    means = cells.groupby(["muscle", "group", "participant", "condition"])["y"].mean()
    means = means.unstack()
    expected = (means["Happy"] - means["Angry"]).groupby(["muscle", "group"]).mean()
    table = pd.read_csv(results / "stats" / "mimicry_contrasts.tsv", sep="\t")
    table = table.set_index(["muscle", "group"])
    assert set(table["contrast"]) == {"Happy - Angry"}
    np.testing.assert_allclose(table["estimate"], expected[table.index], atol=1e-8)
    assert (table.loc["ZM", "estimate"] > 0).all()
    assert (table.loc["CS", "estimate"] < 0).all()

    # Another contrast re-runs only what names it, no simulation or preprocessing.
    (workflow_copy / "contrast.yaml").write_text(
        yaml.safe_dump({"study": {"mimicry_contrast": ["Neutral", "Happy"]}})
    )
    dry_run = run_snakemake(
        workflow_copy,
        "-n",
        *OTHER_TARGETS,
        "--configfile",
        *configs,
        "contrast.yaml",
    )
    ran = job_counts(dry_run.stdout + dry_run.stderr)
    assert ran == {"mixed_models": 1, "figure1": 1, "report_methods": 1}
    # Another title and reference re-run only the front page.
    (workflow_copy / "title.yaml").write_text(
        yaml.safe_dump({"study": {"title": "Renamed", "reference": "Someone (2024)"}})
    )
    dry_run = run_snakemake(
        workflow_copy, "-n", *OTHER_TARGETS, "--configfile", *configs, "title.yaml"
    )
    assert job_counts(dry_run.stdout + dry_run.stderr) == {"report_methods": 1}


def test_the_stan_program_states_the_priors_the_methods_name():
    program = STAN_PROGRAM.read_text()
    code = " ".join(re.sub(r"//.*", "", program).split())
    for prior in (
        *methods.PRIORS,
        methods.STUDENT_T_PRIOR,
        methods.RATE_DEVIATION_PRIOR,
        *methods.CROSSOVER_PRIORS,
    ):
        name, distribution = prior.split(" ~ ")
        assert re.search(rf"{name}\)? ~ {re.escape(distribution)};", code), prior


@pytest.mark.parametrize(
    "conditions, contrast, message",
    [
        (["Angry", "Happy"], ["Happy", "Sad"], r"\['Sad'\] not in study.conditions"),
        (["Angry", "Happy"], ["Happy", "Happy"], "names one condition twice"),
        (["Happy"], None, "needs at least two conditions"),
    ],
)
def test_config_check_names_a_bad_mimicry_contrast(
    default_config, conditions, contrast, message
):
    config = {
        **default_config,
        "source": {**default_config["source"], "kind": "local"},
        "study": {
            **default_config["study"],
            "conditions": conditions,
            "mimicry_contrast": contrast,
        },
    }
    with pytest.raises(ConfigError, match=message):
        check_config(config, [])
