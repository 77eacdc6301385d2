"""Group aggregation: per-participant tables into the cells the models read, plus QC."""

import json

import pandas as pd

CELL_KEYS = ["participant", "group", "muscle", "condition", "bin", "t"]
QC_COLUMNS = ["participant", "group", "kind", "muscle", "condition", "reason", "count"]


def read_participant_outputs(table_paths, qc_paths):
    """The preprocessing outputs of every participant: one trial table, QC by id."""
    trials = pd.concat(
        [pd.read_parquet(path) for path in table_paths], ignore_index=True
    )
    qcs = {}
    for path in qc_paths:
        with open(path) as handle:
            qc = json.load(handle)
        qcs[qc["participant"]] = qc
    return trials, qcs


def aggregate(trials, qcs, groups, missing=()):
    """Cells, the trial table with groups, and every exclusion with its reason.

    trials: the per-participant preprocessing tables, concatenated.
    qcs: participant -> its QC record (``excluded``, ``exclusion_reasons``).
    groups: participant -> drug group. missing: participants skipped for lack of a raw file.
    """
    trials = trials.assign(group=trials["participant"].map(groups))
    unknown = sorted(trials.loc[trials["group"].isna(), "participant"].unique())
    if unknown:
        raise ValueError(
            f"participants {unknown} have results but no sample-sheet group"
        )
    excluded = sorted(p for p, qc in qcs.items() if qc["excluded"])
    usable = ~trials["rejected"] & ~trials["participant"].isin(excluded)
    cells = (
        trials[usable]
        .groupby(CELL_KEYS, observed=True, sort=True)["value"]
        .agg(y="mean", n_trials="count")
        .reset_index()
    )
    trials = trials.sort_values(["participant", "trial", "muscle", "bin"])
    qc_table = pd.concat(
        [
            _rejected_trials(trials),
            _excluded_participants(qcs, excluded, groups),
            _missing_participants(missing, groups),
        ],
        ignore_index=True,
    )
    return cells, trials.reset_index(drop=True), qc_table


def _rejected_trials(trials):
    first_bins = trials[trials["rejected"] & (trials["bin"] == trials["bin"].min())]
    counts = (
        first_bins.groupby(["participant", "group", "muscle", "condition", "reason"])
        .size()
        .rename("count")
        .reset_index()
    )
    return counts.assign(kind="trial_rejected")[QC_COLUMNS]


def _excluded_participants(qcs, excluded, groups):
    rows = [
        {
            "participant": p,
            "group": groups[p],
            "kind": "participant_excluded",
            "reason": r,
        }
        for p in excluded
        for r in qcs[p]["exclusion_reasons"]
    ]
    return pd.DataFrame(rows, columns=QC_COLUMNS)


def _missing_participants(missing, groups):
    rows = [
        {
            "participant": p,
            "group": groups[p],
            "kind": "raw_missing",
            "reason": "no raw file",
        }
        for p in missing
    ]
    return pd.DataFrame(rows, columns=QC_COLUMNS)


def write_outputs(cells, trials, qc_table, cells_path, trials_path, qc_path):
    cells.to_parquet(cells_path, index=False)
    trials.to_parquet(trials_path, index=False)
    qc_table.to_csv(qc_path, sep="\t", index=False)
