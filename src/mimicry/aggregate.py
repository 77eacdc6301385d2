"""Group aggregation: per-participant tables into the cells the models read, plus QC."""

import logging

import pandas as pd

from mimicry.io.result_files import read_json, read_parquet

log = logging.getLogger(__name__)

CELL_KEYS = ["participant", "group", "muscle", "condition", "bin", "t"]
QC_COLUMNS = ["participant", "group", "kind", "muscle", "condition", "reason", "count"]
# Participants listed by name in an error; the rest are counted.
LISTED_PARTICIPANTS = 10


class AggregationError(ValueError):
    """The participants' results cannot make a group analysis; the message says why."""


def read_participant_outputs(table_paths, qc_paths):
    """The preprocessing outputs of every participant: one trial table, QC by id."""
    if not table_paths:
        raise AggregationError(
            "no participant has preprocessing results to aggregate: none of the sample "
            "sheet's participants has a raw file (source.missing_raw: skip)"
        )
    trials = pd.concat([read_parquet(path) for path in table_paths], ignore_index=True)
    qcs = {}
    for path in qc_paths:
        qc = read_json(path)
        qcs[qc["participant"]] = qc
    return trials, qcs


def aggregate(trials, qcs, groups, missing=(), warn_excluded_share=1.0, fields=None):
    """Cells, the trial table with groups, and every exclusion with its reason.

    trials: the per-participant preprocessing tables, concatenated.
    qcs: participant -> its QC record (``excluded``, ``exclusion_reasons``,
    ``trials_per_condition`` over the configured conditions, ``warnings``).
    groups: recording -> drug group. missing: recordings skipped for lack of a raw file.
    fields: what each recording adds to the cells and trials (column -> recording ->
    value; mimicry.config.sample_sheet.recording_fields), its participant_id
    replacing the recording id in their participant column; the QC table names
    recordings.
    The QC table holds every rejection, exclusion and warning: each participant's
    (a rule rejecting too many of its trials) and the study's (more than
    warn_excluded_share of the participants excluded; also logged).
    A configured condition that no recording contains, and a study without one usable
    participant, raise AggregationError saying what the recordings held instead.
    """
    trials = trials.assign(group=trials["participant"].map(groups))
    unknown = sorted(trials.loc[trials["group"].isna(), "participant"].unique())
    if unknown:
        raise ValueError(
            f"participants {unknown} have results but no sample-sheet group"
        )
    _check_conditions_found(qcs)
    excluded = sorted(p for p, qc in qcs.items() if qc["excluded"])
    _check_usable_participants(qcs, excluded, missing)
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
            _dropped_trigger_pulses(qcs, groups),
            _missing_participants(missing, groups),
            _participant_warnings(qcs, groups),
            _exclusion_share_warning(qcs, excluded, warn_excluded_share),
        ],
        ignore_index=True,
    )
    cells, trials = (with_recording_fields(t, fields) for t in (cells, trials))
    return cells, trials.reset_index(drop=True), qc_table


def with_recording_fields(table, fields):
    """table (its participant column holding recording ids) with each recording's
    fields after its group column, participant_id as its participant; re-sorted by
    participant and period when one participant has several recordings."""
    if not fields:
        return table
    recordings = table["participant"]
    added = [column for column in fields if column != "participant_id"]
    position = table.columns.get_loc("group") + 1
    table = table.copy()
    for offset, column in enumerate(added):
        table.insert(position + offset, column, recordings.map(fields[column]))
    if "participant_id" not in fields:
        return table
    table["participant"] = recordings.map(fields["participant_id"])
    keys = [key for key in table.columns if key in SORT_KEYS]
    return table.sort_values(
        sorted(keys, key=SORT_KEYS.index), kind="stable", ignore_index=True
    )


# The order of the cells and trials of a study with sessions.
SORT_KEYS = ["participant", "period", "session", "trial", "muscle", "condition", "bin"]


def qc_warnings(qc_table):
    """The QC table's warnings, study-wide first."""
    warnings = qc_table[qc_table["kind"] == "warning"]
    study_wide = warnings["participant"].isna() | (warnings["participant"] == "")
    return pd.concat([warnings[study_wide], warnings[~study_wide]], ignore_index=True)


def _check_conditions_found(qcs):
    """Every configured condition (the QC's trials_per_condition) in some recording."""
    totals = {}
    for qc in qcs.values():
        for condition, count in qc["trials_per_condition"].items():
            totals[condition] = totals.get(condition, 0) + count
    absent = [condition for condition, count in totals.items() if count == 0]
    # Without a single trial the recordings' own exclusions say why.
    if not absent or len(absent) == len(totals):
        return
    found = ", ".join(
        f"{condition} ({count} trials)" for condition, count in totals.items() if count
    )
    raise AggregationError(
        f"config key study.conditions lists {_quoted(absent)}, which none of the "
        f"{len(qcs)} recordings contains; they have {found or 'no trials at all'}. "
        "Remove it from study.conditions, or map the recordings' event labels to it "
        "with recording.event_labels"
    )


def _check_usable_participants(qcs, excluded, missing):
    if len(excluded) < len(qcs):
        return
    by_reason = _participants_per_reason(qcs, excluded)
    listed = "; ".join(
        f"{p}: {qcs[p]['exclusion_reasons'][0]}" for p in excluded[:LISTED_PARTICIPANTS]
    )
    more = len(excluded) - LISTED_PARTICIPANTS
    listed += f"; and {more} more (results/qc/<participant>.json)" if more > 0 else ""
    without_raw = (
        f"; {len(missing)} without a raw file ({', '.join(missing)})" if missing else ""
    )
    raise AggregationError(
        f"no usable participant: all {len(excluded)} with results are excluded "
        f"(participants per reason: {by_reason}){without_raw}. "
        f"First reason per participant: {listed}. See preprocess.min_kept_share, "
        "preprocess.min_kept_trials and preprocess.rejection"
        + (
            "; for recordings without usable stimulus events (no_events), "
            "recording.triggers, recording.trigger_threshold or recording.event_labels"
            if "no_events" in by_reason
            else ""
        )
    )


def _participants_per_reason(qcs, excluded):
    """ "kind: count, ..." of the excluded participants per exclusion kind."""
    reasons = {}
    for participant in excluded:
        for kind in {r.split(":")[0] for r in qcs[participant]["exclusion_reasons"]}:
            reasons[kind] = reasons.get(kind, 0) + 1
    return ", ".join(f"{kind}: {count}" for kind, count in sorted(reasons.items()))


def _quoted(names):
    return ", ".join(f"'{name}'" for name in names)


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


def _dropped_trigger_pulses(qcs, groups):
    rows = [
        {
            "participant": p,
            "group": groups[p],
            "kind": "trigger_pulse_dropped",
            "reason": f"{pulse['trigger']} at {pulse['time_s']:g} s {pulse['problem']}",
            "count": 1,
        }
        for p, qc in sorted(qcs.items())
        for pulse in qc["dropped_trigger_pulses"]
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


def _participant_warnings(qcs, groups):
    # A multiverse universe's QC (preprocess.UNIVERSE_QC_KEYS) carries no warnings.
    rows = [
        {
            "participant": p,
            "group": groups[p],
            "kind": "warning",
            "muscle": warning["muscle"],
            "reason": warning["message"],
            "count": warning["rejected"],
        }
        for p, qc in sorted(qcs.items())
        for warning in qc.get("warnings", [])
    ]
    return pd.DataFrame(rows, columns=QC_COLUMNS)


def _exclusion_share_warning(qcs, excluded, most):
    """The study-wide warning when more than `most` of the participants are excluded
    (logged too), as QC rows."""
    if len(excluded) <= most * len(qcs):
        return pd.DataFrame(columns=QC_COLUMNS)
    by_reason = _participants_per_reason(qcs, excluded)
    message = (
        f"{len(excluded)} of {len(qcs)} participants excluded "
        f"({len(excluded) / len(qcs):.0%}), more than "
        f"preprocess.warn_excluded_share {most:.0%} (participants per reason: "
        f"{by_reason}); on real recordings that is more often a setting's fault than "
        "the data's: see preprocess.rejection, preprocess.min_kept_share and "
        "preprocess.min_kept_trials"
    )
    log.warning(message)
    row = {"participant": "", "group": "", "kind": "warning", "reason": message}
    return pd.DataFrame([row], columns=QC_COLUMNS).assign(count=len(excluded))
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
