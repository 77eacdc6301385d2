"""Synthetic cells tables drawn from the simulator's ground truth.

They have the shape of ``results/aggregate/cells.parquet`` without the cost of
synthesising and preprocessing raw recordings, so model tests and benchmarks can run
on a study whose true parameters are known exactly. A crossover study's recordings
(participant, group, session, period) are drawn as the simulator draws them: the
participant's own deviations shared by its sessions, the session's group's drug
effects, simulation.session_deviation and simulation.period_effects
(``mimicry.bayes.synthetic_crossover`` builds studies with other session-level terms
on top of this one).
"""

import copy
import itertools

import numpy as np
import pandas as pd
from mimicry.asymptotic import binned_log_ratio
from mimicry.simulate import plan_participant, treatment_sequences


def balanced_participants(groups, n_participants):
    """Participant ids sub-001... assigned to the groups in turn."""
    return [
        (f"sub-{index + 1:03d}", groups[index % len(groups)])
        for index in range(n_participants)
    ]


def synthetic_cells(
    config,
    participants,
    *,
    bin_width_s=0.5,
    noise_sd=0.03,
    noise_df=None,
    baseline_shift_sd=0.0,
    n_trials=40,
    noise_seed=0,
):
    """One row per participant x muscle x condition x bin, like the aggregated table.

    participants: (id, group) pairs, or a crossover study's recordings as (id,
    group, session, period), one per session; the table then has the aggregated
    crossover table's columns session, period and sequence (the participant's groups
    by period, joined with '-') after group, one row per recording x muscle x
    condition x bin.
    y is the expected binned log ratio under the participant's own cell parameters
    (population values + drug effects + the participant's asymptote deviation + the
    mean of its trials' deviations in that condition, exactly as ``plan_participant``
    draws them) plus residual noise: Gaussian with sd ``noise_sd``, or Student-t with
    ``noise_df`` degrees of freedom scaled by it. ``baseline_shift_sd`` adds one
    Gaussian shift per participant x muscle x condition to every bin, as the error of
    the trials' baselines does to a participant's log ratios.
    """
    edges = np.arange(0.0, config["simulation"]["response_s"] + 1e-9, bin_width_s)
    rng = np.random.default_rng(noise_seed)
    rows = [
        _series_rows(config, tuple(recording), edges, n_trials)
        for recording in participants
    ]
    cells = pd.concat([row for series in rows for row in series], ignore_index=True)
    if any(len(recording) > 2 for recording in participants):
        cells = _with_sessions(cells, participants)
    standard = (
        rng.standard_normal(len(cells))
        if noise_df is None
        else rng.standard_t(noise_df, size=len(cells))
    )
    cells["y"] += noise_sd * standard
    cell_keys = ["participant", "muscle", "condition"]
    cell_index = cells.groupby(cell_keys, sort=False).ngroup().to_numpy()
    shifts = rng.normal(0.0, baseline_shift_sd, size=cell_index.max() + 1)
    cells["y"] += shifts[cell_index]
    return cells


def _with_sessions(cells, recordings):
    """cells (rows in the recordings' order) with each recording's session, period
    and sequence after the group column."""
    recordings = [tuple(recording) for recording in recordings]
    sequences = treatment_sequences(recordings)
    recordings = pd.DataFrame(
        recordings, columns=["participant", "group", "session", "period"]
    ).astype({"session": str, "period": "int64"})
    recordings["sequence"] = recordings["participant"].map(sequences)
    per_recording = len(cells) // len(recordings)
    added = recordings.loc[recordings.index.repeat(per_recording)].reset_index(
        drop=True
    )
    position = cells.columns.get_loc("group") + 1
    for offset, column in enumerate(["session", "period", "sequence"]):
        cells.insert(position + offset, column, added[column].to_numpy())
    return cells


def _series_rows(config, recording, edges, n_trials, shifts=None):
    """The expected y of each muscle x condition series of a recording, (participant
    id, group) or (participant id, group, session, period): the simulator's plan of
    it, with the asymptote moved by ``shifts[(muscle, condition)]`` where given; one
    table per series."""
    study = config["study"]
    centres = (edges[:-1] + edges[1:]) / 2
    participant_id, group = recording[:2]
    plan = plan_participant(config, *recording)
    tables = []
    for muscle in study["muscles"]:
        for condition in study["conditions"]:
            cell = plan.cell_parameters[muscle][condition]
            trial_deviation = np.mean(
                [
                    trial.asymptote_deviation[muscle]
                    for trial in plan.trials
                    if trial.condition == condition
                ]
            )
            asymptote = cell["a"] + trial_deviation
            if shifts is not None:
                asymptote += shifts[(muscle, condition)]
            tables.append(
                pd.DataFrame(
                    {
                        "participant": participant_id,
                        "group": group,
                        "muscle": muscle,
                        "condition": condition,
                        "bin": np.arange(len(centres)),
                        "t": centres,
                        "y": binned_log_ratio(edges, asymptote, cell["b"], cell["c"]),
                        "n_trials": n_trials,
                    }
                )
            )
    return tables


def counterbalanced_sequences(groups, n_participants):
    """Participant ids sub-001... with their groups by period: the orders of the
    groups in turn (every permutation, each used equally often when n_participants
    is a multiple of their number)."""
    orders = list(itertools.permutations(groups))
    return [
        (f"sub-{index + 1:03d}", list(orders[index % len(orders)]))
        for index in range(n_participants)
    ]


def synthetic_crossover_cells(
    config,
    participants,
    *,
    session_sd,
    period_shift=None,
    bin_width_s=0.5,
    noise_sd=0.03,
    n_trials=40,
    noise_seed=0,
):
    """A crossover study's cells table: one row per participant x session x muscle x
    condition x bin, with columns session, period and sequence.

    ``participants``: (participant id, groups by period) pairs (see
    counterbalanced_sequences); session k is period k. A session's series are what
    synthetic_cells gives the participant in that session's group (the simulator's
    participant plan, whose deviations depend on the participant id only and so are
    the same in every session, while drug effects follow the group), with the
    asymptote moved by a normal(0, ``session_sd``) draw per series and by
    ``period_shift[(muscle, condition)]`` x (period - 1) (0 where absent), plus
    Gaussian noise of sd ``noise_sd``.
    """
    study = config["study"]
    period_shift = period_shift or {}
    edges = np.arange(0.0, config["simulation"]["response_s"] + 1e-9, bin_width_s)
    rng = np.random.default_rng(noise_seed)
    tables = []
    for participant_id, sequence in participants:
        for period, group in enumerate(sequence, 1):
            shifts = {
                (muscle, condition): rng.normal(0.0, session_sd)
                + period_shift.get((muscle, condition), 0.0) * (period - 1)
                for muscle in study["muscles"]
                for condition in study["conditions"]
            }
            tables += [
                table.assign(
                    session=str(period), period=period, sequence="-".join(sequence)
                )
                for table in _series_rows(
                    config, (participant_id, group), edges, n_trials, shifts
                )
            ]
    cells = pd.concat(tables, ignore_index=True)
    cells["y"] += noise_sd * rng.standard_normal(len(cells))
    return cells


def crossover_study_config(config, groups=("placebo", "naltrexone")):
    """config (a deep copy) as a crossover study of ``groups`` (the first the
    reference) with conditions Angry, Happy and Neutral, as in the fmov study: Happy
    and Angry take the simulation cells of AngryToHappy and HappyToAngry, Neutral
    has no response (a = 0, the rate of the Angry cell)."""
    config = copy.deepcopy(config)
    conditions = {"Angry": "HappyToAngry", "Happy": "AngryToHappy"}
    config["study"] |= {
        "groups": list(groups),
        "reference_group": groups[0],
        "conditions": ["Angry", "Happy", "Neutral"],
        "design": "crossover",
    }
    cells = config["simulation"]["cells"]
    config["simulation"]["cells"] = {
        muscle: {
            **{new: dict(cells[muscle][old]) for new, old in conditions.items()},
            "Neutral": {**cells[muscle]["HappyToAngry"], "a": 0.0},
        }
        for muscle in config["study"]["muscles"]
    }
    return config
