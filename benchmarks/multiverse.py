"""Cost of the multiverse against the single pipeline, on the default study.

In a scratch copy of the workflow, with the default multiverse grid (config
multiverse.axes) switched on, after simulating the raw files (untimed), times as
whole Snakemake runs on --cores:

1. the single pipeline's preprocessing: every participant's `preprocess` job;
2. the multiverse's preprocessing: every participant's `multiverse_preprocess` job,
   which computes every universe;
3. the rest of the multiverse: `multiverse_settings` and `multiverse_universe` per
   universe (aggregation and mixed-model contrasts), the tables and the figures.

Prints the wall times, the ratio of 2 to 1 (target <= 3) and each rule's jobs and
median job seconds from their benchmark files.

    .venv/bin/python benchmarks/multiverse.py --cores 2
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from mimicry.robustness import multiverse
import helpers_path  # noqa: F401 (tests/ on sys.path)
from helpers.devtools import PROJECT_ROOT, copy_workflow, run_snakemake
from mimicry.config.sample_sheet import read_sample_sheet
from mimicry.config.validation import load_config

RULE_BENCHMARKS = {
    "preprocess": "results/benchmarks/preprocess",
    "multiverse_preprocess": "results/benchmarks/multiverse/preprocess",
    "multiverse_universe": "results/benchmarks/multiverse/universes",
}


def timed_run(workdir, cores, targets):
    started = time.perf_counter()
    # --notemp: the raw files stay for the next run.
    run_snakemake(
        workdir, *targets, "--cores", str(cores), "--notemp", "--configfile", "on.yaml"
    )
    return time.perf_counter() - started


def job_seconds(workdir, rule):
    seconds = [
        float(pd.read_csv(path, sep="\t")["s"].iloc[0])
        for path in (workdir / RULE_BENCHMARKS[rule]).glob("*.tsv")
    ]
    return len(seconds), statistics.median(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    cores = parser.parse_args().cores
    config = load_config(PROJECT_ROOT / "config" / "config.yaml")
    config["multiverse"]["enabled"] = True
    universes = multiverse.universes(config)
    participants = read_sample_sheet(PROJECT_ROOT / config["participants"])[
        "participant_id"
    ]
    with tempfile.TemporaryDirectory(prefix="multiverse-benchmark-") as scratch:
        workdir = copy_workflow(Path(scratch) / "workflow")
        (workdir / "on.yaml").write_text(
            yaml.safe_dump({"multiverse": {"enabled": True}})
        )
        run_snakemake(
            workdir,
            "--cores",
            str(cores),
            "--until",
            "simulate_raw",
            "--configfile",
            "on.yaml",
        )
        single = timed_run(
            workdir, cores, [f"results/preprocessed/{p}.parquet" for p in participants]
        )
        every = timed_run(
            workdir,
            cores,
            [f"results/multiverse/preprocessed/{p}.parquet" for p in participants],
        )
        rest = timed_run(workdir, cores, ["results/multiverse/contrasts.tsv"])
        print(
            f"default study, {len(participants)} participants, {len(universes)} "
            f"universes, {cores} cores (Snakemake wall time)"
        )
        print(f"single pipeline, preprocess: {single:.1f} s")
        print(f"every universe, multiverse_preprocess: {every:.1f} s")
        print(f"ratio: {every / single:.2f} (target <= 3)")
        print(f"per-universe analysis and tables: {rest:.1f} s")
        for rule in RULE_BENCHMARKS:
            jobs, median = job_seconds(workdir, rule)
            print(f"{rule}: {jobs} jobs, median {median:.2f} s a job")


if __name__ == "__main__":
    main()
