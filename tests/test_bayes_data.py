"""Stan data preparation from the cells table: layout, study-agnosticism, bad input."""

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
from mimicry.bayes.data import (
    RATE_GRID,
    CellsTableError,
    build_model_input,
    cell_fits,
    parameter_multipliers,
    series_rate_likelihoods,
)
from mimicry.bayes.synthetic import (
    balanced_participants,
    counterbalanced_sequences,
    crossover_study_config,
    synthetic_cells,
    synthetic_crossover_cells,
)
from helpers.devtools import PROJECT_ROOT
from mimicry.config.validation import load_config

CONFIG = load_config(PROJECT_ROOT / "config" / "config.yaml")
STUDY = CONFIG["study"]


@pytest.fixture(scope="module")
def cells():
    return synthetic_cells(CONFIG, balanced_participants(STUDY["groups"], 9))


def test_layout_matches_the_stan_program(cells):
    model_input = build_model_input(cells, STUDY, "drug", rate_deviations=False)
    data = model_input.data
    n_bins = cells["bin"].nunique()
    assert data["n_obs"] == len(cells) == data["n_series"] * n_bins
    assert data["n_groups"] == 3 and data["n_cells"] == 4
    assert data["reference_group"] == 1  # placebo is study.groups[0]
    np.testing.assert_allclose(data["t"], np.arange(n_bins) * 0.5 + 0.25)
    # Series sorted by cell, then group: curve number never decreases.
    curve = data["series_group"] + 3 * (data["series_cell"] - 1)
    assert np.all(np.diff(curve) >= 0)
    # y runs series after series with bins in time order, matching the table.
    observations = model_input.observations
    assert (observations["bin"].to_numpy() == np.tile(np.arange(n_bins), 36)).all()
    np.testing.assert_array_equal(data["y"], observations["y"].to_numpy())
    first = model_input.series.iloc[0]
    assert (first["muscle"], first["condition"], first["group"]) == (
        "ZM",
        "AngryToHappy",
        "placebo",
    )


def test_pooled_model_has_one_group(cells):
    data = build_model_input(cells, STUDY, "pooled", rate_deviations=False).data
    assert data["n_groups"] == 1
    assert set(data["series_group"]) == {1}


def test_flags_for_likelihood_and_prior(cells):
    data = build_model_input(
        cells, STUDY, "drug", "normal", prior_only=True, rate_deviations=True
    ).data
    assert (data["student_t"], data["prior_only"], data["rate_deviations"]) == (0, 1, 1)


def test_other_study_design_fits_unchanged(cells):
    """Two groups, other condition names, a non-first reference group."""
    renamed = cells[cells["group"] != "amisulpride"].replace(
        {"AngryToHappy": "Smile", "HappyToAngry": "Frown"}
    )
    study = {
        "groups": ["naltrexone", "placebo"],
        "reference_group": "placebo",
        "muscles": ["CS", "ZM"],
        "conditions": ["Smile", "Frown"],
    }
    model_input = build_model_input(renamed, study, "drug", rate_deviations=False)
    assert model_input.data["n_groups"] == 2
    assert model_input.data["reference_group"] == 2
    assert model_input.contrast_labels == ["naltrexone - placebo"]
    assert model_input.series.iloc[0]["muscle"] == "CS"


def test_participant_missing_a_cell_is_accepted(cells):
    dropped = cells[
        ~((cells["participant"] == "sub-001") & (cells["condition"] == "HappyToAngry"))
    ]
    model_input = build_model_input(dropped, STUDY, "drug", rate_deviations=False)
    assert model_input.data["n_series"] == 36 - 2


def _bad(cells, message, study=STUDY, model="drug"):
    with pytest.raises(CellsTableError, match=message):
        build_model_input(cells, study, model, rate_deviations=False)


def test_rejects_missing_column(cells):
    _bad(cells.drop(columns="t"), "lacks columns \\['t'\\]")


def test_rejects_nan_response(cells):
    broken = cells.copy()
    broken.loc[5, "y"] = np.nan
    _bad(broken, "missing or infinite y, first: participant=sub-001")


def test_rejects_unknown_and_absent_levels(cells):
    _bad(
        cells.replace({"ZM": "OO"}), "muscle values \\['OO'\\] are not in study.muscles"
    )
    _bad(
        cells[cells["group"] != "amisulpride"],
        "study.groups \\['amisulpride'\\] have no",
    )


def test_rejects_unknown_reference_group(cells):
    _bad(
        cells,
        "reference group 'vehicle' is not one of",
        {**STUDY, "reference_group": "vehicle"},
    )


def test_rejects_cell_without_data(cells):
    no_cell = cells[
        ~((cells["muscle"] == "CS") & (cells["condition"] == "HappyToAngry"))
    ]
    _bad(
        no_cell,
        "no data at all for muscle x condition cells \\[\\('CS', 'HappyToAngry'\\)\\]",
        model="pooled",
    )
    # The drug model needs every group x cell; the pooled model does not.
    no_group_cell = cells[
        ~((cells["group"] == "naltrexone") & (cells["muscle"] == "ZM"))
    ]
    _bad(no_group_cell, "group x muscle x condition cells \\[\\('naltrexone', 'ZM'")
    build_model_input(no_group_cell, STUDY, "pooled", rate_deviations=False)


def test_rejects_incomplete_series_and_inconsistent_bins(cells):
    _bad(
        cells.drop(index=3),
        "series lack some of the 12 bins, first: participant=sub-001",
    )
    shifted = cells.copy()
    shifted.loc[0, "t"] += 0.1
    _bad(shifted, "bins \\[0\\] have different times")


def test_rejects_duplicate_rows(cells):
    _bad(pd.concat([cells, cells.iloc[[0]]]), "2 rows sharing participant, muscle")


def test_rejects_participant_in_two_groups(cells):
    """sub-001 (placebo) keeps its CS rows and gets sub-002's (naltrexone) ZM rows."""
    zm = cells["muscle"] == "ZM"
    mixed = cells[~(zm & (cells["participant"] == "sub-001"))].copy()
    mixed.loc[zm & (mixed["participant"] == "sub-002"), "participant"] = "sub-001"
    _bad(mixed, "participants \\['sub-001'\\] appear in several groups")


def series_log_rates(y, t):
    """series_rate_likelihoods of series that all lie in one cell."""
    cells = np.zeros(len(y), dtype=int)
    return series_rate_likelihoods(y.ravel(), t, cells, cell_fits(y.ravel(), t, cells))


def test_series_rate_likelihoods_follow_how_well_each_series_fixes_its_rate():
    """Clear responses (amplitude 0.3, noise sd 0.02) give their log rate with the
    standard error of a nonlinear least-squares fit; flat series say next to
    nothing (an sd above 1 on the log scale, wider than rate_sd's prior scale);
    small responses lie in between."""
    t = np.arange(0.25, 6.0, 0.5)
    rng = np.random.default_rng(1)
    amplitudes = np.repeat([0.3, 0.0, 0.03], 20)
    curves = amplitudes[:, None] * -np.expm1(-0.5 * t)
    y = curves + 0.02 * rng.standard_normal(curves.shape)
    estimate, precision = series_log_rates(y, t)
    clear, flat, small = np.split(precision, 3)
    assert flat.max() < 1
    assert flat.mean() < small.mean() < clear.mean()

    def response(t, amplitude, log_rate):
        return amplitude * -np.expm1(-np.exp(log_rate) * t)

    for series in range(20):
        (_, log_rate), covariance = scipy.optimize.curve_fit(
            response,
            t,
            y[series],
            p0=(0.3, np.log(0.5)),
            sigma=np.full(len(t), 0.02),
            absolute_sigma=True,
        )
        assert estimate[series] == pytest.approx(log_rate, abs=0.05)
        assert precision[series] ** -0.5 == pytest.approx(
            np.sqrt(covariance[1, 1]), rel=0.2
        )


def test_series_rate_likelihoods_of_noiseless_series_are_finite():
    t = np.arange(0.25, 6.0, 0.5)
    _, constant = series_log_rates(np.zeros((2, len(t))), t)
    estimate, response = series_log_rates(np.tile(-0.3 * np.expm1(-0.5 * t), (2, 1)), t)
    assert constant == pytest.approx(0, abs=1e-9)
    assert np.isfinite(response).all() and (response > 1e3).all()
    assert estimate == pytest.approx(np.log(0.5), abs=0.02)


def test_multipliers_match_the_least_squares_standard_errors():
    """For one cell at a grid rate: b's multiplier is the OLS standard error of a
    start shared by all series (each with its own asymptote); ones in prior-only
    mode."""
    t = np.arange(0.25, 6.0, 0.5)
    rate = RATE_GRID[20]
    rise = -np.expm1(-rate * t)
    rng = np.random.default_rng(2)
    n_series, sigma = 40, 0.03
    y = rng.normal(0.1, 0.05, (n_series, 1)) * rise + 0.01 * (1 - rise)
    y = y + sigma * rng.standard_normal(y.shape)
    data = {
        "n_groups": 1,
        "n_cells": 1,
        "n_series": n_series,
        "series_cell": np.ones(n_series, dtype=int),
        "series_group": np.ones(n_series, dtype=int),
        "y": y.ravel(),
        "t": t,
        "student_t": 1,
        "rate_deviations": 0,
        "prior_only": 0,
        "crossover": 0,
        "n_periods": 1,
    }
    fits = cell_fits(data["y"], t, data["series_cell"] - 1)
    multipliers = parameter_multipliers(data, fits)
    # Shared start: columns rise x series indicator, then 1 - rise.
    design = np.column_stack(
        [np.kron(np.eye(n_series), rise[:, None]), np.tile(1 - rise, n_series)]
    )
    coefficients, residual, *_ = np.linalg.lstsq(design, y.ravel(), rcond=None)
    noise = residual[0] / (len(y.ravel()) - design.shape[1])
    start_se = np.sqrt(noise * np.linalg.inv(design.T @ design)[-1, -1])
    # Within 10%: the cell's best rate on the grid and its sigma come from the data.
    assert multipliers["b_multiplier"][0] == pytest.approx(start_se, rel=0.1)
    prior = parameter_multipliers(data | {"prior_only": 1}, fits)
    assert all((values == 1).all() for values in prior.values())


CROSSOVER_CONFIG = crossover_study_config(CONFIG)
CROSSOVER_STUDY = CROSSOVER_CONFIG["study"]


@pytest.fixture(scope="module")
def crossover_cells():
    return synthetic_crossover_cells(
        CROSSOVER_CONFIG,
        counterbalanced_sequences(CROSSOVER_STUDY["groups"], 6),
        session_sd=0.05,
    )


def test_crossover_layout_gives_each_participant_one_unit_per_cell(crossover_cells):
    model_input = build_model_input(
        crossover_cells, CROSSOVER_STUDY, "drug", rate_deviations=False
    )
    data = model_input.data
    assert data["crossover"] == 1 and data["n_periods"] == 2
    assert data["n_series"] == 6 * 2 * 6 and data["n_units"] == 6 * 6
    series = model_input.series
    # A unit is one participant x cell: both of its series share it.
    unit = pd.Series(data["series_unit"], index=series.index)
    assert (
        series.assign(unit=unit)
        .groupby(["participant", "muscle", "condition"])["unit"]
        .nunique()
        .eq(1)
        .all()
    )
    assert (unit.value_counts() == 2).all()
    assert (data["series_period"] == series["period"]).all()
    assert model_input.period_labels == ["2 - 1"]
    assert data["period_a_multiplier"].shape == (1, 6)
    # Parallel-group data carry the crossover's entries with size 0.
    parallel = build_model_input(
        synthetic_cells(CONFIG, balanced_participants(STUDY["groups"], 3)),
        STUDY,
        "drug",
        rate_deviations=False,
    ).data
    assert (parallel["crossover"], parallel["n_units"], parallel["n_periods"]) == (
        0,
        0,
        1,
    )
    assert parallel["period_a_multiplier"].shape == (0, 4)


def test_crossover_rejects_what_it_cannot_model(crossover_cells):
    def bad(cells, message):
        with pytest.raises(CellsTableError, match=message):
            build_model_input(cells, CROSSOVER_STUDY, "drug", rate_deviations=False)

    bad(crossover_cells.drop(columns="period"), "lacks columns \\['period'\\]")
    same_group = crossover_cells.assign(
        group=crossover_cells["group"].where(
            crossover_cells["participant"] != "sub-001", "placebo"
        )
    )
    bad(same_group, "participant sub-001 has group placebo in sessions \\['1', '2'\\]")
    one_sequence = crossover_cells[crossover_cells["sequence"] == "placebo-naltrexone"]
    bad(one_sequence, "groups cannot be told from the periods")
