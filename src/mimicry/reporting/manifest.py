"""The results' manifest: what a successful run left under results/, and a check of it.

    python -m mimicry.reporting.manifest verify      # make verify
    python -m mimicry.reporting.manifest add results/report.html
    python -m mimicry.reporting.manifest write       # accept the results as they are

The Snakefile's onsuccess handler writes results/manifest.tsv (path, size in bytes,
sha256) when a run ends well, outside the DAG: it is the state the run left, not a
job's output. `verify` reads every file under results/ again and names each one whose
bytes changed, that is missing, or that no run wrote (extra); it exits 1 on any. `add`
records files written after the run from its results (the HTML report).
Timings (results/benchmarks/) are measurements, not results, and are left out.
"""

import argparse
import os
import sys
from pathlib import Path

from mimicry.io.files import sha256_of, write_whole

RESULTS = Path("results")
MANIFEST = RESULTS / "manifest.tsv"
EXCLUDED = (RESULTS / "benchmarks", MANIFEST)
HEADER = "path\tsize\tsha256\n"


def result_files(workdir="."):
    """Every file under results/ that the manifest covers, relative to workdir."""
    workdir = Path(workdir)
    found = []
    for directory, _, names in os.walk(workdir / RESULTS):
        for name in names:
            relative = (Path(directory) / name).relative_to(workdir)
            if not any(relative.is_relative_to(excluded) for excluded in EXCLUDED):
                found.append(relative)
    return sorted(found)


def describe(workdir, paths):
    """path -> (size, sha256)."""
    workdir = Path(workdir)
    return {
        str(path): ((workdir / path).stat().st_size, sha256_of(workdir / path))
        for path in paths
    }


def write(workdir="."):
    entries = describe(workdir, result_files(workdir))
    _write_entries(workdir, entries)
    return entries


def add(paths, workdir="."):
    entries = read(workdir)
    entries.update(describe(workdir, [Path(path) for path in paths]))
    _write_entries(workdir, entries)


def _write_entries(workdir, entries):
    lines = [f"{path}\t{size}\t{digest}\n" for path, (size, digest) in entries.items()]
    write_whole(Path(workdir) / MANIFEST, HEADER + "".join(sorted(lines)))


def read(workdir="."):
    path = Path(workdir) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist: it is written when a snakemake run ends well"
        )
    entries = {}
    for line in path.read_text().splitlines()[1:]:
        name, size, digest = line.split("\t")
        entries[name] = (int(size), digest)
    return entries


def differences(workdir="."):
    """(changed, missing, extra) paths against the manifest."""
    recorded = read(workdir)
    present = {str(path) for path in result_files(workdir)}
    missing = sorted(set(recorded) - present)
    extra = sorted(present - set(recorded))
    now = describe(workdir, sorted(set(recorded) & present))
    changed = sorted(path for path, entry in now.items() if entry != recorded[path])
    return changed, missing, extra


def difference_lines(workdir="."):
    """Each difference from the manifest as '<changed|missing|extra>: <path>'."""
    changed, missing, extra = differences(workdir)
    kinds = (("changed", changed), ("missing", missing), ("extra", extra))
    return [f"{kind}: {path}" for kind, paths in kinds for path in paths]


def verify(workdir="."):
    """Print every difference from the manifest; the number of differences."""
    lines = difference_lines(workdir)
    for line in lines:
        print(line)
    total = len(lines)
    checked = len(read(workdir))
    if total:
        print(
            f"{total} of the results differ from {MANIFEST}. Remake a changed or "
            "missing file and everything made from it with: snakemake --cores all "
            "--forcerun <path> (add the --configfile options of your run)"
        )
    else:
        print(f"all {checked} results match {MANIFEST}")
    return total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=".")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("verify", help="check every result against the manifest")
    commands.add_parser("write", help="write the manifest of the results as they are")
    adding = commands.add_parser("add", help="record files written after the run")
    adding.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            return 1 if verify(args.workdir) else 0
        if args.command == "write":
            write(args.workdir)
        else:
            add(args.paths, args.workdir)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
