"""The artifact rules' limits on stationary noise, calibrated by simulation.

A window mean of rectified, band-passed EMG is only as precise as the number of
independent values it holds, about band width x window length: 0.1 s of a 20-450 Hz
band holds dozens, 0.1 s of a 20-45 Hz band at 100 Hz a handful. A fixed ratio between
a window and its surroundings therefore rejects a trial of pure noise almost never at
1000 Hz and in a sixth of the trials at 100 Hz. Here each rule's statistic is computed
on simulated stationary Gaussian noise, passed through the recording's own filter at its
own rate with the configured windows, and each limit is set so that a trial of such
noise is rejected with probability at most `preprocess.rejection.false_alarm_rate`
(with 95% confidence: a high order statistic of `calibration_trials` simulated trials).
The rules then reject only beyond the larger of this noise limit and the configured
ratio (`transient_ratio`, `baseline_ratio`), the smallest departure that counts as an
artifact at any rate.

The noise depends only on the sampling rate and the settings, so each combination is
calibrated once: in-process, and across jobs in `cache_dir` (one JSON file per
combination, written under a lock by the first job that needs it).
"""

import fcntl
import functools
import hashlib
import json
from pathlib import Path

import numpy as np
from scipy.signal import sosfiltfilt
from scipy.stats import binom

from mimicry.io.files import write_whole
from mimicry.preprocessing.epochs import TransientWindows, window_deviations
from mimicry.preprocessing.filters import FILTER_KEYS, filter_sections

# Bumped when the calibration's method changes, so cached limits are not reused.
METHOD_VERSION = 1
# The baseline rule compares a trial with the median of its muscle's kept baselines;
# the calibration takes that median over this many trials (fewer than most recordings
# have, so the reference is no more precise in the calibration than in the data).
REFERENCE_TRIALS = 10
# Confidence that the rejection rate on noise is at most the configured rate.
CONFIDENCE = 0.95
# Noise before the first and after the last calibration trial, for the filter to settle.
SETTLING_S = 1.0
# Samples simulated at once (bounds the calibration's memory at any rate).
CHUNK_SAMPLES = 2_000_000

CALIBRATION_KEYS = (*FILTER_KEYS, "baseline_s", "response_s")
REJECTION_KEYS = (
    "transient_window_s",
    "transient_context_s",
    "false_alarm_rate",
    "calibration_trials",
    "calibration_seed",
)


def rule_limits(sampling_rate_hz, options, cache_dir=None):
    """The limits the artifact rules apply, as JSON-ready log ratios and ratios.

    options is the validated `preprocess` section. Returns {"transient": {"upper",
    "lower"}, "baseline": {"upper", "lower"}} (log ratios: a window or baseline is
    rejected above upper or below lower), each with the noise limit it came from and
    the configured ratio ("noise_upper", "noise_lower", "ratio").
    """
    noise = noise_limits(sampling_rate_hz, options, cache_dir)
    rejection = options["rejection"]
    limits = {}
    for rule, ratio_key in (
        ("transient", "transient_ratio"),
        ("baseline", "baseline_ratio"),
    ):
        floor = float(np.log(rejection[ratio_key]))
        limits[rule] = {
            "upper": max(floor, noise[rule]["upper"]),
            "lower": min(-floor, noise[rule]["lower"]),
            "noise_upper": noise[rule]["upper"],
            "noise_lower": noise[rule]["lower"],
            "ratio": rejection[ratio_key],
        }
    return limits


def calibration_settings(sampling_rate_hz, options):
    """Everything the noise limits depend on, JSON-ready."""
    rejection = options["rejection"]
    return {
        "method_version": METHOD_VERSION,
        "sampling_rate_hz": float(sampling_rate_hz),
        **{key: options[key] for key in CALIBRATION_KEYS},
        **{key: rejection[key] for key in REJECTION_KEYS},
    }


def noise_limits(sampling_rate_hz, options, cache_dir=None):
    """{"transient": {"upper", "lower"}, "baseline": {"upper", "lower"}}: log-ratio
    limits that a trial of stationary noise crosses with probability at most
    rejection.false_alarm_rate, per rule (`calibrate`), cached."""
    settings = json.dumps(
        calibration_settings(sampling_rate_hz, options), sort_keys=True
    )
    if cache_dir is None:
        return _calibrated(settings)
    return _cached_on_disk(settings, Path(cache_dir))


@functools.lru_cache(maxsize=None)
def _calibrated(settings):
    return calibrate(json.loads(settings))


def _cached_on_disk(settings, cache_dir):
    digest = hashlib.sha256(settings.encode()).hexdigest()[:20]
    path = cache_dir / f"{digest}.json"
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Parallel jobs at one rate wait for the first to calibrate instead of repeating it.
    with open(cache_dir / f"{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file():
            return json.loads(path.read_text())["limits"]
        limits = _calibrated(settings)
        write_whole(
            path,
            json.dumps({"settings": json.loads(settings), "limits": limits}, indent=1)
            + "\n",
        )
    return limits


def calibrate(settings):
    """Noise limits for `calibration_settings`: simulate calibration_trials trials of
    unit Gaussian noise through the filter, score them as the rules do, and take each
    limit at the conservative order statistic (`exceeded_at_most`)."""
    fs = settings["sampling_rate_hz"]
    n_trials = settings["calibration_trials"]
    alpha = settings["false_alarm_rate"]
    options = {
        **settings,
        "rejection": {key: settings[key] for key in REJECTION_KEYS},
    }
    sos, _, _ = filter_sections(fs, options)
    first_offset, last_offset = TransientWindows(options, fs).sample_span
    spacing = last_offset - first_offset
    settling = round(SETTLING_S * fs)
    baseline_start, baseline_stop = (
        round(edge * fs) for edge in settings["baseline_s"]
    )
    rng = np.random.default_rng(settings["calibration_seed"])
    per_chunk = max(1, CHUNK_SAMPLES // spacing)
    upward, downward, log_baselines = [], [], []
    for start in range(0, n_trials, per_chunk):
        n_chunk = min(per_chunk, n_trials - start)
        noise = rng.standard_normal(2 * settling + n_chunk * spacing)
        rectified = np.abs(sosfiltfilt(sos, noise))
        prefix = np.concatenate([[0.0], np.cumsum(rectified)])[None]
        onsets = settling - first_offset + spacing * np.arange(n_chunk)
        deviation = window_deviations(prefix, onsets, options, fs)[0][0]
        upward.append(deviation.max(axis=-1))
        downward.append(deviation.min(axis=-1))
        baseline_sums = (
            prefix[0, onsets + baseline_stop] - prefix[0, onsets + baseline_start]
        )
        log_baselines.append(np.log(baseline_sums / (baseline_stop - baseline_start)))
    log_baselines = np.concatenate(log_baselines)
    usable = len(log_baselines) // REFERENCE_TRIALS * REFERENCE_TRIALS
    groups = log_baselines[:usable].reshape(-1, REFERENCE_TRIALS)
    baseline_deviation = np.abs(groups - np.median(groups, axis=1, keepdims=True))
    # Each direction of the transient rule gets half the rate; the baseline rule's
    # deviation is two-sided already.
    transient_upper = exceeded_at_most(np.concatenate(upward), alpha / 2)
    transient_lower = -exceeded_at_most(-np.concatenate(downward), alpha / 2)
    baseline = exceeded_at_most(baseline_deviation.ravel(), alpha)
    return {
        "transient": {"upper": transient_upper, "lower": transient_lower},
        "baseline": {"upper": baseline, "lower": -baseline},
    }


def exceeded_at_most(values, probability):
    """A value that a new draw exceeds with probability at most `probability`, with
    95% confidence: the j-th largest of the n values, j the 5% quantile of
    Binomial(n, probability) (that many values lie above the true quantile with
    probability 95%)."""
    n = len(values)
    rank = int(binom.ppf(1 - CONFIDENCE, n, probability))
    if rank < 1:
        raise ValueError(
            f"preprocess.rejection.calibration_trials: {n} simulated values are too "
            f"few to bound a rate of {probability:g}; use at least "
            f"{minimum_trials(probability)}"
        )
    return float(np.partition(values, n - rank)[n - rank])


def minimum_trials(probability):
    """The fewest values for which `exceeded_at_most` can bound `probability`."""
    # P(Binomial(n, p) >= 1) >= 95% once (1 - p)^n <= 5%.
    return int(np.ceil(np.log(1 - CONFIDENCE) / np.log1p(-probability)))
