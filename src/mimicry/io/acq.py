"""BIOPAC AcqKnowledge files (.acq), read through bioread: channels by name, units
from the channel headers, stimulus onsets on an analog trigger channel.
"""

import numpy as np

from mimicry.io.recording_types import (
    Events,
    RecordingError,
    check_columns,
    check_named,
)
from mimicry.io.triggers import check_emg, check_triggers, trigger_onsets

# Unit names AcqKnowledge writes into channel headers.
ACQ_MICROVOLTS_PER_UNIT = {
    "uv": 1.0,
    "µv": 1.0,
    "microvolts": 1.0,
    "mv": 1e3,
    "millivolts": 1e3,
    "v": 1e6,
    "volts": 1e6,
}


def acq_header_rates(path):
    """Channel name -> sampling rate (Hz) from an AcqKnowledge file's header alone."""
    import bioread

    try:
        datafile = bioread.read_headers(str(path))
    except Exception as error:  # bioread raises many kinds on a damaged file
        raise ValueError(str(error)) from error
    if datafile is None:  # bioread's answer to a file too short for a header
        raise ValueError(f"{path}: no AcqKnowledge header")
    return {channel.name: channel.samples_per_second for channel in datafile.channels}


def read_acq(where, path, channels, recording, source):
    """(signals in µV by muscle, sampling rate, events) of an AcqKnowledge file."""
    import bioread

    if source not in ("annotations", "triggers"):
        raise RecordingError(
            f"{where}: recording.event_source '{source}' is not available for "
            "AcqKnowledge files; use annotations (event markers) or triggers"
        )
    check_named(where, channels, "acq")
    _check_acq_complete(where, path)
    try:
        datafile = bioread.read_file(str(path))
    except Exception as error:
        raise RecordingError(
            f"{where}: cannot read as AcqKnowledge (truncated, damaged or not this "
            f"format): {error}"
        ) from error
    by_name = {channel.name: channel for channel in datafile.channels}
    triggers = recording["triggers"] if source == "triggers" else {}
    needed = [*channels.values(), *triggers]
    check_columns(where, needed, list(by_name))
    rates = {name: by_name[name].samples_per_second for name in needed}
    lengths = {name: by_name[name].point_count for name in needed}
    if len(set(rates.values())) > 1 or len(set(lengths.values())) > 1:
        raise RecordingError(
            f"{where}: the channels {needed} are sampled at different rates {rates} "
            f"(samples {lengths}); export them at one rate"
        )
    fs = float(rates[needed[0]])

    signals = {}
    for muscle, name in channels.items():
        channel = by_name[name]
        scale = ACQ_MICROVOLTS_PER_UNIT.get(channel.units.strip().lower())
        if scale is None:
            raise RecordingError(
                f"{where}: channel '{name}' (channels.{muscle}) is in "
                f"'{channel.units}', not a voltage unit {sorted(ACQ_MICROVOLTS_PER_UNIT)}"
            )
        signals[muscle] = np.asarray(channel.data, dtype=np.float64) * scale
    trigger_data = {name: np.asarray(by_name[name].data, float) for name in triggers}
    if recording["check_channels"]:
        for muscle, name in channels.items():
            check_emg(where, f"channel '{name}'", f"channels.{muscle}", signals[muscle])
        check_triggers(
            where, trigger_data, recording, fs, lambda name: f"channel '{name}'"
        )

    if source == "triggers":
        events = trigger_onsets(
            where,
            trigger_data,
            recording,
            fs,
            lambda name: f"channel '{name}'",
            lambda sample: f"sample {sample}",
        )
    else:
        # Marker positions count samples at the file's base rate.
        base_rate = datafile.samples_per_second
        markers = datafile.event_markers or []
        onsets = [round(m.sample_index * fs / base_rate) for m in markers]
        labels = [m.text for m in markers]
        events = Events(onsets, labels, [f"event marker {label!r}" for label in labels])
    return signals, fs, events


def _check_acq_complete(where, path):
    """Raise when an AcqKnowledge file ends before its headers, samples or event
    markers do: bioread reads what is there and says little of what is not."""
    from bioread.reader import Reader

    size = path.stat().st_size
    try:
        headers = Reader.read_headers(str(path))
    except Exception as error:  # bioread raises many kinds on a damaged file
        raise RecordingError(
            f"{where}: the file is damaged or not AcqKnowledge: cannot read its "
            f"headers ({error})"
        ) from error
    if headers.datafile is None:
        raise RecordingError(
            f"{where}: the file is truncated or damaged: its {size} bytes do not hold "
            "complete AcqKnowledge headers"
        )
    if not headers.is_compressed:
        data_end = headers.data_start_offset + headers.data_length
        if size < data_end:
            points = sorted(
                {channel.point_count for channel in headers.channel_headers}
            )
            raise RecordingError(
                f"{where}: the file is truncated: {size} bytes, but its AcqKnowledge "
                f"headers announce samples up to byte {data_end} ({points} samples "
                f"per channel from byte {headers.data_start_offset})"
            )
    if headers.event_markers is None:
        raise RecordingError(
            f"{where}: the file is truncated or damaged after its samples: its "
            f"event-marker section cannot be read ({size} bytes)"
        )
