"""A crossover study in BIDS-derivative-like physio text files, read by config alone.

Four participants, two sessions each, one under each treatment in counterbalanced
order (tests/helpers/physio_text.py). The sample sheet has one row per recording
(participant_id, session, group, age_group), `source.file_pattern` names the files by
participant and session; the cells the workflow aggregates must carry each recording's
session, period, sequence and age group and equal the cells an independent numpy/scipy
analysis of the written samples gives.
"""

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.physio_text import N_BINS, expected_cells, write_study

from mimicry.devtools import run_snakemake

pytestmark = pytest.mark.workflow

KEYS = ["participant", "session", "muscle", "condition", "bin"]


@pytest.fixture(scope="module")
def crossover_run(tmp_path_factory):
    from mimicry.devtools import copy_workflow

    workdir = copy_workflow(tmp_path_factory.mktemp("crossover") / "workflow-copy")
    config, study = write_study(workdir)
    (workdir / "physio" / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(
        workdir,
        "results/aggregate/cells.parquet",
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
