"""Real Snakemake runs killed with SIGKILL, then finished as docs/reproducibility.md says.

Each killed run is finished by `snakemake --unlock` and `snakemake --cores 2
--rerun-incomplete`, and must then hold the same bytes as one uninterrupted run (the
manifest of tests/helpers/reproduce.py: every file under results/ and resources/ except
results/benchmarks/).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers.devtools import copy_workflow, group_alive, job_counts, run_snakemake
from helpers.reproduce import differences, manifest

pytestmark = pytest.mark.workflow

# Two short chains: these tests compare bytes, not posteriors, so the diagnostics gate
# only warns.
SMALL_STAN = {
    "stan": {
        "chains": 2,
        "warmup": 150,
        "draws": 150,
        "prior_draws": 50,
        "refresh": 10,
    },
    "models": {"diagnostics": {"mode": "warn"}},
}
CONFIG = ("--configfile", "config/quick.yaml", "small-stan.yaml")
RUN = ("--cores", "2", *CONFIG)
# The commands of docs/reproducibility.md, "After a crash".
UNLOCK = ("--unlock", *CONFIG)
RESUME = ("--cores", "2", "--rerun-incomplete", *CONFIG)
# Bounds the wait for a known point of a run (a first run may compile the Stan program).
WAIT_S = 900
# The project's progress message, the same for both Stan backends.
PROGRESS = re.compile(r"sampling progress: (\d+) of \d+ iterations")


def new_workflow(directory):
    workdir = copy_workflow(directory)
    (workdir / "small-stan.yaml").write_text(yaml.safe_dump(SMALL_STAN))
    return workdir


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run: its directory and its manifest."""
    workdir = new_workflow(tmp_path_factory.mktemp("interruption") / "reference")
    run_snakemake(workdir, *RUN)
    return workdir, manifest(workdir)


class Run:
    """A snakemake process in its own process group, with its output in a file."""

    def __init__(self, workdir, *args):
        self.log = workdir / f"killed-run-{time.time_ns()}.log"
        self.started = time.time()
        with open(self.log, "w") as output:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).with_name("snakemake")), *args],
                cwd=workdir,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_for(self, condition, what):
        """Poll condition until it returns something true; fail if the run ends first."""
        deadline = time.monotonic() + WAIT_S
        while not (found := condition()):
            if self.process.poll() is not None:
                raise AssertionError(
                    f"snakemake ended ({self.process.returncode}) before {what}:\n"
                    + self.log.read_text()[-4000:]
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {WAIT_S} s")
            time.sleep(0.2)
        return found

    def kill(self):
        """SIGKILL snakemake and every job it started; return once all are gone."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + 60
        while group_alive(self.process.pid):
            assert time.monotonic() < deadline, "processes of the killed run live on"
            time.sleep(0.1)


@pytest.fixture
def start_run():
    runs = []

    def start(workdir, *args):
        runs.append(Run(workdir, *args))
        return runs[-1]

    yield start
    for run in runs:
        run.kill()


def sampling_model(run, workdir):
    """The model whose fit log, written by this run, shows sampled iterations."""
    for model in ("pooled", "drug"):
        log = workdir / "logs" / "models" / model / "fit.log"
        try:
            if log.stat().st_mtime < run.started:
                continue
            progress = [int(n) for n in PROGRESS.findall(log.read_text())]
        except FileNotFoundError:
            continue
        if progress and max(progress) > 0:
            return model
    return None


def finish_and_compare(workdir, reference):
    """The documented commands finish the run, with the uninterrupted run's bytes."""
    run_snakemake(workdir, *UNLOCK)
    run_snakemake(workdir, *RESUME)
    _, expected = reference
    found = manifest(workdir)
    assert differences(expected, found) == []
    assert not list((workdir / ".snakemake" / "incomplete").iterdir())
    again = run_snakemake(workdir, "-n", *CONFIG)
    assert job_counts(again.stdout + again.stderr) == {}, again.stdout


def test_a_run_killed_while_preprocessing_finishes_with_identical_results(
    reference, tmp_path, start_run
):
    workdir = new_workflow(tmp_path / "killed")
    run = start_run(workdir, *RUN)

    def preprocessing_midway():
        # The rule script opens its log first and writes the QC report last.
        finished = {p.stem for p in workdir.glob("results/qc/*.json")}
        started = {p.stem for p in workdir.glob("logs/preprocess/*.log")}
        return len(finished) >= 3 and started - finished

    run.wait_for(preprocessing_midway, "a preprocess job running after 3 finished")
    run.kill()

    assert len(list(workdir.glob("results/qc/*.json"))) < 12
    assert not (workdir / "results/aggregate/cells.parquet").exists()
    locked = run_snakemake(workdir, *RUN, check=False)
    assert locked.returncode != 0
    assert "cannot be locked" in locked.stdout + locked.stderr
    finish_and_compare(workdir, reference)


def test_a_run_killed_during_a_stan_fit_finishes_with_identical_results(
    reference, tmp_path, start_run
):
    workdir = new_workflow(tmp_path / "killed")
    run = start_run(workdir, *RUN)
    model = run.wait_for(lambda: sampling_model(run, workdir), "a fit sampling")
    run.kill()

    assert not (workdir / f"results/models/{model}/posterior.nc").exists()
    finish_and_compare(workdir, reference)


def test_a_killed_forced_refit_is_redone_by_the_next_run(
    reference, tmp_path, start_run
):
    """--forcerun deletes the posterior before sampling; killed there, the figures and
    summaries made from the old posterior still look current to Snakemake. The next
    run must re-create the posterior (and what is made from it)."""
    workdir = tmp_path / "forced"
    shutil.copytree(reference[0], workdir, symlinks=True)
    run = start_run(workdir, "--cores", "2", "--forcerun", "fit_model", *CONFIG)
    model = run.wait_for(
        lambda: sampling_model(run, workdir), "the forced fit sampling"
    )
    run.kill()

    assert not (workdir / f"results/models/{model}/posterior.nc").exists()
    assert (workdir / f"results/models/{model}/summary.tsv").exists()
    run_snakemake(workdir, *UNLOCK)
    planned = run_snakemake(workdir, "-n", *CONFIG)
    counts = job_counts(planned.stdout + planned.stderr)
    assert counts.get("fit_model", 0) >= 1, planned.stdout
    assert counts.get("summarize_model", 0) >= 1, planned.stdout
    finish_and_compare(workdir, reference)
