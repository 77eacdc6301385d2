"""Benchmark of per-participant preprocessing against its floor.

Simulates one participant of the default study (config/config.yaml: 1000 Hz, two
channels, about 20 minutes), then times, in fresh processes so that imports count:

- preprocess: what the `preprocess` job does (read, filter, epoch, bin, screen, write
  the parquet table, the QC JSON and the channel spectra), with the artifact rules'
  noise limits read from the on-disk cache that the workflow's jobs share (the untimed
  warm-up run fills it, as the first job of a study does);
- floor: read the file the same way and run one zero-phase band-pass over both
  channels, nothing else.

Runs alternate so that load from other users hits both alike; medians are reported.
Then, unless --no-study, the real workflow preprocesses and aggregates all participants
of the default study in a scratch copy (raw files simulated first, untimed).

    .venv/bin/python benchmarks/preprocess.py --repeats 5 --cores 2
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import helpers_path  # noqa: F401 (tests/ on sys.path)
from helpers.devtools import PROJECT_ROOT, copy_workflow, run_snakemake, seconds_listing
from mimicry.config.validation import load_config
from mimicry.simulate import simulate_participant

PARTICIPANT = "sub-001"

PREPROCESS_JOB = """
import json, sys
from mimicry.preprocessing.preprocess import (
    preprocess_and_write,
    read_participant_recording,
)
path, settings_path, limits_cache, *output_paths = sys.argv[1:]
with open(settings_path) as handle:
    settings = json.load(handle)
recording = read_participant_recording(path, "{participant}", settings)
preprocess_and_write(recording, settings, limits_cache, *output_paths)
"""


FLOOR_JOB = """
import json, sys
import numpy as np
from scipy.signal import butter, sosfiltfilt
from mimicry.io.recordings import read_recording
recording_path, settings_path = sys.argv[1:3]
with open(settings_path) as handle:
    settings = json.load(handle)
recording = read_recording(
    recording_path,
    "{participant}",
    settings["channels"],
    settings["study"]["conditions"],
    settings.get("recording"),
)
signals = np.vstack(list(recording.signals_uv.values()))
sos = butter(4, [20.0, 450.0], "bandpass", fs=recording.sampling_rate_hz, output="sos")
sosfiltfilt(sos, signals, axis=-1)
"""


def wall_seconds(code, *arguments):
    """Wall time of a fresh Python process running code, imports included."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code.format(participant=PARTICIPANT), *arguments],
        check=True,
    )
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--config", default=str(PROJECT_ROOT / "config" / "config.yaml")
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--no-study", dest="study", action="store_false")
    args = parser.parse_args()
    config = load_config(args.config)
    settings = {
        key: config[key]
        for key in ("study", "channels", "recording", "preprocess")
        if key in config
    }
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        recording = scratch / f"{PARTICIPANT}.edf"
        plan = simulate_participant(
            config, PARTICIPANT, config["study"]["groups"][0], recording
        )
        settings_path = scratch / "settings.json"
        settings_path.write_text(json.dumps(settings))
        # The noise-limit cache, then the job's table, QC report and spectra.
        job_paths = [
            str(scratch / name)
            for name in ("noise_limits", "table.parquet", "qc.json", "spectra.parquet")
        ]
        # One untimed run each warms the file cache and the bytecode cache.
        wall_seconds(FLOOR_JOB, str(recording), str(settings_path))
        wall_seconds(PREPROCESS_JOB, str(recording), str(settings_path), *job_paths)
        floors, jobs = [], []
        for _ in range(args.repeats):
            floors.append(wall_seconds(FLOOR_JOB, str(recording), str(settings_path)))
            jobs.append(
                wall_seconds(
                    PREPROCESS_JOB, str(recording), str(settings_path), *job_paths
                )
            )
    n_channels = len(config["study"]["muscles"])
    rate = config["simulation"]["sampling_rate_hz"]
    print(
        f"recording: {plan.duration_s} s, {n_channels} channels at {rate} Hz, "
        f"{len(plan.trials)} trials; {args.repeats} alternating repeats"
    )
    print(
        f"preprocess job: median {statistics.median(jobs):.3f} s  {seconds_listing(jobs, 3)}"
    )
    print(
        f"floor (read + one band-pass): median {statistics.median(floors):.3f} s  {seconds_listing(floors, 3)}"
    )
    print(
        f"ratio of medians: {statistics.median(jobs) / statistics.median(floors):.2f}"
    )

    if args.study:
        study_wall_seconds(args.cores)


def study_wall_seconds(cores):
    """Wall time of the workflow's preprocess and aggregate jobs for the whole study."""
    with tempfile.TemporaryDirectory() as scratch:
        workdir = copy_workflow(Path(scratch) / "workflow")
        run_snakemake(workdir, "--cores", str(cores), "--until", "simulate_raw")
        started = time.perf_counter()
        run_snakemake(workdir, "--cores", str(cores), "results/aggregate/cells.parquet")
        wall = time.perf_counter() - started
        n_jobs = len(list((workdir / "results" / "preprocessed").glob("*.parquet")))
    print(
        f"workflow: {n_jobs} preprocess jobs + aggregate on {cores} cores: "
        f"{wall:.1f} s wall"
    )


if __name__ == "__main__":
    main()
