"""One universe's group analysis: its participants' tables aggregated into cells as
the main pipeline aggregates them, and the frequentist mimicry and drug contrasts of
the mixed models (`mimicry.frequentist`), one row per contrast."""

import json

import pandas as pd
import pyarrow.parquet as pq

from mimicry.aggregate import aggregate
from mimicry.frequentist import fit_mixed_models
from mimicry.study import mimicry_contrast

CONTRAST_COLUMNS = [
    "universe",
    "muscle",
    "contrast",
    "group",
    "reference_group",
    "conditions",
    "estimate",
    "ci_low",
    "ci_high",
    "p",
    "n_participants",
    "n_trials",
]


def read_universe(universe_id, table_paths, qc_paths):
    """(trials, qcs) of one universe from every participant's multiverse outputs."""
    trials = pd.concat(
        [
            pq.read_table(path, filters=[("universe", "=", universe_id)])
            .drop_columns(["universe"])
            .to_pandas()
            for path in table_paths
        ],
        ignore_index=True,
    )
    qcs = {}
    for path in qc_paths:
        with open(path) as handle:
            qc = json.load(handle)[universe_id]
        qcs[qc["participant"]] = qc
    return trials, qcs


def universe_contrasts(universe, trials, qcs, groups, study, random_effects):
    """The universe's mimicry contrast per group and each drug group's against the
    reference group, per muscle: estimate, 95% interval, p, and the participants and
    trials (per muscle, kept and from included participants) behind them."""
    cells, _, _ = aggregate(trials, qcs, groups)
    tables = fit_mixed_models(
        cells,
        groups=study["groups"],
        reference_group=study["reference_group"],
        conditions=study["conditions"],
        random_effects=random_effects,
        mimicry_contrast=mimicry_contrast(study),
    )
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
    rows["universe"] = universe.id
    for axis, value in universe.choices.items():
        rows[axis] = json.dumps(value) if isinstance(value, list) else value
    return rows[[*CONTRAST_COLUMNS, *universe.choices]]


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


def robustness_summary(contrasts, axes, alpha):
    """Per muscle and contrast, over the universes: how many, the share with p <
    alpha, the shares with a positive and a negative estimate, the median and range
    of the estimates, the axis that moves them most, and all that in a sentence."""
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
    shares = variance_by_axis(contrasts, axes)
    largest = shares.loc[
        shares.groupby(CONTRAST_KEYS, sort=False)["variance_share"].idxmax()
    ]
    summary = summary.merge(
        largest.rename(
            columns={"axis": "main_axis", "variance_share": "main_axis_share"}
        ),
        on=CONTRAST_KEYS,
    )
    summary["statement"] = [
        _statement(row, alpha) for row in summary.itertuples(index=False)
    ]
    return summary


def _statement(row, alpha):
    what = (
        f"{row.muscle}, mimicry in the {row.group} group"
        if row.contrast == "mimicry"
        else f"{row.muscle}, {row.group}'s mimicry minus the reference group's"
    )
    significant = round(row.share_p_below_alpha * row.universes)
    return (
        f"{what}: p < {alpha:g} in {significant} of {row.universes} universes; "
        f"estimates from {row.min_estimate:.3g} to {row.max_estimate:.3g} (median "
        f"{row.median_estimate:.3g}), positive in {row.share_positive:.0%}; the axis "
        f"that moves them most is {row.main_axis} ({row.main_axis_share:.0%} of their "
        "variance)."
    )


def variance_by_axis(contrasts, axes):
    """Per muscle, contrast and axis: the share of the estimates' variance over the
    universes that the axis's values explain (its between-value sum of squares over
    the total; on a full grid the axes' shares and their interactions add up to 1)."""
    rows = []
    for keys, table in contrasts.groupby(CONTRAST_KEYS, sort=False):
        total = ((table["estimate"] - table["estimate"].mean()) ** 2).sum()
        for axis in axes:
            means = table.groupby(axis)["estimate"].transform("mean")
            between = ((means - table["estimate"].mean()) ** 2).sum()
            rows.append(
                {
                    **dict(zip(CONTRAST_KEYS, keys)),
                    "axis": axis,
                    "variance_share": between / total if total > 0 else 0.0,
                }
            )
    return pd.DataFrame(rows)
