"""Design sensitivity by simulation: the effect grid, the replicate studies, the
decision rules' error rates and power, and a real Snakemake run of the sweep."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from mimicry.bayes.synthetic import synthetic_cells
from mimicry.robustness import sensitivity
from helpers.devtools import run_snakemake
from mimicry.plots.figures import power_figure
from mimicry.simulate import counterbalanced_sessions


def with_sensitivity(config, **settings):
    changed = copy.deepcopy(config)
    changed["sensitivity"] |= settings
    return changed


@pytest.fixture(scope="module")
def design(default_config, default_participants):
    """The default study's design, its bin noise measured on one synthetic table."""
    cells = synthetic_cells(default_config, default_participants, noise_sd=0.01)
    return {
        "participants": default_participants,
        "bin_noise_sd": sensitivity.bin_noise_sd(cells, default_config["study"]),
    }


def test_effect_grid_shares_the_null_and_names_every_effect(default_config):
    config = with_sensitivity(default_config, effects={"a": [0.0, 0.1], "c": [0, 0.5]})
    grid = sensitivity.effect_grid(config)
    assert [effect.id for effect in grid] == ["zero", "a_0.1", "c_0.5"]
    reference = config["study"]["reference_group"]
    first_other = next(g for g in config["study"]["groups"] if g != reference)
    assert {(e.group, e.muscle, e.condition) for e in grid} == {
        (
            first_other,
            config["study"]["muscles"][0],
            config["study"]["conditions"][0],
        )
    }
    assert grid[0].drug_effects() == []


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"group": "placebo"}, "sensitivity.group"),
        ({"muscle": "masseter"}, "sensitivity.muscle"),
        ({"bayesian_replicates": 30, "replicates": 20}, "sensitivity.bayesian_rep"),
    ],
)
def test_settings_that_do_not_fit_the_study_name_their_key(
    default_config, settings, key
):
    with pytest.raises(sensitivity.SensitivityConfigError, match=key):
        sensitivity.effect_grid(with_sensitivity(default_config, **settings))


def test_replicates_are_reproducible_and_paired_across_effects(default_config, design):
    """The same replicate with and without an effect differs exactly in the
    effect's group x cell; another replicate differs everywhere."""
    grid = {e.id: e for e in sensitivity.effect_grid(default_config)}
    effect = grid["a_0.1"]
    null = sensitivity.replicate_cells(default_config, design, grid["zero"], 3)
    again = sensitivity.replicate_cells(default_config, design, grid["zero"], 3)
    shifted = sensitivity.replicate_cells(default_config, design, effect, 3)
    other = sensitivity.replicate_cells(default_config, design, grid["zero"], 4)
    pd.testing.assert_frame_equal(null, again)
    target = (
        (null["group"] == effect.group)
        & (null["muscle"] == effect.muscle)
        & (null["condition"] == effect.condition)
    )
    difference = shifted["y"] - null["y"]
    assert (difference[~target] == 0).all()
    # The shift of the asymptote reaches the late bins almost whole.
    late = target & (null["t"] > 5)
    assert difference[late].mean() == pytest.approx(effect.value, rel=0.15)
    assert (other["y"] != null["y"]).mean() > 0.99


@pytest.mark.workflow
def test_frequentist_rules_hold_alpha_under_the_null_and_detect_large_effects(
    default_config, design
):
    """At effect 0 each rule's detection rate is compatible with alpha (binomial
    test); power rises with the effect and is near 1 for a large one."""
    config = with_sensitivity(default_config, effects={"a": [0.0, 0.1, 0.3], "c": []})
    grid = sensitivity.effect_grid(config)
    counts = {"zero": 30, "a_0.1": 10, "a_0.3": 10}
    rows = []
    for effect in grid:
        for replicate in range(counts[effect.id]):
            cells = sensitivity.replicate_cells(config, design, effect, replicate)
            decisions = sensitivity.analyse_replicate(cells, config, effect)
            rows.append(decisions.assign(effect=effect.id, replicate=replicate))
    power = sensitivity.power_table(pd.concat(rows, ignore_index=True), grid)
    alpha = config["sensitivity"]["alpha"]
    for method, table in power.groupby("method"):
        by_effect = table.set_index("effect")
        null = by_effect.loc[0.0]
        assert stats.binomtest(null["detections"], null["replicates"], alpha).pvalue > (
            0.01
        ), method
        assert by_effect["power"].is_monotonic_increasing, method
    contrast = power[power["method"] == "contrast_1df"].set_index("effect")
    assert contrast.loc[0.3, "power"] >= 0.9
    assert contrast.loc[0.3, "power_low"] > contrast.loc[0.0, "power_high"]
    smallest = sensitivity.smallest_detectable(power, 0.8).set_index("method")
    assert smallest.loc["contrast_1df", "smallest_effect"] <= 0.3


def crossover_study(config, n_participants=8):
    """config as a two-group crossover study, and its analysed cells: the quick
    study's participants, each under both groups in counterbalanced order."""
    config = copy.deepcopy(config)
    groups = config["study"]["groups"][:2]
    config["study"] |= {"groups": groups, "design": "crossover"}
    config["sensitivity"] |= {"group": groups[1]}
    ids = [f"sub-{index:03d}" for index in range(1, n_participants + 1)]
    recordings = counterbalanced_sessions(ids, groups)
    return config, synthetic_cells(config, recordings, noise_sd=0.02)


def test_crossover_replicates_are_the_analysed_recordings_with_shared_participants(
    quick_config,
):
    """A crossover study's replicates have its participants' sessions, periods and
    sequences; without session, trial and bin noise a participant's two sessions
    are equal except in the injected effect's cell, where the session under the
    effect's group is higher; participants differ from one another."""
    config, cells = crossover_study(quick_config)
    simulation = config["simulation"]
    simulation["session_deviation"] = {"asymptote_sd": 0.0}
    simulation["trial_asymptote_sd"] = 0.0
    simulation["outlier_trials"] = {**simulation["outlier_trials"], "share": 0.0}
    design = {
        "participants": sensitivity.analysed_design(cells, "crossover"),
        "bin_noise_sd": 0.0,
    }
    recording_keys = ["participant", "group", "session", "period", "sequence"]
    config["sensitivity"] |= {"effects": {"a": [0.2], "c": []}}
    effect = sensitivity.effects_by_id(config)["a_0.2"]
    replicate = sensitivity.replicate_cells(config, design, effect, 0)
    pd.testing.assert_frame_equal(
        replicate[recording_keys].drop_duplicates(ignore_index=True),
        cells[recording_keys].drop_duplicates(ignore_index=True),
    )
    by_group = replicate.pivot_table(
        index=["participant", "muscle", "condition", "bin"], columns="group", values="y"
    )
    within = by_group[effect.group] - by_group[config["study"]["reference_group"]]
    target = (within.index.get_level_values("muscle") == effect.muscle) & (
        within.index.get_level_values("condition") == effect.condition
    )
    assert (within[~target] == 0).all()
    assert (within[target] > 0).all()
    reference = by_group[config["study"]["reference_group"]]
    assert reference.groupby(level="participant").first().nunique() == len(
        by_group.index.unique("participant")
    )


def test_crossover_decision_rules_fit_the_within_participant_models(quick_config):
    """The frequentist rules of a crossover replicate are the crossover mixed
    models' (the design read from the study); a large within-participant effect is
    detected by both and the null's replicate differs from the effect's only in its
    cell."""
    config, cells = crossover_study(quick_config)
    design = json.loads(
        json.dumps(
            {
                "participants": sensitivity.analysed_design(cells, "crossover"),
                "bin_noise_sd": sensitivity.bin_noise_sd(cells, config["study"]),
            }
        )
    )
    assert design["bin_noise_sd"] == pytest.approx(0.02, rel=0.2)
    config["sensitivity"] |= {"effects": {"a": [0.5], "c": []}}
    grid = {e.id: e for e in sensitivity.effect_grid(config)}
    decisions = {
        effect_id: sensitivity.analyse_replicate(
            sensitivity.replicate_cells(config, design, effect, 0), config, effect
        ).set_index("method")
        for effect_id, effect in grid.items()
    }
    assert decisions["a_0.5"]["detected"].all()
    assert decisions["a_0.5"]["converged"].all()
    contrast = decisions["a_0.5"].loc["contrast_1df"]
    assert 0 < contrast["low"] < contrast["estimate"] < contrast["high"]
    parallel = copy.deepcopy(config)
    parallel["study"]["design"] = "parallel"
    with pytest.raises(ValueError, match="crossover|session|participant"):
        sensitivity.analyse_replicate(
            sensitivity.replicate_cells(config, design, grid["a_0.5"], 0),
            parallel,
            grid["a_0.5"],
        )


def test_conclusions_state_each_rules_own_replicate_count(default_config):
    """The Bayesian rules run on fewer replicates than the frequentist ones; each
    sentence names the count its power rests on."""
    rows = []
    for method, replicates, detections in [
        ("contrast_1df", 20, [1, 17]),
        ("bayes_hdi_excludes_0", 4, [0, 4]),
    ]:
        for effect, detected in zip([0.0, 0.2], detections):
            rows.append(
                {
                    "parameter": "a",
                    "effect": effect,
                    "method": method,
                    "replicates": replicates,
                    "detections": detected,
                    "power": detected / replicates,
                }
            )
    smallest = sensitivity.smallest_detectable(pd.DataFrame(rows), 0.8)
    statements = sensitivity.conclusions(smallest, default_config).set_index("method")
    assert "80% of 20 replicates" in statements.loc["contrast_1df", "statement"]
    assert "80% of 4 replicates" in statements.loc["bayes_hdi_excludes_0", "statement"]


def test_power_figure_draws_the_power_table():
    power = pd.DataFrame(
        {
            "parameter": ["a"] * 4 + ["c"] * 2,
            "effect": [0.0, 0.2, 0.0, 0.2, 0.0, 0.7],
            "group": "naltrexone",
            "muscle": "ZM",
            "condition": "AngryToHappy",
            "method": ["contrast_1df"] * 2
            + ["bayes_hdi_excludes_0"] * 2
            + ["contrast_1df"] * 2,
            "replicates": 10,
            "detections": [1, 9, 0, 8, 1, 4],
        }
    )
    power["power"] = power["detections"] / power["replicates"]
    power["power_low"] = power["power"] / 2
    power["power_high"] = (power["power"] + 1) / 2
    figure, table = power_figure(power, 0.8)
    axes = figure.axes
    assert [ax.get_xlabel().split()[1] for ax in axes] == ["shift", "log"]
    drawn = {
        (ax.get_xlabel(), line.get_label()): line.get_ydata()
        for ax in axes
        for line in ax.get_lines()
        if not line.get_label().startswith("_")
    }
    assert len(table) == len(power)
    for (xlabel, label), heights in drawn.items():
        assert list(heights) in [
            list(group["power"]) for _, group in table.groupby(["parameter", "method"])
        ]
    target_lines = [
        line
        for ax in axes
        for line in ax.get_lines()
        if list(line.get_ydata()) == [0.8, 0.8]
    ]
    assert len(target_lines) == len(axes)


@pytest.mark.workflow
def test_sweep_runs_through_snakemake_one_job_per_replicate(
    workflow_copy, default_config, default_participants
):
    """A real run of the sensitivity rules on a given cells table: one job per
    effect x replicate, the drug model in the first replicate only, and the tables
    and figure the report shows."""
    cells = synthetic_cells(default_config, default_participants, noise_sd=0.01)
    (workflow_copy / "results" / "aggregate").mkdir(parents=True)
    cells.to_parquet(workflow_copy / "results" / "aggregate" / "cells.parquet")
    settings = {
        "sensitivity": {
            "replicates": 2,
            "bayesian_replicates": 1,
            "effects": {"a": [0.0, 0.3], "c": []},
            "sampler": {"chains": 1, "warmup": 100, "draws": 100},
        }
    }
    (workflow_copy / "sweep.yaml").write_text(yaml.safe_dump(settings))
    outputs = [
        "results/sensitivity/power.tsv",
        "results/sensitivity/conclusions.tsv",
        "results/figures/sensitivity.png",
    ]
    # Targets before --configfile, which takes every argument after it.
    run = run_snakemake(
        workflow_copy, *outputs, "--cores", "2", "--configfile", "sweep.yaml"
    )
    log = run.stdout + run.stderr
    assert log.count("rule sensitivity_replicate:") == 4
    assert "rule aggregate:" not in log
    power = pd.read_csv(workflow_copy / outputs[0], sep="\t")
    counts = power.set_index(["effect", "method"])["replicates"]
    assert set(counts.index.get_level_values("method")) == set(sensitivity.METHODS)
    for method in sensitivity.FREQUENTIST_METHODS:
        assert counts.loc[(0.0, method)] == counts.loc[(0.3, method)] == 2
    assert counts.loc[(0.3, "bayes_hdi_excludes_0")] == 1
    assert np.isfinite(power["power_low"]).all()
    conclusions = pd.read_csv(workflow_copy / outputs[1], sep="\t")
    assert len(conclusions) == 3 and conclusions["statement"].str.len().min() > 50
    assert (workflow_copy / outputs[2]).stat().st_size > 0
