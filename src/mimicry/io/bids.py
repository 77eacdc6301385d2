"""EMG-BIDS input (config `source.kind: bids`).

The sample sheet is the dataset's participants.tsv: ids keep their `sub-` prefix (the
workflow's participant ids are the BIDS participant_id values, e.g. sub-01, so results
and BIDS files share names) and the group comes from the column
`source.bids.group_column`. Each participant's recording is the one
`sub-<label>/[ses-<label>/]emg/sub-<label>_..._emg.<edf|bdf|vhdr>` that the entity
selection (`source.bids.task`, `session`, `acquisition`, `run`) leaves, found and read
through MNE-BIDS (datatype "emg"); its stimulus events come from the matching
`*_events.tsv` (BIDS inheritance applies): `onset` in seconds from the first sample,
`trial_type` the label that `recording.event_labels` maps to a condition (or the
condition name itself).

With study.design crossover each participant has one recording per `ses-<label>`
folder, a recording id `<participant_id>_ses-<label>` and the session's group from
`sub-<label>/sub-<label>_sessions.tsv` (columns session_id and
`source.bids.group_column`); participants.tsv then needs no group column.

Discovery problems are `ConfigError`s naming the file and the config key; problems of
one participant's files at read time are `RecordingError`s naming the participant and
the file. MNE-BIDS and pandas are imported where needed, so that a workflow on another
source never pays for them.
"""

import dataclasses
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mimicry.config.validation import ConfigError
from mimicry.io.events import event_label_map, label_events, uses_event_ends
from mimicry.io.mne_formats import (
    ANNOTATIONS_AFTER_DATA,
    MICROVOLTS_PER_VOLT,
    check_raw_file,
    open_mne_raw,
)
from mimicry.io.recording_types import (
    Events,
    RecordingError,
    finite_recording,
    load_channels,
)

log = logging.getLogger(__name__)

RECORDING_EXTENSIONS = (".edf", ".bdf", ".vhdr")
# Keys under source.bids that select on the BIDSPath entity of the same name.
SELECTION_KEYS = ("task", "session", "acquisition", "run")
PARTICIPANT_ID = re.compile(r"^sub-[A-Za-z0-9]+$")


@dataclass(frozen=True)
class BidsStudy:
    """What the workflow needs from a BIDS dataset, found once when the DAG is built."""

    participants_tsv: Path
    sheet: object  # pandas DataFrame: participant_id, group, format
    recordings: dict  # participant -> recording path (below source.bids.root)
    events: dict  # participant -> its events.tsv
    missing: list  # participants without a recording (source.missing_raw: skip)


def find_dataset(config):
    """The sample sheet and every recording and its events.tsv."""
    source = config["source"]
    settings = source["bids"]
    if settings["root"] is None:
        raise ConfigError(
            "source.bids.root: required when source.kind is bids (the folder holding "
            "dataset_description.json and participants.tsv)"
        )
    root = Path(settings["root"])
    if not (root / "dataset_description.json").is_file():
        raise ConfigError(
            f"source.bids.root: {root} has no dataset_description.json, so it is not "
            "the root of a BIDS dataset"
        )
    participants_tsv = root / "participants.tsv"
    crossover = config["study"]["design"] == "crossover"
    sheet = read_participants(
        participants_tsv, None if crossover else settings["group_column"], config
    )

    by_subject = _find_recordings(root)
    listed = {
        participant.removeprefix("sub-") for participant in sheet["participant_id"]
    }
    unlisted = sorted(set(by_subject) - listed)
    if unlisted:
        raise ConfigError(
            f"{participants_tsv}: {len(unlisted)} subject(s) with an EMG recording are "
            f"not listed, e.g. sub-{unlisted[0]} ({by_subject[unlisted[0]][0].fpath}): "
            f"{', '.join('sub-' + label for label in unlisted)}; add a row for each "
            f"(participant_id and {settings['group_column']}, source.bids.group_column), "
            "or move its folder out of the dataset to leave it out"
        )
    if crossover:
        return _crossover_dataset(root, participants_tsv, sheet, config, by_subject)

    recordings, events, missing, formats = {}, {}, [], []
    for participant in sheet["participant_id"]:
        matches, candidates = _matches(by_subject, participant, settings)
        if not matches:
            if source["missing_raw"] == "skip":
                missing.append(participant)
                formats.append(None)
                continue
            raise ConfigError(_no_recording_message(participant, root, candidates))
        if len(matches) > 1:
            raise ConfigError(
                _ambiguous_message(participant, participants_tsv, matches)
            )
        bids_path = matches[0]
        recordings[participant] = str(bids_path.fpath)
        events[participant] = _events_tsv(participant, bids_path)
        formats.append(bids_path.extension.lstrip("."))
    sheet = sheet.assign(format=formats)
    return BidsStudy(participants_tsv, sheet, recordings, events, missing)


def _find_recordings(root):
    """subject label -> its EMG recordings' BIDSPaths, sorted by path."""
    import mne_bids

    found = mne_bids.find_matching_paths(
        root,
        datatypes="emg",
        suffixes="emg",
        extensions=list(RECORDING_EXTENSIONS),
        ignore_json=True,
        ignore_nosub=True,
    )
    by_subject = defaultdict(list)
    for bids_path in sorted(found, key=lambda p: str(p.fpath)):
        by_subject[bids_path.subject].append(bids_path)
    return by_subject


def _matches(by_subject, participant, settings):
    """(the participant's recordings the entity selection leaves, all of them)."""
    candidates = by_subject.get(participant.removeprefix("sub-"), [])
    return [p for p in candidates if _selected(p, settings)], candidates


def _events_tsv(recording, bids_path):
    events_tsv = bids_path.find_matching_sidecar(
        suffix="events", extension=".tsv", on_error="ignore"
    )
    if events_tsv is None:
        raise ConfigError(
            f"{recording}: recording {bids_path.fpath} has no events.tsv "
            f"({bids_path.fpath.name.rsplit('_', 1)[0]}_events.tsv next to it, or "
            "an inherited one higher up); the workflow takes stimulus onsets and "
            "conditions from it"
        )
    return str(events_tsv)


def _crossover_dataset(root, participants_tsv, participants, config, by_subject):
    """study.design crossover: one recording per subject and ses- folder, its group
    from the subject's sub-<label>_sessions.tsv (column source.bids.group_column)."""
    import pandas as pd

    settings = config["source"]["bids"]
    rows, recordings, events = [], {}, {}
    for participant in participants["participant_id"]:
        matches, candidates = _matches(by_subject, participant, settings)
        if not matches:
            raise ConfigError(
                _no_recording_message(participant, root, candidates).split(" (or")[0]
                + "; in a crossover study every participant needs its sessions"
            )
        groups = _session_groups(root, participant, settings["group_column"], config)
        by_session = defaultdict(list)
        for bids_path in matches:
            by_session[bids_path.session].append(bids_path)
        if None in by_session:
            raise ConfigError(
                f"{participant}: recording {by_session[None][0].fpath} is in no "
                "ses-<label> folder; study.design crossover takes each session's "
                "recording from its ses- folder"
            )
        for session, paths in sorted(by_session.items()):
            if len(paths) > 1:
                raise ConfigError(
                    _ambiguous_message(
                        f"{participant} ses-{session}", participants_tsv, paths
                    )
                )
            if session not in groups:
                raise ConfigError(
                    f"{root / participant / f'{participant}_sessions.tsv'}: no row "
                    f"session_id ses-{session} (recording {paths[0].fpath}); each "
                    "session's group comes from that table"
                )
            recording = f"{participant}_ses-{session}"
            recordings[recording] = str(paths[0].fpath)
            events[recording] = _events_tsv(recording, paths[0])
            rows.append((participant, session, groups[session], paths[0].extension[1:]))
    sheet = pd.DataFrame(rows, columns=["participant_id", "session", "group", "format"])
    return BidsStudy(participants_tsv, sheet, recordings, events, [])


def _session_groups(root, participant, group_column, config):
    """session label -> group, from sub-<label>/sub-<label>_sessions.tsv."""
    import pandas as pd

    path = root / participant / f"{participant}_sessions.tsv"
    if not path.is_file():
        raise ConfigError(
            f"{path} does not exist; in a crossover study (study.design) it gives "
            f"each session's group: columns session_id and {group_column} "
            "(source.bids.group_column)"
        )
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    table.columns = table.columns.str.strip()
    for column in ("session_id", group_column):
        if column not in table.columns:
            raise ConfigError(
                f"{path}: no column '{column}'; the columns are {list(table.columns)}"
            )
    groups = config["study"]["groups"]
    found = {}
    for row, (session, group) in enumerate(
        zip(table["session_id"].str.strip(), table[group_column].str.strip()), 1
    ):
        if group not in groups:
            raise ConfigError(
                f"{path}, row {row} ({session}): {group_column} '{group}' "
                f"(source.bids.group_column) is not one of study.groups {groups}"
            )
        found[session.removeprefix("ses-")] = group
    return found


def read_participants(path, group_column, config):
    """participant_id and group of every row of participants.tsv, checked; without a
    group_column (a crossover study's groups are its sessions') participant_id alone."""
    import pandas as pd

    if not path.is_file():
        raise ConfigError(
            f"source.bids.root: {path} does not exist; BIDS datasets list their "
            "participants (participant_id and the group column) there"
        )
    # BIDS writes missing values as n/a; keep every cell as text.
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    table.columns = table.columns.str.strip()
    needed = [("participant_id", None)]
    needed += [(group_column, "group_column")] if group_column else []
    for column, key in needed:
        if column not in table.columns:
            which = f"source.bids.{key} '{column}'" if key else f"'{column}'"
            raise ConfigError(
                f"{path}: no column {which}; the columns are {list(table.columns)}"
            )
    participants = table["participant_id"].str.strip()
    for row, participant in enumerate(participants, 1):
        if not PARTICIPANT_ID.match(participant):
            raise ConfigError(
                f"{path}, row {row}: participant_id '{participant}' is not "
                "sub-<label> with a letters-and-digits label, as BIDS requires"
            )
    if not group_column:
        return pd.DataFrame({"participant_id": participants})
    groups = config["study"]["groups"]
    for row, (participant, group) in enumerate(
        zip(participants, table[group_column].str.strip()), 1
    ):
        if group not in groups:
            raise ConfigError(
                f"{path}, row {row} ({participant}): {group_column} '{group}' "
                f"(source.bids.group_column) is not one of study.groups {groups}"
            )
    return pd.DataFrame(
        {"participant_id": participants, "group": table[group_column].str.strip()}
    )


def _selected(bids_path, settings):
    for key in SELECTION_KEYS:
        wanted, value = settings[key], getattr(bids_path, key)
        if wanted is None:
            continue
        if key == "run":
            # run-01 and run: 1 name the same run.
            if value is None or int(value) != int(wanted):
                return False
        elif value != str(wanted):
            return False
    return True


def _selection_text(keys):
    return "/".join(f"source.bids.{key}" for key in keys)


def _no_recording_message(participant, root, candidates):
    message = (
        f"{root / 'participants.tsv'}: {participant} has no EMG recording "
        f"{root}/{participant}/[ses-<label>/]emg/{participant}_..._emg"
        f".<{'|'.join(e.lstrip('.') for e in RECORDING_EXTENSIONS)}>"
    )
    if candidates:
        names = [p.fpath.name for p in candidates]
        selection = _selection_text(SELECTION_KEYS)
        return f"{message} that the selection {selection} leaves; it has {names}"
    return f"{message} (or set source.missing_raw: skip to go on without it)"


def _ambiguous_message(participant, participants_tsv, matches):
    differing = [
        key for key in SELECTION_KEYS if len({getattr(p, key) for p in matches}) > 1
    ]
    keys = _selection_text(differing or SELECTION_KEYS)
    names = [str(p.fpath) for p in matches]
    return (
        f"{participants_tsv}: {participant} has {len(matches)} EMG recordings that "
        f"match the selection, {names}; set {keys} to select one"
    )


def read_events(path, participant):
    """Onsets (s) and trial_type labels of a BIDS events.tsv, in file order."""
    import pandas as pd

    where = f"{participant}: {path}"
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except Exception as error:
        raise RecordingError(
            f"{where}: cannot read the events table: {error}"
        ) from error
    table.columns = table.columns.str.strip()
    missing = [column for column in ("onset", "trial_type") if column not in table]
    if missing:
        raise RecordingError(
            f"{where}: no column(s) {missing}; stimulus onsets (s) come from 'onset' "
            "and conditions from 'trial_type' (mapped by recording.event_labels); the "
            f"file has {list(table.columns)}"
        )
    onsets = pd.to_numeric(table["onset"].str.strip(), errors="coerce").to_numpy()
    invalid = np.flatnonzero(~np.isfinite(onsets))
    if len(invalid):
        row = invalid[0]
        raise RecordingError(
            f"{where}, row {row + 1}: onset '{table['onset'].iloc[row]}' is not a "
            "time in seconds"
        )
    return onsets, [label.strip() for label in table["trial_type"]]


def tsv_events(path, participant, onsets, labels, fs, settings):
    """The rows of a BIDS events.tsv (onsets in samples at fs Hz, labels as
    `read_events` gives them) as `Events`; when recording.trigger_max_pulse_s or trigger_train_gap_s
    needs them, each row ends at its onset + duration (n/a: at its onset)."""
    origins = [f"row {row} ({label!r})" for row, label in enumerate(labels, start=1)]
    events = Events(onsets, labels, origins)
    if not uses_event_ends(settings):
        return events
    import pandas as pd

    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    table.columns = table.columns.str.strip()
    if "duration" not in table:
        raise RecordingError(
            f"{participant}: {path}: no column 'duration'; "
            "recording.trigger_max_pulse_s and recording.trigger_train_gap_s take "
            "each event's length from it (n/a: none)"
        )
    text = table["duration"].str.strip()
    durations = pd.to_numeric(text.mask(text == "n/a", "0"), errors="coerce")
    durations = durations.to_numpy(dtype=np.float64)
    invalid = np.flatnonzero(~(durations >= 0) | ~np.isfinite(durations))
    if len(invalid):
        row = invalid[0]
        raise RecordingError(
            f"{participant}: {path}, row {row + 1}: duration '{text.iloc[row]}' is not "
            "a length in seconds or n/a"
        )
    ends = np.asarray(onsets) + np.round(durations * fs)
    return dataclasses.replace(events, ends=ends)


def read_bids_recording(path, events_path, participant, channels, conditions, settings):
    """One participant's BIDS recording and its events as a `Recording`.

    channels maps muscle -> channel name, conditions lists study.conditions and
    settings is the config `recording` section (event_labels, ignore_labels; the
    event source is always the events.tsv).
    """
    import mne_bids

    path = Path(path)
    where = f"{participant}: {path}"
    events_where = f"{participant}: {events_path}"
    label_map = event_label_map(settings, conditions)
    onsets_s, labels = read_events(events_path, participant)
    file_format = path.suffix.lower().lstrip(".")
    check_raw_file(where, path, file_format, source="events.tsv")
    raw = open_mne_raw(
        where,
        lambda: mne_bids.read_raw_bids(
            mne_bids.get_bids_path_from_fname(path),
            on_ch_mismatch="raise",
            verbose="warning",
        ),
        "an EMG-BIDS recording (with its channels.tsv and sidecars)",
        # The group and other study columns of participants.tsv have no MNE field;
        # onsets outside the data are the events.tsv's, named below.
        ignored_warnings=("Unable to map the following", ANNOTATIONS_AFTER_DATA),
    )
    _check_onsets_inside(events_where, onsets_s, labels, label_map, raw, path)
    needed = list(channels.values())
    bad = [name for name in needed if name in raw.info["bads"]]
    if bad:
        # The preprocessing's own channel checks decide whether the data are usable.
        log.warning("%s: channels.tsv marks %s as bad; reading them anyway", where, bad)
    load_channels(where, raw, needed)
    sampling_rate_hz = float(raw.info["sfreq"])
    stimuli = label_events(
        events_where,
        events_path,
        tsv_events(
            events_path,
            participant,
            np.round(onsets_s * sampling_rate_hz),
            labels,
            sampling_rate_hz,
            settings,
        ),
        label_map,
        set(settings["ignore_labels"]),
        sampling_rate_hz,
        "remove the duplicate row from the events.tsv, or, if one of the trial_type "
        "values marks something other than a stimulus onset (a response), move it "
        "from recording.event_labels to recording.ignore_labels",
        settings,
    )
    signals = dict(zip(channels, raw.get_data(picks=needed) * MICROVOLTS_PER_VOLT))
    return finite_recording(
        where, participant, path, signals, channels, sampling_rate_hz, stimuli
    )


def _check_onsets_inside(events_where, onsets_s, labels, label_map, raw, path):
    """Raise at the first stimulus row of events.tsv whose onset lies before the first
    sample or after the last: the events table, not the recording, is wrong."""
    duration_s = raw.n_times / raw.info["sfreq"]
    for row, (onset, label) in enumerate(zip(onsets_s, labels), start=1):
        if label not in label_map:
            continue
        if onset < 0:
            where = "before the start of the recording (onsets count seconds from its first sample)"
        elif onset >= duration_s:
            where = (
                f"after the end of the recording {path} ({duration_s:g} s, "
                f"{raw.n_times} samples at {raw.info['sfreq']:g} Hz)"
            )
        else:
            continue
        raise RecordingError(
            f"{events_where}, row {row}: the onset {onset:g} s of {label!r} lies "
            f"{where}; correct the onset in the events.tsv, or check that the "
            "events.tsv belongs to this recording"
        )
