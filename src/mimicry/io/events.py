"""Stimulus events: condition labels from markers, and pulse trains as one stimulus.

A file's event codes or annotation texts become condition labels (recording.event_labels,
recording.ignore_events); stimuli coded as pulse trains (recording.event_train_gap_s) are
merged to one event per stimulus.
"""

import numpy as np

from mimicry.io.recording_types import NoEventsError, RecordingError

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


def event_label_map(recording, conditions):
    """Event label (or stim code, as text) -> condition, from recording.event_labels;
    with none configured, the labels are the condition names."""
    label_map = {str(label): c for label, c in recording["event_labels"].items()}
    return label_map or {c: c for c in conditions}


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
