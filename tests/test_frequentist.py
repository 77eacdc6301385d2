"""Frequentist mixed models: exact checks on balanced data, recovery on simulated studies.

Every test fits real models (statsmodels MixedLM) on synthetic cells tables drawn from
the simulator's ground truth; the independent references are closed forms and a
likelihood maximised here with numpy and scipy.
"""

import logging

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from mimicry.asymptotic import binned_log_ratio
from mimicry.bayes.synthetic import balanced_participants, synthetic_cells
from mimicry.frequentist import (
    FULL_MODEL_TERMS,
    TABLE_NAMES,
    design_matrix,
    fit_mixed_models,
    write_tables,
)
from mimicry.simulate import group_cell_parameters
from mimicry.study import deep_merge

BIN_WIDTH_S = 0.5  # synthetic_cells' default
# Realistic residual noise of a participant's mean over ~40 trials in one bin.
NOISE_SD = 0.07
NULL_SEEDS = (1, 2, 3, 4, 5)
EFFECT_SEEDS = (1, 2, 3)
N_PARTICIPANTS = 60  # 20 per group: enough power, fits well under a second each
# A drug that raises the smile (ZM) asymptote to happy faces by 0.1 log units.
INJECTED_EFFECT = {
    "group": "naltrexone",
    "muscle": "ZM",
    "condition": "AngryToHappy",
    "parameter": "a",
    "value": 0.1,
}
# GLS equals OLS for a saturated fixed part on a balanced design, so the only
# difference from the raw cell means is floating-point round-off.
EXACT = 1e-8
# Two ML optimisers (statsmodels' and scipy's BFGS here) agree on the maximum
# log-likelihood (about 900 here) to within 1e-6 and on the variances to within 2e-4
# relative (the likelihood is flat near its peak); the tolerances leave a 5-10x margin.
LOGLIK_TOLERANCE = 1e-5
VARIANCE_RELATIVE_TOLERANCE = 1e-3
# Recovered contrasts must lie within this many standard errors of the truth; the
# runs are deterministic, so this is a check of bias, not a coin toss.
RECOVERY_SE = 3.5


def study_arguments(config):
    study = config["study"]
    return {
        "groups": study["groups"],
        "reference_group": study["reference_group"],
        "conditions": study["conditions"],
    }


def simulated_cells(config, seed, n_participants, muscles=None):
    """Cells of a study drawn with this seed (participants' deviations and noise)."""
    config = deep_merge(config, {"seed": seed})
    participants = balanced_participants(config["study"]["groups"], n_participants)
    cells = synthetic_cells(
        config,
        participants,
        bin_width_s=BIN_WIDTH_S,
        noise_sd=NOISE_SD,
        noise_seed=seed,
    )
    return cells if muscles is None else cells[cells["muscle"].isin(muscles)]


def true_mimicry(config, group, muscle):
    """Time-averaged first-minus-second condition difference of the population curve."""
    simulation, study = config["simulation"], config["study"]
    edges = np.arange(0.0, simulation["response_s"] + 1e-9, BIN_WIDTH_S)
    cells = group_cell_parameters(simulation, study, group)[muscle]
    first, second = (
        binned_log_ratio(edges, **cells[condition]).mean()
        for condition in study["conditions"][:2]
    )
    return first - second


def row(table, **keys):
    selected = table.loc[(table[list(keys)] == pd.Series(keys)).all(axis=1)]
    assert len(selected) == 1, keys
    return selected.iloc[0]


# --- exact checks on a balanced study --------------------------------------------


@pytest.fixture(scope="module", params=["condition", "intercept"])
def balanced_fit(request, default_config):
    """One muscle of a balanced 30-participant study and its tables."""
    cells = simulated_cells(default_config, 7, 30, muscles=["ZM"])
    tables = fit_mixed_models(
        cells, **study_arguments(default_config), random_effects=request.param
    )
    return request.param, cells, tables


def participant_covariance(random_effects, n_effects):
    """G from the random_effects table (rows in combinations-with-replacement order)."""
    estimates = random_effects.loc[
        random_effects["component"] != "var(residual)", "estimate"
    ].to_numpy()
    covariance = np.zeros((n_effects, n_effects))
    covariance[np.triu_indices(n_effects)] = estimates
    return covariance + np.triu(covariance, 1).T


def random_design(structure, conditions, n_bins):
    """Z of one participant whose rows are sorted by condition, then bin."""
    if structure == "intercept":
        return np.ones((len(conditions) * n_bins, 1))
    return np.kron(np.eye(len(conditions)), np.ones((n_bins, 1)))


def test_saturated_model_reproduces_raw_cell_means(balanced_fit, default_config):
    _, cells, tables = balanced_fit
    study = default_config["study"]
    reference = study["reference_group"]
    levels = {
        "group": [reference] + [g for g in study["groups"] if g != reference],
        "condition": study["conditions"],
        "bin": sorted(cells["bin"].unique()),
    }
    raw = cells.groupby(["group", "condition", "bin"])["y"].mean().reset_index()
    fixed = tables["fixed_effects"].set_index("term")["estimate"]
    design = design_matrix(raw, FULL_MODEL_TERMS, levels)
    np.testing.assert_allclose(
        design[fixed.index].to_numpy() @ fixed.to_numpy(), raw["y"], rtol=0, atol=EXACT
    )


def test_contrasts_match_closed_forms(balanced_fit, default_config):
    """Estimates are raw differences; SEs follow from the fitted covariance."""
    structure, cells, tables = balanced_fit
    first, second = default_config["study"]["conditions"][:2]
    reference = default_config["study"]["reference_group"]
    n_bins = cells["bin"].nunique()
    per_participant = (
        cells.groupby(["participant", "group", "condition"])["y"].mean().unstack()
    )
    difference = per_participant[first] - per_participant[second]
    n_per_group = difference.groupby("group").size()

    # Var of one participant's time-averaged difference: w' (Z G Z' + s2 I) w.
    random_effects = tables["random_effects"]
    z = random_design(structure, [first, second], n_bins)
    residual = row(random_effects, component="var(residual)")["estimate"]
    covariance = z @ participant_covariance(random_effects, z.shape[1]) @ z.T
    covariance += residual * np.eye(len(z))
    weights = np.repeat([1.0, -1.0], n_bins) / n_bins
    variance = weights @ covariance @ weights

    mimicry = tables["mimicry_contrasts"].set_index("group")
    raw_mimicry = difference.groupby("group").mean()
    np.testing.assert_allclose(
        mimicry["estimate"], raw_mimicry[mimicry.index], rtol=0, atol=EXACT
    )
    expected_se = np.sqrt(variance / n_per_group[mimicry.index])
    np.testing.assert_allclose(mimicry["se"], expected_se, rtol=1e-6)

    drug = tables["drug_contrasts"].set_index("group")
    np.testing.assert_allclose(
        drug["estimate"],
        raw_mimicry[drug.index] - raw_mimicry[reference],
        rtol=0,
        atol=EXACT,
    )
    np.testing.assert_allclose(
        drug["se"],
        np.hypot(mimicry.loc[drug.index, "se"], mimicry.loc[reference, "se"]),
        rtol=1e-6,
    )


def cell_indicators(cells, factors):
    """One indicator column per observed combination of the factors."""
    return pd.get_dummies(cells[factors].astype(str).agg("|".join, axis=1)).to_numpy(
        float
    )


def independent_ml(y, x, z, participant_groups):
    """Maximum Gaussian log-likelihood of y_p ~ N(X_p b, s2 (Z R Z' + I)), by scipy.

    Rows come in equal blocks, one per participant (participant_groups: each block's
    group), and X_p depends only on the participant's group. On such a balanced design
    the likelihood needs only each group's sum of y_p and the cross-product of all y_p,
    so every evaluation is a few block-sized matrix products. b and s2 are profiled out in closed
    form (a least-squares solve, so a rank-deficient X is fine); R = L L' with L lower
    triangular is what scipy optimises. Returns the log-likelihood, the participant
    covariance s2 R and the residual variance s2.
    """
    n_participants, n_rows = len(participant_groups), len(y)
    block = n_rows // n_participants
    y_blocks = y.reshape(n_participants, block)
    x_blocks = x.reshape(n_participants, block, x.shape[1])
    designs, sums, counts = [], [], []
    for group in np.unique(participant_groups):
        members = participant_groups == group
        assert (x_blocks[members] == x_blocks[members][0]).all()
        designs.append(x_blocks[members][0])
        sums.append(y_blocks[members].sum(axis=0))
        counts.append(members.sum())
    cross_product = y_blocks.T @ y_blocks
    lower = np.tril_indices(z.shape[1])

    def relative_covariance(theta):
        factor = np.zeros((z.shape[1], z.shape[1]))
        factor[lower] = theta
        return factor @ factor.T

    def profile(theta):
        covariance = z @ relative_covariance(theta) @ z.T + np.eye(block)
        precision = np.linalg.inv(covariance)
        information = sum(
            n * design.T @ precision @ design for n, design in zip(counts, designs)
        )
        score = sum(
            design.T @ precision @ total for design, total in zip(designs, sums)
        )
        beta = np.linalg.lstsq(information, score, rcond=None)[0]
        residual = (np.sum(precision * cross_product) - score @ beta) / n_rows
        log_det = n_participants * np.linalg.slogdet(covariance)[1]
        loglik = -0.5 * (log_det + n_rows * (np.log(2 * np.pi * residual) + 1))
        return loglik, residual

    start = 0.5 * np.eye(z.shape[1])[lower]
    fit = optimize.minimize(
        lambda theta: -profile(theta)[0], start, method="BFGS", options={"gtol": 1e-6}
    )
    loglik, residual = profile(fit.x)
    return loglik, residual * relative_covariance(fit.x), residual


def test_likelihoods_and_lrt_match_an_independent_ml_fit(balanced_fit):
    """Same likelihoods from scipy with a cell-indicator parametrisation of X."""
    structure, cells, tables = balanced_fit
    cells = cells.sort_values(["participant", "condition", "bin"])
    participant_groups = (
        cells.groupby("participant", sort=False)["group"].first().to_numpy()
    )
    conditions = sorted(cells["condition"].unique())
    z = random_design(structure, conditions, cells["bin"].nunique())
    y = cells["y"].to_numpy()
    full_x = cell_indicators(cells, ["group", "condition", "bin"])
    # Without drug x condition: group x bin and condition x bin cells together span
    # exactly the model without the group:condition and group:condition:bin terms.
    reduced_x = np.hstack(
        [
            cell_indicators(cells, ["group", "bin"]),
            cell_indicators(cells, ["condition", "bin"]),
        ]
    )
    full_loglik, participant, residual = independent_ml(
        y, full_x, z, participant_groups
    )
    reduced_loglik, _, _ = independent_ml(y, reduced_x, z, participant_groups)

    lrt = row(tables["lrt"], test="drug_x_condition")
    assert lrt["loglik_full"] == pytest.approx(full_loglik, abs=LOGLIK_TOLERANCE)
    assert lrt["loglik_reduced"] == pytest.approx(reduced_loglik, abs=LOGLIK_TOLERANCE)
    assert lrt["chi2"] == pytest.approx(
        2 * (full_loglik - reduced_loglik), abs=2 * LOGLIK_TOLERANCE
    )
    assert lrt["df"] == np.linalg.matrix_rank(full_x) - np.linalg.matrix_rank(reduced_x)
    random_effects = tables["random_effects"]
    np.testing.assert_allclose(
        participant_covariance(random_effects, z.shape[1]),
        participant,
        rtol=VARIANCE_RELATIVE_TOLERANCE,
        atol=VARIANCE_RELATIVE_TOLERANCE * residual,
    )
    assert row(random_effects, component="var(residual)")["estimate"] == pytest.approx(
        residual, rel=VARIANCE_RELATIVE_TOLERANCE
    )
    assert tables["lrt"]["converged"].all()


# --- recovery on simulated studies -----------------------------------------------


@pytest.fixture(scope="module")
def null_study_fits(default_config):
    """Tables of the default (no drug effect) study for each of NULL_SEEDS."""
    return {
        seed: fit_mixed_models(
            simulated_cells(default_config, seed, N_PARTICIPANTS),
            **study_arguments(default_config),
        )
        for seed in NULL_SEEDS
    }


def test_null_drug_effect_is_not_significant_in_most_seeds(null_study_fits):
    # Observed: ZM p > 0.05 in 4 of 5 seeds (seed 2: p = 0.03), CS in 5 of 5.
    for muscle in ("ZM", "CS"):
        p_values = [
            row(tables["lrt"], muscle=muscle, test="drug_x_condition")["p"]
            for tables in null_study_fits.values()
        ]
        assert sum(p > 0.05 for p in p_values) >= 4, (muscle, p_values)


def test_mimicry_is_clearly_significant(null_study_fits):
    signs = {"ZM": 1, "CS": -1}  # ZM rises to happy faces, CS to angry ones
    for tables in null_study_fits.values():
        lrt = tables["lrt"]
        assert (lrt.loc[lrt["test"] == "condition", "p"] < 1e-6).all()
        contrasts = tables["mimicry_contrasts"]
        assert (contrasts["p"] < 1e-6).all()
        assert (np.sign(contrasts["estimate"]) == contrasts["muscle"].map(signs)).all()
        assert all(table["converged"].all() for table in tables.values())


def test_mimicry_contrasts_recover_the_truth(null_study_fits, default_config):
    for tables in null_study_fits.values():
        for contrast in tables["mimicry_contrasts"].itertuples():
            truth = true_mimicry(default_config, contrast.group, contrast.muscle)
            assert abs(contrast.estimate - truth) < RECOVERY_SE * contrast.se


@pytest.mark.parametrize("seed", EFFECT_SEEDS)
def test_injected_drug_effect_is_detected(default_config, seed):
    config = deep_merge(
        default_config, {"simulation": {"drug_effects": [INJECTED_EFFECT]}}
    )
    cells = simulated_cells(config, seed, N_PARTICIPANTS, muscles=["ZM"])
    tables = fit_mixed_models(cells, **study_arguments(config))
    assert row(tables["lrt"], test="drug_x_condition")["p"] < 0.05
    drug = row(tables["drug_contrasts"], group="naltrexone")
    truth = true_mimicry(config, "naltrexone", "ZM") - true_mimicry(
        config, "placebo", "ZM"
    )
    assert drug["p"] < 0.05
    assert abs(drug["estimate"] - truth) < RECOVERY_SE * drug["se"]


# --- tables, determinism and logging ---------------------------------------------


@pytest.fixture(scope="module")
def small_cells(quick_config):
    return simulated_cells(quick_config, 3, 12, muscles=["CS"])


def test_tables_are_deterministic_and_written(
    small_cells, quick_config, tmp_path, caplog
):
    arguments = study_arguments(quick_config)
    with caplog.at_level(logging.INFO, logger="mimicry.frequentist"):
        tables = fit_mixed_models(small_cells, **arguments)
    fit_lines = [
        r.getMessage() for r in caplog.records if "fixed effects" in r.getMessage()
    ]
    assert len(fit_lines) == 4 and all("converged" in line for line in fit_lines)

    shuffled = small_cells.sample(frac=1.0, random_state=0)
    again = fit_mixed_models(shuffled, **arguments)
    assert set(tables) == set(TABLE_NAMES)
    for name in TABLE_NAMES:
        pd.testing.assert_frame_equal(tables[name], again[name])
        assert "converged" in tables[name].columns

    paths = write_tables(tables, tmp_path / "stats")
    assert [path.name for path in paths] == sorted(f"{n}.tsv" for n in TABLE_NAMES)
    lrt = pd.read_csv(tmp_path / "stats" / "lrt.tsv", sep="\t")
    assert list(lrt["test"]) == ["drug_x_condition", "drug", "condition"]
    assert list(lrt["df"]) == [24, 48, 36]


# --- bad input -------------------------------------------------------------------


def without_group(cells, group):
    return cells[cells["group"] != group]


@pytest.mark.parametrize(
    "change, arguments, message",
    [
        (lambda c: c.drop(columns="y"), {}, r"columns \['y'\]"),
        (lambda c: c.drop(columns="participant"), {}, "participant"),
        (lambda c: without_group(c, "amisulpride"), {}, "amisulpride"),
        (lambda c: without_group(c, "placebo"), {}, "placebo.*reference group"),
        (lambda c: c, {"reference_group": "control"}, "reference group 'control'"),
        (lambda c: c, {"groups": ["placebo", "naltrexone"]}, "amisulpride"),
        (lambda c: c, {"conditions": ["AngryToHappy"]}, "at least two"),
        (
            lambda c: c,
            {"conditions": ["AngryToHappy", "HappyToAngry", "Neutral"]},
            "Neutral",
        ),
        (lambda c: c, {"random_effects": "slopes"}, "slopes"),
        (lambda c: c.assign(y=np.nan), {}, "y has missing"),
        (lambda c: pd.concat([c, c.iloc[:1]]), {}, "duplicate"),
        (
            lambda c: c.assign(group=c["group"].mask(c["bin"] == 0, "placebo")),
            {},
            "more than one group",
        ),
        (
            lambda c: c[~((c["group"] == "naltrexone") & (c["bin"] == 3))],
            {},
            "cells have no data",
        ),
    ],
)
def test_bad_input_is_rejected_by_name(
    small_cells, quick_config, change, arguments, message
):
    with pytest.raises(ValueError, match=message):
        fit_mixed_models(
            change(small_cells), **{**study_arguments(quick_config), **arguments}
        )


def test_shape_random_effects_add_a_shape_weight_per_condition(default_config):
    cells = simulated_cells(default_config, 3, 30, muscles=["CS"])
    tables = fit_mixed_models(
        cells, **study_arguments(default_config), random_effects="condition_shape"
    )
    components = tables["random_effects"]["component"]
    for condition in default_config["study"]["conditions"]:
        assert components.str.contains(
            f"condition[{condition}]:shape", regex=False
        ).any()
