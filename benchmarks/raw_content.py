"""The raw-content check's cost at DAG construction (docs/performance.md, "Raw-content check").

    python benchmarks/raw_content.py --participants 130 1000

For each study size: that many local raw files of the default study's size (one
simulated 1000 Hz EDF, copied), their content stamps written as rule raw_content
writes them, then the time of
- the check alone (mimicry.io.raw_content.update_changed_stamps): cold, with no recorded
  signatures (every file hashed), and warm (one stat per file);
- `snakemake -n` of the whole workflow with the check (warm) and without it (the same
  workflow with the check's block switched off).
Prints one line per measurement; needs about 5 MB of scratch space per participant.
"""

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from mimicry.io import raw_content
import helpers_path  # noqa: F401 (tests/ on sys.path)
from helpers.devtools import copy_workflow, run_snakemake, seconds_listing
from mimicry.config.validation import load_config
from mimicry.simulate import plan_participant, synthesize, write_edf

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHECK_BLOCK = "if workflow.is_main_process:\n    RAW_CONTENT_CHANGED"


def make_study(workdir, n_participants, recording, groups):
    ids = [f"sub-{i:04d}" for i in range(1, n_participants + 1)]
    (workdir / "data").mkdir()
    for participant in ids:
        shutil.copyfile(recording, workdir / "data" / f"{participant}.edf")
    rows = [f"{p}\t{groups[i % len(groups)]}" for i, p in enumerate(ids)]
    (workdir / "sheet.tsv").write_text("participant_id\tgroup\n" + "\n".join(rows))
    settings = {
        "participants": "sheet.tsv",
        "source": {"kind": "local", "local_dir": "data"},
    }
    (workdir / "study.yaml").write_text(yaml.safe_dump(settings))
    # Paths relative to workdir, as the Snakefile's check sees them.
    os.chdir(workdir)
    sources = {}
    for participant in ids:
        stamp = f"resources/raw_content/{participant}.sha256"
        files = [f"data/{participant}.edf"]
        raw_content.write_stamp(stamp, files)
        sources[participant] = (stamp, files)
    return sources


def timed(function, repeats):
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return seconds


def without_check(workdir):
    """A copy of workdir's workflow whose Snakefile skips the raw-content check."""
    common = workdir / "workflow/rules/common.smk"
    text = common.read_text()
    assert CHECK_BLOCK in text, "the check's block moved: update CHECK_BLOCK"
    common.write_text(text.replace(CHECK_BLOCK, "if False:\n    RAW_CONTENT_CHANGED"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, nargs="+", default=[130, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    config = load_config(PROJECT_ROOT / "config/config.yaml")
    groups = config["study"]["groups"]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} "
        f"cores, Python {platform.python_version()}; command: python "
        f"benchmarks/raw_content.py {' '.join(sys.argv[1:])}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        recording = Path(scratch) / "recording.edf"
        plan = plan_participant(config, "sub-0001", groups[0])
        write_edf(recording, synthesize(plan, config), plan, config)
        size_mb = recording.stat().st_size / 1e6
        for n in args.participants:
            checked = copy_workflow(Path(scratch) / f"checked-{n}")
            sources = make_study(checked, n, recording, groups)
            cache = Path(".snakemake/mimicry/raw_content.json")

            def cold_check():
                cache.unlink(missing_ok=True)
                raw_content.update_changed_stamps(sources, cache)

            cold = timed(cold_check, args.repeats)
            warm = timed(
                lambda: raw_content.update_changed_stamps(sources, cache), args.repeats
            )
            dry = ("-n", "--cores", "2", "--configfile", "study.yaml")
            run_snakemake(checked, *dry)
            with_check = timed(lambda: run_snakemake(checked, *dry), args.repeats)
            unchecked = Path(scratch) / f"unchecked-{n}"
            shutil.copytree(checked, unchecked, symlinks=True)
            without_check(unchecked)
            plain = timed(lambda: run_snakemake(unchecked, *dry), args.repeats)
            print(
                f"{n} participants, {size_mb:.1f} MB each: check alone cold "
                f"{seconds_listing(cold)} s, warm {seconds_listing(warm, 3)} s; "
                f"snakemake -n with the check {seconds_listing(with_check)} s "
                f"(median {statistics.median(with_check):.2f}), without "
                f"{seconds_listing(plain)} s (median {statistics.median(plain):.2f})"
            )
            os.chdir(scratch)
            shutil.rmtree(checked)
            shutil.rmtree(unchecked)


if __name__ == "__main__":
    sys.exit(main())
