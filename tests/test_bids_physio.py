"""BIDS physiological recordings (*_physio.tsv.gz, JSON sidecar, events.tsv) read as
the format physio, from real files written here."""

import copy
import gzip
import json

import numpy as np
import pandas as pd
import pytest

from mimicry.io.raw_content import source_files
from mimicry.io.recording_types import RecordingError
from mimicry.io.recordings import format_from_extension, read_recording

FS = 250.0
START_S = -2.0
CONDITIONS = ["Happy", "Angry"]


def write_physio(folder, samples, columns, start_s=START_S, units=None):
    """sub-01_ses-2_task-faces_recording-emg_physio.tsv.gz, its sidecar and the
    events.tsv of its run; returns the physio path."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = "sub-01_ses-2_task-faces"
    path = folder / f"{stem}_recording-emg_physio.tsv.gz"
    with gzip.open(path, "wt") as handle:
        for row in samples:
            handle.write("\t".join(f"{value:.6f}" for value in row) + "\n")
    sidecar = {"SamplingFrequency": FS, "StartTime": start_s, "Columns": columns}
    sidecar |= {column: {"Units": unit} for column, unit in (units or {}).items()}
    (folder / f"{stem}_recording-emg_physio.json").write_text(json.dumps(sidecar))
    events = pd.DataFrame(
        {
            "onset": [1.0, 5.5, 9.0, 12.0],
            "duration": [3.0, 3.0, 0.0, 3.0],
            "trial_type": ["happy", "angry", "response", "happy"],
        }
    )
    events.to_csv(folder / f"{stem}_events.tsv", sep="\t", index=False)
    return path


@pytest.fixture
def settings(quick_config):
    recording = copy.deepcopy(quick_config["recording"])
    recording["event_labels"] = {"happy": "Happy", "angry": "Angry"}
    recording["ignore_labels"] = ["response"]
    return recording


def test_physio_columns_rate_start_time_and_events_come_from_the_sidecars(
    tmp_path, settings
):
    rng = np.random.default_rng(1)
    samples = rng.normal(0, 1, (int(20 * FS), 3))
    path = write_physio(
        tmp_path / "sub-01" / "ses-2" / "beh",
        samples,
        ["trigger", "zyg", "corr"],
        units={"corr": "mV"},
    )
    assert format_from_extension(path) == "physio"

    recording = read_recording(
        path, "01_ses-2", {"ZM": "zyg", "CS": "corr"}, CONDITIONS, settings
    )

    assert recording.sampling_rate_hz == FS
    np.testing.assert_allclose(recording.signals_uv["ZM"], samples[:, 1], atol=1e-6)
    # The sidecar's Units: mV; without one, recording.text.units (uV).
    np.testing.assert_allclose(
        recording.signals_uv["CS"], samples[:, 2] * 1e3, atol=1e-3
    )
    # Onsets count from StartTime: the first sample lies 2 s before time zero.
    expected = np.round((np.array([1.0, 5.5, 12.0]) - START_S) * FS)
    assert recording.onset_samples.tolist() == expected.astype(int).tolist()
    assert list(recording.conditions) == ["Happy", "Angry", "Happy"]
    # Preprocessing re-runs when the sidecar or the events change.
    assert [p.rsplit("/", 1)[1] for p in source_files(path)] == [
        path.name,
        "sub-01_ses-2_task-faces_recording-emg_physio.json",
        "sub-01_ses-2_task-faces_events.tsv",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no_sidecar", r"no JSON sidecar .*physio.json"),
        ("columns", r"3 columns, but the sidecar's Columns names 4"),
        ("channel", r"channels \['zyg'\] \(config channels\) are not among"),
        ("late_start", r"events.tsv, row 1: the onset 1 s lies outside the recording"),
    ],
)
def test_physio_problems_name_the_file_and_what_to_fix(
    tmp_path, settings, change, message
):
    columns = ["trigger", "zyg", "corr"]
    if change == "columns":
        columns = [*columns, "resp"]
    if change == "channel":
        columns = ["trigger", "zm", "corr"]
    start = 3.0 if change == "late_start" else START_S
    path = write_physio(tmp_path, np.zeros((int(20 * FS), 3)), columns, start)
    if change == "no_sidecar":
        path.with_name(path.name.replace(".tsv.gz", ".json")).unlink()
    with pytest.raises(RecordingError, match=message):
        read_recording(
            path, "01_ses-2", {"ZM": "zyg", "CS": "corr"}, CONDITIONS, settings
        )
