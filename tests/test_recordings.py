"""Readers: EDF, BDF, BrainVision, AcqKnowledge and text exports written here, good
and bad; the sample sheet's formats and file names."""

import copy
import os
import re
import shutil
from dataclasses import replace

import edfio
import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import update_config, validate

from helpers.acq_file import write_acq

from helpers.devtools import job_counts, run_snakemake
from mimicry.config.raw_files import raw_file_name, raw_formats
from mimicry.config.sample_sheet import read_sample_sheet, with_design_columns
from mimicry.config.validation import ConfigError, check_config
from mimicry.io.recording_types import RecordingError
from mimicry.io.recordings import declared_sampling_rate, read_recording
from mimicry.package_data import CONFIG_SCHEMA
from mimicry.plots.qc_figures import participant_figure
from mimicry.preprocessing.preprocess import (
    TABLE_SCHEMA,
    preprocess_participant,
    preprocess_recording,
)
from mimicry.preprocessing.spectra import channel_spectra
from mimicry.simulate import PHYSICAL_RANGE_UV, plan_participant, synthesize, write_edf

PARTICIPANT = "sub-001"
# EDF stores 16-bit integers over +-4000 uV: one step is 0.12 uV, rounding half of it.
EDF_QUANTISATION_UV = 2 * PHYSICAL_RANGE_UV / 65535 / 2 + 1e-9
STIM_CODES = {"1": "AngryToHappy", "2": "HappyToAngry"}
PULSE_SAMPLES = 10


@pytest.fixture(scope="module")
def simulated(steady_quick_config, tmp_path_factory):
    """One quick-study participant: plan, signals in uV and its EDF+ file. On a
    steady background: with a wandering level its EMG's spread sits at the line
    (TRIGGER_REST_SHARE_OF_RANGE) between a trigger and a signal, as real EMG
    channels do on both sides of it, and an EMG channel misread as a trigger would
    take either branch of the trigger checks."""
    config = steady_quick_config
    directory = tmp_path_factory.mktemp("recordings")
    plan = plan_participant(config, PARTICIPANT, "placebo")
    data_uv = synthesize(plan, config)
    path = directory / f"{PARTICIPANT}.edf"
    write_edf(path, data_uv, plan, config)
    return plan, data_uv, path


def configured(config, **sections):
    """config with sections deep-merged in, validated and defaults filled (as a run)."""
    merged = copy.deepcopy(config)
    update_config(merged, copy.deepcopy(sections))
    validate(merged, str(CONFIG_SCHEMA))
    return merged


def read(config, path, settings=None, **overrides):
    """Read with config's resolved `recording` section, settings merged into it."""
    arguments = dict(
        channels=config["channels"],
        conditions=config["study"]["conditions"],
        settings=configured(config, recording=settings or {})["recording"],
    )
    return read_recording(path, PARTICIPANT, **{**arguments, **overrides})


def expected_onsets(plan, fs):
    return np.round(np.array([t.onset_s for t in plan.trials]) * fs).astype(int)


def assert_names_participant_and_file(error, path):
    message = str(error.value)
    assert PARTICIPANT in message and str(path) in message, message


def test_edf_gives_microvolts_onsets_and_conditions(quick_config, simulated):
    plan, data_uv, path = simulated
    recording = read(quick_config, path)
    fs = quick_config["simulation"]["sampling_rate_hz"]
    assert recording.sampling_rate_hz == fs
    assert recording.path == path and recording.participant == PARTICIPANT
    assert list(recording.signals_uv) == quick_config["study"]["muscles"]
    for row, muscle in enumerate(quick_config["study"]["muscles"]):
        np.testing.assert_allclose(
            recording.signals_uv[muscle], data_uv[row], atol=EDF_QUANTISATION_UV
        )
    np.testing.assert_array_equal(recording.onset_samples, expected_onsets(plan, fs))
    np.testing.assert_allclose(
        recording.onset_seconds, [t.onset_s for t in plan.trials]
    )
    assert recording.conditions == tuple(t.condition for t in plan.trials)


def test_only_the_mapped_channels_are_loaded(quick_config, simulated):
    _, _, path = simulated
    recording = read(quick_config, path, channels={"CS": "EMG_CS"})
    assert list(recording.signals_uv) == ["CS"]


def test_bdf_with_stim_channel(quick_config, simulated, tmp_path):
    plan, data_uv, _ = simulated
    fs = quick_config["simulation"]["sampling_rate_hz"]
    onsets = expected_onsets(plan, fs)
    status = np.zeros(data_uv.shape[1])
    codes = {condition: int(code) for code, condition in STIM_CODES.items()}
    for onset, trial in zip(onsets, plan.trials):
        status[onset : onset + PULSE_SAMPLES] = codes[trial.condition]
    status_range = (-(2**23), 2**23 - 1)  # physical = digital: codes are stored as is
    signals = [
        edfio.BdfSignal(
            channel,
            sampling_frequency=fs,
            label=quick_config["channels"][muscle],
            physical_dimension="uV",
            physical_range=(-PHYSICAL_RANGE_UV, PHYSICAL_RANGE_UV),
        )
        for muscle, channel in zip(quick_config["study"]["muscles"], data_uv)
    ]
    signals.append(
        edfio.BdfSignal(
            status, sampling_frequency=fs, label="Status", physical_range=status_range
        )
    )
    path = tmp_path / "recording.bdf"
    edfio.Bdf(signals).write(path)

    settings = {"event_source": "stim_channel", "event_labels": STIM_CODES}
    recording = read(quick_config, path, settings)
    np.testing.assert_array_equal(recording.onset_samples, onsets)
    assert recording.conditions == tuple(t.condition for t in plan.trials)
    # 24-bit BDF keeps the signal 256 times finer than EDF.
    for row, muscle in enumerate(quick_config["study"]["muscles"]):
        np.testing.assert_allclose(
            recording.signals_uv[muscle], data_uv[row], atol=EDF_QUANTISATION_UV / 100
        )


def write_brainvision(directory, data_uv, channel_names, fs, markers):
    """A BrainVision triplet (.vhdr, .vmrk, float32 .eeg) as recorders write it."""
    header = directory / "recording.vhdr"
    channel_lines = "\n".join(
        f"Ch{i}={name},,1,µV" for i, name in enumerate(channel_names, start=1)
    )
    header.write_text(
        "Brain Vision Data Exchange Header File Version 1.0\n\n"
        "[Common Infos]\nCodepage=UTF-8\nDataFile=recording.eeg\n"
        "MarkerFile=recording.vmrk\nDataFormat=BINARY\nDataOrientation=MULTIPLEXED\n"
        f"NumberOfChannels={len(channel_names)}\n"
        f"SamplingInterval={1e6 / fs:g}\n\n"
        "[Binary Infos]\nBinaryFormat=IEEE_FLOAT_32\n\n"
        f"[Channel Infos]\n{channel_lines}\n",
        encoding="utf-8",
    )
    # Marker positions count samples from 1.
    marker_lines = ["Mk1=New Segment,,1,1,0"] + [
        f"Mk{i}=Stimulus,{label},{sample + 1},1,0"
        for i, (label, sample) in enumerate(markers, start=2)
    ]
    (directory / "recording.vmrk").write_text(
        "Brain Vision Data Exchange Marker File, Version 1.0\n\n"
        "[Common Infos]\nCodepage=UTF-8\nDataFile=recording.eeg\n\n"
        "[Marker Infos]\n" + "\n".join(marker_lines) + "\n",
        encoding="utf-8",
    )
    data_uv.T.astype("<f4").tofile(directory / "recording.eeg")
    return header


@pytest.fixture
def brainvision(quick_config, simulated, tmp_path):
    plan, data_uv, _ = simulated
    fs = quick_config["simulation"]["sampling_rate_hz"]
    labels = {condition: f"S  {code}" for code, condition in STIM_CODES.items()}
    markers = [
        (labels[t.condition], onset)
        for t, onset in zip(plan.trials, expected_onsets(plan, fs))
    ]
    channel_names = [
        quick_config["channels"][m] for m in quick_config["study"]["muscles"]
    ]
    header = write_brainvision(tmp_path, data_uv, channel_names, fs, markers)
    event_labels = {
        f"Stimulus/{label}": condition for condition, label in labels.items()
    }
    return header, {"event_labels": event_labels}


def test_brainvision_with_markers(quick_config, simulated, brainvision):
    plan, data_uv, _ = simulated
    header, settings = brainvision
    recording = read(quick_config, header, settings)
    fs = quick_config["simulation"]["sampling_rate_hz"]
    np.testing.assert_array_equal(recording.onset_samples, expected_onsets(plan, fs))
    assert recording.conditions == tuple(t.condition for t in plan.trials)
    for row, muscle in enumerate(quick_config["study"]["muscles"]):
        np.testing.assert_allclose(
            recording.signals_uv[muscle], data_uv[row].astype(np.float32), rtol=1e-6
        )


def test_truncated_brainvision_data(quick_config, brainvision):
    header, settings = brainvision
    data = header.with_suffix(".eeg")
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(RecordingError, match="truncated") as error:
        read(quick_config, header, settings)
    assert_names_participant_and_file(error, header)


def edit_header(header, old, new):
    text = header.read_text(encoding="utf-8")
    assert old in text
    header.write_text(text.replace(old, new), encoding="utf-8")


def test_brainvision_data_must_agree_with_the_headers_size_and_format(
    quick_config, simulated, brainvision
):
    """A float32 data file under an INT_16 header would be read as twice as long and
    full of garbage; under a wrong DataPoints or channel count, cut or padded."""
    _, data_uv, _ = simulated
    header, settings = brainvision
    data = header.with_suffix(".eeg")
    size, n_channels = data.stat().st_size, data_uv.shape[0]
    edit_header(header, "BinaryFormat=IEEE_FLOAT_32", "BinaryFormat=INT_16")
    with pytest.raises(RecordingError) as error:
        read(quick_config, header, settings)
    assert_names_participant_and_file(error, header)
    message = str(error.value)
    assert (
        f"the data file {data} holds 32-bit floats, not BinaryFormat=INT_16" in message
    )
    assert (
        f"its {size} bytes are {size // (n_channels * 2)} samples per channel as "
        f"INT_16 but {size // (n_channels * 4)} as IEEE_FLOAT_32" in message
    )
    edit_header(header, "BinaryFormat=INT_16", "BinaryFormat=IEEE_FLOAT_32")

    samples = data_uv.shape[1]
    edit_header(
        header, "DataFormat=BINARY", f"DataPoints={samples + 10}\nDataFormat=BINARY"
    )
    with pytest.raises(RecordingError) as error:
        read(quick_config, header, settings)
    assert (
        f"the data file {data} has {size} bytes, but the header announces "
        f"{(samples + 10) * n_channels * 4}: DataPoints={samples + 10}"
    ) in str(error.value)
    edit_header(header, f"DataPoints={samples + 10}", f"DataPoints={samples}")
    read(quick_config, header, settings)

    edit_header(header, f"NumberOfChannels={n_channels}", "NumberOfChannels=3")
    with pytest.raises(RecordingError, match="has .* bytes, but the header announces"):
        read(quick_config, header, settings)


def test_brainvision_integer_data_are_told_from_floats(
    quick_config, simulated, brainvision
):
    """INT_16 data (0.1 uV steps) read under their own header, and refused under
    an IEEE_FLOAT_32 one."""
    _, data_uv, _ = simulated
    header, settings = brainvision
    resolution = 0.1
    counts = np.round(data_uv / resolution).astype("<i2")
    counts.T.tofile(header.with_suffix(".eeg"))
    with pytest.raises(RecordingError, match="holds integers, not BinaryFormat=IEEE"):
        read(quick_config, header, settings)
    text = header.read_text(encoding="utf-8").replace(",,1,µV", f",,{resolution},µV")
    header.write_text(text.replace("IEEE_FLOAT_32", "INT_16"), encoding="utf-8")
    recording = read(quick_config, header, settings)
    for row, muscle in enumerate(quick_config["study"]["muscles"]):
        np.testing.assert_allclose(
            recording.signals_uv[muscle], counts[row] * resolution, atol=1e-9
        )


@pytest.mark.parametrize(
    "key, name",
    [
        ("DataFile", "/etc/hostname"),
        ("DataFile", "../recording.eeg"),
        ("MarkerFile", "markers/recording.vmrk"),
        ("MarkerFile", ".."),
    ],
)
def test_brainvision_header_names_only_files_beside_it(
    quick_config, brainvision, key, name
):
    header, settings = brainvision
    edit_header(header, f"{key}=recording.", f"{key}={name}#")
    # The edit leaves "<name>#vmrk" or "#eeg": back to the name alone.
    edit_header(header, f"{name}#{'eeg' if key == 'DataFile' else 'vmrk'}", name)
    with pytest.raises(RecordingError) as error:
        read(quick_config, header, settings)
    assert_names_participant_and_file(error, header)
    assert f"{key}={name} in the header is not a file name beside the header" in str(
        error.value
    )


def test_missing_brainvision_marker_file_is_named(quick_config, brainvision):
    header, settings = brainvision
    markers = header.with_suffix(".vmrk")
    markers.unlink()
    with pytest.raises(RecordingError) as error:
        read(quick_config, header, settings)
    message = str(error.value)
    assert f"the marker file {markers} (MarkerFile in the header) does not exist" in (
        message
    )
    assert "no stimulus events" not in message
    assert_names_participant_and_file(error, header)


@pytest.mark.workflow
def test_a_brainvision_data_file_shared_by_two_participants_stops_before_any_job(
    workflow_copy, quick_config, brainvision
):
    """sub-002's set was renamed from sub-001's, but its header still names
    sub-001's data: the dry-run stops naming both. The study's files are found by an
    absolute source.file_pattern."""
    header, settings = brainvision
    raw = workflow_copy / "own" / "raw"
    raw.mkdir(parents=True)
    for participant in ("sub-001", "sub-002"):
        for suffix in (".vhdr", ".vmrk", ".eeg"):
            shutil.copy(header.with_suffix(suffix), raw / f"{participant}{suffix}")
        edit_header(raw / f"{participant}.vhdr", "=recording.", f"={participant}.")
    (workflow_copy / "own.tsv").write_text(
        "participant_id\tgroup\nsub-001\tplacebo\nsub-002\tnaltrexone\n"
    )
    overrides = {
        "participants": "own.tsv",
        "source": {"kind": "local", "file_pattern": f"{raw}/{{participant_id}}.vhdr"},
        "recording": settings,
    }
    (workflow_copy / "own.yaml").write_text(yaml.safe_dump(overrides))
    arguments = ("-n", "--cores", "1", "--configfile", "config/quick.yaml", "own.yaml")
    target = "results/aggregate/cells.parquet"
    planned = run_snakemake(workflow_copy, target, *arguments)
    assert job_counts(planned.stdout) == {
        "aggregate": 1,
        "preprocess": 2,
        "raw_content": 2,
    }

    edit_header(raw / "sub-002.vhdr", "DataFile=sub-002.eeg", "DataFile=sub-001.eeg")
    result = run_snakemake(workflow_copy, target, *arguments, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (
        f"{raw / 'sub-001.eeg'} is the DataFile of both sub-001 "
        f"({raw / 'sub-001.vhdr'}) and sub-002 ({raw / 'sub-002.vhdr'})"
    ) in output, output


def test_header_only_edf_and_dangling_symlink_are_named(
    quick_config, simulated, tmp_path
):
    _, _, source = simulated
    content = source.read_bytes()
    header_bytes = int(content[184:192])
    empty = tmp_path / "header-only.edf"
    empty.write_bytes(edf_header_field(bytearray(content[:header_bytes]), 236, 8, 0))
    with pytest.raises(RecordingError) as error:
        read(quick_config, empty)
    assert_names_participant_and_file(error, empty)
    assert "holds no samples: its EDF header" in str(error.value)

    link = tmp_path / "linked.edf"
    os.symlink(tmp_path / "moved-away.edf", link)
    with pytest.raises(RecordingError) as error:
        read(quick_config, link)
    assert_names_participant_and_file(error, link)
    assert f"is a symlink to {tmp_path / 'moved-away.edf'}, which does not exist" in (
        str(error.value)
    )


def test_two_stimuli_at_one_sample_name_the_markers_not_response_s(
    quick_config, simulated, tmp_path
):
    plan, data_uv, _ = simulated
    fs = quick_config["simulation"]["sampling_rate_hz"]
    trials = list(plan.trials)
    doubled = trials[3]
    other = next(c for c in STIM_CODES.values() if c != doubled.condition)
    trials.insert(4, replace(doubled, condition=other))
    path = tmp_path / "doubled.edf"
    write_edf(path, data_uv, replace(plan, trials=tuple(trials)), quick_config)
    with pytest.raises(RecordingError) as error:
        read(quick_config, path)
    assert_names_participant_and_file(error, path)
    message = str(error.value)
    sample = round(doubled.onset_s * fs)
    assert (
        f"two stimulus events at one sample, {sample} ({sample / fs:.3f} s): "
        "annotation 'AngryToHappy' and annotation 'HappyToAngry'"
    ) in message or (
        f"two stimulus events at one sample, {sample} ({sample / fs:.3f} s): "
        "annotation 'HappyToAngry' and annotation 'AngryToHappy'"
    ) in message, message
    assert "remove the duplicate marker" in message and "response_s" not in message


def square_pulses(n_samples, onsets, height):
    trigger = np.zeros(n_samples)
    for onset in onsets:
        trigger[onset : onset + 50] = height
    return trigger


def test_csv_with_one_trigger_column_per_condition_matches_edf(
    quick_config, simulated, tmp_path
):
    """The same data as CSV (mV, time column) preprocesses exactly like the EDF."""
    plan, _, edf_path = simulated
    from_edf = read(quick_config, edf_path)
    conditions = np.array(from_edf.conditions)
    n_samples = from_edf.n_samples
    columns = {"time_s": np.arange(n_samples) / from_edf.sampling_rate_hz}
    for muscle, channel in quick_config["channels"].items():
        columns[channel] = from_edf.signals_uv[muscle] / 1000
    triggers = {"TRIG_A2H": "AngryToHappy", "TRIG_H2A": "HappyToAngry"}
    for column, condition in triggers.items():
        onsets = from_edf.onset_samples[conditions == condition]
        columns[column] = square_pulses(n_samples, onsets, height=5.0)
    path = tmp_path / "export.csv"

    def write_export():
        np.savetxt(
            path,
            np.column_stack(list(columns.values())),
            delimiter=",",
            header=",".join(columns),
            comments="",
            fmt=["%.3f", "%.9f", "%.9f", "%g", "%g"],
        )

    write_export()
    settings = {"text": {"time_column": "time_s", "units": "mV"}, "triggers": triggers}

    from_csv = read(quick_config, path, settings)
    assert from_csv.sampling_rate_hz == from_edf.sampling_rate_hz
    np.testing.assert_array_equal(from_csv.onset_samples, from_edf.onset_samples)
    assert from_csv.conditions == from_edf.conditions
    for muscle in from_edf.signals_uv:
        np.testing.assert_allclose(
            from_csv.signals_uv[muscle], from_edf.signals_uv[muscle], atol=1e-6
        )

    sections = ("study", "channels", "recording", "preprocess")
    csv_config = configured(quick_config, recording=settings)
    csv_table, csv_qc = preprocess_participant(
        path, PARTICIPANT, {key: csv_config[key] for key in sections}
    )
    edf_table, edf_qc = preprocess_participant(
        edf_path, PARTICIPANT, {key: quick_config[key] for key in sections}
    )
    csv_frame, edf_frame = csv_table.to_pandas(), edf_table.to_pandas()
    np.testing.assert_allclose(csv_frame["value"], edf_frame["value"], atol=1e-6)
    assert csv_frame.drop(columns="value").equals(edf_frame.drop(columns="value"))
    assert csv_qc["exclusion_reasons"] == edf_qc["exclusion_reasons"]

    # Both triggers pulse at one onset: the columns and the line are named.
    onset = int(from_edf.onset_samples[conditions == "AngryToHappy"][0])
    columns["TRIG_H2A"][onset : onset + 50] = 5.0
    write_export()
    with pytest.raises(RecordingError) as error:
        read(quick_config, path, settings)
    assert (
        f"two stimulus events at one sample, {onset} ({onset / 1000:.3f} s): a pulse "
        f"on column 4 ('TRIG_A2H') (line {onset + 2}) and a pulse on column 5 "
        f"('TRIG_H2A') (line {onset + 2}) (1 such pair(s)); each stimulus needs exactly "
        "one onset: if two trigger columns or channels mark the same stimulus, keep "
        "one of them in recording.triggers"
    ) in str(error.value)


def test_tsv_with_level_coded_trigger_and_no_time_column(
    quick_config, simulated, tmp_path
):
    plan, data_uv, _ = simulated
    fs = quick_config["simulation"]["sampling_rate_hz"]
    onsets = expected_onsets(plan, fs)
    levels = {"1.0": "AngryToHappy", "2.0": "HappyToAngry"}
    heights = {condition: float(level) for level, condition in levels.items()}
    trigger = np.zeros(data_uv.shape[1])
    for onset, trial in zip(onsets, plan.trials):
        height = heights[trial.condition]
        # An analog pulse: a two-sample ramp, then a plateau with a little noise.
        trigger[onset : onset + 2] = [0.45 * height, 0.9 * height]
        trigger[onset + 2 : onset + 40] = height + 0.02 * np.sin(np.arange(38))
    path = tmp_path / "export.tsv"
    with open(path, "w") as handle:
        handle.write("Exported by AcqSoftware 2.1\nsubject: anonymous\n")
        np.savetxt(
            handle,
            np.column_stack([data_uv[0], data_uv[1], trigger]),
            delimiter="\t",
            header="EMG_ZM\tEMG_CS\tTRIGGER",
            comments="",
            fmt="%.6f",
        )
    settings = {
        "text": {"skip_rows": 2, "sampling_rate_hz": fs},
        "trigger_threshold": 0.4,
        "triggers": {"TRIGGER": levels},
    }
    recording = read(quick_config, path, settings)
    np.testing.assert_array_equal(recording.onset_samples, onsets)
    assert recording.conditions == tuple(t.condition for t in plan.trials)
    np.testing.assert_allclose(recording.signals_uv["CS"], data_uv[1], atol=1e-6)


def test_missing_file(quick_config, tmp_path):
    path = tmp_path / "absent.edf"
    with pytest.raises(RecordingError, match="does not exist") as error:
        read(quick_config, path)
    assert_names_participant_and_file(error, path)


def test_truncated_edf(quick_config, simulated, tmp_path):
    _, _, source = simulated
    path = tmp_path / "truncated.edf"
    path.write_bytes(source.read_bytes()[: int(source.stat().st_size * 0.6)])
    with pytest.raises(RecordingError, match="truncated") as error:
        read(quick_config, path)
    assert_names_participant_and_file(error, path)


def test_corrupt_edf_header(quick_config, simulated, tmp_path):
    _, _, source = simulated
    content = bytearray(source.read_bytes())
    content[252:256] = b"x?#!"  # the number-of-signals field
    path = tmp_path / "corrupt.edf"
    path.write_bytes(bytes(content))
    with pytest.raises(
        RecordingError, match="broken EDF header: number of signals is 'x\\?#!'"
    ) as error:
        read(quick_config, path)
    assert_names_participant_and_file(error, path)


def test_channel_not_found_lists_the_available_ones(quick_config, simulated):
    _, _, path = simulated
    with pytest.raises(RecordingError, match="not found") as error:
        read(quick_config, path, channels={"ZM": "EMG_ZM", "CS": "Corrugator"})
    assert "Corrugator" in str(error.value) and "EMG_CS" in str(error.value)
    assert_names_participant_and_file(error, path)


def edf_with_annotations(config, tmp_path, plan, data_uv, labels):
    """The participant's EDF with its onsets annotated by other labels."""
    trials = tuple(
        replace(trial, condition=label) for trial, label in zip(plan.trials, labels)
    )
    path = tmp_path / "annotated.edf"
    write_edf(path, data_uv, replace(plan, trials=trials), config)
    return path


def test_a_file_without_events_is_excluded_or_stops_by_config(
    quick_config, simulated, tmp_path
):
    _, data_uv, _ = simulated
    signals = [
        edfio.EdfSignal(
            channel,
            sampling_frequency=quick_config["simulation"]["sampling_rate_hz"],
            label=quick_config["channels"][muscle],
            physical_dimension="uV",
            physical_range=(-PHYSICAL_RANGE_UV, PHYSICAL_RANGE_UV),
        )
        for muscle, channel in zip(quick_config["study"]["muscles"], data_uv)
    ]
    path = tmp_path / "no-events.edf"
    edfio.Edf(signals).write(path)
    with pytest.raises(RecordingError, match="no stimulus events") as error:
        read(quick_config, path, {"without_events": "error"})
    assert_names_participant_and_file(error, path)
    recording = read(quick_config, path)
    assert recording.without_events == (
        f"no_events:{path} no stimulus events found (expected labels "
        "['AngryToHappy', 'HappyToAngry']) (recording.without_events: exclude)"
    )


def test_unknown_event_labels_are_listed_with_the_configured_ones(
    quick_config, simulated, tmp_path
):
    plan, data_uv, _ = simulated
    labels = [t.condition for t in plan.trials]
    labels[3] = "Fixation"
    path = edf_with_annotations(quick_config, tmp_path, plan, data_uv, labels)
    with pytest.raises(RecordingError, match="unknown event labels") as error:
        read(quick_config, path)
    message = str(error.value)
    assert "Fixation" in message and "AngryToHappy" in message
    assert_names_participant_and_file(error, path)
    # Declared as ignorable, the same label is skipped.
    recording = read(quick_config, path, {"ignore_labels": ["Fixation"]})
    assert len(recording.conditions) == len(plan.trials) - 1


def test_event_labels_map_annotations_to_conditions(quick_config, simulated, tmp_path):
    plan, data_uv, _ = simulated
    codes = {condition: code for code, condition in STIM_CODES.items()}
    path = edf_with_annotations(
        quick_config, tmp_path, plan, data_uv, [codes[t.condition] for t in plan.trials]
    )
    recording = read(quick_config, path, {"event_labels": STIM_CODES})
    assert recording.conditions == tuple(t.condition for t in plan.trials)


def test_unsupported_format(quick_config, tmp_path):
    path = tmp_path / "recording.xdf"
    path.write_bytes(b"\0" * 64)
    with pytest.raises(RecordingError, match="unsupported format 'xdf'") as error:
        read(quick_config, path)
    assert_names_participant_and_file(error, path)


def test_stim_channel_missing(quick_config, simulated):
    _, _, path = simulated
    with pytest.raises(RecordingError, match="no stim channel") as error:
        read(
            quick_config,
            path,
            {"event_source": "stim_channel", "event_labels": STIM_CODES},
        )
    assert_names_participant_and_file(error, path)


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def fields_of(columns, fmt="{:.6f}", decimal="."):
    """Text of each sample's fields, column by column."""
    return [
        [fmt.format(value).replace(".", decimal) for value in column]
        for column in columns
    ]


@pytest.fixture
def export_columns(quick_config, simulated):
    """The simulated participant as an export's columns: time, ZM, CS, an empty
    column, rectified ZM, one 0/5 V trigger per condition; and the EDF reading."""
    _, _, edf_path = simulated
    from_edf = read(quick_config, edf_path)
    n, fs = from_edf.n_samples, from_edf.sampling_rate_hz
    conditions = np.array(from_edf.conditions)
    triggers = [
        square_pulses(n, from_edf.onset_samples[conditions == c], height=5.0)
        for c in quick_config["study"]["conditions"]
    ]
    zm, cs = (np.round(from_edf.signals_uv[m], 6) for m in ("ZM", "CS"))
    text = fields_of([np.arange(n) / fs, zm, cs], "{:.6f}")
    text.append([""] * n)
    text += fields_of([np.abs(zm), *triggers], "{:g}")
    return text, from_edf


def rows(text, delimiter="\t", trailing=""):
    return [delimiter.join(row) + trailing for row in zip(*text)]


HEADERLESS = {
    "format": "txt",
    "text": {"header": False, "time_column": 1},
    "triggers": {"6": "AngryToHappy", "7": "HappyToAngry"},
}


def test_headerless_export_with_trailing_tabs_by_position_or_by_given_names(
    quick_config, export_columns, tmp_path
):
    """AcqKnowledge without its header option: 7 fields, a tab after the last."""
    text, from_edf = export_columns
    path = write_lines(tmp_path / "sub-001.txt", rows(text, trailing="\t"))
    by_position = read(quick_config, path, HEADERLESS, channels={"ZM": 2, "CS": 3})
    names = ["t", "zyg", "corr", "empty", "zyg_rect", "trig_a2h", "trig_h2a"]
    by_name = read(
        quick_config,
        path,
        {
            "format": "txt",
            "text": {"header": False, "column_names": names, "time_column": "t"},
            "triggers": {"trig_a2h": "AngryToHappy", "trig_h2a": "HappyToAngry"},
        },
        channels={"ZM": "zyg", "CS": "corr"},
    )
    for recording in (by_position, by_name):
        assert recording.sampling_rate_hz == from_edf.sampling_rate_hz
        np.testing.assert_array_equal(recording.onset_samples, from_edf.onset_samples)
        assert recording.conditions == from_edf.conditions
        for muscle, signal in from_edf.signals_uv.items():
            np.testing.assert_allclose(recording.signals_uv[muscle], signal, atol=1e-6)


def test_a_header_without_the_trailing_tab_of_the_data_lines_keeps_the_columns(
    quick_config, export_columns, tmp_path
):
    """The layout that once shifted every column by one."""
    text, from_edf = export_columns
    header = "time\tzyg\tcorr\t\tzyg_rect\tA2H\tH2A"
    path = write_lines(tmp_path / "export.tsv", [header, *rows(text, trailing="\t")])
    recording = read(
        quick_config,
        path,
        {
            "text": {"time_column": "time"},
            "triggers": {"A2H": "AngryToHappy", "H2A": "HappyToAngry"},
        },
        channels={"ZM": "zyg", "CS": "corr"},
    )
    np.testing.assert_allclose(
        recording.signals_uv["ZM"], from_edf.signals_uv["ZM"], atol=1e-6
    )
    np.testing.assert_array_equal(recording.onset_samples, from_edf.onset_samples)


def test_preamble_comments_semicolons_and_decimal_commas(
    quick_config, export_columns, tmp_path
):
    text, from_edf = export_columns
    text = [[field.replace(".", ",") for field in column] for column in text]
    lines = rows(text, delimiter=";")
    lines.insert(100, "# marker: participant looked away")
    path = write_lines(
        tmp_path / "export.csv",
        ["Exported 2023-05-02", "1 msec/sample", "# a comment", "time;ZM;CS;;R;A;H"]
        + lines,
    )
    settings = {
        "text": {
            "delimiter": ";",
            "decimal": ",",
            "skip_rows": 2,
            "comment": "#",
            "time_column": "time",
        },
        "triggers": {"A": "AngryToHappy", "H": "HappyToAngry"},
    }
    recording = read(quick_config, path, settings, channels={"ZM": "ZM", "CS": 3})
    np.testing.assert_allclose(
        recording.signals_uv["CS"], from_edf.signals_uv["CS"], atol=1e-6
    )
    np.testing.assert_array_equal(recording.onset_samples, from_edf.onset_samples)


def with_times(lines, retime):
    """lines with the time field (first) of line i set to retime(i, time)."""
    edited = []
    for i, line in enumerate(lines):
        time, rest = line.split("\t", 1)
        edited.append(f"{retime(i, float(time)):.6f}\t{rest}")
    return edited


def clock_fast_from(line_index, rate=1.01):
    """A retime for with_times: from line_index on, time runs rate times too fast."""
    start = None

    def retime(i, time):
        nonlocal start
        if i < line_index:
            return time
        start = time if start is None else start
        return start + rate * (time - start)

    return retime


def with_field(lines, line, position, value):
    """lines with one field (1-based line and position) replaced."""
    fields = lines[line - 1].split("\t")
    fields[position - 1] = value
    return lines[: line - 1] + ["\t".join(fields)] + lines[line:]


@pytest.mark.parametrize(
    "header, edit, message",
    [
        # A header naming one column fewer than the data lines have fields.
        (
            True,
            lambda lines: ["zyg\tcorr\t\trect\tA\tH", *lines],
            r"header \(line 1\) names 6 columns but the data lines have 7 fields.*"
            r"recording.text.header: false",
        ),
        (
            False,
            lambda lines: with_field(lines, 41, 7, "0\t0.5"),
            r"line 41 has 8 fields, but the first data line \(1\) has 7",
        ),
        (
            False,
            lambda lines: lines[:40] + [lines[40].replace("\t\t", "\t")] + lines[41:],
            r"line 41 has 6 fields",
        ),
        (
            False,
            lambda lines: with_field(lines, 41, 2, "n/a"),
            r"line 41, column 2 \('2'\): 'n/a' is not a number",
        ),
        (
            False,
            lambda lines: with_field(lines, 41, 3, ""),
            r"line 41, column 3 \('3'\): is empty",
        ),
        (
            False,
            lambda lines: with_field(lines, 41, 3, "inf"),
            r"line 41, column 3 \('3'\): 'inf' is not a finite number",
        ),
        (
            False,
            lambda lines: with_field(lines, 41, 2, "NaN"),
            r"line 41, column 2 \('2'\): 'NaN' is not a finite number",
        ),
        # One second of lines missing: a gap in the time column.
        (
            False,
            lambda lines: lines[:1000] + lines[2000:],
            r"column 1 \('1'\), the time column \(recording.text.time_column\), jumps "
            r"from 0.999 to 2.0 at line 1001: a gap of 1.001 s \(about 99\d samples "
            r"missing\)",
        ),
        # Stamps alternately late by 0.6 of a sample: jitter.
        (
            False,
            lambda lines: with_times(lines, lambda i, t: t - 0.0006 * (i % 2)),
            r"jumps from 0.0 to 0.0004 at line 2: a step of 0.0004 s where the "
            r"samples are 0.001 s apart",
        ),
        # A clock running 1% fast from the middle on: each step is close to the
        # interval, but the stamps drift off the even grid.
        (
            False,
            lambda lines: with_times(lines, clock_fast_from(len(lines) // 2)),
            r"drifts from an even 0.001\d* s grid by more than half a sample from line",
        ),
        # A one-sample spike on a trigger column before the first stimulus.
        (
            False,
            lambda lines: with_field(lines, 501, 6, "12"),
            r"a pulse on column 6 \('6'\) at 0.500 s \(line 501\) lasts 1 ms, "
            r"shorter than recording.trigger_min_pulse_s 0.005 s; if such pulses are "
            r"glitches, set recording.trigger_glitches: drop",
        ),
    ],
)
def test_ambiguous_or_broken_lines_are_refused_by_line(
    quick_config, export_columns, tmp_path, header, edit, message
):
    text, _ = export_columns
    path = write_lines(tmp_path / "sub-001.txt", edit(rows(text)))
    settings = {**HEADERLESS, "text": {**HEADERLESS["text"], "header": header}}
    with pytest.raises(RecordingError, match=message) as error:
        read(quick_config, path, settings, channels={"ZM": 2, "CS": 3})
    assert_names_participant_and_file(error, path)


@pytest.mark.parametrize(
    "channels, triggers, threshold, message",
    [
        (
            {"ZM": 5, "CS": 3},
            None,
            2.5,
            r"column 5 \('5'\), configured as channels.ZM, is not signed",
        ),
        (
            {"ZM": 1, "CS": 3},
            None,
            2.5,
            r"column 1 \('1'\), configured as channels.ZM, increases on every line",
        ),
        (
            {"ZM": 6, "CS": 3},
            None,
            2.5,
            r"column 6 \('6'\), configured as channels.ZM, takes only a few",
        ),
        (
            {"ZM": 2, "CS": 3},
            {"3": "AngryToHappy"},
            2.5,
            r"column 3 \('3'\), configured as a trigger \(recording.triggers.3\), "
            r"(varies like a signal|rises through recording.trigger_threshold 2.5 "
            r"\d+ times)",
        ),
        (
            {"ZM": 2, "CS": 3},
            None,
            6.0,
            r"column 6 \('6'\) \(recording.triggers.6\) never rises through recording.trigger_threshold 6",
        ),
    ],
)
def test_channels_that_do_not_look_like_their_role_are_named(
    quick_config, export_columns, tmp_path, channels, triggers, threshold, message
):
    text, _ = export_columns
    path = write_lines(tmp_path / "sub-001.txt", rows(text))
    settings = {
        **HEADERLESS,
        "triggers": triggers or HEADERLESS["triggers"],
        "trigger_threshold": threshold,
        "without_events": "error",
    }
    with pytest.raises(RecordingError, match=message) as error:
        read(quick_config, path, settings, channels=channels)
    assert "recording.check_channels: false" in str(error.value)
    assert_names_participant_and_file(error, path)


def test_channel_checks_can_be_turned_off_for_rectified_exports(
    quick_config, export_columns, tmp_path
):
    text, _ = export_columns
    path = write_lines(tmp_path / "sub-001.txt", rows(text))
    settings = {**HEADERLESS, "check_channels": False}
    recording = read(quick_config, path, settings, channels={"ZM": 5, "CS": 3})
    assert (recording.signals_uv["ZM"] >= 0).all()


def test_text_export_with_a_cut_last_line_or_an_unknown_column(quick_config, tmp_path):
    rows_ = [
        f"{i % 7 - 3},{i % 5 - 2},{i % 3},{5 * (i % 40 == 10)}" for i in range(100)
    ]
    path = write_lines(
        tmp_path / "export.csv", ["EMG_ZM,EMG_CS,other,TRIG", *rows_, "101,2"]
    )
    settings = {
        "text": {"sampling_rate_hz": 100},
        "triggers": {"TRIG": "AngryToHappy"},
        "check_channels": False,
    }
    with pytest.raises(RecordingError, match="line 102 has 2 fields") as error:
        read(quick_config, path, settings)
    assert_names_participant_and_file(error, path)
    path = write_lines(path, ["EMG_ZM,EMG_CS,other,TRIG", *rows_])
    assert len(read(quick_config, path, settings).conditions) == 3
    wrong_trigger = {**settings, "triggers": {"Trigger": "AngryToHappy"}}
    with pytest.raises(
        RecordingError, match=r"'Trigger' \(recording.triggers.Trigger\) not found"
    ) as error:
        read(quick_config, path, wrong_trigger)
    assert "['EMG_ZM', 'EMG_CS', 'other', 'TRIG']" in str(error.value)
    assert_names_participant_and_file(error, path)


@pytest.fixture
def acq_export(quick_config, simulated, tmp_path):
    """The simulated participant as an AcqKnowledge file: EMG in mV, a 0/5 V trigger
    per condition, a marker per onset, and what bioread stores of each channel."""
    plan, data_uv, _ = simulated
    fs = quick_config["simulation"]["sampling_rate_hz"]
    onsets = expected_onsets(plan, fs)
    conditions = np.array([t.condition for t in plan.trials])
    channels = [
        (quick_config["channels"][m], "mV", row / 1000, 2e-4)
        for m, row in zip(quick_config["study"]["muscles"], data_uv)
    ]
    for code, condition in STIM_CODES.items():
        pulses = square_pulses(data_uv.shape[1], onsets[conditions == condition], 5.0)
        channels.append((f"Trigger {code}", "Volts", pulses, 10 / 2**15))
    markers = [
        (int(onset), f"Stim {condition}")
        for onset, condition in zip(onsets, conditions)
    ]
    path = tmp_path / "sub-001.acq"
    stored = write_acq(path, fs, channels, markers)
    return path, plan, stored


def test_acq_channels_by_name_with_events_from_markers_or_trigger_channels(
    quick_config, acq_export
):
    path, plan, stored = acq_export
    fs = quick_config["simulation"]["sampling_rate_hz"]
    labels = {f"Stim {c}": c for c in STIM_CODES.values()}
    from_markers = read(quick_config, path, {"event_labels": labels})
    triggers = {f"Trigger {code}": c for code, c in STIM_CODES.items()}
    from_triggers = read(quick_config, path, {"triggers": triggers})
    for recording in (from_markers, from_triggers):
        assert recording.sampling_rate_hz == fs
        np.testing.assert_array_equal(
            recording.onset_samples, expected_onsets(plan, fs)
        )
        assert recording.conditions == tuple(t.condition for t in plan.trials)
        for i, muscle in enumerate(quick_config["study"]["muscles"]):
            # Stored in mV, read in uV.
            np.testing.assert_allclose(recording.signals_uv[muscle], stored[i] * 1000)


def test_acq_problems_name_the_channel_and_the_key(quick_config, acq_export, tmp_path):
    path, _, _ = acq_export
    with pytest.raises(RecordingError, match=r"\['Zyg'\] not found") as error:
        read(
            quick_config,
            path,
            {"event_labels": {"x": "AngryToHappy"}},
            channels={"ZM": "Zyg", "CS": "EMG_CS"},
        )
    assert "Trigger 1" in str(error.value)
    assert_names_participant_and_file(error, path)
    with pytest.raises(RecordingError, match="unknown event labels") as error:
        read(quick_config, path)
    assert "Stim AngryToHappy" in str(error.value)
    wrong = {"triggers": {"EMG_CS": "AngryToHappy"}, "without_events": "error"}
    never_rises = (
        r"channel 'EMG_CS' \(recording.triggers.EMG_CS\) never rises through "
        r"recording.trigger_threshold 2.5 \(its values span -?[0-9.]+ to [0-9.]+\)"
    )
    with pytest.raises(RecordingError, match=never_rises) as error:
        read(quick_config, path, wrong)
    assert_names_participant_and_file(error, path)
    # Under the default exclude, the same finding is the recording's exclusion.
    excluded = read(quick_config, path, {**wrong, "without_events": "exclude"})
    assert excluded.onset_samples.size == 0 and excluded.conditions == ()
    assert excluded.without_events.startswith(f"no_events:{path} no stimulus events")
    assert re.search(never_rises, excluded.without_events)


def test_truncated_acq_files_are_named_truncated_wherever_they_end(
    quick_config, acq_export, tmp_path
):
    """Cut in the headers, in the samples or in the event markers, read by markers
    or by trigger channels: bioread alone would answer with an AttributeError, a
    short read, or no markers at all (\"no stimulus events found\")."""
    path, _, _ = acq_export
    content = path.read_bytes()
    markers = {"event_labels": {f"Stim {c}": c for c in STIM_CODES.values()}}
    triggers = {"triggers": {f"Trigger {code}": c for code, c in STIM_CODES.items()}}
    for cut, expected in (
        (2000, "truncated or damaged: its 2000 bytes do not hold complete"),
        (len(content) // 2, f"truncated: {len(content) // 2} bytes, but its"),
        (len(content) - 60, "truncated or damaged after its samples"),
    ):
        truncated = tmp_path / f"cut-{cut}.acq"
        truncated.write_bytes(content[:cut])
        for settings in (markers, triggers):
            with pytest.raises(RecordingError, match=expected) as error:
                read(quick_config, truncated, settings)
            assert_names_participant_and_file(error, truncated)


def test_sample_sheets_in_csv_or_tsv_with_formats_in_any_case(tmp_path):
    rows = [
        ["participant_id", "group", "format"],
        ["007", "placebo", "EDF"],
        ["sub-2", "drug", ""],
    ]
    for name, separator in (("sheet.csv", ","), ("sheet.tsv", "\t")):
        path = tmp_path / name
        path.write_text("".join(separator.join(row) + "\n" for row in rows))
        sheet = read_sample_sheet(path)
        assert sheet["participant_id"].tolist() == ["007", "sub-2"]
        assert sheet["format"].iloc[0] == "edf" and pd.isna(sheet["format"].iloc[1])


def local_sheet(quick_config, tmp_path, formats, **source):
    config = configured(
        quick_config,
        source={"kind": "local", "local_dir": str(tmp_path), **source},
        recording={"triggers": {"T": "AngryToHappy"}},
    )
    sheet = pd.DataFrame(
        {
            "participant_id": [f"sub-{i}" for i in range(1, len(formats) + 1)],
            "group": "placebo",
            "format": formats,
        }
    )
    return config, with_design_columns(sheet, config)


def test_format_comes_from_the_sheet_then_the_config_then_the_file(
    quick_config, tmp_path
):
    (tmp_path / "sub-2.TXT").write_text("")
    (tmp_path / "sub-3.csv").write_text("")
    config, sheet = local_sheet(quick_config, tmp_path, ["bdf", None, None, None])
    assert raw_formats(sheet, config) == ["bdf", "txt", "csv", "edf"]
    config["recording"]["format"] = "TSV"
    assert raw_formats(sheet, config) == ["bdf", "tsv", "tsv", "tsv"]
    # Downloads: the extension of the url, or of the archive member.
    config["recording"]["format"] = None
    config["source"] = {**config["source"], "kind": "download"}
    remote = sheet.assign(
        url=["https://lab.example/a.bdf", "https://lab.example/b.ACQ", None, None],
        member=[None, None, "emg/c.txt", None],
    )
    assert raw_formats(remote, config) == ["bdf", "acq", "txt", "edf"]


def test_file_pattern_names_the_files_of_a_local_study(quick_config, tmp_path):
    (tmp_path / "placebo").mkdir()
    (tmp_path / "placebo" / "sub-1_emg.acq").write_text("")
    config, sheet = local_sheet(
        quick_config,
        tmp_path,
        [None],
        file_pattern="{group}/{participant_id}_emg.{format}",
    )
    assert raw_formats(sheet, config) == ["acq"]
    record = sheet.iloc[0]
    assert raw_file_name(record, config["source"], "acq") == "placebo/sub-1_emg.acq"
    (tmp_path / "placebo" / "sub-1_emg.csv").write_text("")
    with pytest.raises(ConfigError, match="row 1 .sub-1.: several raw files"):
        raw_formats(sheet, config)


@pytest.mark.parametrize(
    "sections, message",
    [
        (
            {"recording": {"triggers": {"T": "Neutral"}}},
            r"recording.triggers.T: 'Neutral' is not one of study.conditions",
        ),
        (
            {"recording": {"triggers": {"T": {"high": "AngryToHappy"}}}},
            r"recording.triggers.T.high: the pulse level 'high' is not a number",
        ),
        (
            {"recording": {"event_labels": {"S 1": "Happy"}}},
            r"recording.event_labels.S 1: 'Happy'",
        ),
        (
            {
                "recording": {
                    "event_source": "stim_channel",
                    "triggers": {"T": "AngryToHappy"},
                }
            },
            "would ignore it",
        ),
        ({"recording": {"event_source": "triggers"}}, "recording.triggers is empty"),
        (
            {"recording": {"text": {"column_names": ["a", "b"]}}},
            "recording.text.header: false",
        ),
    ],
)
def test_contradictory_recording_settings_stop_before_any_job(
    quick_config, sections, message
):
    config = configured(quick_config, **sections)
    with pytest.raises(ConfigError, match=message):
        check_config(config, ["sub-001"])


@pytest.mark.parametrize(
    "formats, sections, message",
    [
        (
            ["txt"],
            {},
            r"row 1 \(sub-1\): format txt: text exports carry no markers; set recording.triggers",
        ),
        (
            ["edf"],
            {"channels": {"ZM": 2, "CS": "EMG_CS"}},
            r"row 1 \(sub-1\): format edf: channels \{'ZM': 2\} are column positions",
        ),
        (
            ["csv"],
            {
                "recording": {
                    "triggers": {"T": "AngryToHappy"},
                    "text": {"decimal": ","},
                }
            },
            "decimal ',' is also the delimiter",
        ),
        (
            ["acq"],
            {"recording": {"event_source": "stim_channel"}},
            "format acq: recording.event_source 'stim_channel' is not available",
        ),
    ],
)
def test_settings_a_participants_format_cannot_honour_name_the_row(
    quick_config, tmp_path, formats, sections, message
):
    config = configured(
        quick_config, source={"kind": "local", "local_dir": str(tmp_path)}, **sections
    )
    sheet = pd.DataFrame(
        {"participant_id": ["sub-1"], "group": ["placebo"], "format": formats}
    )
    with pytest.raises(ConfigError, match=message):
        raw_formats(with_design_columns(sheet, config), config)


def edf_header_field(content, offset, width, value):
    """content with one fixed-width EDF header field replaced."""
    content[offset : offset + width] = f"{value:<{width}}".encode("ascii")
    return content


def test_edf_longer_than_its_header_says(quick_config, simulated, tmp_path):
    _, _, source = simulated
    path = tmp_path / "longer.edf"
    path.write_bytes(source.read_bytes() + b"\0" * 4096)
    with pytest.raises(
        RecordingError, match=r"is longer than its header says .* but its EDF header "
    ) as error:
        read(quick_config, path)
    assert "truncated" not in str(error.value)
    assert_names_participant_and_file(error, path)


def test_edf_header_with_a_wrong_record_duration(quick_config, simulated, tmp_path):
    """Half the true record duration: the annotations lie after the data's end."""
    _, _, source = simulated
    content = bytearray(source.read_bytes())
    duration = float(content[244:252].decode())
    path = tmp_path / "halved.edf"
    path.write_bytes(bytes(edf_header_field(content, 244, 8, f"{duration / 2:g}")))
    with pytest.raises(
        RecordingError,
        match=r"annotations lie after the end of the data .*; the data end at .* "
        r"data records of 0.5 s, per the header\), so the header's record duration or "
        r"record count is probably wrong",
    ) as error:
        read(quick_config, path)
    assert "truncated" not in str(error.value)
    assert_names_participant_and_file(error, path)


LEVEL_CODED = {"1.0": "AngryToHappy", "2.0": "HappyToAngry"}


@pytest.fixture
def level_coded_export(quick_config, export_columns, tmp_path):
    """A CSV (time, ZM, CS, one level-coded trigger) with three 12 V pulses of a
    stimulus's width between the stimuli; and the EDF reading."""
    text, from_edf = export_columns
    n = from_edf.n_samples
    heights = {c: float(level) for level, c in LEVEL_CODED.items()}
    trigger = np.zeros(n)
    for onset, condition in zip(from_edf.onset_samples, from_edf.conditions):
        trigger[onset : onset + 50] = heights[condition]
    glitches = from_edf.onset_samples[:3] + 3000
    for start in glitches:
        trigger[start : start + 50] = 12.0
    columns = [*text[:3], fields_of([trigger], "{:g}")[0]]
    path = write_lines(
        tmp_path / "sub-001.csv", ["t,zm,cs,trigger", *rows(columns, ",")]
    )
    settings = {
        "text": {"time_column": "t"},
        "trigger_threshold": 0.5,
        "triggers": {"trigger": LEVEL_CODED},
    }
    return path, settings, from_edf, glitches


def test_trigger_pulses_at_no_configured_level_stop_the_reader(
    quick_config, level_coded_export
):
    path, settings, from_edf, glitches = level_coded_export
    first = glitches[0] / from_edf.sampling_rate_hz
    with pytest.raises(
        RecordingError,
        match=rf"a pulse on column 4 \('trigger'\) at {first:.3f} s \(line "
        rf"{glitches[0] + 2}\) has height 12, more than 0.25 from every configured "
        r"level \[1.0, 2.0\] \(recording.triggers.trigger\)",
    ) as error:
        read(quick_config, path, settings, channels={"ZM": "zm", "CS": "cs"})
    assert_names_participant_and_file(error, path)


def test_dropped_trigger_glitches_are_recorded_in_the_qc(
    quick_config, level_coded_export
):
    path, settings, from_edf, glitches = level_coded_export
    settings = {**settings, "trigger_glitches": "drop"}
    channels = {"ZM": "zm", "CS": "cs"}
    recording = read(quick_config, path, settings, channels=channels)
    np.testing.assert_array_equal(recording.onset_samples, from_edf.onset_samples)
    assert recording.conditions == from_edf.conditions
    fs = from_edf.sampling_rate_hz
    assert [p["time_s"] for p in recording.dropped_pulses] == [
        round(g / fs, 6) for g in glitches
    ]
    assert all(p["height"] == 12.0 for p in recording.dropped_pulses)

    config = configured(quick_config, recording=settings, channels=channels)
    sections = ("study", "channels", "recording", "preprocess")
    _, qc = preprocess_participant(
        path, PARTICIPANT, {key: config[key] for key in sections}
    )
    assert qc["dropped_trigger_pulses"] == list(recording.dropped_pulses)
    assert qc["n_trials"] == len(from_edf.conditions)


def test_time_column_in_milliseconds(quick_config, export_columns, tmp_path):
    text, from_edf = export_columns
    in_ms = [f"{float(t) * 1000:.3f}" for t in text[0]]
    path = write_lines(tmp_path / "sub-001.txt", rows([in_ms, *text[1:]]))
    channels = {"ZM": 2, "CS": 3}
    with pytest.raises(
        RecordingError,
        match=r"the time column implies 1.0 Hz, too slow for EMG \(below 100 Hz\); if "
        r"the time column counts milliseconds, set recording.text.time_unit: ms",
    ) as error:
        read(quick_config, path, HEADERLESS, channels=channels)
    assert_names_participant_and_file(error, path)

    settings = {**HEADERLESS, "text": {**HEADERLESS["text"], "time_unit": "ms"}}
    recording = read(quick_config, path, settings, channels=channels)
    assert recording.sampling_rate_hz == from_edf.sampling_rate_hz
    np.testing.assert_array_equal(recording.onset_samples, from_edf.onset_samples)


def test_epochs_reaching_into_the_next_trial_stop_the_participant(
    quick_config, simulated
):
    _, _, path = simulated
    spacing = quick_config["simulation"]["trial_onset_spacing_s"]
    config = configured(quick_config, preprocess={"response_s": [0.0, spacing + 1]})
    sections = ("study", "channels", "recording", "preprocess")
    with pytest.raises(
        RecordingError,
        match=r"the epoch from preprocess.baseline_s -1 s to preprocess.response_s "
        rf"{spacing + 1:g} s spans {spacing + 2:g} s, but the stimuli at .* s apart "
        r"\(\d+ such pairs\): each epoch would reach into the next trial",
    ) as error:
        preprocess_participant(
            path, PARTICIPANT, {key: config[key] for key in sections}
        )
    assert_names_participant_and_file(error, path)


def test_headers_declare_the_rates_checked_before_any_job(
    quick_config, simulated, brainvision, acq_export, tmp_path
):
    """The rate each format's header gives the configured channels, as the workflow's
    start reads it; a broken header declares nothing (its reader names the fault)."""
    _, _, edf_path = simulated
    header, _ = brainvision
    acq_path, _, _ = acq_export
    channels = list(quick_config["channels"].values())
    fs = quick_config["simulation"]["sampling_rate_hz"]
    for path, file_format in ((edf_path, "edf"), (header, "vhdr"), (acq_path, "acq")):
        assert declared_sampling_rate(path, file_format, channels) == fs, file_format
        broken = tmp_path / f"broken.{file_format}"
        broken.write_bytes(path.read_bytes()[:40])
        assert declared_sampling_rate(broken, file_format, channels) is None
    assert declared_sampling_rate(edf_path, "edf", ["Other"]) is None


def test_edf_with_an_unknown_record_count(quick_config, simulated, tmp_path):
    """-1 records (a recorder's 'unknown'): read whole, refused when cut mid-record."""
    _, _, source = simulated
    content = edf_header_field(bytearray(source.read_bytes()), 236, 8, "-1")
    path = tmp_path / "unknown.edf"
    path.write_bytes(bytes(content))
    recording = read(quick_config, path)
    np.testing.assert_array_equal(
        recording.onset_samples, read(quick_config, source).onset_samples
    )
    path.write_bytes(bytes(content[:-100]))
    with pytest.raises(RecordingError, match="is truncated mid-record") as error:
        read(quick_config, path)
    assert_names_participant_and_file(error, path)


# Exports as BIDS-derivative physio files are written: 100 Hz, no header, tab
# separated with a tab after the last field, CRLF line ends, time in minutes.
LAB_FS = 100
LAB_SETTINGS = {
    "format": "tsv",
    "text": {"header": False, "time_column": 1, "time_unit": "min"},
    "triggers": {"4": "AngryToHappy", "5": "HappyToAngry"},
}
LAB_CHANNELS = {"ZM": 2, "CS": 3}
LAB_PREPROCESS = {"band_hz": [10.0, 45.0], "mains_hz": None, "rejection": {"rules": []}}


def lab_export(path, duration_s, pulses, minute_decimals=5, seed=0):
    """Write an export with pulses, (condition index, onset s, length s) each, on
    the condition's 0/5 V trigger column; returns the trigger columns."""
    n = round(duration_s * LAB_FS)
    rng = np.random.default_rng(seed)
    emg = np.round(5.0 * rng.standard_normal((2, n)), 3)
    triggers = np.zeros((2, n))
    for condition, onset_s, length_s in pulses:
        start = round(onset_s * LAB_FS)
        triggers[condition, start : start + round(length_s * LAB_FS)] = 5.0
    minutes = np.round(np.arange(n) / LAB_FS / 60, minute_decimals)
    lines = [
        f"{t:.{minute_decimals}f}\t{zm:g}\t{cs:g}\t{a:g}\t{b:g}\t\r\n"
        for t, zm, cs, a, b in zip(minutes, *emg, *triggers)
    ]
    path.write_bytes("".join(lines).encode())
    return triggers


def lab_config(quick_config, **recording):
    return configured(
        quick_config,
        channels=LAB_CHANNELS,
        recording={**LAB_SETTINGS, **recording},
        preprocess=LAB_PREPROCESS,
    )


def lab_read(config, path):
    return read_recording(
        path,
        PARTICIPANT,
        channels=LAB_CHANNELS,
        conditions=config["study"]["conditions"],
        settings=config["recording"],
    )


def lab_preprocess(config, recording):
    return preprocess_recording(
        recording, config["study"]["conditions"], config["preprocess"]
    )


@pytest.mark.parametrize("decimals", [4, 5, 6])
def test_time_in_minutes_rounded_gives_the_rate_from_the_whole_span(
    quick_config, tmp_path, decimals
):
    """Minutes rounded to 4 decimals step 6 or 12 ms where samples are 10 ms apart:
    the rate is still 100 Hz, and the trial table has its usual columns."""
    pulses = [(i % 2, 10.0 + 10.0 * i, 0.1) for i in range(12)]
    path = tmp_path / "sub-001.tsv"
    # The last stamp is rounded too: 13000 / 6000 min.
    lab_export(path, 130.01, pulses, minute_decimals=decimals)
    config = lab_config(quick_config)

    recording = lab_read(config, path)

    assert recording.sampling_rate_hz == LAB_FS
    np.testing.assert_array_equal(
        recording.onset_samples, [round(onset * LAB_FS) for _, onset, _ in pulses]
    )
    assert recording.block_s is None
    table, qc = lab_preprocess(config, recording)
    assert table.schema == TABLE_SCHEMA and "block_s" not in qc
    # Read as seconds, the column implies 60 times the rate.
    in_seconds = {**LAB_SETTINGS["text"], "time_unit": "s", "sampling_rate_hz": LAB_FS}
    as_seconds = lab_config(quick_config, text=in_seconds)
    with pytest.raises(
        RecordingError,
        match=r"the time column implies 6000.0 Hz but recording.text.sampling_rate_hz "
        r"is 100; the time column counts minutes: set recording.text.time_unit: min",
    ):
        lab_read(as_seconds, path)


BLOCK_PULSES = 5
BLOCK_ONSETS_S = (10.0, 40.0, 70.0, 100.0)


def test_a_train_of_pulses_per_block_is_one_trial_with_its_length(
    quick_config, tmp_path
):
    """Blocks of five 0.1 s pulses a second apart, one pulse per stimulus."""
    pulses = [
        (block % 2, onset + second, 0.1)
        for block, onset in enumerate(BLOCK_ONSETS_S)
        for second in range(BLOCK_PULSES)
    ]
    path = tmp_path / "sub-001.tsv"
    lab_export(path, 130.0, pulses)
    conditions = ("AngryToHappy", "HappyToAngry") * 2

    pulse_per_trial = lab_config(quick_config)
    recording = lab_read(pulse_per_trial, path)
    assert len(recording.conditions) == len(pulses)
    with pytest.raises(
        RecordingError,
        match=r"the stimuli at 10.000 s and 11.000 s are 1.000 s apart \(16 such "
        r"pairs\): each epoch would reach into the next trial; .*100% of these pairs "
        r"are of one condition .* set recording.trigger_train_gap_s",
    ):
        lab_preprocess(pulse_per_trial, recording)

    blocks = lab_config(quick_config, trigger_train_gap_s=2.0)
    recording = lab_read(blocks, path)

    np.testing.assert_array_equal(
        recording.onset_samples, np.array(BLOCK_ONSETS_S) * LAB_FS
    )
    assert recording.conditions == conditions
    # First onset to the end of the fifth pulse.
    length_s = (BLOCK_PULSES - 1) + 0.1
    np.testing.assert_allclose(recording.block_s, length_s, rtol=1e-12)
    assert recording.block_pulses.tolist() == [BLOCK_PULSES] * 4
    table, qc = lab_preprocess(blocks, recording)
    assert table.schema.names == [*TABLE_SCHEMA.names, "block_s"]
    np.testing.assert_allclose(table.column("block_s").to_numpy(), length_s)
    assert qc["block_s"] == [round(length_s, 6)] * 4
    assert qc["block_pulses"] == [BLOCK_PULSES] * 4
    # A gap shorter than the pause between a block's pulses merges nothing.
    assert len(
        lab_read(lab_config(quick_config, trigger_train_gap_s=0.8), path).conditions
    ) == len(pulses)


def test_an_over_long_pulse_is_not_a_stimulus_and_is_reported(quick_config, tmp_path):
    pulses = [(i % 2, 10.0 + 10.0 * i, 0.1) for i in range(10)]
    path = tmp_path / "sub-001.tsv"
    lab_export(path, 150.0, [*pulses, (0, 108.0, 30.0)])

    # Under the default trigger_glitches: error, too: it is no glitch.
    config = lab_config(quick_config, trigger_max_pulse_s=2.0)
    recording = lab_read(config, path)

    assert len(recording.conditions) == len(pulses)
    (pulse,) = recording.dropped_pulses
    assert pulse["trigger"] == "4" and pulse["time_s"] == 108.0
    assert pulse["problem"] == (
        "lasts 30.000 s, longer than recording.trigger_max_pulse_s 2 s: not a stimulus"
    )
    _, qc = lab_preprocess(config, recording)
    assert qc["dropped_trigger_pulses"] == [pulse]
    # Without a maximum it is one more stimulus.
    assert len(lab_read(lab_config(quick_config), path).conditions) == len(pulses) + 1
    # With only over-long pulses there is no stimulus left: the recording is excluded.
    lab_export(path, 150.0, [(0, 10.0, 30.0), (1, 50.0, 30.0)])
    excluded = lab_read(config, path)
    assert excluded.without_events == (
        f"no_events:{path} no stimulus events found (all its 2 stimulus events last "
        "longer than recording.trigger_max_pulse_s 2 s: the first, a pulse on column "
        "4 ('4') (line 1001), at 10.000 s lasts 30.000 s) "
        "(recording.without_events: exclude)"
    )
    assert [p["time_s"] for p in excluded.dropped_pulses] == [10.0, 50.0]


@pytest.mark.parametrize("check_channels", [True, False])
def test_a_trigger_high_throughout_excludes_the_recording_or_stops_it(
    quick_config, tmp_path, check_channels
):
    path = tmp_path / "sub-001.tsv"
    lab_export(path, 60.0, [(0, 0.0, 60.0), (1, 0.0, 60.0)])
    config = lab_config(quick_config, check_channels=check_channels)

    recording = lab_read(config, path)

    never_rises = (
        "never rises through recording.trigger_threshold 2.5 (its values span 5 to 5)"
    )
    assert recording.without_events == (
        f"no_events:{path} no stimulus events found (column 4 ('4') "
        f"(recording.triggers.4) {never_rises}; column 5 ('5') (recording.triggers.5) "
        f"{never_rises}) (recording.without_events: exclude)"
    )
    table, qc = lab_preprocess(config, recording)
    assert table.num_rows == 0 and table.schema == TABLE_SCHEMA
    assert qc["excluded"] and qc["exclusion_reasons"] == [recording.without_events]
    assert qc["n_trials"] == 0
    assert set(qc["trials_per_condition"].values()) == {0}
    # The participant's QC figure says why.
    settings = {key: config[key] for key in ("study", "channels", "preprocess")}
    figure = participant_figure(
        channel_spectra(recording, config["preprocess"]), table, qc, settings
    )
    assert "EXCLUDED: no_events:" in figure.texts[0].get_text()

    stop = lab_config(
        quick_config, check_channels=check_channels, without_events="error"
    )
    with pytest.raises(RecordingError, match=re.escape(never_rises)) as error:
        lab_read(stop, path)
    assert_names_participant_and_file(error, path)


STIMULI_PER_BLOCK = 4
STIMULUS_INTERVAL_S = 1.0
STIMULUS_PULSE_S = 0.1
# Before the first block: a 2 s run of the first condition's code, not a stimulus.
LONG_PULSE_S = (0.5, 2.0)


def test_one_annotation_or_stim_pulse_per_stimulus_gives_block_onsets_and_lengths(
    quick_config, simulated, tmp_path
):
    """A block design written as the simulator writes it: one EDF+ annotation
    lasting a pulse and one pulse on the stim channel TRIGGER per stimulus. Both
    event sources give each block as one trial, with its length and pulse count,
    under the keys that merge analog trigger trains."""
    plan, data_uv, _ = simulated
    fs = quick_config["simulation"]["sampling_rate_hz"]
    codes = {condition: int(code) for code, condition in STIM_CODES.items()}
    first_condition = plan.trials[0].condition
    stimuli = [(*LONG_PULSE_S, first_condition)] + [
        (trial.onset_s + k * STIMULUS_INTERVAL_S, STIMULUS_PULSE_S, trial.condition)
        for trial in plan.trials
        for k in range(STIMULI_PER_BLOCK)
    ]
    trigger = np.zeros(data_uv.shape[1])
    for onset_s, length_s, condition in stimuli:
        start = round(onset_s * fs)
        trigger[start : start + round(length_s * fs)] = codes[condition]
    signals = [
        edfio.EdfSignal(
            channel,
            sampling_frequency=fs,
            label=quick_config["channels"][muscle],
            physical_dimension="uV",
            physical_range=(-PHYSICAL_RANGE_UV, PHYSICAL_RANGE_UV),
        )
        for muscle, channel in zip(quick_config["study"]["muscles"], data_uv)
    ]
    signals.append(
        edfio.EdfSignal(
            trigger,
            sampling_frequency=fs,
            label="TRIGGER",
            physical_range=(-32768, 32767),
            digital_range=(-32768, 32767),
        )
    )
    annotations = [edfio.EdfAnnotation(*stimulus) for stimulus in stimuli]
    path = tmp_path / "blocks.edf"
    edfio.Edf(signals, annotations=annotations).write(path)
    sources = {
        "annotations": {"event_source": "annotations"},
        "stim_channel": {
            "event_source": "stim_channel",
            "stim_channel": "TRIGGER",
            "event_labels": STIM_CODES,
        },
    }
    blocks = {"trigger_train_gap_s": 2.0, "trigger_max_pulse_s": 1.0}
    # First onset to the end of the block's last pulse.
    length_s = (STIMULI_PER_BLOCK - 1) * STIMULUS_INTERVAL_S + STIMULUS_PULSE_S

    for source, settings in sources.items():
        per_stimulus = read(quick_config, path, settings)
        assert len(per_stimulus.conditions) == len(stimuli), source
        assert per_stimulus.block_s is None and per_stimulus.dropped_pulses == ()

        recording = read(quick_config, path, {**settings, **blocks})

        np.testing.assert_array_equal(
            recording.onset_samples, expected_onsets(plan, fs), err_msg=source
        )
        assert recording.conditions == tuple(t.condition for t in plan.trials)
        np.testing.assert_allclose(recording.block_s, length_s, atol=0.5 / fs)
        assert recording.block_pulses.tolist() == [STIMULI_PER_BLOCK] * len(plan.trials)
        (dropped,) = recording.dropped_pulses
        assert dropped["time_s"] == LONG_PULSE_S[0] and dropped["width_s"] == 2.0
        assert dropped["problem"] == (
            "lasts 2.000 s, longer than recording.trigger_max_pulse_s 1 s: not a "
            "stimulus"
        )
    assert dropped["trigger"] == f"code {codes[first_condition]} on 'TRIGGER'"

    # The trial table carries each trial's block length.
    table, qc = preprocess_recording(
        recording, quick_config["study"]["conditions"], quick_config["preprocess"]
    )
    assert table.schema.names == [*TABLE_SCHEMA.names, "block_s"]
    assert qc["block_pulses"] == [STIMULI_PER_BLOCK] * len(plan.trials)
    assert qc["dropped_trigger_pulses"] == [dropped]
