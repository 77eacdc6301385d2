"""Readers that turn a participant's raw file into EMG signals and stimulus events.

EDF, BDF and BrainVision files are read through MNE-Python, BIOPAC AcqKnowledge files
(.acq) through bioread, delimited text exports (csv, tsv, txt) by column references,
with stimulus onsets found on analog trigger columns or channels. Every reader returns
the same small `Recording`, and every problem with a file raises a `RecordingError` that
names the participant, the file and, where there is one, the line, column and config
key.

The readers take the resolved config section `recording` (schema defaults filled in, see
src/mimicry/schemas/config.schema.yaml). MNE, bioread and pandas are imported inside the
functions that need them, so that importing this module costs nothing.
"""

import configparser
import dataclasses
import os
import re
import warnings
from pathlib import Path

import numpy as np

from mimicry import edf_header

MNE_FORMATS = ("edf", "bdf", "vhdr")
TEXT_DELIMITERS = {"csv": ",", "tsv": "\t", "txt": "\t"}
# physio: BIDS physiological recordings (*_physio.tsv[.gz]; mimicry.bids_physio).
FORMATS = (*MNE_FORMATS, "acq", *TEXT_DELIMITERS, "physio")
MICROVOLTS_PER_UNIT = {"uV": 1.0, "mV": 1e3, "V": 1e6}
SECONDS_PER_TIME_UNIT = {"s": 1.0, "ms": 1e-3, "min": 60.0}
TIME_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "min": "minutes"}
# A time step this far (as a share of the sampling interval) from the interval is a gap
# or jitter; exported stamps rounded to a tenth of the interval stay well within it.
MAX_TIME_STEP_DEVIATION = 0.5
# A time column implying a lower rate is in other units than seconds.
MIN_EMG_RATE_HZ = 100

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
# MNE keeps voltages in volts.
MICROVOLTS_PER_VOLT = 1e6
# Biosemi status words carry system bits above bit 16; trigger codes are the low 16 bits.
STIM_CODE_MASK = 0xFFFF
# MNE warnings that mean the file holds less data than its header or markers promise.
ANNOTATIONS_AFTER_DATA = r"Omitted \d+ annotation\(s\) that were outside data range"
RECORD_COUNT_MISMATCH = "Number of records from the header does not match the file size"
TRUNCATION_WARNINGS = (RECORD_COUNT_MISMATCH, ANNOTATIONS_AFTER_DATA)
# Channel identity checks (recording.check_channels). A raw EMG channel is signed and
# centred near zero: rectified or integrated EMG has (almost) no negative samples and a
# median of the order of its spread. Digital triggers take a handful of values; analog
# ones rest at one level most of the time (median absolute deviation near zero).
MIN_NEGATIVE_SHARE = 0.01
MAX_CENTRE_TO_IQR = 0.5
MAX_TRIGGER_LEVELS = 16
TRIGGER_REST_SHARE_OF_RANGE = 0.01
# Facial-EMG trials last seconds: a trigger rising more often than this is noise or a
# signal crossing the threshold.
MAX_STIMULI_PER_S = 1.0


# How to mend two stimulus events at one sample, by where the events come from.
DUPLICATE_MARKER_FIX = (
    "remove the duplicate marker from the file, or, if one of the labels marks "
    "something other than a stimulus onset (a response, a comment), move it from "
    "recording.event_labels to recording.ignore_labels"
)
DUPLICATE_TRIGGER_FIX = (
    "if two trigger columns or channels mark the same stimulus, keep one of them in "
    "recording.triggers"
)


class RecordingError(ValueError):
    """A raw file that cannot be used; the message names the participant and the file."""


class NoEventsError(RecordingError):
    """A recording without a usable stimulus event; problem says what was found,
    dropped holds the pulses dropped as too long on the way."""

    def __init__(self, where, problem, dropped=()):
        super().__init__(f"{where}: {problem}")
        self.problem = problem
        self.dropped = dropped


@dataclasses.dataclass(frozen=True)
class Events:
    """A file's stimulus events as its reader finds them, before labelling."""

    onsets: list  # sample of each event
    labels: list
    origins: list  # a description of each event, for messages
    dropped: tuple = ()  # pulses the reader dropped (glitches), JSON-ready
    # What the file's event source holds, said when it has no usable event.
    found: str = ""
    # Sample where each event ends (a pulse's fall, an annotation's or events.tsv
    # row's onset + duration), read only when uses_event_ends(recording); None: each
    # event ends at its onset.
    ends: list = None
    # What each event is on, as a dropped pulse names it (default: its origin).
    sources: list = None


@dataclasses.dataclass(frozen=True)
class Recording:
    """One participant's EMG in microvolts and the stimulus events, in recording order."""

    participant: str
    path: Path
    sampling_rate_hz: float
    signals_uv: dict  # muscle -> 1-D float64 array, microvolts
    onset_samples: np.ndarray  # int64 sample index of each stimulus onset
    conditions: tuple  # condition of each event
    # Trigger pulses dropped (glitches under recording.trigger_glitches: drop, pulses
    # longer than recording.trigger_max_pulse_s), JSON-ready.
    dropped_pulses: tuple = ()
    # With recording.trigger_train_gap_s: each event's block length (s, first onset to
    # the end of its last pulse) and pulse count; None when trains are not merged.
    block_s: np.ndarray = None
    block_pulses: np.ndarray = None
    # Why the recording has no usable stimulus event (recording.without_events:
    # exclude): an exclusion reason naming the file; '' when it has events.
    without_events: str = ""

    @property
    def onset_seconds(self):
        return self.onset_samples / self.sampling_rate_hz

    @property
    def n_samples(self):
        return len(next(iter(self.signals_uv.values())))


def format_from_extension(path):
    """The format a file name's extension names (lower case), or None; a BIDS
    `*_physio.tsv[.gz]` is physio."""
    from mimicry.bids_physio import is_physio

    if is_physio(path):
        return "physio"
    extension = Path(path).suffix.lower().lstrip(".")
    return extension if extension in FORMATS else None


def resolve_format(path, recording, file_format=None):
    """file_format (the sample sheet's), else recording.format, else the extension."""
    chosen = file_format or recording["format"] or format_from_extension(path)
    return chosen.lower() if chosen else Path(path).suffix.lstrip(".") or "none"


def event_source(recording, file_format):
    """Where this file's stimulus events come from (recording.event_source resolved)."""
    if file_format in TEXT_DELIMITERS:
        return "triggers"
    if recording["event_source"] is not None:
        return recording["event_source"]
    # MNE formats have no analog triggers here: a study mixing them with text exports
    # keeps its annotations.
    if recording["triggers"] and file_format == "acq":
        return "triggers"
    return "annotations"


def read_recording(path, participant, channels, conditions, settings, file_format=None):
    """Read one participant's raw file.

    channels maps muscle -> channel (config `channels`: a name, or a text export's
    column position), conditions lists the study's condition names, settings is the
    resolved config section `recording` and file_format (the sample sheet's) overrides
    settings["format"] and the file extension.
    """
    path, recording = Path(path), settings
    file_format = resolve_format(path, recording, file_format)
    where = f"{participant}: {path}"
    if file_format not in FORMATS:
        raise RecordingError(
            f"{where}: unsupported format '{file_format}'; supported are edf, bdf, "
            "vhdr (BrainVision), acq (AcqKnowledge), csv, tsv, txt and physio (BIDS "
            "*_physio.tsv[.gz]) (sample sheet column format, or recording.format)"
        )
    if not path.is_file():
        raise RecordingError(f"{participant}: recording {path} {absence(path)}")
    if file_format == "physio":
        from mimicry.bids_physio import read_physio

        return read_physio(path, participant, channels, conditions, settings)
    source = event_source(recording, file_format)
    if file_format in TEXT_DELIMITERS:
        signals, fs, events = _read_text(where, path, channels, recording, file_format)
    elif file_format == "acq":
        signals, fs, events = _read_acq(where, path, channels, recording, source)
    else:
        signals, fs, events = _read_with_mne(
            where, path, channels, recording, file_format, source
        )
    if source == "triggers":
        # Triggers are labelled with condition names; a wrong name is an unknown label.
        label_map, ignored = {c: c for c in conditions}, set()
        fix = DUPLICATE_TRIGGER_FIX
    else:
        label_map = event_label_map(recording, conditions)
        ignored = set(recording["ignore_labels"])
        fix = DUPLICATE_MARKER_FIX
    check_finite(where, signals, channels, fs)
    return Recording(
        participant=participant,
        path=path,
        sampling_rate_hz=fs,
        signals_uv=signals,
        **label_events(where, path, events, label_map, ignored, fs, fix, recording),
    )


def label_events(where, path, events, label_map, ignored, fs, fix, recording):
    """A file's `Events` as the stimulus fields of its `Recording` (onset_samples,
    conditions, dropped_pulses, block_s, block_pulses, without_events), whatever
    their source: labelled (`_label_events`), then recording.trigger_max_pulse_s and
    recording.trigger_train_gap_s applied (`pulse_trains`). A file without a usable
    stimulus event stops under recording.without_events: error; under exclude its
    fields hold no event and the exclusion reason naming path."""
    merging = recording["trigger_train_gap_s"] is not None
    try:
        onsets, kept = _label_events(
            where,
            events.onsets,
            events.labels,
            label_map,
            ignored,
            fs,
            events.origins,
            fix,
            events.found,
        )
        ends = onsets if events.ends is None else _as_samples(events.ends)[kept]
        sources = events.sources or events.origins
        conditions = [label_map[events.labels[i]] for i in kept]
        firsts, block_s, block_pulses, dropped = pulse_trains(
            where,
            onsets,
            ends,
            conditions,
            fs,
            recording,
            [sources[i] for i in kept],
            [events.origins[i] for i in kept],
            events.found,
        )
    except NoEventsError as error:
        if recording["without_events"] == "error":
            raise
        return {
            "onset_samples": np.zeros(0, dtype=np.int64),
            "conditions": (),
            "dropped_pulses": events.dropped + error.dropped,
            "block_s": np.zeros(0) if merging else None,
            "block_pulses": np.zeros(0, dtype=np.int64) if merging else None,
            "without_events": (
                f"no_events:{path} {error.problem} (recording.without_events: exclude)"
            ),
        }
    return {
        "onset_samples": onsets[firsts],
        "conditions": tuple(conditions[i] for i in firsts),
        "dropped_pulses": events.dropped + dropped,
        "block_s": block_s,
        "block_pulses": block_pulses,
        "without_events": "",
    }


def uses_event_ends(recording):
    """Whether recording.trigger_max_pulse_s or trigger_train_gap_s needs the events'
    ends: readers read them only then, so that other studies read as before."""
    return (
        recording["trigger_max_pulse_s"] is not None
        or recording["trigger_train_gap_s"] is not None
    )


def pulse_trains(
    where, onsets, ends, conditions, fs, recording, sources, origins, found=""
):
    """recording.trigger_max_pulse_s and recording.trigger_train_gap_s on stimulus
    events of any source (analog triggers, stim channels, annotations, events.tsv).

    onsets and ends: each event's start and end sample, in time order; conditions:
    its condition; sources: what it is on, for a dropped pulse's record; origins: a
    description of it, for messages. An event lasting longer than
    trigger_max_pulse_s is not a stimulus: it is dropped and returned as a
    JSON-ready dropped pulse. With trigger_train_gap_s, an event of the
    condition of the event before it, starting less than the gap after that one's
    end, continues its train (block): the block's onset is its first event's, its
    length (s) runs to the latest end of its events. Returns (index of each block's
    first event, block lengths, event counts (both None without trigger_train_gap_s),
    dropped pulses). Raises NoEventsError, holding the dropped pulses, when every
    event is too long (found: what else the source holds, for that message).
    """
    onsets, ends = _as_samples(onsets), _as_samples(ends)
    max_pulse_s = recording["trigger_max_pulse_s"]
    widths = ends - onsets
    too_long = np.zeros(len(onsets), dtype=bool)
    if max_pulse_s is not None:
        too_long = widths > max_pulse_s * fs
    dropped = tuple(
        {
            "trigger": sources[i],
            "sample": int(onsets[i]),
            "time_s": round(onsets[i] / fs, 6),
            "width_s": round(widths[i] / fs, 6),
            "problem": (
                f"lasts {widths[i] / fs:.3f} s, longer than "
                f"recording.trigger_max_pulse_s {max_pulse_s:g} s: not a stimulus"
            ),
        }
        for i in np.flatnonzero(too_long)
    )
    kept = np.flatnonzero(~too_long)
    if len(kept) == 0:
        first = dropped[0]
        too_long_found = (
            f"all its {len(dropped)} stimulus events last longer than "
            f"recording.trigger_max_pulse_s {max_pulse_s:g} s: the first, "
            f"{origins[0]}, at {first['time_s']:.3f} s lasts {first['width_s']:.3f} s"
        )
        found = "; ".join(filter(None, [found, too_long_found]))
        raise NoEventsError(where, f"no stimulus events found ({found})", dropped)
    gap_s = recording["trigger_train_gap_s"]
    if gap_s is None:
        return kept, None, None, dropped
    conditions = np.asarray(conditions, dtype=object)[kept]
    starts = train_starts(onsets[kept], ends[kept], conditions, gap_s * fs)
    firsts = np.flatnonzero(starts)
    last_ends = np.maximum.reduceat(ends[kept], firsts)
    block_s = (last_ends - onsets[kept][firsts]) / fs
    block_pulses = np.diff(np.append(firsts, len(kept))).astype(np.int64)
    return kept[firsts], block_s.astype(np.float64), block_pulses, dropped


def train_starts(onsets, ends, conditions, gap):
    """Which events (in time order) start a train: all, with gap None; else those
    of another condition than the event before (conditions None: one condition) or
    starting gap samples or more after its end."""
    starts = np.ones(len(onsets), dtype=bool)
    if gap is None:
        return starts
    starts[1:] = onsets[1:] - ends[:-1] >= gap
    if conditions is not None:
        starts[1:] |= conditions[1:] != conditions[:-1]
    return starts


def _as_samples(values):
    return np.asarray(values, dtype=np.int64)


def absence(path):
    """Why path is not a file: a dangling symlink says where it points."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        return f"is a symlink to {os.readlink(path)}, which does not exist"
    if path.is_dir():
        return "is a directory, not a file"
    return "does not exist"


def check_finite(where, signals, channels, fs):
    """Raise at the first NaN or infinite sample: it would spread through the filter."""
    for muscle, signal in signals.items():
        bad = ~np.isfinite(signal)
        if bad.any():
            sample = int(np.argmax(bad))
            raise RecordingError(
                f"{where}: channel {channels[muscle]!r} (channels.{muscle}) has "
                f"{np.count_nonzero(bad)} non-finite samples, the first ({signal[sample]}) "
                f"at sample {sample} ({sample / fs:.3f} s); the filter would spread it "
                "over the whole channel, so repair or cut the recording"
            )


def _read_with_mne(where, path, channels, recording, file_format, source):
    import mne

    if source not in ("annotations", "stim_channel"):
        raise RecordingError(
            f"{where}: recording.event_source '{source}' is not available for "
            f"{file_format.upper()} files; use annotations or stim_channel"
        )
    _check_named(where, channels, file_format)
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


# Peak memory of a preprocess job (MB): imports and tables, plus a multiple of the
# samples it holds as float64 (samples x channels read x 8 bytes), or for a text
# export of the file's size; measured (docs/performance.md) and given a margin.
PREPROCESS_BASE_MB = 400
PREPROCESS_MB_PER_SAMPLE_MB = 7
PREPROCESS_MB_PER_TEXT_MB = 14
# When the file is not there yet (Snakemake asks again before the job runs).
PREPROCESS_UNKNOWN_MB = 1000


def preprocess_mem_mb(path, file_format, n_channels_used):
    """The memory (MB) a preprocess job needs for this raw file, from its header
    and size alone. n_channels_used: the channels an MNE reader loads (the muscles'
    and a stim channel); AcqKnowledge files are read whole."""
    path = Path(path)
    try:
        size_mb = path.stat().st_size / 2**20
        if file_format in TEXT_DELIMITERS:
            return round(PREPROCESS_BASE_MB + PREPROCESS_MB_PER_TEXT_MB * size_mb)
        samples, channels = _samples_per_channel(path, file_format)
    except (OSError, ValueError, RecordingError, edf_header.HeaderError):
        return PREPROCESS_UNKNOWN_MB
    if file_format != "acq":
        channels = min(channels, n_channels_used)
    sample_mb = samples * channels * 8 / 2**20
    return round(PREPROCESS_BASE_MB + PREPROCESS_MB_PER_SAMPLE_MB * sample_mb)


def _samples_per_channel(path, file_format):
    """(samples of the fastest channel, channels in the file), from the header."""
    if file_format in edf_header.SAMPLE_BYTES:
        header = edf_header.read_header(path, file_format)
        records = header.records_in(path.stat().st_size)
        return records * max(header.samples_per_record), len(header.labels)
    if file_format == "vhdr":
        header = read_brainvision_header(str(path), path)
        sample_bytes = BRAINVISION_SAMPLE_BYTES.get(header.binary_format, 2)
        size = header.data_file.stat().st_size
        return size // (header.n_channels * sample_bytes), header.n_channels
    if file_format == "acq":
        import bioread

        datafile = bioread.read_headers(str(path))
        if datafile is None:
            raise ValueError(f"{path}: no AcqKnowledge header")
        points = [channel.point_count for channel in datafile.channels]
        return max(points), len(points)
    raise ValueError(f"{path}: no header to read for format {file_format}")


def declared_sampling_rate(path, file_format, channels):
    """The lowest sampling rate the file's header gives the named channels, read
    from the header alone; None when the header does not say or cannot be read (the
    reader then says what is wrong)."""
    path = Path(path)
    try:
        if file_format in edf_header.SAMPLE_BYTES:
            rates = edf_header.read_header(path, file_format).sampling_rates_hz()
        elif file_format == "vhdr":
            header = path.read_text(encoding="utf-8", errors="replace")
            interval = re.search(r"^SamplingInterval\s*=\s*([0-9.]+)", header, re.M)
            return 1e6 / float(interval.group(1)) if interval else None
        elif file_format == "acq":
            rates = _acq_header_rates(path)
        elif file_format == "physio":
            from mimicry.bids_physio import read_sidecar

            return read_sidecar(str(path), path)[1]
        else:
            return None
    except (
        edf_header.HeaderError,
        OSError,
        ValueError,
        ZeroDivisionError,
        RecordingError,
    ):
        return None
    named = [rates[channel] for channel in channels if channel in rates]
    return min(named) if named else None


def _acq_header_rates(path):
    import bioread

    try:
        datafile = bioread.read_headers(str(path))
    except Exception as error:  # bioread raises many kinds on a damaged file
        raise ValueError(str(error)) from error
    if datafile is None:  # bioread's answer to a file too short for a header
        raise ValueError(f"{path}: no AcqKnowledge header")
    return {channel.name: channel.samples_per_second for channel in datafile.channels}


def event_label_map(recording, conditions):
    """Event label (or stim code, as text) -> condition, from recording.event_labels;
    with none configured, the labels are the condition names."""
    label_map = {str(label): c for label, c in recording["event_labels"].items()}
    return label_map or {c: c for c in conditions}


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


# Bytes per sample of the BrainVision binary formats MNE reads.
BRAINVISION_SAMPLE_BYTES = {"INT_16": 2, "INT_32": 4, "IEEE_FLOAT_32": 4}
# Data read as 32-bit floats: amplitudes in any unit (V to nV) lie in this range or
# are 0. Integers read as floats almost never do (their upper bytes make tiny or huge
# exponents), and floats read as integers almost always do.
PLAUSIBLE_FLOAT_RANGE = (1e-12, 1e9)
FLOAT_LIKE_SHARE = 0.99
# The share of the data file read to tell floats from integers.
FORMAT_PROBE_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class BrainVisionHeader:
    """What a BrainVision header (.vhdr) says of its data and marker files."""

    data_file: Path
    marker_file: Path  # None when the header names none
    n_channels: int
    binary_format: str  # None for ASCII data
    data_points: int  # None when the header does not say


def read_brainvision_header(where, path):
    """The header's files (each checked to be a file name beside the header), channel
    count, binary format and sample count."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    # The first line names the format; the rest is INI.
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text[text.find("[") :] if "[" in text else "")
        common = parser["Common Infos"]
    except (configparser.Error, KeyError) as error:
        raise RecordingError(
            f"{where}: not a BrainVision header: no readable [Common Infos] section "
            f"({error})"
        ) from None

    def beside_header(key, required):
        name = common.get(key, "").strip()
        if not name:
            if required:
                raise RecordingError(f"{where}: the header names no {key}")
            return None
        if Path(name).name != name or name in (".", "..") or "\\" in name:
            raise RecordingError(
                f"{where}: {key}={name} in the header is not a file name beside the "
                f"header; a BrainVision header may only name files in its own folder "
                f"({Path(path).parent}), so write the bare file name there"
            )
        return Path(path).parent / name

    data_file = beside_header("DataFile", required=True)
    marker_file = beside_header("MarkerFile", required=False)
    try:
        n_channels = int(common.get("NumberOfChannels", ""))
        data_points = common.get("DataPoints")
        data_points = None if data_points is None else int(data_points)
    except ValueError as error:
        raise RecordingError(
            f"{where}: the header's NumberOfChannels or DataPoints is not a whole "
            f"number ({error})"
        ) from None
    binary_format = None
    if common.get("DataFormat", "BINARY").strip().upper() == "BINARY":
        binary_format = parser.get("Binary Infos", "BinaryFormat", fallback="").strip()
    return BrainVisionHeader(
        data_file, marker_file, n_channels, binary_format, data_points
    )


def check_brainvision(where, path, source):
    """Raise when a BrainVision header names files outside its folder or absent, or
    when its data file's size or content disagrees with its channel count and
    binary format."""
    header = read_brainvision_header(where, path)
    if not header.data_file.is_file():
        raise RecordingError(
            f"{where}: the data file {header.data_file} (DataFile in the header) "
            f"{absence(header.data_file)}"
        )
    if source == "annotations":
        if header.marker_file is None:
            raise RecordingError(
                f"{where}: the header names no MarkerFile, and the stimulus events "
                "come from its markers (recording.event_source annotations)"
            )
        if not header.marker_file.is_file():
            raise RecordingError(
                f"{where}: the marker file {header.marker_file} (MarkerFile in the "
                f"header) {absence(header.marker_file)}; the stimulus events come "
                "from its markers (if the set was renamed, set DataFile and "
                "MarkerFile in the header to the new names)"
            )
    if header.binary_format is None:
        return
    sample_bytes = BRAINVISION_SAMPLE_BYTES.get(header.binary_format)
    if sample_bytes is None:
        raise RecordingError(
            f"{where}: BinaryFormat={header.binary_format} is not one of "
            f"{list(BRAINVISION_SAMPLE_BYTES)}"
        )
    size = header.data_file.stat().st_size
    frame = header.n_channels * sample_bytes
    described = (
        f"{header.n_channels} channels of {sample_bytes} bytes "
        f"(NumberOfChannels, BinaryFormat={header.binary_format})"
    )
    if header.data_points is not None and size != header.data_points * frame:
        raise RecordingError(
            f"{where}: the data file {header.data_file} has {size} bytes, but the "
            f"header announces {header.data_points * frame}: DataPoints="
            f"{header.data_points} samples of {described}"
        )
    if size == 0 or size % frame:
        raise RecordingError(
            f"{where}: the data file {header.data_file} is truncated or not what the "
            f"header describes: {size} bytes are not a whole number of samples of "
            f"{described}"
        )
    with open(header.data_file, "rb") as stream:
        probe = stream.read(FORMAT_PROBE_BYTES // 4 * 4)
    float_like = _float_like_share(probe)
    floats = header.binary_format == "IEEE_FLOAT_32"
    if floats == (float_like >= FLOAT_LIKE_SHARE) or not _any_nonzero(probe):
        return
    actual, other = (
        ("integers", "INT_16") if floats else ("32-bit floats", "IEEE_FLOAT_32")
    )
    other_frame = header.n_channels * BRAINVISION_SAMPLE_BYTES[other]
    raise RecordingError(
        f"{where}: the data file {header.data_file} holds {actual}, not "
        f"BinaryFormat={header.binary_format} as the header says ({float_like:.1%} "
        "of its first values, read as 32-bit floats, are amplitudes or 0): its "
        f"{size} bytes are {size // frame} samples per channel as "
        f"{header.binary_format} but {size // other_frame} as {other}; set "
        "BinaryFormat in the header to what the recorder wrote"
    )


def _float_like_share(block):
    """The share of block's 32-bit words that, read as floats, are 0 or amplitudes."""
    values = np.abs(np.frombuffer(block[: len(block) // 4 * 4], dtype="<f4"))
    if values.size == 0:
        return 0.0
    low, high = PLAUSIBLE_FLOAT_RANGE
    with np.errstate(invalid="ignore"):
        plausible = (values == 0) | ((values >= low) & (values <= high))
    return float(np.mean(plausible))


def _any_nonzero(block):
    return bool(np.frombuffer(block, dtype=np.uint8).any())


def brainvision_files(path):
    """The data and marker files a BrainVision header names (None for each that it
    does not name or that is not beside it): for checks across participants."""
    try:
        header = read_brainvision_header(str(path), path)
    except (RecordingError, OSError):
        return None, None
    return header.data_file, header.marker_file


def load_channels(where, raw, needed):
    """Load only the needed channels of a header-only MNE Raw, or say which are missing."""
    _check_columns(where, needed, raw.ch_names)
    try:
        raw.pick(needed).load_data(verbose="warning")
    except Exception as error:
        raise RecordingError(
            f"{where}: cannot read the signal data: {error}"
        ) from error


def _check_named(where, channels, file_format):
    positions = {
        muscle: ref for muscle, ref in channels.items() if isinstance(ref, int)
    }
    if positions:
        raise RecordingError(
            f"{where}: channels {positions} are column positions, which only text "
            f"exports have; name the {file_format.upper()} file's channels instead"
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


def _label_events(
    where, onsets, labels, label_map, ignored, fs, origins=None, fix=None, found=""
):
    """Stimulus onsets (sorted) and the index of each one's event; unknown labels are
    errors, and so are two stimuli at one sample. origins describes each event for that message
    (default: its label); fix says how to mend a duplicate; found says what the
    events' source holds when no stimulus event is left (NoEventsError)."""
    unknown = sorted({label for label in labels if label not in label_map} - ignored)
    if unknown:
        raise RecordingError(
            f"{where}: unknown event labels {unknown}; configured labels are "
            f"{sorted(label_map)} (recording.event_labels) and ignored labels "
            f"{sorted(ignored)} (recording.ignore_labels)"
        )
    keep = np.array([label in label_map for label in labels], dtype=bool)
    if not keep.any():
        found = found or f"expected labels {sorted(label_map)}" + (
            f"; the file has only ignored labels {sorted(set(labels))}"
            if labels
            else ""
        )
        raise NoEventsError(where, f"no stimulus events found ({found})")
    onsets = np.asarray(onsets, dtype=np.int64)[keep]
    kept = np.flatnonzero(keep)
    order = np.argsort(onsets, kind="stable")
    onsets, kept = onsets[order], kept[order]
    shared = np.flatnonzero(np.diff(onsets) == 0)
    if shared.size:
        first, second = kept[shared[0]], kept[shared[0] + 1]
        origins = origins or [repr(label) for label in labels]
        sample = int(onsets[shared[0]])
        raise RecordingError(
            f"{where}: two stimulus events at one sample, {sample} ({sample / fs:.3f} "
            f"s): {origins[first]} and {origins[second]} ({shared.size} such pair(s)); "
            f"each stimulus needs exactly one onset: {fix or DUPLICATE_MARKER_FIX}"
        )
    return onsets, kept


def _read_acq(where, path, channels, recording, source):
    import bioread

    if source not in ("annotations", "triggers"):
        raise RecordingError(
            f"{where}: recording.event_source '{source}' is not available for "
            "AcqKnowledge files; use annotations (event markers) or triggers"
        )
    _check_named(where, channels, "acq")
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
    _check_columns(where, needed, list(by_name))
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
            _check_emg(
                where, f"channel '{name}'", f"channels.{muscle}", signals[muscle]
            )
        _check_triggers(
            where, trigger_data, recording, fs, lambda name: f"channel '{name}'"
        )

    if source == "triggers":
        events = _trigger_onsets(
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


@dataclasses.dataclass(frozen=True)
class TextLayout:
    """Where the data of a text export are: column names, field count and data lines."""

    names: list  # one per field, trailing empty field excluded
    first_data_line: int  # 0-based index of the first data line in the file
    data_line_numbers: np.ndarray  # 1-based file line number of each data row


def _read_text(where, path, channels, recording, file_format):
    import pandas as pd

    text = recording["text"]
    delimiter = text["delimiter"] or TEXT_DELIMITERS[file_format]
    layout = _text_layout(where, path, text, delimiter)
    columns = _TextColumns(where, layout.names)
    channel_positions = {
        muscle: columns.position(ref, f"channels.{muscle}")
        for muscle, ref in channels.items()
    }
    trigger_positions = {
        name: columns.position(name, f"recording.triggers.{name}")
        for name in recording["triggers"]
    }
    used = [*channel_positions.values(), *trigger_positions.values()]
    if text["time_column"] is not None:
        time_position = columns.position(
            text["time_column"], "recording.text.time_column"
        )
        used.append(time_position)
    used = sorted(set(used))
    try:
        table = pd.read_csv(
            path,
            sep=delimiter,
            header=None,
            skiprows=layout.first_data_line,
            usecols=used,
            dtype=np.float64,
            decimal=text["decimal"],
            comment=text["comment"],
            engine="c",
            encoding_errors="replace",
        )
        values = {position: table[position].to_numpy() for position in used}
    except (ValueError, pd.errors.ParserError):
        values = None
    if values is None or not all(
        np.isfinite(column).all() for column in values.values()
    ):
        # The fast parser says little about where; find the first bad field.
        _raise_first_bad_field(where, path, layout, used, columns, text, delimiter)
    if len(layout.data_line_numbers) < 2:
        raise RecordingError(f"{where}: fewer than two data lines")

    scale = MICROVOLTS_PER_UNIT[text["units"]]
    signals = {
        muscle: values[position] * scale
        for muscle, position in channel_positions.items()
    }
    trigger_data = {
        name: values[position] for name, position in trigger_positions.items()
    }
    if text["time_column"] is not None:
        time_s = values[time_position] * SECONDS_PER_TIME_UNIT[text["time_unit"]]
        _check_time_column(where, time_s, layout, columns.describe(time_position))
        fs = _text_sampling_rate(
            where, time_s, text["sampling_rate_hz"], text["time_unit"]
        )
    elif text["sampling_rate_hz"] is None:
        raise RecordingError(
            f"{where}: no time column (recording.text.time_column), so "
            "recording.text.sampling_rate_hz is required"
        )
    else:
        fs = float(text["sampling_rate_hz"])
    if recording["check_channels"]:
        for muscle, position in channel_positions.items():
            _check_emg(
                where, columns.describe(position), f"channels.{muscle}", signals[muscle]
            )
        _check_triggers(
            where,
            trigger_data,
            recording,
            fs,
            lambda name: columns.describe(trigger_positions[name]),
        )
    events = _trigger_onsets(
        where,
        trigger_data,
        recording,
        fs,
        lambda name: columns.describe(trigger_positions[name]),
        lambda sample: f"line {layout.data_line_numbers[sample]}",
    )
    return signals, fs, events


class _TextColumns:
    """Column references (name or 1-based position) resolved against a text layout."""

    def __init__(self, where, names):
        self.where = where
        self.names = names

    def position(self, reference, key):
        """0-based position of a column reference; key is the config key holding it."""
        if isinstance(reference, int):
            if not 1 <= reference <= len(self.names):
                raise RecordingError(
                    f"{self.where}: {key} is column {reference}, but the data lines "
                    f"have {len(self.names)} fields"
                )
            return reference - 1
        matches = [i for i, name in enumerate(self.names) if name == reference]
        if not matches:
            raise RecordingError(
                f"{self.where}: column '{reference}' ({key}) not found; the columns "
                f"are {self.names} (or refer to a column by its 1-based position)"
            )
        if len(matches) > 1:
            raise RecordingError(
                f"{self.where}: column name '{reference}' ({key}) is shared by columns "
                f"{[i + 1 for i in matches]}; refer to the column by its position"
            )
        return matches[0]

    def describe(self, position):
        return f"column {position + 1} ('{self.names[position]}')"


def _text_layout(where, path, text, delimiter):
    """Header names, field count and data lines of a text export, or an error.

    Field counts come from counting delimiters per line over the raw bytes, so that a
    line with a field too many or too few is found however long the file is.
    """
    content = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    if content.size == 0:
        raise RecordingError(f"{where}: the file is empty")
    newlines = np.flatnonzero(content == ord("\n"))
    if newlines.size == 0 or newlines[-1] != content.size - 1:
        newlines = np.append(newlines, content.size)
    starts = np.concatenate([[0], newlines[:-1] + 1])
    ends = newlines.copy()
    # Windows line ends: the carriage return is not part of the last field.
    carriage = (ends > starts) & (content[np.maximum(ends - 1, 0)] == ord("\r"))
    ends[carriage] -= 1
    delimiter_byte = ord(delimiter)
    # Every line holds at least its newline, so the segments are never empty.
    raw_fields = 1 + np.add.reduceat(content == delimiter_byte, starts, dtype=np.int64)
    trailing = (ends > starts) & (content[np.maximum(ends - 1, 0)] == delimiter_byte)
    fields = raw_fields - trailing
    # Lines of spaces only are blank, as the parser treats them.
    blank = ends - starts == 0
    for i in np.flatnonzero(~blank & (ends - starts < 8)):
        blank[i] = not bytes(content[starts[i] : ends[i]]).strip()
    skippable = blank.copy()
    if text["comment"] is not None:
        first_byte = content[np.minimum(starts, content.size - 1)]
        skippable |= (ends > starts) & (first_byte == ord(text["comment"]))
    skippable[: text["skip_rows"]] = True

    def line_text(i):
        return bytes(content[starts[i] : ends[i]]).decode("utf-8", errors="replace")

    candidates = np.flatnonzero(~skippable)
    if candidates.size == 0:
        raise RecordingError(f"{where}: no data lines after recording.text.skip_rows")
    if text["header"]:
        header_line, data_lines = candidates[0], candidates[1:]
    else:
        header_line, data_lines = None, candidates
    if data_lines.size == 0:
        raise RecordingError(f"{where}: no data lines below the header line")
    n_fields = int(fields[data_lines[0]])
    wrong = data_lines[fields[data_lines] != n_fields]
    if wrong.size:
        line = int(wrong[0])
        raise RecordingError(
            f"{where}: line {line + 1} has {fields[line]} fields, but the first data "
            f"line ({data_lines[0] + 1}) has {n_fields} (an empty field after a "
            f"trailing delimiter not counted): '{line_text(line)[:120]}'"
        )
    if header_line is not None:
        names = [name.strip() for name in line_text(header_line).split(delimiter)]
        if trailing[header_line]:
            names = names[:-1]
        if len(names) != n_fields:
            raise RecordingError(
                f"{where}: the header (line {header_line + 1}) names {len(names)} "
                f"columns but the data lines have {n_fields} fields (an empty field "
                "after a trailing delimiter not counted), so the columns cannot be "
                "matched without guessing; if the file has no header line set "
                "recording.text.header: false, if it has a preamble set "
                "recording.text.skip_rows, and check recording.text.delimiter"
            )
    elif text["column_names"] is not None:
        names = list(text["column_names"])
        if len(names) != n_fields:
            raise RecordingError(
                f"{where}: recording.text.column_names names {len(names)} columns but "
                f"the data lines (from line {data_lines[0] + 1}) have {n_fields} "
                "fields (an empty field after a trailing delimiter not counted)"
            )
    else:
        names = [str(position) for position in range(1, n_fields + 1)]
    return TextLayout(
        names=names,
        first_data_line=int(data_lines[0]),
        data_line_numbers=data_lines + 1,
    )


def _raise_first_bad_field(where, path, layout, used, columns, text, delimiter):
    """Raise naming the first data line whose used field is empty or not a number."""
    wanted = set(layout.data_line_numbers.tolist())
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if number not in wanted:
                continue
            fields = line.rstrip("\r\n").split(delimiter)
            for position in used:
                field = fields[position].strip()
                try:
                    finite = np.isfinite(float(field.replace(text["decimal"], ".")))
                    problem = None if finite else f"'{field}' is not a finite number"
                except ValueError:
                    problem = f"'{field}' is not a number" if field else "is empty"
                if problem:
                    raise RecordingError(
                        f"{where}: line {number}, {columns.describe(position)}: "
                        f"{problem} (decimal mark '{text['decimal']}', "
                        "recording.text.decimal); every sample must be a finite number"
                    )
    raise RecordingError(f"{where}: cannot parse the data lines")


def _check_time_column(where, time_s, layout, column):
    """Raise unless the time stamps step evenly: a gap or jitter would shift events."""
    key = "recording.text.time_column"
    steps = np.diff(time_s)
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise RecordingError(
            f"{where}: {column}, the time column ({key}), does not "
            f"increase at line {layout.data_line_numbers[row]} ({time_s[row - 1]} then "
            f"{time_s[row]}); if its stamps are rounded coarser than the sampling "
            f"interval, leave {key} null and set recording.text.sampling_rate_hz"
        )
    # Span over count, not the median step: stamps rounded coarser than a step make
    # the steps take two values, neither of them the sampling interval.
    step = (time_s[-1] - time_s[0]) / (len(time_s) - 1)
    uneven = np.abs(steps - step) > MAX_TIME_STEP_DEVIATION * step
    if uneven.any():
        row = int(np.argmax(uneven)) + 1
        missing = round(steps[row - 1] / step) - 1
        what = (
            f"a gap of {steps[row - 1]:.6g} s (about {missing} samples missing)"
            if missing >= 1
            else f"a step of {steps[row - 1]:.6g} s"
        )
        raise RecordingError(
            f"{where}: {column}, the time column ({key}), jumps from {time_s[row - 1]} "
            f"to {time_s[row]} at line {layout.data_line_numbers[row]}: {what} where "
            f"the samples are {step:.4g} s apart; {np.count_nonzero(uneven)} steps are "
            "uneven. The workflow needs evenly sampled recordings: export the recording "
            "without gaps (or split it at the gap)"
        )
    # Rounded stamps stay within half a step of the even grid; drift does not.
    grid = time_s[0] + step * np.arange(len(time_s))
    drift = np.abs(time_s - grid)
    if drift.max() > step / 2:
        row = int(np.argmax(drift > step / 2))
        raise RecordingError(
            f"{where}: {column}, the time column ({key}), drifts from an even "
            f"{step:.6g} s grid by more than half a sample from line "
            f"{layout.data_line_numbers[row]} ({time_s[row]} s, the grid says "
            f"{grid[row]:.6g} s): the sampling is jittered; the workflow needs evenly "
            "sampled recordings"
        )


def _text_sampling_rate(where, time_s, configured, unit):
    """The sampling rate the time column implies: the whole span over the sample
    count, given as the roundest rate its stamps' rounding allows (rounded single
    steps, or the rounding of the first and last stamp, say little)."""
    span = time_s[-1] - time_s[0]
    measured = (len(time_s) - 1) / span
    # The stamps lie within this of the even grid from the first to the last: the
    # span, and so the rate, is known to twice that.
    grid = np.linspace(time_s[0], time_s[-1], len(time_s))
    uncertainty = measured * 2 * float(np.max(np.abs(time_s - grid))) / span
    measured = _roundest(measured, uncertainty)
    if configured is not None and not np.isclose(measured, configured, rtol=1e-3):
        raise RecordingError(
            f"{where}: the time column implies {measured} Hz but "
            f"recording.text.sampling_rate_hz is {configured}"
            f"{_time_unit_hint(measured, configured, unit)}"
        )
    if measured < MIN_EMG_RATE_HZ:
        raise RecordingError(
            f"{where}: the time column implies {measured} Hz, too slow for EMG (below "
            f"{MIN_EMG_RATE_HZ} Hz){_time_unit_hint(measured, configured, unit)}"
        )
    return measured


def _roundest(value, uncertainty):
    """The value with the fewest decimals (at most 3) within uncertainty of it."""
    for decimals in range(3):
        rounded = round(value, decimals)
        if rounded > 0 and abs(rounded - value) <= uncertainty:
            return float(rounded)
    return float(round(value, 3))


def _time_unit_hint(measured_hz, configured_hz, unit):
    """How to fix a time column read in the wrong unit, as far as the rates tell."""
    if configured_hz is not None:
        # The rate read in another unit is measured_hz times that unit's length.
        for other, seconds in SECONDS_PER_TIME_UNIT.items():
            scale = seconds / SECONDS_PER_TIME_UNIT[unit]
            if other != unit and np.isclose(measured_hz, configured_hz * scale, 1e-3):
                return (
                    f"; the time column counts {TIME_UNIT_NAMES[other]}: set "
                    f"recording.text.time_unit: {other}"
                )
    if measured_hz >= MIN_EMG_RATE_HZ:
        return ""
    return (
        "; if the time column counts milliseconds, set recording.text.time_unit: ms, "
        "if it counts samples, leave recording.text.time_column null and set "
        "recording.text.sampling_rate_hz"
    )


CHECK_HINT = "or set recording.check_channels: false to skip this check"


def _check_emg(where, column, key, signal):
    """Raise when a channel configured as raw EMG does not look like raw EMG."""
    if np.ptp(signal) == 0:
        return  # a flat channel is the preprocessing's flat-channel exclusion
    problem = None
    steps = np.diff(signal)
    if (steps > 0).all():
        problem = "increases on every line, like a time column"
    elif len(np.unique(signal[: 1 << 16])) <= MAX_TRIGGER_LEVELS:
        problem = "takes only a few distinct values, like a trigger or digital channel"
    else:
        q1, median, q3 = np.percentile(signal, [25, 50, 75])
        negative_share = np.mean(signal < 0)
        if negative_share < MIN_NEGATIVE_SHARE or abs(median) > MAX_CENTRE_TO_IQR * (
            q3 - q1
        ):
            problem = (
                f"is not signed and centred near zero (median {median:.4g}, "
                f"interquartile range {q3 - q1:.4g}, {negative_share:.1%} negative), "
                "like a rectified, integrated or offset signal rather than raw EMG"
            )
    if problem:
        raise RecordingError(
            f"{where}: {column}, configured as {key}, {problem}; point {key} at the raw "
            f"EMG column, {CHECK_HINT}"
        )


def _check_triggers(where, trigger_data, recording, fs, describe):
    """Raise when a trigger varies like a signal or never marks a stimulus; under
    recording.without_events: exclude, triggers none of which rises are left to the
    exclusion (`_trigger_onsets` says what they hold)."""
    threshold = recording["trigger_threshold"]
    gap = _train_gap_samples(recording, fs)
    silent = []
    for name, trigger in trigger_data.items():
        column = describe(name)
        key = _trigger_key(name)
        low, high = float(np.min(trigger)), float(np.max(trigger))
        rest = np.median(np.abs(trigger - np.median(trigger)))
        levels = len(np.unique(trigger[: 1 << 16]))
        rising, ends = _pulse_bounds(trigger, threshold)
        # A train of pulses is one stimulus block.
        n_stimuli = np.count_nonzero(train_starts(rising, ends, None, gap))
        duration_s = len(trigger) / fs
        problem = None
        if levels > MAX_TRIGGER_LEVELS and rest > TRIGGER_REST_SHARE_OF_RANGE * (
            high - low
        ):
            problem = (
                f"varies like a signal ({levels}+ distinct values, no resting level)"
            )
        elif n_stimuli > duration_s * MAX_STIMULI_PER_S:
            problem = (
                f"rises through recording.trigger_threshold {threshold:g} "
                f"{n_stimuli} times in {duration_s:.0f} s, more often than stimuli come"
            )
        if problem:
            raise RecordingError(
                f"{where}: {column}, configured as a trigger ({key}), {problem}; point "
                f"{key} at the trigger or set recording.trigger_threshold, {CHECK_HINT}"
            )
        if len(rising) == 0:
            silent.append(
                f"{where}: {column} ({key}) {_never_rises(threshold, low, high)}; set "
                f"recording.trigger_threshold, {CHECK_HINT}"
            )
    if silent and (
        len(silent) < len(trigger_data) or recording["without_events"] == "error"
    ):
        raise RecordingError(silent[0])


def _never_rises(threshold, low, high):
    return (
        f"never rises through recording.trigger_threshold {threshold:g} (its values "
        f"span {low:g} to {high:g})"
    )


def _train_gap_samples(recording, fs):
    """recording.trigger_train_gap_s in samples, or None."""
    gap_s = recording["trigger_train_gap_s"]
    return None if gap_s is None else gap_s * fs


def _trigger_onsets(where, trigger_data, recording, fs, describe, locate):
    """Stimulus events from rising threshold crossings on the triggers, in time order.

    trigger_data maps trigger name -> samples. A trigger mapped to a condition labels
    every pulse with it; one mapped to {level: condition} labels each pulse by the
    configured level nearest to the pulse's median height (robust to the ramp at
    either end of an analog pulse). A glitch, a pulse shorter than
    recording.trigger_min_pulse_s or (level-coded) with a height no configured level
    explains, is an error or, with recording.trigger_glitches: drop, dropped
    (`label_events` then applies recording.trigger_max_pulse_s and
    trigger_train_gap_s to the pulses' ends). describe(name) names a trigger's column,
    locate(sample) a sample. Returns `Events` (dropped pulses as JSON-ready dicts;
    found says what each trigger holds when no pulse is left).
    """
    threshold = recording["trigger_threshold"]
    min_width = max(1, round(recording["trigger_min_pulse_s"] * fs))
    pulses, dropped, findings = [], [], []
    for order, (name, meaning) in enumerate(recording["triggers"].items()):
        trigger = trigger_data[name]
        rising, ends = _pulse_bounds(trigger, threshold)
        if isinstance(meaning, str):
            levels, level_conditions, tolerance = None, [meaning], None
        else:
            levels = np.array([float(level) for level in meaning])
            level_conditions = list(meaning.values())
            tolerance = _level_tolerance(levels, threshold)
        first_dropped = len(dropped)
        for start, end in zip(rising, ends):
            height = float(np.median(trigger[start:end]))
            nearest = 0 if levels is None else int(np.argmin(np.abs(levels - height)))
            problem = None
            if end - start < min_width:
                problem = (
                    f"lasts {(end - start) / fs * 1000:.3g} ms, shorter than "
                    f"recording.trigger_min_pulse_s {recording['trigger_min_pulse_s']:g} s"
                )
            elif levels is not None and abs(height - levels[nearest]) > tolerance:
                problem = (
                    f"has height {height:g}, more than {tolerance:g} from every "
                    f"configured level {[float(level) for level in levels]} "
                    f"({_trigger_key(name)})"
                )
            if problem is None:
                pulses.append((int(start), order, int(end), name, nearest))
                continue
            dropped.append(
                {
                    "trigger": name,
                    "sample": int(start),
                    "time_s": round(start / fs, 6),
                    "height": height,
                    "width_s": round((end - start) / fs, 6),
                    "problem": problem,
                }
            )
            if recording["trigger_glitches"] == "error":
                raise RecordingError(
                    f"{where}: a pulse on {describe(name)} at {start / fs:.3f} s "
                    f"({locate(start)}) {problem}; if such pulses are glitches, set "
                    "recording.trigger_glitches: drop to drop them (each is recorded "
                    "in qc.tsv and the participant's QC), else fix "
                    f"{_trigger_key(name)} or recording.trigger_min_pulse_s"
                )
        column = f"{describe(name)} ({_trigger_key(name)})"
        if len(dropped) - first_dropped < len(rising):
            continue
        if len(rising) == 0:
            low, high = float(np.min(trigger)), float(np.max(trigger))
            findings.append(f"{column} {_never_rises(threshold, low, high)}")
        else:
            first = dropped[first_dropped]
            findings.append(
                f"{column}: all its {len(rising)} pulses were dropped, the first at "
                f"{first['time_s']:.3f} s {first['problem']}"
            )
    pulses.sort()
    labels_of = {
        name: [meaning] if isinstance(meaning, str) else list(meaning.values())
        for name, meaning in recording["triggers"].items()
    }
    return Events(
        onsets=[start for start, *_ in pulses],
        labels=[labels_of[name][level] for *_, name, level in pulses],
        origins=[
            f"a pulse on {describe(name)} ({locate(start)})"
            for start, _, _, name, _ in pulses
        ],
        dropped=tuple(dropped),
        found="; ".join(findings),
        ends=[end for _, _, end, *_ in pulses],
        sources=[name for *_, name, _ in pulses],
    )


def _pulse_bounds(trigger, threshold):
    """Start (rising crossing of threshold) and end sample of every pulse that starts
    inside the recording; a pulse still high at the end ends with the recording."""
    above = trigger >= threshold
    rising = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    falling = np.append(np.flatnonzero(above[:-1] & ~above[1:]) + 1, len(trigger))
    return rising, falling[np.searchsorted(falling, rising)]


def _trigger_key(name):
    return f"recording.triggers.{name}"


def _level_tolerance(levels, threshold):
    """How far a pulse may sit from its level: half the closest spacing between the
    configured levels and the threshold, so that no height is ambiguous."""
    marks = np.sort(np.append(levels, threshold))
    return float(np.min(np.diff(marks))) / 2
