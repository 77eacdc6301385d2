"""Aggregation of real per-participant results, and the errors when none is usable.

Participants are simulated and preprocessed for real (quick study); the aggregation
reads the files preprocessing wrote, as the workflow's aggregate rule does.
"""

import copy
import dataclasses

import pytest
import yaml

from mimicry.aggregate import (
    AggregationError,
    aggregate,
    qc_warnings,
    read_participant_outputs,
)
from helpers.devtools import run_snakemake
from mimicry.preprocessing.preprocess import preprocess_participant, write_outputs
from mimicry.simulate import (
    plan_participant,
    simulate_participant,
    synthesize,
    write_edf,
)

GROUPS = {"sub-001": "placebo", "sub-011": "naltrexone", "sub-012": "amisulpride"}
EXTRA = "Neutral"


def settings_of(config, conditions):
    settings = {k: config[k] for k in ("study", "channels", "recording", "preprocess")}
    settings = copy.deepcopy(settings)
    settings["study"]["conditions"] = conditions
    return settings


@pytest.fixture(scope="module")
def recordings(quick_config, tmp_path_factory):
    """sub-001 ordinary, sub-011 with a flat channel, sub-012 with too few trials."""
    directory = tmp_path_factory.mktemp("raw")
    paths = {}
    for participant, group in GROUPS.items():
        paths[participant] = directory / f"{participant}.edf"
        simulate_participant(quick_config, participant, group, paths[participant])
    return paths


def preprocessed(recordings, participants, settings, directory):
    """Preprocess participants' recordings to files; read them back as aggregate does."""
    tables, qcs = [], []
    for participant in participants:
        table, qc = preprocess_participant(
            recordings[participant], participant, settings
        )
        tables.append(directory / f"{participant}.parquet")
        qcs.append(directory / f"{participant}.json")
        write_outputs(table, qc, tables[-1], qcs[-1])
    return read_participant_outputs(tables, qcs)


def test_usable_participants_make_cells(recordings, quick_config, tmp_path):
    settings = settings_of(quick_config, quick_config["study"]["conditions"])
    trials, qcs = preprocessed(recordings, GROUPS, settings, tmp_path)

    cells, _, qc_table = aggregate(trials, qcs, GROUPS)

    assert set(cells["participant"]) == {"sub-001"}
    assert set(cells["condition"]) == set(quick_config["study"]["conditions"])
    excluded = qc_table[qc_table["kind"] == "participant_excluded"]
    assert set(excluded["participant"]) == {"sub-011", "sub-012"}


def test_warnings_name_the_rule_and_the_share_of_excluded_participants(
    recordings, quick_config, tmp_path
):
    """sub-012 has artifacts in most trials: the transient rule's share is a warning
    naming it; 2 of 3 excluded is a study-wide warning, listed first, above a
    warn_excluded_share of 50% and not above 70%."""
    settings = settings_of(quick_config, quick_config["study"]["conditions"])
    trials, qcs = preprocessed(recordings, GROUPS, settings, tmp_path)
    most = quick_config["preprocess"]["rejection"]["warn_rejected_share"]

    _, _, qc_table = aggregate(trials, qcs, GROUPS, warn_excluded_share=0.5)

    warnings = qc_warnings(qc_table)
    study_wide = warnings.iloc[0]
    assert study_wide["participant"] == "" and study_wide["count"] == 2
    assert "2 of 3 participants excluded (67%)" in study_wide["reason"]
    per_participant = warnings.iloc[1:]
    assert set(per_participant["participant"]) == {"sub-012"}
    assert set(per_participant["muscle"]) == set(quick_config["study"]["muscles"])
    for _, warning in per_participant.iterrows():
        assert warning["reason"].startswith("rule transient rejects")
        assert warning["count"] > most * len(qcs["sub-012"]["rejected_trials"]) / 2
    _, _, quieter = aggregate(trials, qcs, GROUPS, warn_excluded_share=0.7)
    assert "" not in set(qc_warnings(quieter)["participant"])


def test_condition_no_recording_contains_is_an_error_naming_what_was_found(
    recordings, quick_config, tmp_path
):
    conditions = quick_config["study"]["conditions"]
    settings = settings_of(quick_config, [*conditions, EXTRA])
    trials, qcs = preprocessed(recordings, ["sub-001", "sub-011"], settings, tmp_path)
    per_condition = quick_config["simulation"]["trials_per_condition"] * 2

    with pytest.raises(AggregationError) as raised:
        aggregate(trials, qcs, GROUPS)

    message = str(raised.value)
    assert f"study.conditions lists '{EXTRA}'" in message
    assert "none of the 2 recordings" in message
    for condition in conditions:
        assert f"{condition} ({per_condition} trials)" in message
    assert "recording.event_labels" in message


def test_no_usable_participant_is_an_error_naming_the_reasons(
    recordings, quick_config, tmp_path
):
    settings = settings_of(quick_config, quick_config["study"]["conditions"])
    flawed = ["sub-011", "sub-012"]
    trials, qcs = preprocessed(recordings, flawed, settings, tmp_path)

    with pytest.raises(AggregationError) as raised:
        aggregate(trials, qcs, GROUPS | {"sub-013": "placebo"}, missing=["sub-013"])

    message = str(raised.value)
    assert "no usable participant: all 2 with results are excluded" in message
    assert "flat_channel: 1" in message and "too_few_trials: 1" in message
    assert "sub-011: flat_channel:" in message
    assert "sub-012: too_few_trials:" in message
    assert "1 without a raw file (sub-013)" in message


def test_a_recording_without_events_is_excluded_with_its_reason(
    recordings, quick_config, tmp_path
):
    """sub-020's EDF has no annotation: its job writes an empty table and a QC
    record excluding it; aggregation lists it; alone, it is no usable participant."""
    plan = plan_participant(quick_config, "sub-020", "placebo")
    silent = tmp_path / "sub-020.edf"
    data = synthesize(plan, quick_config)
    write_edf(silent, data, dataclasses.replace(plan, trials=()), quick_config)
    paths = {**recordings, "sub-020": silent}
    groups = {"sub-001": "placebo", "sub-020": "placebo"}
    settings = settings_of(quick_config, quick_config["study"]["conditions"])
    trials, qcs = preprocessed(paths, groups, settings, tmp_path)

    cells, trials, qc_table = aggregate(trials, qcs, groups)

    assert set(cells["participant"]) == set(trials["participant"]) == {"sub-001"}
    excluded = qc_table[qc_table["kind"] == "participant_excluded"]
    assert excluded["participant"].tolist() == ["sub-020"]
    assert excluded["reason"].tolist() == [
        f"no_events:{silent} no stimulus events found (expected labels "
        f"{sorted(quick_config['study']['conditions'])}) "
        "(recording.without_events: exclude)"
    ]

    alone, qcs = preprocessed(paths, ["sub-020"], settings, tmp_path)
    with pytest.raises(AggregationError) as raised:
        aggregate(alone, qcs, groups)
    message = str(raised.value)
    assert "no usable participant: all 1 with results are excluded" in message
    assert "(participants per reason: no_events: 1)" in message
    assert f"sub-020: no_events:{silent} no stimulus events found" in message


@pytest.mark.workflow
def test_workflow_stops_when_a_configured_condition_is_in_no_recording(
    workflow_copy, recordings, quick_config
):
    raw = workflow_copy / "own-raw"
    raw.mkdir()
    for participant in ("sub-001", "sub-011"):
        (raw / f"{participant}.edf").write_bytes(recordings[participant].read_bytes())
    sheet = workflow_copy / "extra.tsv"
    sheet.write_text(
        "participant_id\tgroup\nsub-001\tplacebo\nsub-011\tnaltrexone\n", "utf-8"
    )
    study = {**quick_config["study"]}
    study["conditions"] = [*study["conditions"], EXTRA]
    overrides = {
        "participants": "extra.tsv",
        "source": {"kind": "local", "local_dir": "own-raw"},
        "study": study,
    }
    (workflow_copy / "extra.yaml").write_text(yaml.safe_dump(overrides))
    cells = "results/aggregate/cells.parquet"

    result = run_snakemake(
        workflow_copy,
        "--cores",
        "2",
        cells,
        "--configfile",
        "config/quick.yaml",
        "extra.yaml",
        check=False,
    )

    assert result.returncode != 0
    log = (workflow_copy / "logs/aggregate.log").read_text()
    assert f"study.conditions lists '{EXTRA}'" in log, log[-2000:]
    assert not (workflow_copy / cells).exists()
