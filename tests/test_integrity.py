"""Real Snakemake runs on the quick study read from local files: raw content, not
modification times, decides what re-runs; a damaged result is named, with its remake
command, by its consumer and by `python -m mimicry.reporting.manifest verify`."""

import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from helpers.devtools import copy_workflow, job_counts, run_snakemake
from mimicry.simulate import plan_participant, synthesize, write_edf

pytestmark = pytest.mark.workflow

CELLS = "results/aggregate/cells.parquet"
TRIALS = "results/aggregate/trials.parquet"
LRT = "results/stats/lrt.tsv"
CONFIG = ("--configfile", "config/quick.yaml", "local.yaml")
RUN = ("--cores", "2", CELLS, LRT, *CONFIG)


@pytest.fixture(scope="module")
def study(tmp_path_factory, quick_config):
    """The quick study's recordings in data/ (source kind local), preprocessed,
    aggregated and fitted by the mixed models."""
    workdir = copy_workflow(tmp_path_factory.mktemp("integrity") / "workflow")
    sheet = pd.read_csv(workdir / quick_config["participants"], sep="\t")
    for participant, group in zip(sheet["participant_id"], sheet["group"]):
        plan = plan_participant(quick_config, participant, group)
        data = synthesize(plan, quick_config)
        (workdir / "data").mkdir(exist_ok=True)
        write_edf(workdir / "data" / f"{participant}.edf", data, plan, quick_config)
    source = {"source": {"kind": "local", "local_dir": "data"}}
    (workdir / "local.yaml").write_text(yaml.safe_dump(source))
    run_snakemake(workdir, *RUN)
    return workdir


def planned(workdir):
    result = run_snakemake(workdir, "-n", *RUN)
    return result, job_counts(result.stdout + result.stderr)


def verify(workdir):
    return subprocess.run(
        [sys.executable, "-m", "mimicry.reporting.manifest", "verify"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )


def test_raw_content_not_its_time_decides_what_re_runs(study):
    raw = study / "data/sub-003.edf"
    before = os.stat(raw)
    # Another recording's bytes with an older time, as `cp -p` or `rsync -a` leave it.
    shutil.copyfile(study / "data/sub-004.edf", raw)
    os.utime(raw, ns=(before.st_atime_ns, before.st_mtime_ns - 10**12))
    result, jobs = planned(study)
    assert jobs == {"preprocess": 1, "aggregate": 1, "mixed_models": 1}, result.stdout
    preprocessed = [
        line for line in result.stdout.splitlines() if "results/preprocessed/" in line
    ]
    assert preprocessed and all("sub-003" in line for line in preprocessed)
    assert "raw content changed since it was preprocessed, re-running: sub-003" in (
        result.stdout + result.stderr
    )
    run_snakemake(study, *RUN)
    assert planned(study)[1] == {}

    # The same bytes copied over with a new time, and touched: nothing re-runs.
    shutil.copyfile(raw, study / "copy.edf")
    shutil.copyfile(study / "copy.edf", raw)
    os.utime(study / "data/sub-005.edf")
    assert planned(study)[1] == {}
    assert verify(study).returncode == 0


def test_a_result_damaged_with_its_old_time_is_named_by_verify(study):
    trials = study / TRIALS
    before = os.stat(trials)
    content = trials.read_bytes()
    trials.write_bytes(content[: len(content) // 2])
    os.utime(trials, ns=(before.st_atime_ns, before.st_mtime_ns))
    (study / CELLS).unlink()
    (study / "results/aggregate/notes.txt").write_text("not a result")
    # Snakemake trusts the times: only the missing file is planned again.
    assert planned(study)[1] == {"aggregate": 1, "mixed_models": 1}

    checked = verify(study)
    assert checked.returncode == 1
    assert f"changed: {TRIALS}\n" in checked.stdout
    assert f"missing: {CELLS}\n" in checked.stdout
    assert "extra: results/aggregate/notes.txt\n" in checked.stdout
    assert checked.stdout.count("\n") == 4, checked.stdout

    (study / "results/aggregate/notes.txt").unlink()
    run_snakemake(study, *RUN, "--forcerun", TRIALS)
    assert verify(study).returncode == 0
    pd.read_parquet(trials)


def test_a_truncated_result_stops_its_consumer_with_the_remake_command(study):
    cells = study / CELLS
    content = cells.read_bytes()
    cells.write_bytes(content[: len(content) // 3])
    failed = run_snakemake(study, *RUN, check=False)
    assert failed.returncode != 0
    log = (study / "logs/mixed_models.log").read_text()
    command = f"snakemake --cores all --forcerun {CELLS}"
    assert f"{CELLS} cannot be read" in log and command in log, log
    assert verify(study).returncode == 1

    fixed = run_snakemake(study, LRT, *command.split()[1:], *CONFIG)
    assert job_counts(fixed.stdout + fixed.stderr) == {
        "aggregate": 1,
        "mixed_models": 1,
    }
    assert cells.read_bytes() == content
    assert verify(study).returncode == 0
