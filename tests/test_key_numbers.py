"""The key numbers check (mimicry.reporting.key_numbers, make reproduce-check): an
expected file written from a run's results reproduces them, and a changed expected
number, one missing from the run or one not expected fails the check, named with its
tolerance."""

import io

import arviz as az
import numpy as np
import pandas as pd
import pytest

from mimicry.bayes.inference_data import write_netcdf
from mimicry.bayes.summaries import CONTRASTS
from mimicry.bayes.synthetic import balanced_participants, synthetic_cells
from mimicry.reporting import key_numbers
from helpers.devtools import PROJECT_ROOT
from mimicry.stats.frequentist import fit_study_mixed_models, write_tables

COMMITTED = PROJECT_ROOT / "config" / "expected" / "quick.tsv"


def drug_posterior(study, seed=0, chains=4, draws=250):
    """Draws of the drug contrasts, dimensioned as the drug model's posterior."""
    rng = np.random.default_rng(seed)
    reference = study["reference_group"]
    coords = {
        "contrast": [f"{g} - {reference}" for g in study["groups"] if g != reference],
        "muscle": study["muscles"],
        "condition": study["conditions"],
    }
    shape = (chains, draws, *(len(levels) for levels in coords.values()))
    return az.from_dict(
        posterior={name: 0.1 * rng.standard_normal(shape) for name in CONTRASTS},
        coords=coords,
        dims={name: list(coords) for name in CONTRASTS},
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory, quick_config):
    """The result files the key numbers come from, made by the workflow's own code:
    cells of six synthetic participants, the mixed models fitted to them, and draws of
    the drug contrasts written as the workflow writes a posterior."""
    results = tmp_path_factory.mktemp("key-numbers") / "results"
    study = quick_config["study"]
    cells = synthetic_cells(
        quick_config, balanced_participants(study["groups"], 6), bin_width_s=1.0
    )
    (results / key_numbers.CELLS).parent.mkdir(parents=True)
    cells.to_parquet(results / key_numbers.CELLS)
    tables = fit_study_mixed_models(
        cells, study, quick_config["frequentist"]["random_effects"]
    )
    (results / key_numbers.STATS).mkdir()
    write_tables(tables, results / key_numbers.STATS)
    posterior = results / key_numbers.DRUG_POSTERIOR
    posterior.parent.mkdir(parents=True)
    write_netcdf(drug_posterior(study), posterior)
    return results


@pytest.fixture
def expected(results, tmp_path):
    path = tmp_path / "expected.tsv"
    key_numbers.write_expected(results, path, "Key numbers of a test run.")
    return path


def checked(results, expected_path):
    out = io.StringIO()
    return key_numbers.check(results, expected_path, out=out), out.getvalue()


def rewrite(path, numbers):
    numbers.to_csv(path, sep="\t", index=False, float_format="%.17g")


def test_an_expected_file_written_from_a_run_reproduces_it(results, expected):
    numbers = key_numbers.read_expected(expected)
    assert set(numbers["kind"]) == set(key_numbers.TOLERANCES)
    assert numbers["number"].is_unique
    header = [line for line in expected.read_text().splitlines() if line[0] == "#"]
    for kind, tolerance in key_numbers.TOLERANCES.items():
        assert f"#   {kind}: {tolerance.statement()}" in header
    code, output = checked(results, expected)
    assert code == 0, output
    assert output.startswith(f"reproduced: {len(numbers)} key numbers")


@pytest.mark.parametrize("kind", sorted(key_numbers.TOLERANCES))
def test_one_expected_number_changed_beyond_its_tolerance_fails_the_check(
    results, expected, kind
):
    numbers = key_numbers.read_expected(expected)
    changed = numbers.index[numbers["kind"] == kind][0]
    row = numbers.loc[changed].copy()
    tolerance = row["tolerance"]
    if tolerance > 0:
        # Half the tolerance away is still reproduced.
        numbers.loc[changed, "value"] = row["value"] + tolerance / 2
        rewrite(expected, numbers)
        code, output = checked(results, expected)
        assert code == 0, output
    numbers.loc[changed, "value"] = row["value"] + 2 * tolerance + (tolerance == 0)
    rewrite(expected, numbers)
    code, output = checked(results, expected)
    assert code == 1
    lines = output.splitlines()
    assert lines[0].startswith(
        f"DIFFERENT: {kind} {row['number']}: expected "
        f"{numbers.loc[changed, 'value']:.10g}, got {row['value']:.10g}, "
        f"tolerance {tolerance:.3g}"
    )
    assert lines[1:] == [f"1 key numbers differ from {expected}: not reproduced"]


def test_numbers_missing_from_the_run_or_not_expected_fail_the_check(results, expected):
    numbers = key_numbers.read_expected(expected)
    dropped = numbers.iloc[0]
    extra = pd.DataFrame(
        [["count", "participants[group=nobody]", 1, 0]], columns=numbers.columns
    )
    rewrite(expected, pd.concat([numbers.iloc[1:], extra], ignore_index=True))
    code, output = checked(results, expected)
    assert code == 1
    assert output.splitlines()[:2] == [
        "MISSING FROM THE RUN: count participants[group=nobody]",
        f"NOT EXPECTED: {dropped['number']} = {dropped['value']:.10g}",
    ]


def test_the_committed_expected_file_states_the_tolerances_the_code_gives():
    """config/expected/quick.tsv as make expected-numbers writes it: each kind's
    tolerance stated and applied (posterior means' tolerances add their MCSE)."""
    text = COMMITTED.read_text()
    for kind, tolerance in key_numbers.TOLERANCES.items():
        assert f"#   {kind}: {tolerance.statement()}\n" in text
    numbers = key_numbers.read_expected(COMMITTED)
    fixed = numbers[numbers["kind"] != "posterior_mean"]
    stated = [
        key_numbers.TOLERANCES[kind].of(value)
        for kind, value in zip(fixed["kind"], fixed["value"])
    ]
    assert np.allclose(fixed["tolerance"], stated, rtol=1e-12, atol=0)
    posterior = numbers[numbers["kind"] == "posterior_mean"]
    assert len(posterior) and (posterior["tolerance"] > 0).all()
