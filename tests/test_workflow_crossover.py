"""A crossover block-design study in BIDS-derivative-like physio text files, analysed
end to end by config alone.

Four participants, two sessions each, one under each treatment in counterbalanced
order (tests/helpers/physio_text.py): 100 Hz, headerless, tab-separated with a trailing
tab, CRLF, the time column in minutes rounded to 6 decimals, and one trigger pulse per
stimulus, four stimuli per block. The sample sheet has one row per recording
(participant_id, session, group, age_group), `source.file_pattern` names the files by
participant and session, `recording.trigger_train_gap_s` makes each block one trial.
The whole DAG runs (mixed models, both Stan models, figures); the cells must carry
each recording's session, period, sequence and age group and equal the cells an
independent numpy/scipy analysis of the written samples gives.
"""

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.physio_text import N_BINS, expected_cells, write_study

from helpers.devtools import run_snakemake

pytestmark = pytest.mark.workflow

KEYS = ["participant", "session", "muscle", "condition", "bin"]
PULSES = 4


@pytest.fixture(scope="module")
def crossover_run(tmp_path_factory):
    from helpers.devtools import copy_workflow

    workdir = copy_workflow(tmp_path_factory.mktemp("crossover") / "workflow-copy")
    config, study = write_study(workdir, time_unit="min", pulses_per_trial=PULSES)
    config["recording"] |= {"trigger_train_gap_s": 2.0, "trigger_max_pulse_s": 1.0}
    # Sampler settings of a test: four participants cannot pass the default gate.
    config["stan"] = {"chains": 2, "warmup": 300, "draws": 300, "prior_draws": 50}
    config["models"] = {
        "likelihood": "normal",
        "rate_deviations": False,
        "predictive_draws": 50,
        "diagnostics": {"mode": "warn"},
    }
    (workdir / "physio" / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(
        workdir,
        "--cores",
        "2",
        "--configfile",
        "physio/config.yaml",
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir, study


def test_one_file_in_the_lab_layout_is_headerless_tab_separated_with_crlf(
    crossover_run,
):
    workdir, _ = crossover_run
    path = next((workdir / "physio" / "derivatives").glob("sub-*/ses-*/func/*.tsv"))
    first_line = path.read_bytes().split(b"\n")[0]
    assert first_line.endswith(b"\t\r") and first_line.count(b"\t") == 6


def test_cells_carry_the_recordings_sessions_and_equal_an_independent_analysis(
    crossover_run,
):
    workdir, study = crossover_run
    cells = pd.read_parquet(workdir / "results/aggregate/cells.parquet")
    wanted = expected_cells(study)
    assert list(cells.columns) == [
        "participant",
        "group",
        "session",
        "period",
        "sequence",
        "age_group",
        "muscle",
        "condition",
        "bin",
        "t",
        "y",
        "n_trials",
    ]
    assert len(cells) == len(wanted) == len(study) * 2 * 3 * N_BINS
    cells = cells.sort_values(KEYS).reset_index(drop=True)
    wanted = wanted.sort_values(KEYS).reset_index(drop=True)
    for column in ("participant", "group", "session", "sequence", "age_group"):
        assert cells[column].tolist() == wanted[column].tolist(), column
    for column in ("period", "bin", "n_trials"):
        assert cells[column].tolist() == wanted[column].tolist(), column
    assert cells["period"].dtype == np.int64
    np.testing.assert_allclose(cells["t"], wanted["t"])
    np.testing.assert_allclose(cells["y"], wanted["y"], rtol=0, atol=1e-9)
    # Counterbalanced: each participant once under each group, both orders present.
    per_participant = cells.groupby("participant")["group"].unique()
    assert all(sorted(groups) == ["drug", "placebo"] for groups in per_participant)
    assert set(cells["sequence"]) == {"placebo-drug", "drug-placebo"}
    first = cells[cells["period"] == 1]
    assert (first["sequence"].str.split("-").str[0] == first["group"]).all()


def test_each_recording_is_one_job_named_by_participant_and_session(crossover_run):
    workdir, study = crossover_run
    names = {f"{r.participant}_ses-{r.session}" for r in study}
    found = {p.stem for p in (workdir / "results/preprocessed").glob("*.parquet")}
    assert found == names
    trials = pd.read_parquet(workdir / "results/aggregate/trials.parquet")
    assert set(zip(trials["participant"], trials["session"])) == {
        (r.participant, r.session) for r in study
    }
    assert {"period", "sequence", "age_group"} <= set(trials.columns)


def test_each_block_of_pulses_is_one_trial_with_its_length(crossover_run):
    workdir, study = crossover_run
    trials = pd.read_parquet(workdir / "results/aggregate/trials.parquet")
    per_recording = trials.groupby(["participant", "session"])["trial"].nunique()
    assert set(per_recording) == {len(study[0].onsets)}
    # Four pulses of 0.1 s, 1 s apart: from the first onset to the last pulse's end.
    np.testing.assert_allclose(trials["block_s"], PULSES - 1 + 0.1)


def test_the_models_compare_treatments_within_participants(crossover_run):
    workdir, _ = crossover_run
    lrt = pd.read_csv(workdir / "results/stats/lrt.tsv", sep="\t")
    assert {"drug_x_condition", "age_group_x_condition"} <= set(lrt["test"])
    factor = pd.read_csv(workdir / "results/stats/factor_contrasts.tsv", sep="\t")
    assert set(factor["level"]) >= {"young", "old"}
    contrasts = pd.read_csv(workdir / "results/models/drug/contrasts.tsv", sep="\t")
    assert set(contrasts["contrast"]) == {"drug - placebo"}
    summary = pd.read_csv(workdir / "results/models/drug/summary.tsv", sep="\t")
    parameters = summary.iloc[:, 0].astype(str)
    assert parameters.str.startswith("session_sd").any()
    assert parameters.str.startswith("period_a").any()
    for figure in ("fig1", "fig2", "fig3"):
        assert (workdir / f"results/figures/{figure}.png").stat().st_size > 0
