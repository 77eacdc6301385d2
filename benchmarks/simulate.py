"""Benchmark of the simulated study: seconds per participant and the whole study.

Runs the real workflow (default config, 130 participants) in a scratch copy up to the
simulated study (`--until simulate_raw simulation_truth`: the raw files and the truth),
times the whole `snakemake` call, and reads Snakemake's own per-job benchmark files.

    .venv/bin/python benchmarks/simulate.py --cores 2
"""

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

import helpers_path  # noqa: F401 (tests/ on sys.path)
from helpers.devtools import copy_workflow, run_snakemake


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = copy_workflow(Path(scratch) / "workflow")
        started = time.perf_counter()
        run_snakemake(
            workdir,
            *("--cores", str(args.cores), "--quiet"),
            *("--until", "simulate_raw", "simulation_truth"),
        )
        wall = time.perf_counter() - started
        jobs = pd.concat(
            pd.read_csv(path, sep="\t")
            for path in (workdir / "results" / "benchmarks" / "simulate_raw").glob(
                "*.tsv"
            )
        )
    seconds = jobs["s"]
    print(f"simulate_raw jobs: {len(jobs)}")
    print(
        "seconds per participant (whole job, Snakemake benchmark): "
        f"median {seconds.median():.2f}, max {seconds.max():.2f}"
    )
    print(
        f"all {len(jobs)} participants + truth on {args.cores} cores: {wall:.1f} s wall"
    )


if __name__ == "__main__":
    main()
