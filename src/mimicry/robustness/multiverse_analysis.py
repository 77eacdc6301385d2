"""One universe's group analysis: its participants' tables aggregated into cells as
the main pipeline aggregates them, and the frequentist mimicry and drug contrasts of
the mixed models (`mimicry.stats.frequentist`), one row per contrast; then their
robustness over the universes. (The drug model per universe:
`mimicry.robustness.multiverse_bayes`.)
"""

import json

import pandas as pd
import pyarrow.parquet as pq

from mimicry.aggregate import aggregate
from mimicry.io.result_files import read_json, read_result
from mimicry.robustness.multiverse import Universe
from mimicry.stats.frequentist import fit_study_mixed_models

CONTRAST_COLUMNS = [
    "universe",
    "muscle",
    "contrast",
    "group",
    "reference_group",
    "conditions",
    "estimate",
    "se",
    "z",
    "ci_low",
    "ci_high",
    "p",
    "converged",
    "n_participants",
    "n_trials",
]


def read_universe(universe_id, table_paths, qc_paths):
    """(trials, qcs) of one universe from every participant's multiverse outputs."""
    trials = pd.concat(
        [
            read_result(path, pq.read_table, filters=[("universe", "=", universe_id)])
            .drop_columns(["universe"])
            .to_pandas()
            for path in table_paths
        ],
        ignore_index=True,
    )
    qcs = {}
    for path in qc_paths:
        qc = read_json(path)[universe_id]
        qcs[qc["participant"]] = qc
    return trials, qcs


def read_universe_job(settings_path, table_paths, qc_paths):
    """(universe, settings, cells) of a per-universe job: its settings file
    (multiverse_settings) and its cells, aggregated from every recording's tables
    as the main pipeline's `aggregate` does, with the recordings' fields (session,
    period, sequence, the sheet's extra columns;
    mimicry.config.sample_sheet.recording_fields)."""
    settings = read_json(settings_path)
    universe = Universe(**settings["universe"])
    trials, qcs = read_universe(universe.id, table_paths, qc_paths)
    cells, _, _ = aggregate(trials, qcs, settings["groups"], fields=settings["fields"])
    return universe, settings, cells


def universe_contrasts(universe, cells, study, random_effects):
    """The universe's mimicry contrast per group and each drug group's against the
    reference group, per muscle: estimate, standard error, z, 95% interval, p, and
    the participants and trials (per muscle, kept and from included participants)
    behind them. The mixed models follow study.design and study.participant_factor
    as the main analysis's do."""
    tables = fit_study_mixed_models(cells, study, random_effects)
    mimicry = tables["mimicry_contrasts"].assign(reference_group=None)
    tables = {"mimicry": mimicry, "drug": tables["drug_contrasts"]}
    rows = pd.concat(
        [
            table.rename(columns={"contrast": "conditions"}).assign(contrast=kind)
            for kind, table in tables.items()
        ],
        ignore_index=True,
    )
    rows = rows.merge(_kept_counts(cells), on="muscle", how="left")
    return with_universe_columns(rows, universe, CONTRAST_COLUMNS)


def with_universe_columns(rows, universe, columns):
    """rows' ``columns`` (``universe`` among them, set to the universe's id), then a
    column per axis holding the universe's value."""
    rows = rows.assign(universe=universe.id)
    for axis, value in universe.choices.items():
        rows[axis] = json.dumps(value) if isinstance(value, list) else value
    return rows[[*columns, *universe.choices]]


def _kept_counts(cells):
    """Per muscle, the participants and trials behind the cells (each cell counts
    the kept trials of an included participant; a trial is kept or rejected for all
    its bins, so the first bin's counts are the trials)."""
    first_bin = cells[cells["bin"] == cells["bin"].min()]
    return (
        first_bin.groupby("muscle")
        .agg(n_participants=("participant", "nunique"), n_trials=("n_trials", "sum"))
        .reset_index()
    )


CONTRAST_KEYS = ["muscle", "contrast", "group"]
# The axis whose values change the response's units (log ratio, uV, z-score): the
# other axes are also compared within each of its values.
UNITS_AXIS = "value"
ALL_UNIVERSES = "all"


def robustness_summary(contrasts, shares, alpha):
    """Per muscle and contrast, over the universes: how many, the share with p <
    alpha, the shares with a positive and a negative estimate, the median and range
    of the estimates, the axis that moves the z statistics most (unit-free, so
    universes on different scales compare) and, when the response's units are an
    axis, the axis that moves the estimates most within each unit; all that in a
    sentence. ``shares``: the contrasts' variance_by_axis."""
    grouped = contrasts.groupby(CONTRAST_KEYS, sort=False)
    summary = grouped.apply(
        lambda rows: pd.Series(
            {
                "universes": len(rows),
                "share_p_below_alpha": (rows["p"] < alpha).mean(),
                "share_positive": (rows["estimate"] > 0).mean(),
                "share_negative": (rows["estimate"] < 0).mean(),
                "median_estimate": rows["estimate"].median(),
                "min_estimate": rows["estimate"].min(),
                "max_estimate": rows["estimate"].max(),
            }
        ),
        include_groups=False,
    ).reset_index()
    summary["universes"] = summary["universes"].astype(int)
    overall = _largest(shares[shares["universes"] == ALL_UNIVERSES], "z_share")
    summary = summary.merge(
        overall.rename(columns={"axis": "main_axis", "z_share": "main_axis_share"})[
            [*CONTRAST_KEYS, "main_axis", "main_axis_share"]
        ],
        on=CONTRAST_KEYS,
    )
    within = _largest(shares[shares["universes"] != ALL_UNIVERSES], "estimate_share")
    # Text row by row: without the units axis, or with it alone, there are no rows.
    within_text = pd.Series(
        [
            f"{row.universes.removeprefix(UNITS_AXIS + '=')} {row.axis} "
            f"({row.estimate_share:.0%})"
            for row in within.itertuples(index=False)
        ],
        index=within.index,
        dtype=object,
    )
    summary = summary.merge(
        within_text.groupby([within[key] for key in CONTRAST_KEYS], sort=False)
        .agg(", ".join)
        .rename("main_axis_within_units")
        .reset_index(),
        on=CONTRAST_KEYS,
        how="left",
    ).fillna({"main_axis_within_units": ""})
    summary["statement"] = [
        _statement(row, alpha) for row in summary.itertuples(index=False)
    ]
    return summary


def _largest(shares, column):
    """Per contrast and set of universes, the row of the axis with the largest share."""
    keys = [*CONTRAST_KEYS, "universes"]
    return shares.loc[shares.groupby(keys, sort=False)[column].idxmax()]


def _statement(row, alpha):
    what = (
        f"{row.muscle}, mimicry in the {row.group} group"
        if row.contrast == "mimicry"
        else f"{row.muscle}, {row.group}'s mimicry minus the reference group's"
    )
    significant = round(row.share_p_below_alpha * row.universes)
    statement = (
        f"{what}: p < {alpha:g} in {significant} of {row.universes} universes; "
        f"estimates from {row.min_estimate:.3g} to {row.max_estimate:.3g} (median "
        f"{row.median_estimate:.3g}), positive in {row.share_positive:.0%}; the axis "
        f"that moves the z statistics most is {row.main_axis} "
        f"({row.main_axis_share:.0%} of their variance)"
    )
    if row.main_axis_within_units:
        statement += (
            f"; within each {UNITS_AXIS}, the axis that moves the estimates most: "
            f"{row.main_axis_within_units}"
        )
    return statement + "."


def variance_by_axis(contrasts, axes):
    """Per muscle, contrast and axis: the share of the variance over the universes
    that the axis's values explain (its between-value sum of squares over the total;
    on a full grid the axes' shares and their interactions add up to 1), of the
    estimates (``estimate_share``) and of their z statistics (``z_share``).

    ``universes`` is "all", or "value=<v>" for the universes with one value of the
    response's units (when ``value`` is an axis), where the other axes' shares of
    the estimates compare on one scale.
    """
    subsets = [(ALL_UNIVERSES, contrasts, axes)]
    if UNITS_AXIS in axes:
        others = [axis for axis in axes if axis != UNITS_AXIS]
        subsets += [
            (f"{UNITS_AXIS}={units}", table, others)
            for units, table in contrasts.groupby(UNITS_AXIS, sort=False)
        ]
    rows = []
    for universes, subset, subset_axes in subsets:
        for keys, table in subset.groupby(CONTRAST_KEYS, sort=False):
            for axis in subset_axes:
                rows.append(
                    {
                        **dict(zip(CONTRAST_KEYS, keys)),
                        "universes": universes,
                        "axis": axis,
                        "estimate_share": _explained_share(table, axis, "estimate"),
                        "z_share": _explained_share(table, axis, "z"),
                    }
                )
    return pd.DataFrame(rows)


def _explained_share(table, axis, column):
    mean = table[column].mean()
    total = ((table[column] - mean) ** 2).sum()
    means = table.groupby(axis)[column].transform("mean")
    between = ((means - mean) ** 2).sum()
    return between / total if total > 0 else 0.0
