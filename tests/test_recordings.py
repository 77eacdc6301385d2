"""Readers: EDF, BDF, BrainVision and delimited text files written here, good and bad."""

from dataclasses import replace

import edfio
import numpy as np
import pytest

from mimicry.preprocess import preprocess_participant
from mimicry.recordings import RecordingError, read_recording
from mimicry.simulate import PHYSICAL_RANGE_UV, plan_participant, synthesize, write_edf

PARTICIPANT = "sub-001"
# EDF stores 16-bit integers over +-4000 uV: one step is 0.12 uV, rounding half of it.
EDF_QUANTISATION_UV = 2 * PHYSICAL_RANGE_UV / 65535 / 2 + 1e-9
STIM_CODES = {"1": "AngryToHappy", "2": "HappyToAngry"}
PULSE_SAMPLES = 10


@pytest.fixture(scope="module")
def simulated(quick_config, tmp_path_factory):
    """One quick-study participant: plan, signals in uV and its EDF+ file."""
    directory = tmp_path_factory.mktemp("recordings")
    plan = plan_participant(quick_config, PARTICIPANT, "placebo")
    data_uv = synthesize(plan, quick_config)
    path = directory / f"{PARTICIPANT}.edf"
    write_edf(path, data_uv, plan, quick_config)
    return plan, data_uv, path


def read(config, path, settings=None, **overrides):
    arguments = dict(
        channels=config["channels"],
        conditions=config["study"]["conditions"],
        settings=settings,
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
    np.savetxt(
        path,
        np.column_stack(list(columns.values())),
        delimiter=",",
        header=",".join(columns),
        comments="",
        fmt=["%.3f", "%.9f", "%.9f", "%g", "%g"],
    )
    settings = {"text": {"time_column": "time_s", "units": "mV", "triggers": triggers}}

    from_csv = read(quick_config, path, settings)
    assert from_csv.sampling_rate_hz == from_edf.sampling_rate_hz
    np.testing.assert_array_equal(from_csv.onset_samples, from_edf.onset_samples)
    assert from_csv.conditions == from_edf.conditions
    for muscle in from_edf.signals_uv:
        np.testing.assert_allclose(
            from_csv.signals_uv[muscle], from_edf.signals_uv[muscle], atol=1e-6
        )

    study = {key: quick_config[key] for key in ("study", "channels")}
    csv_table, csv_qc = preprocess_participant(
        path, PARTICIPANT, {**study, "recording": settings}
    )
    edf_table, edf_qc = preprocess_participant(edf_path, PARTICIPANT, study)
    csv_frame, edf_frame = csv_table.to_pandas(), edf_table.to_pandas()
    np.testing.assert_allclose(csv_frame["value"], edf_frame["value"], atol=1e-6)
    assert csv_frame.drop(columns="value").equals(edf_frame.drop(columns="value"))
    assert csv_qc["exclusion_reasons"] == edf_qc["exclusion_reasons"]


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
        "text": {
            "skip_rows": 2,
            "sampling_rate_hz": fs,
            "trigger_threshold": 0.4,
            "triggers": {"TRIGGER": levels},
        }
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
    with pytest.raises(RecordingError, match="cannot read as EDF") as error:
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


def test_no_events(quick_config, simulated, tmp_path):
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
        read(quick_config, path)
    assert_names_participant_and_file(error, path)


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


def test_text_export_with_missing_column_or_cut_row(quick_config, tmp_path):
    path = tmp_path / "export.csv"
    rows = "\n".join(f"{i},{i % 3},{i % 5},0" for i in range(100))
    path.write_text("EMG_ZM,EMG_CS,other,TRIG\n" + rows + "\n101,2\n")
    settings = {"text": {"sampling_rate_hz": 100, "triggers": {"TRIG": "AngryToHappy"}}}
    with pytest.raises(RecordingError, match="malformed rows") as error:
        read(quick_config, path, settings)
    assert_names_participant_and_file(error, path)
    wrong_trigger = {
        "text": {**settings["text"], "triggers": {"Trigger": "AngryToHappy"}}
    }
    with pytest.raises(RecordingError, match=r"\['Trigger'\] not found") as error:
        read(quick_config, path, wrong_trigger)
    assert_names_participant_and_file(error, path)
