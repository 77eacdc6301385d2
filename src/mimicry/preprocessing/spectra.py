"""Welch spectra of a recording's channels before and after the preprocessing filter.

The `preprocess` job computes them while it holds the recording and writes them next
to its QC report, so the QC figure job draws them without reading the raw file again.
Spectra are estimated on a few segments spread over the recording (not all of it):
per segment the median Welch estimate over 1 s Hann windows, then the mean over
segments.

Reading needs only pyarrow and numpy: SciPy and the recording readers are imported by
`channel_spectra` alone, since loading them is most of a QC figure job's time.
"""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mimicry.io.result_files import read_result

# Welch with 1 s windows (1 Hz resolution) on SPECTRUM_SEGMENTS segments of
# SPECTRUM_SEGMENT_S seconds spread evenly over the recording. Each segment is
# filtered with SPECTRUM_EDGE_S seconds on either side that are then dropped, so the
# filter's start-up transients stay out of the spectrum.
SPECTRUM_SEGMENTS = 8
SPECTRUM_SEGMENT_S = 16.0
SPECTRUM_EDGE_S = 2.0
WELCH_WINDOW_S = 1.0
# The median over each segment's windows (then the mean over segments): movement and
# blink bursts in a few trials would otherwise lift the whole spectrum by 1-2 dB.
WELCH_AVERAGE = "median"
KINDS = ("raw", "filtered")


def spectrum_segments(n_samples, sampling_rate_hz):
    """(start, stop) sample indices of the segments the spectra are estimated on.

    Each range includes the filter margins on both sides; a recording too short for
    the segments gives one range over the whole recording.
    """
    segment = round(SPECTRUM_SEGMENT_S * sampling_rate_hz)
    edge = round(SPECTRUM_EDGE_S * sampling_rate_hz)
    length = segment + 2 * edge
    if SPECTRUM_SEGMENTS * length >= n_samples:
        return [(0, n_samples)]
    starts = np.linspace(0, n_samples - length, SPECTRUM_SEGMENTS).round().astype(int)
    return [(int(start), int(start) + length) for start in starts]


def channel_spectra(recording, options):
    """Welch spectra of each channel, raw and filtered with the preprocessing filter.

    recording: a `Recording`; options: the validated config's `preprocess` section.
    Returns a dict with the frequencies (Hz) and, per kind ("raw", "filtered"), a
    dict muscle -> power spectral density (µV²/Hz).
    """
    from scipy.signal import sosfiltfilt, welch

    from mimicry.preprocessing.filters import design_filter

    fs = recording.sampling_rate_hz
    sos, _, _ = design_filter(recording, options)
    muscles = list(recording.signals_uv)
    signals = np.vstack([recording.signals_uv[muscle] for muscle in muscles])
    ranges = spectrum_segments(signals.shape[1], fs)
    nperseg = min(round(WELCH_WINDOW_S * fs), signals.shape[1])
    if len(ranges) == 1:
        raw_segments = signals[:, None, :]
        filtered_segments = sosfiltfilt(sos, signals, axis=-1)[:, None, :]
    else:
        edge = round(SPECTRUM_EDGE_S * fs)
        raw = np.stack([signals[:, start:stop] for start, stop in ranges], axis=1)
        filtered = sosfiltfilt(sos, raw, axis=-1)
        raw_segments, filtered_segments = (
            raw[..., edge:-edge],
            filtered[..., edge:-edge],
        )
    spectra = {}
    for kind, segments in zip(KINDS, (raw_segments, filtered_segments)):
        frequencies, psd = welch(
            segments, fs, nperseg=nperseg, average=WELCH_AVERAGE, axis=-1
        )
        spectra[kind] = dict(zip(muscles, psd.mean(axis=1)))
    return {"frequencies_hz": frequencies} | spectra


def write_spectra(spectra, path):
    """Write `channel_spectra`'s result as parquet, one row per muscle and frequency."""
    muscles = list(spectra["raw"])
    frequencies = spectra["frequencies_hz"]
    columns = {
        "muscle": np.repeat(muscles, len(frequencies)),
        "frequency_hz": np.tile(frequencies, len(muscles)),
    } | {
        f"{kind}_psd": np.concatenate([spectra[kind][muscle] for muscle in muscles])
        for kind in KINDS
    }
    pq.write_table(pa.table(columns), path)


def read_spectra(path):
    """The spectra `write_spectra` wrote, in `channel_spectra`'s form."""
    table = read_result(path, pq.read_table)
    muscle_column = table.column("muscle").to_numpy(zero_copy_only=False)
    muscles = list(dict.fromkeys(muscle_column))
    frequency_column = table.column("frequency_hz").to_numpy()
    spectra = {"frequencies_hz": frequency_column[muscle_column == muscles[0]]}
    for kind in KINDS:
        values = table.column(f"{kind}_psd").to_numpy()
        spectra[kind] = {muscle: values[muscle_column == muscle] for muscle in muscles}
    return spectra
