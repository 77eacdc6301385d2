"""Summaries, diagnostics gate, contrasts and netCDF output on hand-made draws."""

import hashlib
import logging

import arviz as az
import numpy as np
import pytest
from mimicry.bayes.inference_data import write_netcdf
from mimicry.bayes.summaries import (
    DiagnosticsError,
    check_diagnostics,
    contrasts_table,
    diagnostics,
    summary_table,
)

CHAINS, DRAWS = 4, 500
THRESHOLDS = {
    "mode": "fail",
    "max_rhat": 1.01,
    "min_ess_bulk": 400,
    "min_ess_tail": 400,
    "max_divergences": 0,
    "max_treedepth_hits": 0,
    "min_bfmi": 0.3,
    "participant_level": "gate",
}
COORDS = {
    "group": ["placebo", "naltrexone"],
    "contrast": ["naltrexone - placebo"],
    "muscle": ["ZM", "CS"],
    "condition": ["AngryToHappy", "HappyToAngry"],
}


ROPE = {"a_share_of_mimicry": 0.25, "c_share": 0.2}
# The reference group's asymptotes (muscle x condition) and rate: mimicry 0.4 on ZM
# and 0.2 on CS, so the a ROPE half-widths are about 0.1 and 0.05 and the c ones 0.1.
PLACEBO_A = np.array([[0.2, -0.2], [-0.1, 0.1]])
PLACEBO_C = 0.5


def fake_fit(seed=0, divergent_draws=0, deep_trees=0):
    """Independent normal draws shaped like a drug-model posterior."""
    rng = np.random.default_rng(seed)
    cell = (CHAINS, DRAWS, 2, 2)
    a = rng.standard_normal((CHAINS, DRAWS, 2, 2, 2))
    a[:, :, 0] = PLACEBO_A + 0.001 * rng.standard_normal(cell)
    c = np.exp(rng.standard_normal((CHAINS, DRAWS, 2, 2, 2)))
    c[:, :, 0] = PLACEBO_C * np.exp(0.01 * rng.standard_normal(cell))
    contrast_a = 0.3 + 0.01 * rng.standard_normal((CHAINS, DRAWS, 1, 2, 2))
    contrast_a[:, :, 0, 1, 1] = 0.001 * rng.standard_normal((CHAINS, DRAWS))
    diverging = np.zeros((CHAINS, DRAWS), dtype=bool)
    diverging.flat[:divergent_draws] = True
    tree_depth = np.full((CHAINS, DRAWS), 4)
    tree_depth.flat[:deep_trees] = 10
    return az.from_dict(
        posterior={
            "a": a,
            "c": c,
            "b": rng.standard_normal(cell),
            "nu": 5 + rng.standard_normal((CHAINS, DRAWS)),
            "contrast_a": contrast_a,
            "contrast_c": rng.standard_normal((CHAINS, DRAWS, 1, 2, 2)),
        },
        sample_stats={
            "diverging": diverging,
            "tree_depth": tree_depth,
            "energy": rng.standard_normal((CHAINS, DRAWS)),
        },
        coords=COORDS,
        dims={
            "a": ["group", "muscle", "condition"],
            "c": ["group", "muscle", "condition"],
            "b": ["muscle", "condition"],
            "contrast_a": ["contrast", "muscle", "condition"],
            "contrast_c": ["contrast", "muscle", "condition"],
        },
    )


def test_summary_has_one_labelled_row_per_scalar():
    table = summary_table(fake_fit())
    assert len(table) == 8 + 8 + 4 + 1 + 4 + 4
    row = table.set_index("parameter").loc["a[naltrexone, CS, HappyToAngry]"]
    assert (row["group"], row["muscle"], row["condition"]) == (
        "naltrexone",
        "CS",
        "HappyToAngry",
    )
    assert -0.2 < row["mean"] < 0.2 and 0.9 < row["sd"] < 1.1
    assert row["hdi_low"] < -1.7 and row["hdi_high"] > 1.7  # 95%, not arviz's 94%
    assert {"ess_bulk", "ess_tail", "r_hat", "mcse_mean", "mcse_sd"} <= set(table)
    assert "nu" in set(table["parameter"])


def test_clean_draws_pass_every_check():
    report = diagnostics(fake_fit(), THRESHOLDS, max_treedepth=10)
    assert report["passed"], report
    assert len(report["bfmi_per_chain"]) == CHAINS
    assert check_diagnostics(report, "fail") is report


def test_gate_names_the_failed_checks_and_what_to_try(caplog):
    report = diagnostics(
        fake_fit(divergent_draws=3, deep_trees=2), THRESHOLDS, max_treedepth=10
    )
    assert report["checks"]["divergences"]["value"] == 3
    assert report["checks"]["treedepth_hits"]["value"] == 2
    assert not report["passed"]
    with pytest.raises(
        DiagnosticsError, match="divergences = 3 .*adapt_delta"
    ) as error:
        check_diagnostics(report, "fail")
    assert "treedepth_hits = 2" in str(error.value) and "rhat" not in str(error.value)
    with caplog.at_level(logging.WARNING):
        check_diagnostics(report, "warn")
    assert "max_treedepth" in caplog.text


def fake_contrasts(fit):
    return (
        contrasts_table(fit, ROPE, "placebo", ["AngryToHappy", "HappyToAngry"])
        .set_index(["parameter", "muscle", "condition"])
        .sort_index()
    )


def test_contrasts_report_direction_and_equivalence():
    table = fake_contrasts(fake_fit())
    clear_effect = table.loc[("a", "ZM", "AngryToHappy")]
    assert clear_effect["p_greater_than_zero"] > 0.99
    assert clear_effect["p_in_rope"] < 0.01 and clear_effect["hdi_low"] > 0.1
    null_effect = table.loc[("a", "CS", "HappyToAngry")]
    assert null_effect["p_in_rope"] == 1.0
    assert null_effect["contrast"] == "naltrexone - placebo"
    for muscle, conditions in zip(["ZM", "CS"], PLACEBO_A):
        mimicry = abs(conditions[0] - conditions[1])
        expected = ROPE["a_share_of_mimicry"] * mimicry
        widths = table.loc[("a", muscle), "rope_half_width"]
        np.testing.assert_allclose(widths, expected, rtol=0.02)
    np.testing.assert_allclose(
        table.loc["c", "rope_half_width"], ROPE["c_share"] * PLACEBO_C, rtol=0.02
    )


@pytest.mark.parametrize("multiple, inside", [(0.9, 1.0), (1.1, 0.0)])
def test_each_draw_is_compared_with_its_own_rope(multiple, inside):
    """A contrast at 0.9 (1.1) times each draw's own half-width is inside (outside)
    the ROPE in every draw, however widely the half-width itself varies."""
    fit = fake_fit()
    posterior = fit["posterior"]
    placebo_c = posterior["c"].sel(group="placebo")
    posterior["c"].loc[{"group": "placebo"}] = placebo_c * np.exp(
        np.random.default_rng(1).standard_normal(placebo_c.shape)
    )
    widths = ROPE["c_share"] * posterior["c"].sel(group="placebo", drop=True)
    posterior["contrast_c"][:] = multiple * widths.expand_dims(
        contrast=posterior["contrast"]
    ).transpose(*posterior["contrast_c"].dims)
    table = fake_contrasts(fit)
    assert (table.loc["c", "p_in_rope"] == inside).all()


def test_netcdf_bytes_depend_only_on_the_draws(tmp_path):
    digests = []
    for name in ("first.nc", "second.nc"):
        path = write_netcdf(fake_fit(), tmp_path / name)
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_contrasts_bayes_factors_follow_the_evidence():
    """A contrast at 0.3 with sd 0.01 has 0 far outside its draws: BF01 is a finite
    upper bound below 1. One at 0 with sd 0.001 favours no difference: its BF01 is
    about the posterior density at 0 over the prior's, 1 / sqrt(pi) for a."""
    table = fake_contrasts(fake_fit())
    clear_effect = table.loc[("a", "ZM", "AngryToHappy")]
    assert clear_effect["bf01_is_upper_bound"] and clear_effect["bf01"] < 1
    assert np.isnan(clear_effect["bf01_mcse"])
    null_effect = table.loc[("a", "CS", "HappyToAngry")]
    assert not null_effect["bf01_is_upper_bound"]
    expected = (1 / (0.001 * np.sqrt(2 * np.pi))) / (1 / np.sqrt(np.pi))
    # Within 4 MCSEs, plus the kernel's smoothing at the mode: 1 - 1 / sqrt(1 +
    # (bandwidth / sd)^2) with Scott's bandwidth sd * n^(-1/5).
    n_draws = CHAINS * DRAWS
    smoothing = 1 - (1 + n_draws ** (-2 / 5)) ** -0.5
    assert abs(null_effect["bf01"] - expected) < (
        4 * null_effect["bf01_mcse"] + smoothing * expected
    )
    assert table["bf01"].gt(0).all() and np.isfinite(table["bf01"]).all()
