"""Stimulus onsets on analog trigger channels, and the checks that a column is what the
config says it is (raw EMG, or a trigger). Used by the AcqKnowledge and text readers.
"""

import numpy as np

from mimicry.io.events import train_starts
from mimicry.io.recording_types import Events, RecordingError

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


CHECK_HINT = "or set recording.check_channels: false to skip this check"


def check_emg(where, column, key, signal):
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


def check_triggers(where, trigger_data, recording, fs, describe):
    """Raise when a trigger varies like a signal or never marks a stimulus; under
    recording.without_events: exclude, triggers none of which rises are left to the
    exclusion (`trigger_onsets` says what they hold)."""
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


def trigger_onsets(where, trigger_data, recording, fs, describe, locate):
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
