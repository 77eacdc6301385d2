"""Turn a participant's raw file into EMG signals and stimulus events: picks the reader.

EDF, BDF and BrainVision files are read through MNE-Python (mimicry.io.mne_formats),
BIOPAC AcqKnowledge files (.acq) through bioread (mimicry.io.acq), delimited text
exports (csv, tsv, txt) by column references (mimicry.io.text_exports), with stimulus
onsets found on analog trigger columns or channels (mimicry.io.triggers). Every reader
returns the same small `Recording`, and every problem with a file raises a
`RecordingError` that names the participant, the file and, where there is one, the line,
column and config key (mimicry.io.recording_types). This module also estimates a
preprocessing job's memory and reads the sampling rate a file declares.

The readers take the resolved config section `recording` (schema defaults filled in, see
src/mimicry/config/schemas/config.schema.yaml). MNE, bioread and pandas are imported
inside the functions that need them, so that importing this module costs nothing.
"""

import re
from pathlib import Path

from mimicry.io import edf_header
from mimicry.io.acq import acq_header_rates, read_acq
from mimicry.io.brainvision import BRAINVISION_SAMPLE_BYTES, read_brainvision_header
from mimicry.io.events import (
    DUPLICATE_MARKER_FIX,
    DUPLICATE_TRIGGER_FIX,
    event_label_map,
    label_events,
)
from mimicry.io.mne_formats import MNE_FORMATS, read_with_mne
from mimicry.io.recording_types import RecordingError, absence, finite_recording
from mimicry.io.text_exports import TEXT_DELIMITERS, read_text

# physio: BIDS physiological recordings (*_physio.tsv[.gz]; mimicry.io.bids_physio).
FORMATS = (*MNE_FORMATS, "acq", *TEXT_DELIMITERS, "physio")


def format_from_extension(path):
    """The format a file name's extension names (lower case), or None; a BIDS
    `*_physio.tsv[.gz]` is physio."""
    from mimicry.io.bids_physio import is_physio

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
        from mimicry.io.bids_physio import read_physio

        return read_physio(path, participant, channels, conditions, settings)
    source = event_source(recording, file_format)
    if file_format in TEXT_DELIMITERS:
        signals, fs, events = read_text(where, path, channels, recording, file_format)
    elif file_format == "acq":
        signals, fs, events = read_acq(where, path, channels, recording, source)
    else:
        signals, fs, events = read_with_mne(
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
    stimuli = label_events(where, path, events, label_map, ignored, fs, fix, recording)
    return finite_recording(where, participant, path, signals, channels, fs, stimuli)


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
            rates = acq_header_rates(path)
        elif file_format == "physio":
            from mimicry.io.bids_physio import read_sidecar

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
