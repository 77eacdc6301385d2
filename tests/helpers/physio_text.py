"""A crossover study written as BIDS-derivative-like physio text files, and the cells an
independent numpy/scipy analysis of the written samples gives.

Four participants, each recorded in two sessions, once under each treatment, the order
counterbalanced (placebo-drug, drug-placebo, ...); an age group per participant. Each
recording is `sub-<id>/ses-<n>/func/sub-<id>_ses-<n>_task-faces_physio_preprocessed.tsv`
below the study's derivatives folder, as the lab exported it: 100 Hz, no header line,
tab-separated with a tab after the last field, CRLF line ends; columns time, ZM, CS and
one 0/5 V trigger column per condition, one pulse per trial (or, with
pulses_per_trial > 1, a train of pulses per trial, one per stimulus of a block).
`write_study` writes the files and the sample sheet and returns the workflow config
that reads them by config alone, and `expected_cells` what the workflow's cells must be.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import butter, sosfiltfilt

FS = 100
GROUPS = ["placebo", "drug"]
CONDITIONS = ["Happy", "Angry", "Neutral"]
MUSCLE_COLUMNS = {"ZM": 2, "CS": 3}
TRIGGER_COLUMNS = {"4": "Happy", "5": "Angry", "6": "Neutral"}
# participant -> age group; sequences alternate, so each order has two participants.
PARTICIPANTS = {"9001": "young", "9002": "young", "9003": "old", "9004": "old"}
SESSIONS = ["1", "2"]
TRIALS_PER_CONDITION = 4
SPACING_S = 10.0
LEAD_IN_S = 3.0
PULSE_S = 0.1
BAND_HZ = [10.0, 45.0]
BASELINE_S = (-1.0, 0.0)
BIN_S = 0.5
N_BINS = 12
# Log-ratio response per muscle and condition, and the drug's within-participant
# change of it.
RESPONSE = {
    "ZM": {"Happy": 0.4, "Angry": -0.1, "Neutral": 0.0},
    "CS": {"Happy": -0.2, "Angry": 0.3, "Neutral": 0.0},
}
DRUG_EFFECT = {"ZM": {"Happy": -0.2}}
PARTICIPANT_SD = 0.1
TRIAL_SD = 0.1
SECONDS_PER_TIME_UNIT = {"s": 1.0, "min": 60.0}
FILE_NAME = (
    "sub-{participant_id}/ses-{session}/func/"
    "sub-{participant_id}_ses-{session}_task-faces_physio_preprocessed.tsv"
)


@dataclass(frozen=True)
class Recording:
    participant: str
    session: str
    group: str
    period: int
    sequence: str
    age_group: str
    signals: dict  # muscle -> samples (uV) as written
    onsets: np.ndarray  # sample of each trial's first pulse
    conditions: np.ndarray  # condition of each trial


def recordings(seed=0):
    """The study's recordings: each participant's sessions, counterbalanced."""
    rng = np.random.default_rng(seed)
    found = []
    for position, (participant, age_group) in enumerate(PARTICIPANTS.items()):
        order = GROUPS if position % 2 == 0 else GROUPS[::-1]
        own = {
            muscle: {c: r + rng.normal(0, PARTICIPANT_SD) for c, r in responses.items()}
            for muscle, responses in RESPONSE.items()
        }
        for period, (session, group) in enumerate(zip(SESSIONS, order), start=1):
            signals, onsets, conditions = _synthesize(rng, own, group)
            found.append(
                Recording(
                    participant,
                    session,
                    group,
                    period,
                    "-".join(order),
                    age_group,
                    signals,
                    onsets,
                    conditions,
                )
            )
    return found


def _synthesize(rng, own, group):
    conditions = rng.permutation(np.repeat(CONDITIONS, TRIALS_PER_CONDITION))
    onsets = np.round((LEAD_IN_S + SPACING_S * np.arange(len(conditions))) * FS)
    onsets = onsets.astype(int)
    n = onsets[-1] + int(SPACING_S * FS)
    time_s = np.arange(n) / FS
    signals = {}
    for muscle in MUSCLE_COLUMNS:
        envelope = np.full(n, rng.uniform(3.0, 8.0))
        for onset, condition in zip(onsets, conditions):
            effect = DRUG_EFFECT.get(muscle, {}).get(condition, 0.0)
            gain = own[muscle][condition] + (group == "drug") * effect
            window = slice(onset, onset + N_BINS * int(BIN_S * FS))
            envelope[window] *= np.exp(gain + rng.normal(0, TRIAL_SD))
        drift = 20.0 * np.sin(2 * np.pi * 0.05 * time_s + rng.uniform(0, 6))
        signals[muscle] = np.round(envelope * rng.standard_normal(n) + drift, 4)
    return signals, onsets, conditions


def write_study(workdir, folder="physio", seed=0, time_unit="s", pulses_per_trial=1):
    """Write the recordings and the sample sheet below workdir/folder; return the
    config (paths relative to workdir) and the recordings written.

    pulses_per_trial > 1 writes a train of pulses 1 s apart per trial (a block of
    stimuli), which needs the config's trigger-train setting to be one onset."""
    study = recordings(seed)
    root = workdir / folder
    for recording in study:
        path = (
            root
            / "derivatives"
            / FILE_NAME.format(
                participant_id=recording.participant, session=recording.session
            )
        )
        _write_export(path, recording, time_unit, pulses_per_trial)
    sheet = pd.DataFrame(
        {
            "participant_id": [r.participant for r in study],
            "session": [r.session for r in study],
            "group": [r.group for r in study],
            "age_group": [r.age_group for r in study],
        }
    )
    sheet.to_csv(root / "participants.tsv", sep="\t", index=False)
    return study_config(folder, time_unit), study


def study_config(folder="physio", time_unit="s"):
    return {
        "participants": f"{folder}/participants.tsv",
        "study": {
            "title": "A crossover study in physio text files",
            "reference": None,
            "groups": GROUPS,
            "reference_group": "placebo",
            "conditions": CONDITIONS,
            "muscles": list(MUSCLE_COLUMNS),
            "design": "crossover",
            "participant_factor": {"column": "age_group", "levels": ["young", "old"]},
        },
        "channels": MUSCLE_COLUMNS,
        "source": {
            "kind": "local",
            "local_dir": f"{folder}/derivatives",
            "file_pattern": FILE_NAME,
        },
        "recording": {
            "triggers": TRIGGER_COLUMNS,
            "trigger_threshold": 2.5,
            "text": {
                "header": False,
                "time_column": 1,
                "time_unit": time_unit,
                "sampling_rate_hz": FS,
            },
        },
        "preprocess": {
            "band_hz": BAND_HZ,
            "mains_hz": None,
            "baseline_s": list(BASELINE_S),
            "response_s": [0.0, N_BINS * BIN_S],
            "bin_s": BIN_S,
            "value": "log_ratio",
            # No artifacts are written: every trial is kept, so the cells are plain
            # means an independent analysis can recompute.
            "rejection": {"rules": []},
        },
    }


def _write_export(path, recording, time_unit, pulses_per_trial):
    """Headerless, tab-separated, a tab after the last field, CRLF."""
    n = len(next(iter(recording.signals.values())))
    triggers = {column: np.zeros(n) for column in TRIGGER_COLUMNS}
    column_of = {condition: c for c, condition in TRIGGER_COLUMNS.items()}
    for onset, condition in zip(recording.onsets, recording.conditions):
        for pulse in range(pulses_per_trial):
            start = onset + pulse * FS
            triggers[column_of[condition]][start : start + int(PULSE_S * FS)] = 5.0
    time = np.arange(n) / FS / SECONDS_PER_TIME_UNIT[time_unit]
    # As labs round them: 10 ms steps exactly in s, minutes to 6 decimals.
    digits = 2 if time_unit == "s" else 6
    columns = [
        [f"{value:.{digits}f}" for value in time],
        *([f"{v:.4f}" for v in recording.signals[m]] for m in MUSCLE_COLUMNS),
        *([f"{v:g}" for v in triggers[c]] for c in TRIGGER_COLUMNS),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        handle.writelines("\t".join(fields) + "\t\r\n" for fields in zip(*columns))


def expected_cells(study):
    """Band-pass (4th-order Butterworth forwards and backwards), rectify, epoch, bin,
    log ratio to the baseline mean, mean per cell: the cells of every recording."""
    sos = butter(4, BAND_HZ, "bandpass", fs=FS, output="sos")
    start, stop = (int(round(s * FS)) for s in BASELINE_S)
    bin_samples = int(BIN_S * FS)
    rows = []
    for recording in study:
        for muscle, signal in recording.signals.items():
            rectified = np.abs(sosfiltfilt(sos, signal))
            for condition in CONDITIONS:
                values = []
                for onset in recording.onsets[recording.conditions == condition]:
                    base = rectified[onset + start : onset + stop].mean()
                    bins = rectified[onset : onset + N_BINS * bin_samples]
                    ratio = bins.reshape(N_BINS, bin_samples).mean(1) / base
                    values.append(np.log(ratio))
                for k, y in enumerate(np.mean(values, axis=0)):
                    rows.append(
                        {
                            "participant": recording.participant,
                            "group": recording.group,
                            "session": recording.session,
                            "period": recording.period,
                            "sequence": recording.sequence,
                            "age_group": recording.age_group,
                            "muscle": muscle,
                            "condition": condition,
                            "bin": k,
                            "t": (k + 0.5) * BIN_S,
                            "y": y,
                            "n_trials": len(values),
                        }
                    )
    return pd.DataFrame(rows)
