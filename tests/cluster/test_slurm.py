"""A small study through SLURM (profiles/slurm) gives the same bytes as a local run.

Starts a private single-node SLURM cluster (tests/helpers/slurm_cluster.py), runs the whole
DAG of the quick study cut to 8 participants (its two flawed ones among them) with short
chains (the same rules, fewer jobs per rule) with `snakemake --executor slurm --profile
profiles/slurm` in one scratch copy of the workflow and locally (profiles/default) in
another, then checks that

- the SLURM run succeeded, and every job of the DAG went through SLURM: sacct lists one
  COMPLETED allocation per submitted job, named with the run's id, and the rules in the
  jobs' comments are exactly the rules the local run executed;
- threads and resources from the profile reached sbatch: fit_model ran with one CPU per
  chain (4, capped by --max-threads to this node's CPUs) and 8000 MB;
- every file under results/ and resources/ (except results/benchmarks/, which are timings)
  has the same sha256 in both copies, and both copies hold the same files.

Runs only with MIMICRY_CLUSTER_TESTS=1 (see conftest.py), as root: `make test-cluster`.
"""

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers.devtools import copy_workflow, run_snakemake
from helpers.slurm_cluster import SlurmCluster

pytestmark = [pytest.mark.cluster, pytest.mark.workflow]

# The quick study's rules and flawed participants, with fewer participants (two per
# group left after the exclusions) and four short chains: this checks where jobs run
# and what they write, not posteriors, so the diagnostics gate only warns. Four chains
# keep fit_model asking for 4 CPUs.
SAMPLE_SHEET = {
    "placebo": ["sub-001", "sub-004"],
    "naltrexone": ["sub-002", "sub-005", "sub-011"],
    "amisulpride": ["sub-003", "sub-006", "sub-012"],
}
SMALL_STUDY = {
    "participants": "cluster-participants.tsv",
    "stan": {"chains": 4, "warmup": 150, "draws": 150, "prior_draws": 50},
    "models": {"diagnostics": {"mode": "warn"}},
}
CONFIG = ("--configfile", "config/quick.yaml", "cluster.yaml")
COMPARED_DIRS = ("results", "resources")
EXCLUDED = (Path("results") / "benchmarks",)
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the private SLURM cluster needs root")
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    with cluster:
        yield cluster
    assert cluster.daemons_alive() == [], "a cluster daemon outlived the test"


def manifest(workdir):
    digests = {}
    for top in COMPARED_DIRS:
        for path in sorted((workdir / top).rglob("*")):
            relative = path.relative_to(workdir)
            if path.is_file() and not any(relative.is_relative_to(e) for e in EXCLUDED):
                digests[str(relative)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def rules_run(snakemake_output):
    """Rule names of the jobs a run executed, from its log (rule all excluded)."""
    return set(re.findall(r"^(?:local)?rule (\w+):$", snakemake_output, re.M)) - {"all"}


def small_study_copy(destination):
    workdir = copy_workflow(destination)
    rows = [(p, group) for group, ids in SAMPLE_SHEET.items() for p in ids]
    (workdir / SMALL_STUDY["participants"]).write_text(
        "participant_id\tgroup\n" + "".join(f"{p}\t{g}\n" for p, g in sorted(rows))
    )
    (workdir / "cluster.yaml").write_text(yaml.safe_dump(SMALL_STUDY))
    return workdir


def test_small_study_on_slurm_matches_a_local_run(slurm_cluster, tmp_path):
    local = small_study_copy(tmp_path / "local")
    local_run = run_snakemake(local, "--cores", "2", *CONFIG)
    local_rules = rules_run(local_run.stdout + local_run.stderr)
    assert {"simulate_raw", "preprocess", "aggregate", "fit_model"} <= local_rules

    on_slurm = small_study_copy(tmp_path / "slurm")
    started = time.monotonic()
    result = subprocess.run(
        [
            str(SNAKEMAKE),
            "--executor",
            "slurm",
            "--profile",
            "profiles/slurm",
            *CONFIG,
            # fit_model and prior_predictive ask for 4 CPUs; this node may have fewer.
            "--max-threads",
            str(slurm_cluster.layout["CPUs"]),
            # Poll sacct every few seconds rather than the plugin's 40 s: a tiny cluster.
            "--slurm-init-seconds-before-status-checks",
            "5",
            "--slurm-keep-successful-logs",
        ],
        cwd=on_slurm,
        env=slurm_cluster.env,
        capture_output=True,
        text=True,
        timeout=30 * 60,
    )
    output = result.stdout + result.stderr
    print(f"SLURM run: {time.monotonic() - started:.0f} s")
    assert result.returncode == 0, output[-6000:]

    # Every job went through SLURM but those of the workflow's local rules (the raw
    # content stamps: a few reads, not worth a cluster job).
    run_here = set(re.findall(r"^localrule (\w+):$", output, re.M)) - {"all"}
    assert run_here == {"raw_content"}
    run_id = re.search(r"SLURM run ID: (\S+)", output).group(1)
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", output)
    jobs = [row for row in slurm_cluster.accounting() if row["JobName"] == run_id]
    assert sorted(row["JobID"] for row in jobs) == sorted(submitted)
    assert {row["State"] for row in jobs} == {"COMPLETED"}, jobs
    finished = re.findall(r"^Finished jobid: \d+ \(Rule: (\w+)\)", output, re.M)
    assert len(submitted) == sum(rule not in run_here | {"all"} for rule in finished)
    comments = {
        row["Comment"].split("_wildcards_")[0].removeprefix("rule_") for row in jobs
    }
    assert rules_run(output) == local_rules
    assert comments == local_rules - run_here
    for rule in local_rules - run_here:
        logs = list(
            (on_slurm / ".snakemake" / "slurm_logs" / f"rule_{rule}").rglob("*.log")
        )
        assert logs, f"no SLURM log for rule {rule}"

    # The profile's threads and resources reached sbatch.
    fits = [row for row in jobs if row["Comment"].startswith("rule_fit_model")]
    assert len(fits) == 2
    for row in fits:
        assert int(row["AllocCPUS"]) == min(4, slurm_cluster.layout["CPUs"]), row
        assert row["ReqMem"] in ("8000M", "8000Mn"), row

    # Same bytes as the local run.
    local_files, slurm_files = manifest(local), manifest(on_slurm)
    assert sorted(slurm_files) == sorted(local_files)
    differing = [path for path in local_files if local_files[path] != slurm_files[path]]
    assert differing == []
