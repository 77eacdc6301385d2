"""Simulation-based calibration, small and real: PyStan fits of the default model
(Student-t likelihood, rate deviations) on 3 groups x 4 participants, the study's 2
muscles x 2 conditions and 12 bins, about 3.5 s a fit (`make sbc` runs 200).

The check passes when no scalar's chi-square p-value is below 0.01 / 57 (a, b, c,
the spreads, nu and the contrasts): under calibration it fails with probability
about 1%. Observed: 30 replicates (seed 1) pass, smallest p 0.065, 1 divergent
transition; 15 replicates whose residuals are twice the drawn sigma (seed 2) fail
for all 4 sigmas (p = 3e-7 each) and nothing else.
"""

import pytest
from mimicry.bayes.sbc import RANKED_VARIABLES, main, run_sbc
from helpers.devtools import PROJECT_ROOT
from mimicry.config.validation import load_config

pytestmark = pytest.mark.workflow

CONFIG = load_config(PROJECT_ROOT / "config" / "config.yaml")
REPLICATES = 30
# All 15 ranks of a sigma in the lowest of 3 bins give p = 3e-7; 12 ranks in 2 bins
# would give 5e-4, above the Bonferroni level.
MISSPECIFIED_REPLICATES = 15
SCALARS = 57


@pytest.fixture(scope="module")
def calibrated():
    return run_sbc(CONFIG, REPLICATES, seed=1)


@pytest.fixture(scope="module")
def inflated_residuals():
    return run_sbc(CONFIG, MISSPECIFIED_REPLICATES, seed=2, residual_scale=2.0)


def test_ranks_of_the_programs_own_simulator_are_uniform(calibrated):
    check = calibrated["check"]
    assert check["passed"], check
    assert check["scalars"] == SCALARS and check["bins"] == 6
    assert set(calibrated["uniformity"]["variable"]) == set(RANKED_VARIABLES)
    ranks = calibrated["ranks"]
    assert ranks["fractional_rank"].between(0, 1).all()
    assert (ranks["rank"] <= ranks["draws"]).all()


def test_every_replicate_is_ranked_divergent_or_not(calibrated):
    """Divergent fits stay in the ranks; their count is reported."""
    ranks, fits = calibrated["ranks"], calibrated["replicates"]
    assert ranks.groupby("replicate").size().tolist() == [SCALARS] * REPLICATES
    assert calibrated["check"]["divergences"] == fits["divergences"].sum()
    assert (
        calibrated["check"]["divergent_replicates"] == (fits["divergences"] > 0).sum()
    )


def test_inflated_residuals_fail_the_check_for_sigma(inflated_residuals):
    """Residuals twice the drawn sigma: the posterior of sigma lies above the drawn
    value, every sigma's ranks pile up at 0 and its p-value falls below the level."""
    check = inflated_residuals["check"]
    assert not check["passed"]
    tests = inflated_residuals["uniformity"]
    sigma = tests[tests["variable"] == "sigma"]
    assert len(sigma) == 4
    assert (sigma["p"] < check["bonferroni_level"]).all(), sigma
    ranks = inflated_residuals["ranks"]
    assert ranks.loc[ranks["variable"] == "sigma", "fractional_rank"].max() < 1 / 3


def test_same_seed_gives_the_same_outputs(tmp_path):
    arguments = ["--replicates", "2", "--participants-per-group", "2", "--seed", "5"]
    arguments += ["--configfile", str(PROJECT_ROOT / "config" / "config.yaml")]
    for run in ("first", "second"):
        main([*arguments, "--out", str(tmp_path / run)])
    names = sorted(path.name for path in (tmp_path / "first").iterdir())
    assert names == [
        "ranks.tsv",
        "replicates.tsv",
        "sbc.pdf",
        "sbc.png",
        "summary.json",
        "uniformity.tsv",
    ]
    for name in names:
        first, second = (tmp_path / run / name for run in ("first", "second"))
        assert first.read_bytes() == second.read_bytes(), name
