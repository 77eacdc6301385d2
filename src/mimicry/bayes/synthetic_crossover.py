"""Synthetic cells tables of a crossover study, drawn from the simulator's ground truth.

Each participant is recorded once under every group, one session per period, in a
counterbalanced order. A participant's own deviations (response type, asymptotes,
rates, and the means of its trials' deviations) are drawn once by ``plan_participant``
and shared by its sessions, as a person's stable response is; the group's drug effects
apply in the session under that group, so they are within participants. Each session
draws its own noise and baseline shifts, and may add a shift common to all of its
cells (``session_shift_sd``) and a period effect.
"""

import numpy as np
import pandas as pd

from mimicry.asymptotic import binned_log_ratio
from mimicry.bayes.synthetic import synthetic_cells
from mimicry.simulate import plan_participant


def crossover_cells(
    config,
    sequences,
    *,
    period_effects=None,
    session_shift_sd=0.0,
    noise_seed=0,
    **cells_arguments,
):
    """One row per participant x session x muscle x condition x bin, with the cells
    table's crossover columns session (the period as text), period and sequence.

    sequences: (participant id, its groups by period), e.g. counterbalanced_sequences.
    period_effects: a shift of every cell in each period (None: none).
    session_shift_sd: the sd of one Gaussian shift per participant x session x muscle
        added to every cell of that session (a session-level change of the whole
        response, common to the conditions).
    cells_arguments: synthetic_cells' keyword arguments (bin_width_s, noise_sd,
        baseline_shift_sd, ...); each period draws its noise with its own seed.
    """
    n_periods = len(sequences[0][1])
    period_effects = [0.0] * n_periods if period_effects is None else period_effects
    rng = np.random.default_rng([noise_seed, n_periods])
    sessions = []
    for period in range(1, n_periods + 1):
        cells = synthetic_cells(
            config,
            [(participant, groups[period - 1]) for participant, groups in sequences],
            noise_seed=[noise_seed, period],
            **cells_arguments,
        )
        sequence = {participant: "-".join(groups) for participant, groups in sequences}
        cells["y"] += period_effects[period - 1]
        shift_keys = cells.groupby(["participant", "muscle"], sort=False).ngroup()
        shifts = rng.normal(0.0, session_shift_sd, size=shift_keys.max() + 1)
        cells["y"] += shifts[shift_keys.to_numpy()]
        sessions.append(
            cells.assign(
                session=str(period),
                period=period,
                sequence=cells["participant"].map(sequence),
            )
        )
    return pd.concat(sessions, ignore_index=True)


def population_mimicry(config, group, bin_width_s=0.5, n_participants=2000):
    """Time-averaged first-minus-second condition difference per muscle under a
    group, averaged over the population's participants (their response types,
    asymptotes and rates): the mean over this many plans of participants not in any
    synthetic study. A within-participant drug contrast's truth is the difference
    of two groups' values, as each participant's own deviations are the same under
    both."""
    conditions = config["study"]["conditions"][:2]
    edges = np.arange(0.0, config["simulation"]["response_s"] + 1e-9, bin_width_s)
    differences = {muscle: [] for muscle in config["study"]["muscles"]}
    for index in range(n_participants):
        plan = plan_participant(config, f"population-{index:05d}", group)
        for muscle, values in differences.items():
            first, second = (
                binned_log_ratio(edges, **plan.cell_parameters[muscle][condition])
                for condition in conditions
            )
            values.append(first.mean() - second.mean())
    return {muscle: float(np.mean(values)) for muscle, values in differences.items()}
