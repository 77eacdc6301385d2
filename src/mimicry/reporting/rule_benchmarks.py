"""Per-rule totals of the benchmark files Snakemake writes for every job.

Each rule's ``benchmark:`` file holds one row per run of its job; with
``--benchmark-extended`` (set in profiles/default, which every run from the project
directory applies, the SLURM profile's too) the row also names the rule, so the files can be grouped by rule whatever their paths.
"""

from pathlib import Path

import pandas as pd

SUMMARY_COLUMNS = ("rule", "jobs", "total_s", "max_s", "max_rss_mb")


def read_benchmarks(directory, exclude=()):
    """Every benchmark row under directory, with its file; rows of rules in exclude
    are dropped (e.g. the summarising rule's own, which describes an earlier run)."""
    frames = []
    for path in sorted(Path(directory).rglob("*.tsv")):
        frame = pd.read_csv(path, sep="\t")
        if "s" not in frame.columns:
            continue  # not a benchmark file, e.g. an earlier summary
        if "rule_name" not in frame.columns:
            raise ValueError(
                f"{path} has no rule_name column: run Snakemake with "
                "--benchmark-extended (profiles/default sets it)"
            )
        frames.append(frame.assign(file=str(path)))
    if not frames:
        raise ValueError(f"no benchmark files under {directory}")
    rows = pd.concat(frames, ignore_index=True)
    return rows[~rows["rule_name"].isin(exclude)]


def summarize(rows):
    """One row per rule: jobs, total and longest wall seconds, largest RSS (MB).

    RSS is "NA" where a job ended before Snakemake could measure it; a rule whose
    jobs all lack it shows 0.
    """
    rows = rows.assign(max_rss=pd.to_numeric(rows["max_rss"], errors="coerce"))
    summary = (
        rows.groupby("rule_name")
        .agg(
            jobs=("file", "nunique"),
            total_s=("s", "sum"),
            max_s=("s", "max"),
            max_rss_mb=("max_rss", "max"),
        )
        .fillna({"max_rss_mb": 0.0})
        .sort_values("total_s", ascending=False)
        .rename_axis("rule")
        .reset_index()
    )
    return summary[list(SUMMARY_COLUMNS)].round({"total_s": 2, "max_s": 2})
