"""Whether a participant's raw files changed, by their content rather than their times.

Snakemake re-runs a job when an input is newer than its outputs, and compares checksums
only for inputs below --max-checksum-file-size: a raw file replaced by one with an older
modification time (``cp -p``, ``rsync -a``, unzipping a corrected archive) would look
unchanged, and a large one copied over with identical bytes would look changed. So each
participant has a content stamp (rule raw_content: the sha256 of each of its source
files), preprocessing reads the raw files as ancient and the stamp as its input, and
before Snakemake builds its DAG `update_changed_stamps` writes the stamp again for
every participant whose files' content differs from it: the stamp is then newer than
that participant's results and its checksum differs from the one Snakemake recorded,
so that participant re-runs, and only that one, whichever targets were asked for.
(Removing the stamp would not do: Snakemake re-makes a missing intermediate file only
when it is requested or its consumer runs anyway.)

Hashing every raw file on every run would cost a full read of the study; a file is
hashed again only when its stat signature (size, modification and change times in ns,
inode) differs from the one recorded, in a cache outside the results, the last time
its content was found to match the stamp.
"""

import json
import os
from pathlib import Path

from mimicry.io.files import sha256_of, write_whole


def source_files(recording, events=None):
    """Every file whose content a recording's preprocessing reads: the recording,
    a BrainVision header's data and marker files, a BIDS physio file's sidecar and
    events.tsv, and a BIDS events.tsv."""
    from mimicry.io.brainvision import brainvision_files

    from mimicry.io.bids_physio import companion_files, is_physio

    files = [str(recording)]
    if is_physio(recording):
        files += [str(path) for path in companion_files(recording) if path.exists()]
    if str(recording).lower().endswith(".vhdr") and os.path.exists(recording):
        for part in brainvision_files(recording):
            if part is not None and part.exists() and str(part) not in files:
                files.append(str(part))
    if events:
        files.append(str(events))
    return files


def stamp_text(files):
    """One line per file: its sha256 and its path, as `sha256sum` writes them."""
    return "".join(f"{sha256_of(path)}  {path}\n" for path in files)


def write_stamp(stamp, files):
    write_whole(stamp, stamp_text(files))


def stat_signature(path):
    status = os.stat(path)
    return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino]


def update_changed_stamps(sources, cache_path):
    """Write the stamp again for each participant whose files' content differs from it.

    sources: participant -> (stamp path, its source files); a participant whose stamp
    or files do not exist is left to Snakemake (nothing made yet, or a temporary raw
    file already read). Returns the participants whose stamps were written.
    """
    cache_path = Path(cache_path)
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    changed, checked = [], {}
    for participant, (stamp, files) in sources.items():
        if not os.path.exists(stamp) or not all(map(os.path.exists, files)):
            continue
        signature = [stat_signature(stamp), *(stat_signature(f) for f in files)]
        if cache.get(participant) != signature:
            text = stamp_text(files)
            if Path(stamp).read_text(errors="replace") != text:
                write_whole(stamp, text)
                changed.append(participant)
                signature[0] = stat_signature(stamp)
        checked[participant] = signature
    if checked != cache:
        write_whole(cache_path, json.dumps(checked))
    return changed
