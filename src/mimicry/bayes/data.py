"""Stan data for the asymptotic regression models, built from the cells table.

The cells table (``results/aggregate/cells.parquet``) has one row per participant x
muscle x condition x time bin. Everything about the study (groups, reference group,
muscles, conditions, bins) comes from that table and the ``study`` config section.

A participant may lack some muscle x condition cells (e.g. a cell excluded for too
few trials): each participant x cell series has its own random asymptote and the
cells share no participant-level parameter, so a missing series only removes its own
likelihood terms (missing at random given the cell). A series that is present must
have every bin: aggregation never produces partial series, and the Stan program
stores the data as a bins x series matrix. A muscle x condition cell (or, for the drug
model, a group x muscle x condition cell) without any data is an error: its
parameters would rest on the prior alone.

In a crossover study (``study.design: crossover``) each participant has one session
per group: the table also has columns session and period, a series is one
participant x session x muscle x condition, and the participant's series of a cell
(one "unit") share a deviation of their asymptotes (see the Stan program). A
participant may lack a session (a recording excluded); a treatment that always comes
in the same period cannot be told from the period and is an error.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

MODELS = ("pooled", "drug")
LIKELIHOODS = ("student_t", "normal")
REQUIRED_COLUMNS = ("participant", "group", "muscle", "condition", "bin", "t", "y")
CROSSOVER_COLUMNS = ("session", "period")
SERIES_KEYS = ["participant", "muscle", "condition"]
CROSSOVER_SERIES_KEYS = ["participant", "session", "muscle", "condition"]


class CellsTableError(ValueError):
    """The cells table cannot be modelled; the message names the rows or keys."""


@dataclass(frozen=True)
class ModelInput:
    """Stan data plus the labels needed to name every dimension of the output.

    ``observations`` and ``series`` list the rows in the order Stan sees them
    (sorted by muscle x condition cell, group, participant, bin). In a crossover
    study ``units`` lists the participant x muscle x condition units in Stan's order,
    ``periods`` the periods and ``study_groups`` every group a series may have (the
    pooled model's ``groups`` hold the reference group only).
    """

    model: str
    likelihood: str
    prior_only: bool
    groups: tuple
    reference_group: str
    muscles: tuple
    conditions: tuple
    participants: tuple
    observations: pd.DataFrame
    series: pd.DataFrame
    data: dict
    crossover: bool = False
    units: pd.DataFrame = None
    periods: tuple = ()
    study_groups: tuple = ()

    @property
    def series_keys(self):
        """What names a series in the output: in a crossover its participant, group
        (the session's treatment), muscle and condition."""
        if self.crossover:
            return ["participant", "group", "muscle", "condition"]
        return SERIES_KEYS

    @property
    def contrast_labels(self):
        """One label per non-reference group, in study.groups order."""
        return [
            f"{group} - {self.reference_group}"
            for group in self.groups
            if group != self.reference_group
        ]

    @property
    def period_labels(self):
        """ "2 - 1", ...: each later period against the first."""
        return [f"{period} - {self.periods[0]}" for period in self.periods[1:]]

    def coords(self):
        """Coordinates of the dimensions Stan's flat outputs are given."""
        coords = {
            "group": list(self.groups),
            "cell": np.arange(len(self.muscles) * len(self.conditions)),
            "contrast": self.contrast_labels,
            "series": np.arange(len(self.series)),
            "obs": np.arange(len(self.observations)),
        }
        if self.crossover:
            coords |= {"period": self.period_labels, "unit": np.arange(len(self.units))}
        return coords

    def dims(self):
        """Dimensions of every Stan variable that has any."""
        by_group_and_cell = ["group", "cell"]
        return {
            "a": by_group_and_cell,
            "log_c": by_group_and_cell,
            "c": by_group_and_cell,
            "b": ["cell"],
            "participant_sd": ["cell"],
            "sigma": ["cell"],
            "rate_sd": ["cell"],
            "participant_a": ["series"],
            "participant_c": ["series"],
            "contrast_a": ["contrast", "cell"],
            "contrast_c": ["contrast", "cell"],
            "y": ["obs"],
        } | (
            {
                "session_sd": ["cell"],
                "period_a": ["period", "cell"],
                "participant_deviation": ["unit"],
            }
            if self.crossover
            else {}
        )


def build_model_input(
    cells,
    study,
    model,
    likelihood="student_t",
    prior_only=False,
    *,
    rate_deviations,
):
    """Check the cells table against the study and build the Stan data.

    ``study`` is the config's study section (groups, reference_group, muscles,
    conditions). ``model`` is "pooled" (one curve per muscle x condition) or "drug"
    (asymptote and rate per group x muscle x condition). ``rate_deviations``
    (models.rate_deviations) gives each participant x cell series its own rate
    around its curve's. ``study["design"] == "crossover"``: the crossover model (see
    the module's docstring).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, not '{model}'")
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, not '{likelihood}'")
    groups, muscles, conditions = (
        tuple(study[key]) for key in ("groups", "muscles", "conditions")
    )
    reference_group = study["reference_group"]
    if reference_group not in groups:
        raise CellsTableError(
            f"reference group '{reference_group}' is not one of study.groups {list(groups)}"
        )
    crossover = study.get("design") == "crossover"
    series_keys = CROSSOVER_SERIES_KEYS if crossover else SERIES_KEYS
    cells = _checked_cells(cells, groups, muscles, conditions, crossover)
    _check_coverage(cells, groups, muscles, conditions, by_group=model == "drug")
    times = _bin_times(cells)
    _check_complete_series(cells, times, series_keys)
    if crossover:
        _check_crossover(cells, groups)

    cells["cell"] = cells["muscle"].map(
        {muscle: index for index, muscle in enumerate(muscles)}
    ) * len(conditions) + cells["condition"].map(
        {condition: index for index, condition in enumerate(conditions)}
    )
    model_groups = groups if model == "drug" else (reference_group,)
    group_number = {group: index + 1 for index, group in enumerate(model_groups)}
    cells["group_number"] = cells["group"].map(group_number) if model == "drug" else 1
    # Series sorted by cell, then group: each group x cell curve is one contiguous block.
    order = ["cell", "group_number", "participant"] + ["session"] * crossover
    observations = cells.sort_values([*order, "bin"], ignore_index=True)
    series = observations.drop_duplicates(order, ignore_index=True)[
        ["participant", "group", "muscle", "condition", "cell", "group_number"]
        + list(CROSSOVER_COLUMNS) * crossover
    ]
    n_cells = len(muscles) * len(conditions)
    # Least-squares fits of every cell, for the sampler's parameterisation only.
    fits = cell_fits(observations["y"], times.to_numpy(), series["cell"].to_numpy())
    data = {
        "n_obs": len(observations),
        "n_series": len(series),
        "n_cells": n_cells,
        "n_groups": len(model_groups),
        "n_bins": len(times),
        "t": times.to_numpy(),
        "series_cell": series["cell"].to_numpy() + 1,
        "series_group": series["group_number"].to_numpy(),
        "y": observations["y"].to_numpy(dtype=float),
        "reference_group": group_number[reference_group],
        "student_t": int(likelihood == "student_t"),
        "prior_only": int(prior_only),
        "rate_deviations": int(rate_deviations),
    }
    sampled_rates = rate_deviations and not prior_only
    data["series_log_rate"], data["series_log_rate_precision"] = (
        series_rate_likelihoods(data["y"], data["t"], series["cell"].to_numpy(), fits)
        if sampled_rates
        else (np.zeros(0), np.zeros(0))
    )
    units = None
    periods = tuple(sorted(cells["period"].unique())) if crossover else (1,)
    if crossover:
        units = series.drop_duplicates(["cell", "participant"], ignore_index=True)[
            ["participant", "muscle", "condition", "cell"]
        ]
        unit_number = {
            key: index + 1
            for index, key in enumerate(zip(units["cell"], units["participant"]))
        }
        series_unit = [
            unit_number[key] for key in zip(series["cell"], series["participant"])
        ]
        period_number = {period: index + 1 for index, period in enumerate(periods)}
        series_period = series["period"].map(period_number).to_numpy()
        units = units.drop(columns="cell")
    else:
        series_unit, series_period = [], []
    data |= {
        "crossover": int(crossover),
        "n_units": 0 if units is None else len(units),
        "series_unit": np.asarray(series_unit, dtype=int),
        "n_periods": len(periods),
        "series_period": np.asarray(series_period, dtype=int),
    }
    data |= parameter_multipliers(data, fits)
    return ModelInput(
        model=model,
        likelihood=likelihood,
        prior_only=prior_only,
        groups=model_groups,
        reference_group=reference_group,
        muscles=muscles,
        conditions=conditions,
        participants=tuple(sorted(series["participant"].unique())),
        observations=observations.drop(columns=["cell", "group_number"]),
        series=series.drop(columns=["cell", "group_number"]),
        data=data,
        crossover=crossover,
        units=units,
        periods=periods if crossover else (),
        study_groups=groups,
    )


# Where rates are looked for when choosing the parameterisation: 0.05/s to 10/s,
# on the log scale (a series' log-rate likelihood is resolved to about 0.03).
RATE_GRID = np.geomspace(0.05, 10.0, 40)
LOG_RATE_GRID = np.linspace(np.log(RATE_GRID[0]), np.log(RATE_GRID[-1]), 161)
# The spread of series log rates assumed for the curves' log c multipliers: the scale
# of rate_sd's prior.
ASSUMED_RATE_SD = 0.5
# Floor of the Stan multipliers, for noiseless or fully determined parameters.
SMALLEST_MULTIPLIER = 1e-4


def series_rate_likelihoods(y, t, series_cell, fits):
    """What each series' own data say about its log rate: the mean and precision of
    its likelihood over LOG_RATE_GRID, given its cell's start and residual sd from
    ``fits`` (cell_fits), with the series' own asymptote fitted at every rate.

    The Stan program samples each series log rate standardised by the conditional
    posterior that this normal approximation and the rate spread imply, so that its
    scale does not change with rate_sd: centred where the data pin the rate down,
    non-centred where they do not, and the form follows rate_sd as the sampler moves
    it (in a funnel no fixed form mixes at both ends). The posterior is the same for
    any values. Precision 0: the data say no more than the grid's flat prior (no
    response, or noise); it is at most that of a likelihood one grid step wide.
    """
    y = np.asarray(y, dtype=float).reshape(len(series_cell), len(t))
    rise = -np.expm1(-np.outer(np.exp(LOG_RATE_GRID), t))
    rise_square = (rise**2).sum(axis=1)
    step = LOG_RATE_GRID[1] - LOG_RATE_GRID[0]
    flat_precision, largest_precision = 1 / LOG_RATE_GRID.var(), 12 / step**2
    estimate, precision = np.zeros(len(series_cell)), np.zeros(len(series_cell))
    for cell, fit in fits.items():
        # The series' response from the cell's shared start, and for each rate its
        # residual sum of squares with the best asymptote.
        response = y[series_cell == cell] - np.median(fit.start)
        cross = response @ rise.T
        residual = (response**2).sum(axis=1, keepdims=True) - cross**2 / rise_square
        with np.errstate(divide="ignore", invalid="ignore"):
            log_likelihood = np.nan_to_num(-residual / (2 * fit.sigma**2), nan=0.0)
        weight = np.exp(log_likelihood - log_likelihood.max(axis=1, keepdims=True))
        weight /= weight.sum(axis=1, keepdims=True)
        mean = weight @ LOG_RATE_GRID
        variance = (weight * (LOG_RATE_GRID - mean[:, None]) ** 2).sum(axis=1)
        with np.errstate(divide="ignore"):
            information = 1 / variance - flat_precision
        estimate[series_cell == cell] = mean
        precision[series_cell == cell] = np.clip(information, 0, largest_precision)
    return estimate, precision


def parameter_multipliers(data, fits):
    """Stan multipliers: each sampled parameter's posterior sd, roughly, from the
    cells' least-squares ``fits`` (cell_fits; ones in prior-only runs, where the
    prior sets the scale).

    The posterior is the same for any values; they only rescale the sampler's
    coordinates. Without them the scales span 0.001 (b) to 0.5, and until warm-up
    has learnt a metric NUTS needs trees of up to 1023 leapfrog steps.
    """
    n_groups, n_cells = data["n_groups"], data["n_cells"]
    series_cell = np.asarray(data["series_cell"]) - 1
    multipliers = {
        "b_multiplier": np.ones(n_cells),
        "a_shift_multiplier": np.ones((n_groups, n_cells)),
        "log_c_multiplier": np.ones((n_groups, n_cells)),
        "log_participant_sd_multiplier": np.ones(n_cells),
        "log_sigma_multiplier": np.ones(n_cells),
        "log_rate_sd_multiplier": np.ones(n_cells if data["rate_deviations"] else 0),
        "log_session_sd_multiplier": np.ones(n_cells if data["crossover"] else 0),
        "period_a_multiplier": np.ones((data["n_periods"] - 1, n_cells)),
    }
    if data["prior_only"]:
        return multipliers
    curve_n_series = np.zeros((n_groups, n_cells))
    np.add.at(curve_n_series, (np.asarray(data["series_group"]) - 1, series_cell), 1)
    for cell, fit in fits.items():
        start_variance = np.linalg.inv(fit.design.T @ fit.design)[1, 1]
        n = len(fit.asymptote)
        # b is shared by the cell's series, a by its curve's.
        multipliers["b_multiplier"][cell] = fit.sigma * np.sqrt(start_variance / n)
        curve_root_n = np.sqrt(np.maximum(curve_n_series[:, cell], 1))
        multipliers["a_shift_multiplier"][:, cell] = fit.asymptote.std() / curve_root_n
        # As if the series' rates spread as much as rate_sd's prior scale.
        multipliers["log_c_multiplier"][:, cell] = ASSUMED_RATE_SD / curve_root_n
        # The sd of the log of an sd estimated with df degrees of freedom is about
        # 1 / sqrt(2 df): the rate sd is taken to be as well determined as the
        # participant sd.
        spread = 1 / np.sqrt(2 * max(n - 1, 1))
        multipliers["log_participant_sd_multiplier"][cell] = spread
        if data["rate_deviations"]:
            multipliers["log_rate_sd_multiplier"][cell] = spread
        if data["crossover"]:
            crossover_multipliers(multipliers, data, cell, fit)
        multipliers["log_sigma_multiplier"][cell] = 1 / np.sqrt(
            2 * n * max(len(data["t"]) - 2, 1)
        )
    return {
        name: np.maximum(value, SMALLEST_MULTIPLIER)
        for name, value in multipliers.items()
    }


def crossover_multipliers(multipliers, data, cell, fit):
    """The crossover's multipliers of one cell, in place: participant_sd's from the
    participants' number, session_sd's from the within-participant degrees of
    freedom, period_a's as for the mean of paired differences of the series'
    least-squares asymptotes."""
    in_cell = np.asarray(data["series_cell"]) - 1 == cell
    unit = np.asarray(data["series_unit"])[in_cell]
    n_units = len(np.unique(unit))
    within_df = max(len(unit) - n_units, 1)
    multipliers["log_participant_sd_multiplier"][cell] = 1 / np.sqrt(
        2 * max(n_units - 1, 1)
    )
    multipliers["log_session_sd_multiplier"][cell] = 1 / np.sqrt(2 * within_df)
    unit_mean = pd.Series(fit.asymptote).groupby(unit).transform("mean").to_numpy()
    within_sd = np.sqrt(((fit.asymptote - unit_mean) ** 2).sum() / within_df)
    multipliers["period_a_multiplier"][:, cell] = within_sd * np.sqrt(2 / n_units)


@dataclass(frozen=True)
class CellFit:
    """Least-squares fits of one cell's series at the cell's best rate on RATE_GRID:
    every series' asymptote and start, the cell's residual sd and the design matrix
    (rise, 1 - rise)."""

    asymptote: np.ndarray
    start: np.ndarray
    sigma: float
    design: np.ndarray


def cell_fits(y, t, series_cell):
    """CellFit of every cell (keyed by its number in ``series_cell``)."""
    y = np.asarray(y, dtype=float).reshape(len(series_cell), len(t))
    fits = {}
    for cell in np.unique(series_cell):
        rows = y[series_cell == cell]
        residuals = [_series_fits(rows, t, rate)[1].sum() for rate in RATE_GRID]
        rate = RATE_GRID[int(np.argmin(residuals))]
        coefficients, residual, design = _series_fits(rows, t, rate)
        fits[cell] = CellFit(
            asymptote=coefficients[0],
            start=coefficients[1],
            sigma=np.sqrt(residual.mean() / (len(t) - 2)),
            design=design,
        )
    return fits


def _series_fits(rows, t, rate):
    """Least-squares (asymptote, start) of every row at one rate (2 x rows), the
    residual sums of squares and the design matrix."""
    rise = -np.expm1(-rate * t)
    design = np.column_stack([rise, 1 - rise])
    coefficients, *_ = np.linalg.lstsq(design, rows.T, rcond=None)
    residual = ((rows.T - design @ coefficients) ** 2).sum(axis=0)
    return coefficients, residual, design


def _checked_cells(cells, groups, muscles, conditions, crossover):
    """A copy of the table with the required columns, clean values and known levels."""
    required = REQUIRED_COLUMNS + CROSSOVER_COLUMNS * crossover
    missing = [column for column in required if column not in cells.columns]
    if missing:
        raise CellsTableError(
            f"cells table lacks columns {missing}"
            + (" (study.design is crossover)" if crossover else "")
        )
    cells = cells[list(required)].copy()
    for column in ("participant", "group", "muscle", "condition") + (
        ("session",) if crossover else ()
    ):
        cells[column] = cells[column].astype(str)
    if crossover:
        cells["period"] = cells["period"].astype(int)
    for column in ("y", "t"):
        bad = cells[~np.isfinite(cells[column].to_numpy(dtype=float))]
        if len(bad):
            raise CellsTableError(
                f"cells table has {len(bad)} rows with a missing or infinite {column}, "
                f"first: {_describe(bad)}"
            )
    cells["bin"] = cells["bin"].astype(int)
    for column, allowed, key in (
        ("group", groups, "study.groups"),
        ("muscle", muscles, "study.muscles"),
        ("condition", conditions, "study.conditions"),
    ):
        unknown = sorted(set(cells[column]) - set(allowed))
        if unknown:
            raise CellsTableError(
                f"cells table {column} values {unknown} are not in {key} {list(allowed)}"
            )
    series_keys = CROSSOVER_SERIES_KEYS if crossover else SERIES_KEYS
    duplicated = cells[cells.duplicated(series_keys + ["bin"], keep=False)]
    if len(duplicated):
        raise CellsTableError(
            f"cells table has {len(duplicated)} rows sharing {', '.join(series_keys)} "
            f"and bin, first: {_describe(duplicated, series_keys)}"
        )
    if crossover:
        return cells
    groups_per_participant = cells.groupby("participant")["group"].nunique()
    ambiguous = groups_per_participant[groups_per_participant > 1].index.tolist()
    if ambiguous:
        raise CellsTableError(f"participants {ambiguous} appear in several groups")
    return cells


def _check_coverage(cells, groups, muscles, conditions, by_group):
    """Every configured group has data, and so has every cell the model estimates."""
    absent_groups = [group for group in groups if group not in set(cells["group"])]
    if absent_groups:
        raise CellsTableError(
            f"study.groups {absent_groups} have no participants in the cells table"
        )
    keys = (["group"] if by_group else []) + ["muscle", "condition"]
    present = set(cells[keys].drop_duplicates().itertuples(index=False, name=None))
    levels = pd.MultiIndex.from_product(
        ([groups] if by_group else []) + [muscles, conditions]
    )
    empty = [cell for cell in levels if cell not in present]
    if empty:
        raise CellsTableError(
            f"no data at all for {' x '.join(keys)} cells {empty}: their parameters "
            "would rest on the prior alone"
        )


def _check_complete_series(cells, times, series_keys):
    """Each series the table includes has every bin."""
    bins_per_series = cells.groupby(series_keys)["bin"].nunique()
    incomplete = bins_per_series[bins_per_series < len(times)]
    if len(incomplete):
        first = ", ".join(
            f"{key}={value}" for key, value in zip(series_keys, incomplete.index[0])
        )
        raise CellsTableError(
            f"{len(incomplete)} {' x '.join(series_keys)} series lack some of "
            f"the {len(times)} bins, first: {first}; include every bin of a series or "
            "drop the series"
        )


def _check_crossover(cells, groups):
    """Each session has one group and one period, a participant has each group and
    each period at most once, and the groups can be told from the periods."""
    sessions = cells.drop_duplicates(["participant", "session", "group", "period"])
    for column in ("group", "period"):
        several = sessions.groupby(["participant", "session"])[column].nunique()
        if (several > 1).any():
            participant, session = several[several > 1].index[0]
            raise CellsTableError(
                f"participant {participant} session {session} has several {column}s "
                "in the cells table; a crossover session has one"
            )
    for column in ("group", "period"):
        repeated = sessions[sessions.duplicated(["participant", column], keep=False)]
        if len(repeated):
            first = repeated.iloc[0]
            same = repeated[repeated["participant"] == first["participant"]]
            raise CellsTableError(
                f"participant {first['participant']} has {column} {first[column]} in "
                f"sessions {sorted(same['session'])}; in a crossover study each "
                f"participant has each {column} once"
            )
    design = np.column_stack(
        [
            (sessions["group"].to_numpy()[:, None] == np.asarray(groups)).astype(float),
            pd.get_dummies(sessions["period"], drop_first=True).to_numpy(float),
        ]
    )
    n_periods = sessions["period"].nunique()
    if np.linalg.matrix_rank(design) < len(groups) + n_periods - 1:
        sequences = sorted(
            sessions.sort_values("period")
            .groupby("participant")["group"]
            .agg("-".join)
            .unique()
        )
        raise CellsTableError(
            f"in the cells table the groups cannot be told from the periods "
            f"(sequences {sequences}): the treatment contrast needs participants in "
            "more than one sequence (counterbalanced order)"
        )


def _bin_times(cells):
    """Time (s) of each bin, indexed by bin number in increasing order."""
    spread = cells.groupby("bin")["t"].agg(["min", "max"])
    inconsistent = spread[~np.isclose(spread["min"], spread["max"])]
    if len(inconsistent):
        raise CellsTableError(
            f"bins {inconsistent.index.tolist()} have different times t in different "
            "rows; every bin needs one time"
        )
    times = spread["min"].sort_index()
    if not times.is_monotonic_increasing:
        raise CellsTableError("bin times t must increase with the bin number")
    return times


def _describe(rows, series_keys=SERIES_KEYS):
    first = rows.iloc[0]
    return ", ".join(f"{key}={first[key]}" for key in series_keys + ["bin"])
