"""The preprocessing filter: a Butterworth band-pass plus mains band-stops, applied
forwards and backwards as one second-order-section cascade."""

import logging

import numpy as np
from scipy.signal import butter

from mimicry.io.recording_types import RecordingError

log = logging.getLogger(__name__)

# The preprocess keys the filtered signal depends on.
FILTER_KEYS = (
    "band_hz",
    "band_order",
    "mains_hz",
    "notch_harmonics",
    "notch_width_hz",
    "notch_order",
)


def design_filter(recording, options, band_key="preprocess.band_hz"):
    """The cascade for a recording: `filter_sections` at its rate.

    Returns (sos, notch_hz, skipped_notch_hz). Harmonics whose band-stop would reach
    the Nyquist frequency are skipped and logged; a band-pass that does is an error
    naming the recording and band_key, the config key that set the band.
    """
    fs = recording.sampling_rate_hz
    nyquist = fs / 2
    high = options["band_hz"][1]
    if high >= nyquist:
        raise RecordingError(
            f"{recording.participant}: {recording.path}: the band-pass upper edge "
            f"{high:g} Hz needs a sampling rate above {2 * high:g} Hz, but the recording "
            f"is sampled at {fs:g} Hz; the highest usable upper edge is below "
            f"{nyquist:g} Hz (set {band_key})"
        )
    sos, notch_hz, skipped_notch_hz = filter_sections(fs, options)
    if skipped_notch_hz:
        log.info(
            "%s: notch at %s Hz skipped: at or above the Nyquist frequency %g Hz",
            recording.participant,
            skipped_notch_hz,
            nyquist,
        )
    return sos, notch_hz, skipped_notch_hz


def filter_sections(sampling_rate_hz, options):
    """(sos, notch_hz, skipped_notch_hz) for the `preprocess` options at this rate;
    the band-pass's upper edge must be below the Nyquist frequency."""
    fs = sampling_rate_hz
    nyquist = fs / 2
    low, high = options["band_hz"]
    sections = [
        butter(options["band_order"], [low, high], "bandpass", fs=fs, output="sos")
    ]
    notch_hz, skipped_notch_hz = [], []
    if options["mains_hz"]:
        harmonics = options["notch_harmonics"]
        multiples = range(1, harmonics + 1) if isinstance(harmonics, int) else harmonics
        half_width = options["notch_width_hz"] / 2
        for frequency in (options["mains_hz"] * multiple for multiple in multiples):
            if frequency + half_width >= nyquist:
                skipped_notch_hz.append(float(frequency))
                continue
            notch_hz.append(float(frequency))
            edges = [frequency - half_width, frequency + half_width]
            sections.append(
                butter(options["notch_order"], edges, "bandstop", fs=fs, output="sos")
            )
    return np.vstack(sections), notch_hz, skipped_notch_hz
