"""Real Snakemake runs: the DAG's shape, the simulated raw files and config validation."""

import pytest
import yaml

from helpers.devtools import job_counts, run_snakemake

pytestmark = pytest.mark.workflow


def test_dry_run_lists_one_simulation_job_per_participant(workflow_copy):
    result = run_snakemake(workflow_copy, "--cores", "2", "-n")
    counts = job_counts(result.stdout)
    sheet = (workflow_copy / "config" / "participants.tsv").read_text().splitlines()
    assert counts["simulate_raw"] == len(sheet) - 1 == 130
    assert counts["simulation_truth"] == 1


def test_one_target_makes_only_that_participants_file(workflow_copy):
    run_snakemake(workflow_copy, "--cores", "2", "resources/raw/sub-001.edf")
    raw = sorted(p.name for p in (workflow_copy / "resources" / "raw").iterdir())
    assert raw == ["sub-001.edf"]
    assert (workflow_copy / "logs" / "simulate_raw" / "sub-001.log").stat().st_size > 0
    assert (
        workflow_copy / "results" / "benchmarks" / "simulate_raw" / "sub-001.tsv"
    ).exists()


def write_sheet(path, rows):
    path.write_text("participant_id\tgroup\n" + "".join(f"{i}\t{g}\n" for i, g in rows))


BAD_CONFIGS = {
    "unknown key": (
        {"simulation": {"trials_per_conditon": 3}},
        None,
        "config key 'simulation.trials_per_conditon' is not known; "
        "did you mean 'simulation.trials_per_condition'?",
    ),
    "wrong type": ({"seed": "many"}, None, "On instance['seed']"),
    "bad group name": (
        {},
        [("sub-001", "placebo"), ("sub-002", "naltrexon")],
        "sample sheet sheet.tsv, line 3 (participant sub-002): group 'naltrexon' is "
        "not one of study.groups",
    ),
    "duplicate participant": (
        {},
        [("sub-001", "placebo"), ("sub-002", "placebo"), ("sub-001", "naltrexone")],
        "sample sheet sheet.tsv, line 4 (participant sub-001): duplicate "
        "participant_id, first on line 2",
    ),
    "unknown reference group": (
        {"study": {"reference_group": "saline"}},
        None,
        "study.reference_group 'saline'",
    ),
    "bad participant id": (
        {},
        [("sub 001", "placebo")],
        "sample sheet sheet.tsv, line 2 (participant sub 001): participant_id "
        "'sub 001' is not an id",
    ),
}


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=list(BAD_CONFIGS))
def test_bad_configuration_stops_before_any_job_naming_the_problem(workflow_copy, case):
    overrides, sheet_rows, expected_message = BAD_CONFIGS[case]
    if sheet_rows is not None:
        write_sheet(workflow_copy / "sheet.tsv", sheet_rows)
        overrides = {**overrides, "participants": "sheet.tsv"}
    (workflow_copy / "bad.yaml").write_text(yaml.safe_dump(overrides))
    result = run_snakemake(
        workflow_copy, "--cores", "1", "--configfile", "bad.yaml", check=False
    )
    assert result.returncode != 0
    assert expected_message in result.stdout + result.stderr
    assert not (workflow_copy / "resources").exists()
