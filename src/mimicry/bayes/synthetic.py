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

import numpy as np
import pandas as pd
from mimicry.asymptotic import binned_log_ratio
from mimicry.simulate import plan_participant


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
    study = config["study"]
    edges = np.arange(0.0, config["simulation"]["response_s"] + 1e-9, bin_width_s)
    centres = (edges[:-1] + edges[1:]) / 2
    rng = np.random.default_rng(noise_seed)
    rows = []
    for recording in participants:
        participant_id, group = recording[:2]
        plan = plan_participant(config, *recording)
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
                expected = binned_log_ratio(
                    edges, cell["a"] + trial_deviation, cell["b"], cell["c"]
                )
                rows.append(
                    pd.DataFrame(
                        {
                            "participant": participant_id,
                            "group": group,
                            "muscle": muscle,
                            "condition": condition,
                            "bin": np.arange(len(centres)),
                            "t": centres,
                            "y": expected,
                            "n_trials": n_trials,
                        }
                    )
                )
    cells = pd.concat(rows, ignore_index=True)
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
    recordings = pd.DataFrame(
        [tuple(recording) for recording in recordings],
        columns=["participant", "group", "session", "period"],
    ).astype({"session": str, "period": "int64"})
    by_period = recordings.sort_values(["participant", "period"])
    sequence = by_period.groupby("participant")["group"].agg("-".join)
    recordings["sequence"] = recordings["participant"].map(sequence)
    per_recording = len(cells) // len(recordings)
    added = recordings.loc[recordings.index.repeat(per_recording)].reset_index(
        drop=True
    )
    position = cells.columns.get_loc("group") + 1
    for offset, column in enumerate(["session", "period", "sequence"]):
        cells.insert(position + offset, column, added[column].to_numpy())
    return cells
