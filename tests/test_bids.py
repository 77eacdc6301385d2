"""EMG-BIDS input (source.kind: bids): a dataset written here, read by the workflow."""

import dataclasses
import json
import shutil
from pathlib import Path

import edfio
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.signal import butter, sosfiltfilt
from snakemake.exceptions import WorkflowError

from mimicry.io import bids
from helpers.devtools import PROJECT_ROOT, job_counts, run_snakemake
from mimicry.config.sample_sheet import check_sample_sheet, with_design_columns
from mimicry.config.validation import ConfigError, load_config
from mimicry.io.recording_types import RecordingError
from mimicry.simulate import plan_participant, synthesize, write_edf

CELLS = "results/aggregate/cells.parquet"
GROUPS = {
    "sub-01": "placebo",
    "sub-02": "naltrexone",
    "sub-03": "placebo",
    "sub-04": "naltrexone",
    "sub-05": "placebo",
    "sub-06": "naltrexone",
}
# The dataset names stimuli its own way; recording.event_labels maps them.
TRIAL_TYPES = {"AngryToHappy": "happy_face", "HappyToAngry": "angry_face"}
RESPONSE = "button_press"
BIDS_OVERRIDES = {
    "study": {"groups": ["placebo", "naltrexone"], "reference_group": "placebo"},
    "recording": {
        "event_labels": {label: c for c, label in TRIAL_TYPES.items()},
        "ignore_labels": [RESPONSE],
    },
    # No notch and no artifact rejection: the cells are band-pass, rectify, epoch,
    # bin and log ratio only, which the test recomputes below.
    "preprocess": {"mains_hz": None, "rejection": {"rules": []}},
    # A short sampler run: the whole DAG must finish, not sample well.
    "stan": {"chains": 2, "warmup": 150, "draws": 150, "prior_draws": 50},
    "models": {"diagnostics": {"mode": "warn"}},
}
WHOLE_DAG_OUTPUTS = (
    "results/stats/lrt.tsv",
    "results/models/drug/contrasts.tsv",
    "results/figures/fig1.pdf",
    "results/figures/fig2.pdf",
    "results/figures/fig3.pdf",
    "results/qc/group.png",
)


@pytest.fixture(scope="module")
def clean_config(quick_config):
    """The quick study's simulation without movement artifacts."""
    simulation = {**quick_config["simulation"], "artifact_trial_share": 0.0}
    return {**quick_config, "simulation": simulation}


def write_dataset(root, config, groups, group_column="arm"):
    """dataset_description.json, participants.tsv and one session per participant."""
    root.mkdir(parents=True)
    description = {
        "Name": "mimicry test",
        "BIDSVersion": "1.10.0",
        "DatasetType": "raw",
    }
    (root / "dataset_description.json").write_text(json.dumps(description))
    rows = [f"participant_id\tage\t{group_column}"]
    rows += [f"{p}\t{20 + i}\t{g}" for i, (p, g) in enumerate(groups.items())]
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    for participant, group in groups.items():
        write_recording(root, config, participant, group)


def write_recording(root, config, participant, group, entities="ses-01_task-mimicry"):
    """An EDF without annotations, so that the events can come only from events.tsv."""
    session = next(e for e in entities.split("_") if e.startswith("ses-"))
    folder = root / participant / session / "emg"
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{participant}_{entities}"
    plan = plan_participant(config, participant, group)
    data = synthesize(plan, config)
    edf = stem.with_name(f"{stem.name}_emg.edf")
    write_edf(edf, data, dataclasses.replace(plan, trials=()), config)
    events = ["onset\tduration\ttrial_type"]
    for trial in plan.trials:
        events.append(f"{trial.onset_s:.3f}\t0.5\t{TRIAL_TYPES[trial.condition]}")
        events.append(f"{trial.onset_s + 1.5:.3f}\tn/a\t{RESPONSE}")
    stem.with_name(f"{stem.name}_events.tsv").write_text("\n".join(events) + "\n")
    channels = ["name\ttype\tunits\tdescription"]
    channels += [
        f"{config['channels'][m]}\tEMG\tuV\t{m}" for m in config["study"]["muscles"]
    ]
    stem.with_name(f"{stem.name}_channels.tsv").write_text("\n".join(channels) + "\n")
    fs = config["simulation"]["sampling_rate_hz"]
    sidecar = {
        "TaskName": "mimicry",
        "EMGReference": "bipolar",
        "EMGPlacementScheme": "ChannelSpecific",
        "EMGChannelCount": len(config["study"]["muscles"]),
        "SamplingFrequency": fs,
        "PowerLineFrequency": config["simulation"]["mains_hz"],
        "SoftwareFilters": "n/a",
        "RecordingDuration": data.shape[1] / fs,
    }
    stem.with_name(f"{stem.name}_emg.json").write_text(json.dumps(sidecar))
    return edf


def expected_cells(root, config, options, groups):
    """The cells recomputed from the files with edfio and scipy alone."""
    muscles = config["study"]["muscles"]
    conditions = {label: c for c, label in TRIAL_TYPES.items()}
    baseline_s, response_s, bin_s = (
        options["baseline_s"],
        options["response_s"],
        options["bin_s"],
    )
    rows = []
    for participant in groups:
        stem = (
            root / participant / "ses-01" / "emg" / f"{participant}_ses-01_task-mimicry"
        )
        edf = edfio.read_edf(stem.with_name(f"{stem.name}_emg.edf"))
        events = pd.read_csv(stem.with_name(f"{stem.name}_events.tsv"), sep="\t")
        events = events[events["trial_type"].isin(conditions)]
        for muscle in muscles:
            signal = next(
                s for s in edf.signals if s.label == config["channels"][muscle]
            )
            fs = signal.sampling_frequency
            sos = butter(4, options["band_hz"], "bandpass", fs=fs, output="sos")
            rectified = np.abs(sosfiltfilt(sos, signal.data))
            n_bins = round((response_s[1] - response_s[0]) / bin_s)
            for onset_s, trial_type in zip(events["onset"], events["trial_type"]):
                onset = round(onset_s * fs)

                def window_mean(start_s, stop_s):
                    start, stop = onset + round(start_s * fs), onset + round(
                        stop_s * fs
                    )
                    return rectified[start:stop].mean()

                baseline = window_mean(*baseline_s)
                for k in range(n_bins):
                    start_s = response_s[0] + k * bin_s
                    rows.append(
                        {
                            "participant": participant,
                            "group": groups[participant],
                            "muscle": muscle,
                            "condition": conditions[trial_type],
                            "bin": k,
                            "y": np.log(
                                window_mean(start_s, start_s + bin_s) / baseline
                            ),
                        }
                    )
    keys = ["participant", "group", "muscle", "condition", "bin"]
    trials = pd.DataFrame(rows)
    return trials.groupby(keys)["y"].agg(y="mean", n_trials="count").reset_index()


@pytest.mark.workflow
def test_bids_dataset_runs_the_whole_dag_and_an_edited_events_file_reruns_its_participant(
    workflow_copy, clean_config
):
    root = workflow_copy / "bids-study"
    write_dataset(root, clean_config, GROUPS)
    # A second task of one participant: the task selection must leave one recording.
    write_recording(root, clean_config, "sub-03", "placebo", "ses-01_task-rest")
    source = {"kind": "bids", "bids": {"root": "bids-study", "group_column": "arm"}}
    overrides = {**BIDS_OVERRIDES, "source": source}
    (workflow_copy / "ambiguous.yaml").write_text(yaml.safe_dump(overrides))
    ambiguous = run_snakemake(
        workflow_copy, "-n", CELLS, "--configfile", "ambiguous.yaml", check=False
    )
    assert ambiguous.returncode != 0
    message = ambiguous.stdout + ambiguous.stderr
    assert "sub-03" in message and "source.bids.task" in message
    assert "sub-03_ses-01_task-rest_emg.edf" in message

    source["bids"]["task"] = "mimicry"
    (workflow_copy / "bids.yaml").write_text(yaml.safe_dump(overrides))
    args = ("--configfile", "bids.yaml")
    run_snakemake(workflow_copy, "--cores", "2", CELLS, *args)

    config = load_config(
        PROJECT_ROOT / "config/config.yaml", workflow_copy / "bids.yaml"
    )
    expected = expected_cells(root, clean_config, config["preprocess"], GROUPS)
    cells = pd.read_parquet(workflow_copy / CELLS)
    merged = expected.merge(
        cells, on=["participant", "group", "muscle", "condition", "bin"], how="outer"
    )
    assert len(merged) == len(expected) == len(cells)
    np.testing.assert_allclose(merged["y_x"], merged["y_y"], rtol=1e-6, atol=1e-9)
    assert (merged["n_trials_x"] == merged["n_trials_y"]).all()

    events = root / "sub-02/ses-01/emg/sub-02_ses-01_task-mimicry_events.tsv"
    lines = events.read_text().splitlines()
    events.write_text("\n".join(lines[:1] + lines[3:]) + "\n")
    changed = run_snakemake(workflow_copy, "--cores", "2", CELLS, "-n", *args)
    assert job_counts(changed.stdout) == {"aggregate": 1, "preprocess": 1}
    assert "results/preprocessed/sub-02.parquet" in changed.stdout

    run_snakemake(workflow_copy, "--cores", "2", *args)
    for output in WHOLE_DAG_OUTPUTS:
        assert (workflow_copy / output).is_file(), output


def bids_config(tmp_path, root, **source_bids):
    """The workflow's config for a dataset at root, defaults filled by the schema."""
    source = {"kind": "bids", "bids": {"root": str(root), **source_bids}}
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump({**BIDS_OVERRIDES, "source": source}))
    return load_config(PROJECT_ROOT / "config/config.yaml", override)


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory, clean_config):
    root = tmp_path_factory.mktemp("bids") / "dataset"
    write_dataset(root, clean_config, {"sub-01": "placebo", "sub-02": "naltrexone"})
    return root


def copy_of(small_dataset, tmp_path):
    return shutil.copytree(small_dataset, tmp_path / "dataset")


def test_sample_sheet_comes_from_participants_tsv(small_dataset, tmp_path):
    config = bids_config(tmp_path, small_dataset, group_column="arm")
    dataset = bids.find_dataset(config)
    assert dataset.sheet.to_dict("list") == {
        "participant_id": ["sub-01", "sub-02"],
        "group": ["placebo", "naltrexone"],
        "format": ["edf", "edf"],
    }
    emg = small_dataset / "sub-02" / "ses-01" / "emg"
    assert dataset.recordings["sub-02"] == str(
        emg / "sub-02_ses-01_task-mimicry_emg.edf"
    )
    assert dataset.events["sub-02"] == str(
        emg / "sub-02_ses-01_task-mimicry_events.tsv"
    )


def test_participants_key_is_needed_only_without_bids(tmp_path):
    base = yaml.safe_load((PROJECT_ROOT / "config/config.yaml").read_text())
    del base["participants"]
    for kind, fails in (("bids", False), ("local", True)):
        path = tmp_path / f"{kind}.yaml"
        path.write_text(yaml.safe_dump({**base, "source": {"kind": kind}}))
        if fails:
            with pytest.raises(WorkflowError, match="'participants' is a required"):
                load_config(path)
        else:
            assert load_config(path)["source"]["bids"]["group_column"] == "group"


def test_participant_without_recording_names_it_and_can_be_skipped(
    small_dataset, tmp_path, clean_config
):
    root = copy_of(small_dataset, tmp_path)
    with open(root / "participants.tsv", "a") as handle:
        handle.write("sub-07\t30\tplacebo\n")
    config = bids_config(tmp_path, root, group_column="arm")
    with pytest.raises(ConfigError, match="sub-07 has no EMG recording") as error:
        bids.find_dataset(config)
    assert str(root / "participants.tsv") in str(error.value)
    assert "source.missing_raw" in str(error.value)

    config["source"]["missing_raw"] = "skip"
    assert bids.find_dataset(config).missing == ["sub-07"]


def test_several_matching_recordings_name_them_and_the_selection_key(
    small_dataset, tmp_path, clean_config
):
    root = copy_of(small_dataset, tmp_path)
    write_recording(root, clean_config, "sub-01", "placebo", "ses-02_task-mimicry")
    config = bids_config(tmp_path, root, group_column="arm")
    with pytest.raises(ConfigError, match="sub-01 has 2 EMG recordings") as error:
        bids.find_dataset(config)
    message = str(error.value)
    assert "source.bids.session" in message and "source.bids.task" not in message
    assert "sub-01_ses-02_task-mimicry_emg.edf" in message

    config["source"]["bids"]["session"] = "01"
    recording = bids.find_dataset(config).recordings["sub-01"]
    assert recording.endswith("sub-01_ses-01_task-mimicry_emg.edf")


def test_a_crossover_dataset_has_one_recording_per_session_folder(
    small_dataset, tmp_path, clean_config
):
    root = copy_of(small_dataset, tmp_path)
    write_recording(root, clean_config, "sub-01", "naltrexone", "ses-02_task-mimicry")
    write_recording(root, clean_config, "sub-02", "placebo", "ses-02_task-mimicry")
    for participant, groups in (
        ("sub-01", "placebo naltrexone"),
        ("sub-02", "naltrexone placebo"),
    ):
        rows = ["session_id\tarm"]
        rows += [f"ses-0{i}\t{g}" for i, g in enumerate(groups.split(), start=1)]
        (root / participant / f"{participant}_sessions.tsv").write_text(
            "\n".join(rows) + "\n"
        )
    config = bids_config(tmp_path, root, group_column="arm")
    config["study"]["design"] = "crossover"
    dataset = bids.find_dataset(config)
    assert dataset.sheet.to_dict("list") == {
        "participant_id": ["sub-01", "sub-01", "sub-02", "sub-02"],
        "session": ["01", "02", "01", "02"],
        "group": ["placebo", "naltrexone", "naltrexone", "placebo"],
        "format": ["edf"] * 4,
    }
    assert dataset.recordings["sub-02_ses-02"].endswith(
        "sub-02/ses-02/emg/sub-02_ses-02_task-mimicry_emg.edf"
    )
    assert dataset.events["sub-01_ses-02"].endswith(
        "sub-01/ses-02/emg/sub-01_ses-02_task-mimicry_events.tsv"
    )
    check_sample_sheet(dataset.sheet, config, dataset.participants_tsv)
    sheet = with_design_columns(dataset.sheet, config)
    assert sheet["sequence"].tolist()[2:] == ["naltrexone-placebo"] * 2

    (root / "sub-02" / "sub-02_sessions.tsv").unlink()
    with pytest.raises(ConfigError, match="sub-02_sessions.tsv does not exist"):
        bids.find_dataset(config)


def test_group_not_in_study_groups_and_missing_group_column_are_named(
    small_dataset, tmp_path
):
    root = copy_of(small_dataset, tmp_path)
    sheet = root / "participants.tsv"
    sheet.write_text(sheet.read_text().replace("naltrexone", "amisulpride"))
    config = bids_config(tmp_path, root, group_column="arm")
    with pytest.raises(ConfigError) as error:
        bids.find_dataset(config)
    message = str(error.value)
    assert str(sheet) in message and "row 2 (sub-02)" in message
    assert "'amisulpride'" in message and "source.bids.group_column" in message

    config = bids_config(tmp_path, root)
    with pytest.raises(ConfigError, match="no column source.bids.group_column 'group'"):
        bids.find_dataset(config)


def read_sub_01(dataset, config):
    return bids.read_bids_recording(
        dataset.recordings["sub-01"],
        dataset.events["sub-01"],
        "sub-01",
        config["channels"],
        config["study"]["conditions"],
        config["recording"],
    )


@pytest.mark.parametrize("column", ["onset", "trial_type"])
def test_events_without_onset_or_trial_type_name_file_and_column(
    small_dataset, tmp_path, column
):
    root = copy_of(small_dataset, tmp_path)
    config = bids_config(tmp_path, root, group_column="arm")
    dataset = bids.find_dataset(config)
    events = pd.read_csv(dataset.events["sub-01"], sep="\t", dtype=str)
    events.drop(columns=column).to_csv(dataset.events["sub-01"], sep="\t", index=False)
    with pytest.raises(RecordingError) as error:
        read_sub_01(dataset, config)
    message = str(error.value)
    assert message.startswith(f"sub-01: {dataset.events['sub-01']}")
    assert f"['{column}']" in message and "recording.event_labels" in message


def test_unmapped_trial_type_names_the_events_file_and_key(small_dataset, tmp_path):
    config = bids_config(tmp_path, small_dataset, group_column="arm")
    config["recording"]["ignore_labels"] = []
    dataset = bids.find_dataset(config)
    with pytest.raises(RecordingError) as error:
        read_sub_01(dataset, config)
    message = str(error.value)
    assert dataset.events["sub-01"] in message and f"['{RESPONSE}']" in message
    assert "recording.ignore_labels" in message


def test_truncated_recording_and_channels_tsv_mismatch_name_the_file(
    small_dataset, tmp_path
):
    root = copy_of(small_dataset, tmp_path)
    config = bids_config(tmp_path, root, group_column="arm")
    dataset = bids.find_dataset(config)
    recording = read_sub_01(dataset, config)
    assert recording.sampling_rate_hz == 1000.0
    assert set(recording.conditions) == set(config["study"]["conditions"])

    edf = Path(dataset.recordings["sub-01"])
    channels_tsv = edf.with_name(edf.name.replace("_emg.edf", "_channels.tsv"))
    original = channels_tsv.read_text()
    channels_tsv.write_text(original.replace("EMG_CS", "Corrugator"))
    with pytest.raises(RecordingError, match="Channel mismatch") as error:
        read_sub_01(dataset, config)
    assert str(error.value).startswith(f"sub-01: {edf}")

    channels_tsv.write_text(original)
    edf.write_bytes(edf.read_bytes()[: edf.stat().st_size // 2])
    with pytest.raises(RecordingError, match="the file is truncated: ") as error:
        read_sub_01(dataset, config)
    assert str(error.value).startswith(f"sub-01: {edf}")


def test_a_subject_missing_from_participants_tsv_is_named_with_its_recording(
    small_dataset, tmp_path
):
    root = copy_of(small_dataset, tmp_path)
    sheet = root / "participants.tsv"
    sheet.write_text(
        "".join(
            line for line in sheet.read_text().splitlines(True) if "sub-02" not in line
        )
    )
    config = bids_config(tmp_path, root, group_column="arm")
    with pytest.raises(ConfigError) as error:
        bids.find_dataset(config)
    message = str(error.value)
    assert message.startswith(f"{sheet}: 1 subject(s) with an EMG recording")
    assert "sub-02_ses-01_task-mimicry_emg.edf" in message
    assert "add a row" in message and "arm, source.bids.group_column" in message


def edit_events(dataset, participant, edit):
    """events.tsv of participant rewritten by edit(table) -> table; returns the path."""
    path = dataset.events[participant]
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    edit(table).to_csv(path, sep="\t", index=False)
    return path


def test_onsets_outside_the_recording_and_duplicate_rows_blame_events_tsv_rows(
    small_dataset, tmp_path
):
    """Not "annotations lie after the end of the data" of the EDF, nor a
    suggestion to shorten preprocess.response_s: the events table and its row."""
    root = copy_of(small_dataset, tmp_path)
    config = bids_config(tmp_path, root, group_column="arm")
    dataset = bids.find_dataset(config)
    original = pd.read_csv(
        dataset.events["sub-01"], sep="\t", dtype=str, keep_default_na=False
    )
    duration_s = read_sub_01(dataset, config).n_samples / 1000.0
    # Row 3 is the second stimulus (rows alternate stimulus, response).
    for onset, where in (
        (
            duration_s + 5,
            f"after the end of the recording {dataset.recordings['sub-01']}",
        ),
        (-1.0, "before the start of the recording"),
    ):
        events = edit_events(
            dataset,
            "sub-01",
            lambda t: t.assign(onset=t["onset"].where(t.index != 2, f"{onset:.3f}")),
        )
        with pytest.raises(RecordingError) as error:
            read_sub_01(dataset, config)
        message = str(error.value)
        assert message.startswith(f"sub-01: {events}, row 3: the onset {onset:g} s")
        assert where in message, message
        original.to_csv(events, sep="\t", index=False)

    def duplicate_row_3(table):
        return pd.concat([table.iloc[:3], table.iloc[2:3], table.iloc[3:]])

    events = edit_events(dataset, "sub-01", duplicate_row_3)
    with pytest.raises(RecordingError) as error:
        read_sub_01(dataset, config)
    message = str(error.value)
    onset = float(original["onset"].iloc[2])
    assert message.startswith(
        f"sub-01: {events}: two stimulus events at one sample, "
        f"{round(onset * 1000)} ({onset:.3f} s): row 3 "
    )
    assert "row 4" in message and "remove the duplicate row" in message
    assert "response_s" not in message


def test_an_events_tsv_with_responses_only_excludes_the_recording_or_stops_it(
    small_dataset, tmp_path
):
    root = copy_of(small_dataset, tmp_path)
    config = bids_config(tmp_path, root, group_column="arm")
    dataset = bids.find_dataset(config)
    events = edit_events(
        dataset, "sub-01", lambda table: table[table["trial_type"] == RESPONSE]
    )

    recording = read_sub_01(dataset, config)

    assert recording.onset_samples.size == 0
    assert recording.without_events.startswith(
        f"no_events:{events} no stimulus events found (expected labels "
    )
    assert f"the file has only ignored labels ['{RESPONSE}']" in (
        recording.without_events
    )
    config["recording"]["without_events"] = "error"
    with pytest.raises(RecordingError, match="no stimulus events found") as error:
        read_sub_01(dataset, config)
    assert str(error.value).startswith(f"sub-01: {events}")


def test_one_events_tsv_row_per_stimulus_gives_block_onsets_and_lengths(
    small_dataset, tmp_path
):
    """Blocks of three 0.1 s stimuli 1 s apart, a response among them and one 30 s
    row: the rows' durations are their pulses' widths under
    recording.trigger_max_pulse_s and recording.trigger_train_gap_s."""
    root = copy_of(small_dataset, tmp_path)
    config = bids_config(tmp_path, root, group_column="arm")
    dataset = bids.find_dataset(config)
    trials = pd.read_csv(dataset.events["sub-01"], sep="\t", dtype=str)
    trials = trials[trials["trial_type"] != RESPONSE]
    rows = []
    for onset, trial_type in zip(trials["onset"].astype(float), trials["trial_type"]):
        rows += [(onset + k, "0.1", trial_type) for k in range(3)]
        rows.append((onset + 0.5, "n/a", RESPONSE))
    first = trials["trial_type"].iloc[0]
    rows.append((float(trials["onset"].iloc[0]) - 4.0, "3.0", first))
    events = edit_events(
        dataset,
        "sub-01",
        lambda _: pd.DataFrame(rows, columns=["onset", "duration", "trial_type"]),
    )
    fs = 1000.0
    onsets = np.round(trials["onset"].astype(float).to_numpy() * fs)
    config["recording"]["trigger_train_gap_s"] = 2.0
    config["recording"]["trigger_max_pulse_s"] = 1.0

    recording = read_sub_01(dataset, config)

    np.testing.assert_array_equal(recording.onset_samples, onsets)
    labels = {label: c for c, label in TRIAL_TYPES.items()}
    assert recording.conditions == tuple(labels[t] for t in trials["trial_type"])
    np.testing.assert_allclose(recording.block_s, 2.1, atol=0.5 / fs)
    assert set(recording.block_pulses) == {3}
    (dropped,) = recording.dropped_pulses
    assert dropped["trigger"] == f"row {len(rows)} ({first!r})"
    assert dropped["width_s"] == 3.0
    # Without the keys every row is a stimulus.
    config["recording"]["trigger_train_gap_s"] = None
    config["recording"]["trigger_max_pulse_s"] = None
    assert len(read_sub_01(dataset, config).conditions) == 3 * len(trials) + 1

    # MNE-BIDS refuses such a duration in an EMG-BIDS dataset; a physio events.tsv
    # reaches tsv_events unread.
    config["recording"]["trigger_train_gap_s"] = 2.0
    edit_events(dataset, "sub-01", lambda t: t.assign(duration="-0.1"))
    onsets_s, trial_types = bids.read_events(events, "sub-01")
    with pytest.raises(RecordingError) as error:
        bids.tsv_events(
            events, "sub-01", onsets_s * fs, trial_types, fs, config["recording"]
        )
    assert str(error.value) == (
        f"sub-01: {events}, row 1: duration '-0.1' is not a length in seconds or n/a"
    )
