"""Windows around each stimulus onset, read off a rectified signal's prefix sums.

prefix holds each channel's cumulative sum with a leading zero, so a window's mean is
two lookups whatever the layout (overlapping trials, a gap between baseline and
response); no loop over samples or trials.
"""

import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class EpochWindows:
    """Baseline and response-bin windows around each onset, in samples."""

    def __init__(self, options, sampling_rate_hz):
        response_start, response_end = options["response_s"]
        n_bins = round((response_end - response_start) / options["bin_s"])
        bin_edges_s = response_start + options["bin_s"] * np.arange(n_bins + 1)
        starts_s = np.concatenate([[options["baseline_s"][0]], bin_edges_s[:-1]])
        stops_s = np.concatenate([[options["baseline_s"][1]], bin_edges_s[1:]])
        self.starts = np.round(starts_s * sampling_rate_hz).astype(np.int64)
        self.stops = np.round(stops_s * sampling_rate_hz).astype(np.int64)
        self.bin_centres_s = (bin_edges_s[:-1] + bin_edges_s[1:]) / 2

    def means(self, prefix, onsets):
        """Baseline (muscles, trials) and bin (muscles, trials, bins) means.

        Windows reaching outside the recording give NaN and inside=False for that
        trial.
        """
        n_samples = prefix.shape[1] - 1
        starts = onsets[:, None] + self.starts
        stops = onsets[:, None] + self.stops
        inside = (starts.min(axis=1) >= 0) & (stops.max(axis=1) <= n_samples)
        starts, stops = np.clip(starts, 0, n_samples), np.clip(stops, 0, n_samples)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (prefix[:, stops] - prefix[:, starts]) / (stops - starts)
        means[:, ~inside] = np.nan
        return means[..., 0], means[..., 1:], inside


class TransientWindows:
    """The transient rule's windows: rejection.transient_window_s long, tiling
    baseline_s[0] to response_s[1] (the scored windows), with transient_context_s of
    windows on either side for the running median."""

    def __init__(self, options, sampling_rate_hz):
        rejection = options["rejection"]
        width_s = rejection["transient_window_s"]
        self.width = max(1, round(width_s * sampling_rate_hz))
        self.context = round(rejection["transient_context_s"] / width_s)
        first_s, last_s = options["baseline_s"][0], options["response_s"][1]
        self.n_scored = int(np.ceil((last_s - first_s) / width_s - 1e-9))
        offsets_s = first_s + width_s * np.arange(
            -self.context, self.n_scored + self.context
        )
        self.offsets = np.round(offsets_s * sampling_rate_hz).astype(np.int64)
        self.centres_s = first_s + width_s * (np.arange(self.n_scored) + 0.5)

    @property
    def sample_span(self):
        """(first, end) sample offsets from onset that the windows read."""
        return int(self.offsets[0]), int(self.offsets[-1] + self.width)


def window_deviations(prefix, onsets, options, sampling_rate_hz):
    """Per (muscle, trial, scored window): its log mean amplitude minus the median of
    the windows within rejection.transient_context_s on either side.

    The context reaches beyond the epoch, so edge windows are judged like the others;
    windows outside the recording are left out of the median and score NaN. The
    running median of a stretch that only rises or only falls is its centre value, so
    a response, however large, deviates by no more than the noise; a burst, pop or
    dropout shorter than the context leaves the median at the surrounding level.

    Returns (deviations, the scored windows' centres in s from onset).
    """
    windows = TransientWindows(options, sampling_rate_hz)
    width, context = windows.width, windows.context
    starts = onsets[:, None] + windows.offsets
    n_samples = prefix.shape[1] - 1
    valid = (starts >= 0) & (starts + width <= n_samples)
    starts = np.clip(starts, 0, max(n_samples - width, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_means = np.log((prefix[:, starts + width] - prefix[:, starts]) / width)
    log_means[:, ~valid] = np.nan
    neighbourhoods = sliding_window_view(log_means, 2 * context + 1, axis=-1)
    # The middle of 2 * context + 1 values, by a partition (np.median is several
    # times slower). Only trials near the recording's ends have missing windows.
    local = np.partition(neighbourhoods, context, axis=-1)[..., context]
    near_end = ~valid.all(axis=1)
    if near_end.any():
        with warnings.catch_warnings():
            # A trial wholly outside has no windows; it is rejected as outside anyway.
            warnings.simplefilter("ignore", RuntimeWarning)
            local[:, near_end] = np.nanmedian(neighbourhoods[:, near_end], axis=-1)
    with np.errstate(invalid="ignore"):
        deviation = log_means[..., context : context + windows.n_scored] - local
    return deviation, windows.centres_s
