"""Helpers for tests and benchmarks that run the real workflow in a scratch directory.

Benchmarks import them too, with tests/ put on sys.path by benchmarks/helpers_path.py.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_PARTS = ("workflow", "config", "profiles", "envs")


def copy_workflow(destination):
    """A copy of the workflow in which a run writes only its own results/ and resources/."""
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        shutil.copytree(PROJECT_ROOT / part, destination / part)
    return destination


# What `snakedeploy deploy-workflow <repo> <dest>` writes to <dest>/workflow/Snakefile
# (its template use_module.smk.jinja), with the snakefile a path into this checkout
# instead of github("<owner>/<repo>", path="workflow/Snakefile", tag=...).
DEPLOYED_SNAKEFILE = """\
from snakemake.utils import min_version


min_version("6.10.0")


configfile: "config/config.yaml"


# declare mimicry as a module
module mimicry:
    snakefile:
        "{snakefile}"
    config:
        config


# use all rules from mimicry
use rule * from mimicry
"""


def deploy(directory):
    """A deployment as snakedeploy makes it: this repository's config/ copied, and a
    workflow/Snakefile that uses the checkout's workflow as a module."""
    directory = Path(directory)
    shutil.copytree(PROJECT_ROOT / "config", directory / "config")
    (directory / "workflow").mkdir()
    snakefile = PROJECT_ROOT / "workflow" / "Snakefile"
    (directory / "workflow" / "Snakefile").write_text(
        DEPLOYED_SNAKEFILE.format(snakefile=snakefile)
    )
    return directory


def run_snakemake(workdir, *args, check=True):
    """Run the snakemake command line of this environment in workdir."""
    snakemake = Path(sys.executable).with_name("snakemake")
    result = subprocess.run(
        [str(snakemake), *args], cwd=workdir, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def job_counts(output):
    """Job name -> count from the 'Job stats' table Snakemake prints ({} if none)."""
    if "Job stats:" not in output:
        return {}
    table = output.split("Job stats:")[1].split("total")[0]
    return {name: int(n) for name, n in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


def seconds_listing(seconds, digits=2):
    """Timings as "[1.23, 1.25]", for benchmark reports."""
    return "[" + ", ".join(f"{value:.{digits}f}" for value in seconds) + "]"


def group_alive(pgid):
    """Whether any process of the group is still running (zombies do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # Fields after the parenthesised command: state, ppid, pgrp, ...
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def write_long_edf(path, duration_s, rate_hz, n_channels, conditions, seed=0):
    """An EDF+ of n_channels of white noise (20 uV sd) at rate_hz, named EMG_ZM,
    EMG_CS, EXG3, ..., with a stimulus annotation every 9 s (conditions in turn):
    cheap long recordings for memory measurements. Returns the number of samples per
    channel."""
    import edfio
    import numpy as np

    rng = np.random.default_rng(seed)
    n_samples = int(duration_s * rate_hz)
    labels = ["EMG_ZM", "EMG_CS"] + [f"EXG{i}" for i in range(3, n_channels + 1)]
    signals = [
        edfio.EdfSignal(
            rng.standard_normal(n_samples, dtype=np.float32) * 20,
            sampling_frequency=rate_hz,
            label=label,
            physical_dimension="uV",
            physical_range=(-4000, 4000),
        )
        for label in labels[:n_channels]
    ]
    onsets = np.arange(5.0, duration_s - 10, 9.0)
    annotations = [
        edfio.EdfAnnotation(onset, None, conditions[i % len(conditions)])
        for i, onset in enumerate(onsets)
    ]
    edfio.Edf(signals, annotations=annotations).write(path)
    return n_samples
