"""The asymptotic regression curve that describes a muscle's response over time."""

import numpy as np


def asymptotic_curve(t, a, b, c):
    """mu(t) = a + (b - a) * exp(-c * t): starts at b, approaches a at rate c > 0."""
    t = np.asarray(t, dtype=float)
    return a + (b - a) * np.exp(-c * t)


def binned_log_ratio(bin_edges_s, a, b, c, samples_per_bin=200):
    """Expected log(bin mean / baseline mean) of an EMG envelope exp(mu(t)).

    Log of the mean over each bin, not mu at the bin centre: that is what binning a
    rectified signal measures.
    """
    t = bin_sample_times(bin_edges_s, samples_per_bin)
    return np.log(np.exp(asymptotic_curve(t, a, b, c)).mean(axis=1))


def bin_sample_times(bin_edges_s, samples_per_bin=200):
    """Evenly spaced times inside each bin (bins x samples), for bin means."""
    edges = np.asarray(bin_edges_s, dtype=float)
    fractions = (np.arange(samples_per_bin) + 0.5) / samples_per_bin
    return edges[:-1, None] + np.diff(edges)[:, None] * fractions[None, :]
