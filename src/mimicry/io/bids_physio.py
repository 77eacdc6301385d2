"""BIDS physiological recordings (format `physio`): `*_physio.tsv[.gz]`.

A physio file has no header line: tab-separated columns, one row per sample, named by
the JSON sidecar beside it (`<name>_physio.json`: `Columns`, `SamplingFrequency`,
`StartTime`, the time of the first sample in seconds relative to the events' time
zero). A column's units come from the sidecar's `<column>: {"Units": ...}` where it
gives them (uV, mV or V), else from recording.text.units. Stimulus events come from
the matching `*_events.tsv` (the physio file's name without `_recording-<label>` and
`_physio.tsv[.gz]`, plus `_events.tsv`): `onset` in seconds, `trial_type` the label
that recording.event_labels maps to a condition (or the condition name itself);
`duration` gives each event's length where recording.trigger_max_pulse_s or
recording.trigger_train_gap_s needs it. Channels are named by their sidecar column names.
"""

import json
import re
from pathlib import Path

import numpy as np

from mimicry.io.bids import tsv_events
from mimicry.io.events import event_label_map, label_events
from mimicry.io.recording_types import RecordingError, finite_recording
from mimicry.io.text_exports import MICROVOLTS_PER_UNIT

PHYSIO_SUFFIX = re.compile(r"(_recording-[A-Za-z0-9]+)?_physio\.tsv(\.gz)?$")


def is_physio(path):
    """Whether the file name is a BIDS physio recording's."""
    return PHYSIO_SUFFIX.search(Path(path).name) is not None


def sidecar_path(path):
    path = Path(path)
    return path.with_name(re.sub(r"\.tsv(\.gz)?$", ".json", path.name))


def events_path(path):
    path = Path(path)
    return path.with_name(PHYSIO_SUFFIX.sub("_events.tsv", path.name))


def companion_files(path):
    """The files besides the physio file whose content its reading depends on."""
    return [sidecar_path(path), events_path(path)]


def read_sidecar(where, path):
    """Columns, sampling rate (Hz), start time (s) and per-column units (or None)."""
    sidecar = sidecar_path(path)
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except OSError as error:
        raise RecordingError(
            f"{where}: no JSON sidecar {sidecar} ({error.strerror}); a BIDS physio "
            "file's columns and sampling rate are given there"
        ) from None
    except ValueError as error:
        raise RecordingError(f"{where}: {sidecar} is not JSON: {error}") from None
    missing = [k for k in ("Columns", "SamplingFrequency") if k not in meta]
    if missing:
        raise RecordingError(f"{where}: {sidecar} has no {' or '.join(missing)}")
    columns = [str(column) for column in meta["Columns"]]
    rate = meta["SamplingFrequency"]
    if not isinstance(rate, (int, float)) or rate <= 0:
        raise RecordingError(
            f"{where}: {sidecar}: SamplingFrequency {rate!r} is not a positive number"
        )
    start = meta.get("StartTime", 0.0)
    units = {
        column: meta[column].get("Units")
        for column in columns
        if isinstance(meta.get(column), dict)
    }
    return columns, float(rate), float(start), units


def read_physio(path, participant, channels, conditions, settings):
    """One BIDS physio recording and its events as a `Recording`. channels maps
    muscle -> sidecar column name; settings is the config section `recording`."""
    import pandas as pd

    from mimicry.io.bids import read_events

    path = Path(path)
    where = f"{participant}: {path}"
    columns, fs, start_s, units = read_sidecar(where, path)
    unknown = [c for c in channels.values() if c not in columns]
    if unknown:
        raise RecordingError(
            f"{where}: channels {unknown} (config channels) are not among the "
            f"sidecar's Columns {columns}"
        )
    try:
        data = pd.read_csv(
            path, sep="\t", header=None, dtype=float, na_filter=False, engine="c"
        )
    except (ValueError, OSError, EOFError) as error:
        raise RecordingError(f"{where}: cannot read the samples: {error}") from None
    if data.shape[1] != len(columns):
        raise RecordingError(
            f"{where}: {data.shape[1]} columns, but the sidecar's Columns names "
            f"{len(columns)}: {columns}"
        )
    data.columns = columns
    signals = {}
    for muscle, column in channels.items():
        unit = units.get(column) or settings["text"]["units"]
        if unit not in MICROVOLTS_PER_UNIT:
            raise RecordingError(
                f"{where}: column {column!r} is in {unit!r}; known units are "
                f"{list(MICROVOLTS_PER_UNIT)}"
            )
        signals[muscle] = data[column].to_numpy() * MICROVOLTS_PER_UNIT[unit]
    events = events_path(path)
    if not events.is_file():
        raise RecordingError(
            f"{where}: no events file {events}; its onset and trial_type columns "
            "give the stimuli"
        )
    onsets_s, labels = read_events(events, participant)
    samples = np.round((onsets_s - start_s) * fs).astype(np.int64)
    label_map = event_label_map(settings, conditions)
    outside = [
        row
        for row, (sample, label) in enumerate(zip(samples, labels), start=1)
        if label in label_map and not 0 <= sample < len(data)
    ]
    if outside:
        row = outside[0]
        raise RecordingError(
            f"{participant}: {events}, row {row}: the onset {onsets_s[row - 1]:g} s "
            f"lies outside the recording ({len(data)} samples at {fs:g} Hz from "
            f"StartTime {start_s:g} s)"
        )
    stimuli = label_events(
        f"{participant}: {events}",
        events,
        tsv_events(events, participant, samples, labels, fs, settings),
        label_map,
        set(settings["ignore_labels"]),
        fs,
        "remove the duplicate row from the events.tsv, or move the trial_type that "
        "marks something other than a stimulus onset to recording.ignore_labels",
        settings,
    )
    return finite_recording(where, participant, path, signals, channels, fs, stimuli)
