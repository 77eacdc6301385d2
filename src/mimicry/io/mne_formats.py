"""EDF, BDF and BrainVision files, read through MNE-Python: channels by name, stimulus
events from annotations or a stim channel, and the checks of a file's header before MNE
reads it (a truncated EDF, a BrainVision file whose data are not what its header says).
"""

import dataclasses
import re
import warnings

import numpy as np

from mimicry.io import edf_header
from mimicry.io.brainvision import check_brainvision
from mimicry.io.events import uses_event_ends
from mimicry.io.recording_types import (
    Events,
    RecordingError,
    check_named,
    load_channels,
)

MNE_FORMATS = ("edf", "bdf", "vhdr")


# MNE keeps voltages in volts.
MICROVOLTS_PER_VOLT = 1e6
# Biosemi status words carry system bits above bit 16; trigger codes are the low 16 bits.
STIM_CODE_MASK = 0xFFFF
# MNE warnings that mean the file holds less data than its header or markers promise.
ANNOTATIONS_AFTER_DATA = r"Omitted \d+ annotation\(s\) that were outside data range"
RECORD_COUNT_MISMATCH = "Number of records from the header does not match the file size"
TRUNCATION_WARNINGS = (RECORD_COUNT_MISMATCH, ANNOTATIONS_AFTER_DATA)


def read_with_mne(where, path, channels, recording, file_format, source):
    """(signals in µV by muscle, sampling rate, events) of an EDF, BDF or BrainVision
    file, read with MNE."""
    import mne

    if source not in ("annotations", "stim_channel"):
        raise RecordingError(
            f"{where}: recording.event_source '{source}' is not available for "
            f"{file_format.upper()} files; use annotations or stim_channel"
        )
    check_named(where, channels, file_format)
    header = check_raw_file(where, path, file_format, source)
    ignored_warnings = ()
    if header is not None and header.n_records == -1:
        # A whole number of records (checked): MNE counts them from the size.
        ignored_warnings = (RECORD_COUNT_MISMATCH,)
    readers = {
        "edf": mne.io.read_raw_edf,
        "bdf": mne.io.read_raw_bdf,
        "vhdr": mne.io.read_raw_brainvision,
    }
    # Header only: check the channels, then load just the ones needed.
    try:
        raw = open_mne_raw(
            where,
            lambda: readers[file_format](path, preload=False, verbose="warning"),
            f"{file_format.upper()} (corrupt or not this format)",
            ignored_warnings,
        )
    except _AnnotationsAfterData as error:
        if file_format not in edf_header.SAMPLE_BYTES:
            raise
        records = header.records_in(path.stat().st_size)
        raise RecordingError(
            f"{error}; the data end at {records * header.record_duration_s:g} s "
            f"({records} data records of {header.record_duration_s:g} s, per the "
            "header), so the header's record duration or record count is probably wrong"
        ) from None

    needed = list(channels.values())
    if source == "stim_channel":
        stim_channel = recording["stim_channel"] or _first_stim_channel(where, raw)
        needed.append(stim_channel)
    load_channels(where, raw, needed)

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
        origins = [f"code {label} on {stim_channel!r}" for label in labels]
        if uses_event_ends(recording):
            ends = _stim_code_ends(raw.get_data(picks=[stim_channel])[0], onsets)
    else:
        annotations = raw.annotations
        onsets = raw.time_as_index(
            annotations.onset, use_rounding=True, origin=annotations.orig_time
        )
        labels = [str(label) for label in annotations.description]
        kind = "marker" if file_format == "vhdr" else "annotation"
        origins = [f"{kind} {label!r}" for label in labels]
        if uses_event_ends(recording):
            # An annotation's duration is its pulse's width.
            ends = raw.time_as_index(
                annotations.onset + annotations.duration,
                use_rounding=True,
                origin=annotations.orig_time,
            )
    data_uv = raw.get_data(picks=list(channels.values())) * MICROVOLTS_PER_VOLT
    signals = dict(zip(channels, data_uv))
    events = Events(list(onsets), labels, origins)
    if uses_event_ends(recording):
        events = dataclasses.replace(events, ends=list(ends))
    return signals, float(raw.info["sfreq"]), events


def _stim_code_ends(stim, onsets):
    """The sample after each event's code on a stim channel (as mne.find_events reads
    it: rounded, masked) changes: the end of its pulse."""
    codes = np.bitwise_and(np.round(stim).astype(np.int64), STIM_CODE_MASK)
    changes = np.append(np.flatnonzero(np.diff(codes)) + 1, len(codes))
    return changes[np.searchsorted(changes, onsets, side="right")]


def check_raw_file(where, path, file_format, source):
    """What can be checked of an EDF, BDF or BrainVision file before MNE reads it:
    returns the EDF/BDF header (None for BrainVision)."""
    if file_format in edf_header.SAMPLE_BYTES:
        return _edf_header(where, path, file_format)
    if file_format == "vhdr":
        check_brainvision(where, path, source)
    return None


def open_mne_raw(where, open_raw, file_kind, ignored_warnings=()):
    """open_raw() with MNE's truncation warnings as errors; failures name the file.

    file_kind says what the file was read as; ignored_warnings are message prefixes
    that carry no information here.
    """
    try:
        with warnings.catch_warnings():
            for message in TRUNCATION_WARNINGS:
                warnings.filterwarnings("error", message=message)
            for message in ignored_warnings:
                warnings.filterwarnings("ignore", message=message)
            return open_raw()
    except RuntimeWarning as warning:
        if re.match(ANNOTATIONS_AFTER_DATA, str(warning)):
            raise _AnnotationsAfterData(
                f"{where}: annotations lie after the end of the data ({warning})"
            ) from warning
        raise RecordingError(f"{where}: truncated file ({warning})") from warning
    except Exception as error:
        # Some parsers fail with an exception that has no message.
        reason = str(error) or f"{type(error).__name__} while parsing the file"
        raise RecordingError(
            f"{where}: cannot read as {file_kind}: {reason}"
        ) from error


class _AnnotationsAfterData(RecordingError):
    """MNE dropped annotations past the data's end: the caller knows why it may be."""


def _edf_header(where, path, file_format):
    """The EDF/BDF header, checked against the file size before MNE reads it."""
    try:
        header = edf_header.read_header(path, file_format)
        size = path.stat().st_size
        edf_header.check_size(header, size)
    except edf_header.HeaderError as error:
        raise RecordingError(f"{where}: the file {error}") from None
    if header.records_in(size) == 0:
        raise RecordingError(
            f"{where}: the file holds no samples: its {header.kind} header "
            f"({header.header_bytes} bytes) is followed by 0 data records (record "
            f"count {header.n_records}); the recording was not saved, or was cut "
            "after its header"
        )
    return header


def _first_stim_channel(where, raw):
    import mne

    stim_picks = mne.pick_types(raw.info, meg=False, stim=True)
    if len(stim_picks) == 0:
        raise RecordingError(
            f"{where}: recording.event_source is stim_channel but the file has no stim "
            f"channel; set recording.stim_channel to one of {raw.ch_names}"
        )
    return raw.ch_names[stim_picks[0]]
