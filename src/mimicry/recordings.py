"""Readers that turn a participant's raw file into EMG signals and stimulus events.

EDF, BDF and BrainVision files are read through MNE-Python; delimited text exports
(csv/tsv) through a column map, with stimulus onsets found on analog trigger columns.
Every reader returns the same small `Recording`, and every problem with a file raises a
`RecordingError` that names the participant and the file.

MNE and pandas are imported inside the functions that need them, so that importing this
module (e.g. to catch `RecordingError`) costs nothing.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Reader settings (config section `recording`); every key can be overridden.
RECORDING_DEFAULTS = {
    "format": None,  # edf | bdf | vhdr | csv | tsv; None: from the file extension
    "event_source": "annotations",  # annotations | stim_channel (MNE formats)
    "event_labels": {},  # label (or stim code) -> condition; {}: labels are conditions
    "ignore_labels": ["New Segment/"],  # BrainVision marks every segment start
    "stim_channel": None,  # None: the recording's first stim-type channel
    "text": {
        "delimiter": None,  # None: "," for .csv, tab for .tsv and .txt
        "skip_rows": 0,  # preamble lines above the header line
        "time_column": None,  # column with time in seconds; None: no time column
        "sampling_rate_hz": None,  # required when there is no time column
        "units": "uV",  # unit of the channel columns: uV, mV or V
        "trigger_threshold": 2.5,  # a pulse starts where a trigger rises through this
        "triggers": {},  # column -> condition, or column -> {pulse level: condition}
    },
}

EXTENSION_FORMATS = {
    ".edf": "edf",
    ".bdf": "bdf",
    ".vhdr": "vhdr",
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
}
TEXT_DELIMITERS = {"csv": ",", "tsv": "\t"}
MNE_FORMATS = ("edf", "bdf", "vhdr")
MICROVOLTS_PER_UNIT = {"uV": 1.0, "mV": 1e3, "V": 1e6}
# MNE keeps voltages in volts.
MICROVOLTS_PER_VOLT = 1e6
# Biosemi status words carry system bits above bit 16; trigger codes are the low 16 bits.
STIM_CODE_MASK = 0xFFFF
# MNE warnings that mean the file holds less data than its header or markers promise.
TRUNCATION_WARNINGS = (
    "Number of records from the header does not match the file size",
    r"Omitted \d+ annotation\(s\) that were outside data range",
)


class RecordingError(ValueError):
    """A raw file that cannot be used; the message names the participant and the file."""


@dataclass(frozen=True)
class Recording:
    """One participant's EMG in microvolts and the stimulus events, in recording order."""

    participant: str
    path: Path
    sampling_rate_hz: float
    signals_uv: dict  # muscle -> 1-D float64 array, microvolts
    onset_samples: np.ndarray  # int64 sample index of each stimulus onset
    conditions: tuple  # condition of each event

    @property
    def onset_seconds(self):
        return self.onset_samples / self.sampling_rate_hz

    @property
    def n_samples(self):
        return len(next(iter(self.signals_uv.values())))


def resolve_recording_settings(settings):
    """Reader settings with every missing key taken from RECORDING_DEFAULTS."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(RECORDING_DEFAULTS))
    if unknown:
        raise ValueError(f"recording: unknown settings {unknown}")
    text = {**RECORDING_DEFAULTS["text"], **(settings.get("text") or {})}
    return {**RECORDING_DEFAULTS, **settings, "text": text}


def read_recording(
    path, participant, channels, conditions, settings=None, file_format=None
):
    """Read one participant's raw file.

    channels maps muscle -> channel name in the file (config `channels`), conditions
    lists the study's condition names, settings is the config `recording` section and
    file_format (e.g. from the sample sheet) overrides settings["format"] and the
    file extension.
    """
    path = Path(path)
    settings = resolve_recording_settings(settings)
    file_format = file_format or settings["format"] or _format_from_extension(path)
    if file_format not in (*TEXT_DELIMITERS, *MNE_FORMATS):
        raise RecordingError(
            f"{participant}: {path}: unsupported format '{file_format}'; supported are "
            f"edf, bdf, vhdr (BrainVision), csv and tsv"
        )
    if not path.is_file():
        raise RecordingError(f"{participant}: recording {path} does not exist")
    if file_format in TEXT_DELIMITERS:
        return _read_text(
            path, participant, channels, conditions, settings, file_format
        )
    return _read_with_mne(
        path, participant, channels, conditions, settings, file_format
    )


def _format_from_extension(path):
    # An unknown extension is reported by read_recording with the supported list.
    return EXTENSION_FORMATS.get(path.suffix.lower(), path.suffix.lstrip(".") or "none")


def _read_with_mne(path, participant, channels, conditions, settings, file_format):
    import mne

    where = f"{participant}: {path}"
    source = settings["event_source"]
    if source not in ("annotations", "stim_channel"):
        raise RecordingError(
            f"{where}: recording.event_source '{source}' is not one of "
            "annotations, stim_channel"
        )
    label_map = _event_label_map(where, settings["event_labels"], conditions)
    readers = {
        "edf": mne.io.read_raw_edf,
        "bdf": mne.io.read_raw_bdf,
        "vhdr": mne.io.read_raw_brainvision,
    }
    try:
        with warnings.catch_warnings():
            for message in TRUNCATION_WARNINGS:
                warnings.filterwarnings("error", message=message)
            # Header only: check the channels, then load just the ones needed.
            raw = readers[file_format](path, preload=False, verbose="warning")
    except RuntimeWarning as warning:
        raise RecordingError(f"{where}: truncated file ({warning})") from warning
    except Exception as error:
        raise RecordingError(
            f"{where}: cannot read as {file_format.upper()} (corrupt or not this "
            f"format): {error}"
        ) from error

    needed = list(channels.values())
    if source == "stim_channel":
        stim_channel = settings["stim_channel"] or _first_stim_channel(where, raw)
        needed.append(stim_channel)
    _check_columns(where, needed, raw.ch_names)
    try:
        raw.pick(needed).load_data(verbose="warning")
    except Exception as error:
        raise RecordingError(
            f"{where}: cannot read the signal data: {error}"
        ) from error

    if source == "stim_channel":
        events = mne.find_events(
            raw,
            stim_channel=stim_channel,
            shortest_event=1,
            mask=STIM_CODE_MASK,
            mask_type="and",
            verbose="warning",
        )
        onsets = events[:, 0] - raw.first_samp
        labels = [str(code) for code in events[:, 2]]
    else:
        annotations = raw.annotations
        onsets = raw.time_as_index(
            annotations.onset, use_rounding=True, origin=annotations.orig_time
        )
        labels = [str(label) for label in annotations.description]
    onsets, event_conditions = _label_events(
        where, onsets, labels, label_map, set(settings["ignore_labels"])
    )

    data_uv = raw.get_data(picks=list(channels.values())) * MICROVOLTS_PER_VOLT
    return Recording(
        participant=participant,
        path=path,
        sampling_rate_hz=float(raw.info["sfreq"]),
        signals_uv=dict(zip(channels, data_uv)),
        onset_samples=onsets,
        conditions=event_conditions,
    )


def _check_columns(where, wanted, available):
    missing = [name for name in wanted if name not in available]
    if missing:
        raise RecordingError(
            f"{where}: channel(s) {missing} not found; the file has {list(available)}"
        )


def _first_stim_channel(where, raw):
    import mne

    stim_picks = mne.pick_types(raw.info, meg=False, stim=True)
    if len(stim_picks) == 0:
        raise RecordingError(
            f"{where}: recording.event_source is stim_channel but the file has no stim "
            f"channel; set recording.stim_channel to one of {raw.ch_names}"
        )
    return raw.ch_names[stim_picks[0]]


def _event_label_map(where, event_labels, conditions):
    """Label (or stim code, as text) -> condition; by default labels are conditions."""
    label_map = {str(label): condition for label, condition in event_labels.items()}
    label_map = label_map or {condition: condition for condition in conditions}
    unknown_conditions = sorted(set(label_map.values()) - set(conditions))
    if unknown_conditions:
        raise RecordingError(
            f"{where}: recording.event_labels maps to {unknown_conditions}, which are "
            f"not in study.conditions {list(conditions)}"
        )
    return label_map


def _label_events(where, onsets, labels, label_map, ignored):
    """Stimulus onsets (sorted) and their conditions; unknown labels are errors."""
    unknown = sorted({label for label in labels if label not in label_map} - ignored)
    if unknown:
        raise RecordingError(
            f"{where}: unknown event labels {unknown}; configured labels are "
            f"{sorted(label_map)} (recording.event_labels) and ignored labels "
            f"{sorted(ignored)} (recording.ignore_labels)"
        )
    keep = np.array([label in label_map for label in labels], dtype=bool)
    if not keep.any():
        raise RecordingError(
            f"{where}: no stimulus events found (expected labels {sorted(label_map)})"
        )
    onsets = np.asarray(onsets, dtype=np.int64)[keep]
    kept_labels = [label for label, kept in zip(labels, keep) if kept]
    order = np.argsort(onsets, kind="stable")
    return onsets[order], tuple(label_map[kept_labels[i]] for i in order)


def _read_text(path, participant, channels, conditions, settings, file_format):
    import pandas as pd

    where = f"{participant}: {path}"
    text = settings["text"]
    if not text["triggers"]:
        raise RecordingError(
            f"{where}: text exports carry no annotations; set recording.text.triggers "
            "to the trigger column(s) that mark stimulus onsets"
        )
    if text["units"] not in MICROVOLTS_PER_UNIT:
        raise RecordingError(
            f"{where}: recording.text.units '{text['units']}' is not one of "
            f"{list(MICROVOLTS_PER_UNIT)}"
        )
    read_options = dict(
        sep=text["delimiter"] or TEXT_DELIMITERS[file_format],
        skiprows=text["skip_rows"],
        engine="c",
    )
    try:
        header = pd.read_csv(path, nrows=0, **read_options).columns
    except Exception as error:
        raise RecordingError(
            f"{where}: cannot read the header line: {error}"
        ) from error
    columns = list(channels.values()) + list(text["triggers"])
    if text["time_column"] is not None:
        columns.append(text["time_column"])
    _check_columns(where, columns, list(header))
    try:
        table = pd.read_csv(path, usecols=columns, dtype=np.float64, **read_options)
    except Exception as error:
        raise RecordingError(f"{where}: cannot parse the data rows: {error}") from error
    if len(table) < 2 or table.isna().to_numpy().any():
        raise RecordingError(f"{where}: truncated or malformed rows (missing values)")

    sampling_rate_hz = _text_sampling_rate(where, table, text)
    onsets, labels = _trigger_onsets(table, text["triggers"], text["trigger_threshold"])
    # Triggers are labelled with condition names; a wrong name is an unknown label.
    onsets, event_conditions = _label_events(
        where, onsets, labels, _event_label_map(where, {}, conditions), set()
    )
    scale = MICROVOLTS_PER_UNIT[text["units"]]
    return Recording(
        participant=participant,
        path=path,
        sampling_rate_hz=sampling_rate_hz,
        signals_uv={
            muscle: table[column].to_numpy() * scale
            for muscle, column in channels.items()
        },
        onset_samples=onsets,
        conditions=event_conditions,
    )


def _text_sampling_rate(where, table, text):
    configured = text["sampling_rate_hz"]
    if text["time_column"] is None:
        if configured is None:
            raise RecordingError(
                f"{where}: no time column, so recording.text.sampling_rate_hz is required"
            )
        return float(configured)
    time_s = table[text["time_column"]].to_numpy()
    # Span over count is robust to the rounding of individual exported time stamps.
    measured = round((len(time_s) - 1) / (time_s[-1] - time_s[0]), 3)
    if configured is not None and not np.isclose(measured, configured, rtol=1e-3):
        raise RecordingError(
            f"{where}: the time column implies {measured} Hz but "
            f"recording.text.sampling_rate_hz is {configured}"
        )
    return measured


def _trigger_onsets(table, triggers, threshold):
    """Rising threshold crossings on each trigger column, labelled with a condition.

    A column mapped to a condition labels every pulse with it; a column mapped to
    {level: condition} labels each pulse by the configured level nearest to the pulse's
    median height (robust to the ramp at either end of an analog pulse).
    """
    onsets, labels = [], []
    for column, meaning in triggers.items():
        trigger = table[column].to_numpy()
        above = trigger >= threshold
        rising = np.flatnonzero(above[1:] & ~above[:-1]) + 1
        onsets.append(rising)
        if isinstance(meaning, str):
            labels.extend([meaning] * len(rising))
            continue
        levels = np.array([float(level) for level in meaning])
        level_conditions = list(meaning.values())
        pulse_ends = np.append(
            np.flatnonzero(above[:-1] & ~above[1:]) + 1, len(trigger)
        )
        ends = pulse_ends[np.searchsorted(pulse_ends, rising)]
        for start, end in zip(rising, ends):
            height = np.median(trigger[start:end])
            labels.append(level_conditions[int(np.argmin(np.abs(levels - height)))])
    return np.concatenate(onsets), labels
