"""What every reader returns and raises, and the channel checks they share.

A reader (mimicry.io.mne_formats, .acq, .text_exports) turns a raw file into a
`Recording` with its stimulus `Events`; every problem with a file is a `RecordingError`
naming the participant, the file and the config key.
"""

import dataclasses
import os
from pathlib import Path

import numpy as np


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


def absence(path):
    """Why path is not a file: a dangling symlink says where it points."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        return f"is a symlink to {os.readlink(path)}, which does not exist"
    if path.is_dir():
        return "is a directory, not a file"
    return "does not exist"


def finite_recording(where, participant, path, signals, channels, fs, stimuli):
    """A reader's `Recording` of signals and labelled stimuli, once every channel is
    checked to be finite."""
    check_finite(where, signals, channels, fs)
    return Recording(
        participant=participant,
        path=path,
        sampling_rate_hz=fs,
        signals_uv=signals,
        **stimuli,
    )


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


def load_channels(where, raw, needed):
    """Load only the needed channels of a header-only MNE Raw, or say which are missing."""
    check_columns(where, needed, raw.ch_names)
    try:
        raw.pick(needed).load_data(verbose="warning")
    except Exception as error:
        raise RecordingError(
            f"{where}: cannot read the signal data: {error}"
        ) from error


def check_named(where, channels, file_format):
    """Raise when channels gives column positions: only text exports have them."""
    positions = {
        muscle: ref for muscle, ref in channels.items() if isinstance(ref, int)
    }
    if positions:
        raise RecordingError(
            f"{where}: channels {positions} are column positions, which only text "
            f"exports have; name the {file_format.upper()} file's channels instead"
        )


def check_columns(where, wanted, available):
    """Raise naming the wanted channels that are not among the available ones."""
    missing = [name for name in wanted if name not in available]
    if missing:
        raise RecordingError(
            f"{where}: channel(s) {missing} not found; the file has {list(available)}"
        )
