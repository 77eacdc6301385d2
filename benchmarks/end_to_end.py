"""End-to-end benchmark of the workflow on the default study, in this project directory.

1. Deletes results/, logs/ and the simulated study (resources/raw/ and
   resources/simulated/), then times `make run` (simulated raw files, preprocessing,
   models, figures and the report) as one process. The environment and the compiled
   Stan program (httpstan's cache) are kept. Refuses to run unless config/config.yaml
   uses the simulated study, so no downloaded or own raw file is ever deleted.
2. Collects every job's benchmark file into results/benchmarks/summary.tsv (rule, jobs,
   total and max seconds, max RSS) and rewrites results/report.html with that table.
3. Times a no-op re-run of `snakemake`.
4. Times a re-run after changing one figure setting (figures.fig2.prior_curves): only
   figure2 may run. The setting is then put back (figure2 runs once more, untimed).
5. Times DAG construction (`snakemake -n`) for a synthetic sample sheet of
   --dag-participants participants in a scratch copy of the workflow.

    .venv/bin/python benchmarks/end_to_end.py --cores 2
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from mimicry.reporting.rule_benchmarks import SUMMARY_COLUMNS
import helpers_path  # noqa: F401 (tests/ on sys.path)
from helpers.devtools import PROJECT_ROOT, copy_workflow, job_counts, seconds_listing
from mimicry.config.validation import load_config
from mimicry.reporting.report import write_report

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
RUN_OUTPUTS = ("results", "logs", "resources/raw", "resources/simulated")
SUMMARY = "results/benchmarks/summary.tsv"


def timed(command, cwd=PROJECT_ROOT):
    """Wall seconds of command as a whole process, and its standard output."""
    started = time.perf_counter()
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return wall, result.stdout + result.stderr


def median_wall(command, repeats, cwd=PROJECT_ROOT):
    walls, outputs = zip(*(timed(command, cwd) for _ in range(repeats)))
    return statistics.median(walls), walls, outputs[-1]


def synthetic_sample_sheet(path, n_participants, groups):
    """Ids sub-001 ... assigned to the groups in turn (the flawed ones stay listed)."""
    ids = [f"sub-{index:03d}" for index in range(1, n_participants + 1)]
    sheet = pd.DataFrame(
        {
            "participant_id": ids,
            "group": [groups[i % len(groups)] for i in range(n_participants)],
        }
    )
    sheet.to_csv(path, sep="\t", index=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="of the short timings")
    parser.add_argument("--dag-participants", type=int, default=1000)
    args = parser.parse_args()
    cores = str(args.cores)
    config = load_config(PROJECT_ROOT / "config" / "config.yaml")
    if config["source"]["kind"] != "simulated":
        sys.exit(
            "config/config.yaml: source.kind is not 'simulated'; this benchmark "
            "deletes resources/raw/ and only runs on the simulated study"
        )

    for output in RUN_OUTPUTS:
        shutil.rmtree(PROJECT_ROOT / output, ignore_errors=True)
    print(f"deleted {', '.join(RUN_OUTPUTS)}; running `make run CORES={cores}`")
    run_wall, _ = timed(["make", "run", f"CORES={cores}"])
    print(f"make run, default study: {run_wall:.1f} s wall")

    timed([SNAKEMAKE, "--cores", cores, SUMMARY])
    write_report("results/report.html", ["all", SUMMARY], cwd=PROJECT_ROOT)
    summary = pd.read_csv(PROJECT_ROOT / SUMMARY, sep="\t")
    print(f"\n{SUMMARY}:\n{summary[list(SUMMARY_COLUMNS)].to_string(index=False)}\n")

    noop, walls, output = median_wall([SNAKEMAKE, "--cores", cores], args.repeats)
    if "Nothing to be done" not in output:
        raise RuntimeError(f"the re-run was not a no-op:\n{output[-3000:]}")
    print(f"no-op re-run: median {noop:.2f} s of {seconds_listing(walls)}")

    default_curves = config["figures"]["fig2"]["prior_curves"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as changed:
        yaml.safe_dump(
            {"figures": {"fig2": {"prior_curves": default_curves // 2}}}, changed
        )
        changed.flush()
        wall, output = timed(
            [SNAKEMAKE, "--cores", cores, "--configfile", changed.name]
        )
    jobs = job_counts(output)
    print(f"re-run after changing figures.fig2.prior_curves: {wall:.2f} s, jobs {jobs}")
    if set(jobs) - {"figure2", "all"}:
        raise RuntimeError(f"more than figure2 re-ran: {jobs}")
    timed([SNAKEMAKE, "--cores", cores])  # back to the configured figure

    with tempfile.TemporaryDirectory() as scratch:
        workdir = copy_workflow(Path(scratch) / "workflow")
        synthetic_sample_sheet(
            workdir / "participants.tsv",
            args.dag_participants,
            config["study"]["groups"],
        )
        dag, walls, output = median_wall(
            [
                SNAKEMAKE,
                "-n",
                "--cores",
                cores,
                "--config",
                "participants=participants.tsv",
            ],
            args.repeats,
            cwd=workdir,
        )
    print(
        f"DAG of {args.dag_participants} participants (`snakemake -n`, "
        f"{sum(job_counts(output).values())} jobs): median {dag:.2f} s of {seconds_listing(walls)}"
    )


if __name__ == "__main__":
    main()
