"""The study's sample sheet and the checks that JSON schemas cannot express."""

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd

from mimicry.package_data import CONFIG_SCHEMA, PARTICIPANTS_SCHEMA
from mimicry.preprocessing import checks
from mimicry.simulate import export_rate_problem, file_rate_hz, simulation_problem


class ConfigError(ValueError):
    """A configuration or sample-sheet problem; the message names the key or row."""


class SheetLines(tuple):
    """Each row's (recording id, line number). pandas deep-copies a frame's attrs
    into every frame or series derived from it (each .loc, each row): this one is
    immutable, so it is shared instead, or 1,000 rows would cost seconds per lookup
    pass at DAG construction."""

    def __deepcopy__(self, memo):
        return self


def read_sample_sheet(path):
    """Read the sample sheet with every field as text, kept as written.

    Comma-separated when the name ends in .csv, tab-separated otherwise. Fields are
    data: a '#' inside a line belongs to its field (a url's fragment, a member's name);
    only a line whose first character is '#' is a comment. Blank lines and lines of
    nothing but separators (spreadsheets leave them at the end) are skipped. Each record
    is one line (a quoted field cannot span lines). An empty field is missing; any other
    field is kept as written (ids like 007 or NA stay text) without surrounding blanks.
    Formats and checksums are lower-cased (EDF is edf). For messages, attrs["path"] holds
    the path and attrs["lines"] each row's (participant_id, line number), the header
    being line 1.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"config key 'participants': sample sheet {path} does not exist"
        )
    separator = "," if path.suffix.lower() == ".csv" else "\t"
    records = _sheet_records(path, separator)
    if not records:
        raise ConfigError(f"sample sheet {path} is empty")
    (header_line, header), rows = records[0], records[1:]
    columns = _sheet_columns(path, header_line, header)
    _check_field_counts(path, separator, header_line, len(columns), rows)
    values = [
        [field.strip() or None for field in fields[: len(columns)]]
        for _, fields in rows
    ]
    sheet = pd.DataFrame(values, columns=columns, dtype="str")
    for column in ("format", "sha256"):
        if column in sheet:
            sheet[column] = sheet[column].str.lower()
    ids = recording_ids(sheet) if "participant_id" in sheet else [None] * len(rows)
    sheet.attrs["lines"] = SheetLines((id_, line) for id_, (line, _) in zip(ids, rows))
    sheet.attrs["header_line"] = header_line
    sheet.attrs["path"] = str(path)
    return sheet


def recording_ids(sheet):
    """Each row's recording id, in sheet order: its participant_id, or with a session
    column `<participant_id>_ses-<session>`. It names the recording's results
    (results/preprocessed/<recording>.parquet)."""
    ids = sheet["participant_id"]
    if "session" not in sheet:
        return ids.tolist()
    return (ids + "_ses-" + sheet["session"].fillna("")).tolist()


def sheet_url(path, recording):
    """The recording's url in the sample sheet at path (the workflow passes only a
    redacted url in params, which are written to benchmarks and metadata)."""
    sheet = read_sample_sheet(path)
    return sheet.loc[[id_ == recording for id_ in recording_ids(sheet)], "url"].item()


def _sheet_records(path, separator):
    """(line number, fields) of every line that is neither a comment nor blank."""
    records = []
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, 1):
            if line.startswith("#") or not line.strip():
                continue
            try:
                fields = next(csv.reader([line], delimiter=separator, strict=True))
            except csv.Error as error:
                raise ConfigError(
                    f"sample sheet {path}, line {number}: {error} (a quoted field must "
                    f"end on its line): {line.rstrip()[:120]!r}"
                ) from None
            if "".join(fields).strip():
                records.append((number, fields))
    return records


def _sheet_columns(path, line, header):
    """The header's column names (one empty name after a trailing separator dropped)."""
    if len(header) > 1 and not header[-1].strip():
        header = header[:-1]
    columns = [name.strip() for name in header]
    for position, name in enumerate(columns, 1):
        if not name:
            raise ConfigError(
                f"sample sheet {path}, line {line} (header): column {position} has no name"
            )
        if columns.index(name) < position - 1:
            raise ConfigError(
                f"sample sheet {path}, line {line} (header): column '{name}' appears twice"
            )
    return columns


def _check_field_counts(path, separator, header_line, n_fields, rows):
    """Raise naming the first line whose field count differs from the header's (one
    empty field after a trailing separator is not counted)."""
    for number, fields in rows:
        trailing = len(fields) == n_fields + 1 and not fields[-1].strip()
        if len(fields) != n_fields and not trailing:
            name = "a tab" if separator == "\t" else f"'{separator}'"
            raise ConfigError(
                f"sample sheet {path}, line {number}: {len(fields)} fields, but the "
                f"header (line {header_line}) has {n_fields}; fields are separated by "
                f"{name} ({'.csv' if separator == ',' else 'any other extension'}): "
                f"{separator.join(fields)[:120]!r}"
            )


def validate_sample_sheet(sheet, path):
    """Check every row against the package's schemas/participants.schema.yaml; raise naming
    the sheet, the row's line (header = line 1) and its participant."""
    import jsonschema

    from mimicry import config_schema

    schema = config_schema.load_schema(PARTICIPANTS_SCHEMA)
    validator = jsonschema.Draft202012Validator(schema)
    for position, record in enumerate(sheet.to_dict("records")):
        present = {key: value for key, value in record.items() if not pd.isna(value)}
        error = jsonschema.exceptions.best_match(validator.iter_errors(present))
        if error is not None:
            raise ConfigError(
                f"{_row_name(sheet, path, position)}: {_sheet_error_text(error, sheet.columns)}"
            )


def _row_name(sheet, path, position):
    """'sample sheet <path>, line <n> (participant <id>)' for the row at position."""
    participant = sheet["participant_id"].iloc[position]
    who = "no participant_id" if pd.isna(participant) else f"participant {participant}"
    return f"sample sheet {path}, {_row_place(sheet, position)} ({who})"


def _row_place(sheet, position):
    """'line <n>' (header = line 1), or 'row <n>' for a sheet without line numbers
    (not read by read_sample_sheet, e.g. a BIDS participants.tsv)."""
    lines = sheet.attrs.get("lines")
    return f"row {position + 1}" if lines is None else f"line {lines[position][1]}"


def _participant_place(sheet, recording, row):
    """'line <n> (<recording>)' from the sheet's line numbers, else 'row <n> (...)'."""
    line = sheet_line(sheet, recording)
    return f"{'row' if line is None else 'line'} {line or row} ({recording})"


def sheet_line(sheet, recording):
    """The sample sheet line of the recording's row (header = line 1), or None."""
    lines = dict(reversed(sheet.attrs.get("lines", [])))
    return lines.get(recording)


def _sheet_error_text(error, columns):
    if error.validator == "required":
        column = error.message.split("'")[1]
        if column in columns:
            return f"column '{column}' is empty; every row needs it"
        return f"the sheet has no column '{column}'; every row needs it"
    column = error.path[0] if error.path else "?"
    if error.validator == "pattern" and column in ("participant_id", "session"):
        return (
            f"{column} '{error.instance}' is not an id: ids are letters, digits, "
            "'_' and '-', starting with a letter or digit (they name files)"
        )
    return f"column {column}: {error.message}"


def raw_formats(sheet, config):
    """Each participant's raw file format, checked against the recording settings.

    The sample sheet's format, else recording.format, else the extension of the
    participant's file (kind local: the file in source.local_dir matching
    source.file_pattern; kind download: its url or member), else edf. The simulated
    study is always EDF. Returns a list in sheet order.
    """
    from mimicry.io.recordings import format_from_extension

    source, recording = config["source"], config["recording"]
    formats = []
    for row, (_, record) in enumerate(sheet.iterrows(), start=1):
        place = _participant_place(sheet, record["recording"], row)
        chosen = record.get("format")
        if source["kind"] == "simulated":
            chosen = "edf"
        elif pd.isna(chosen) or not chosen:
            chosen = recording["format"] and recording["format"].lower()
        if not chosen and source["kind"] == "download":
            name = record.get("member")
            name = record.get("url") if pd.isna(name) else name
            chosen = None if pd.isna(name) else format_from_extension(name)
        if not chosen and source["kind"] == "local":
            chosen = _local_file_format(record, source, place)
        chosen = chosen or "edf"
        _check_recording_format(chosen, config, place)
        formats.append(chosen)
    return formats


def _local_raw_files(record, source):
    """The files in source.local_dir that source.file_pattern names for this
    participant with any extension of a known format (in any case), sorted."""
    from mimicry.io.recordings import format_from_extension

    pattern = Path(raw_file_name(record, source, "*"))
    # An absolute pattern is globbed from the root (Path.glob takes relative ones).
    base = Path(pattern.anchor) if pattern.is_absolute() else Path(source["local_dir"])
    return sorted(
        path
        for path in base.glob(str(pattern.relative_to(pattern.anchor)))
        if format_from_extension(path)
    )


def _local_file_format(record, source, place):
    from mimicry.io.recordings import format_from_extension

    found = _local_raw_files(record, source)
    if len(found) > 1:
        raise ConfigError(
            f"sample sheet {place}: several raw files "
            f"match source.file_pattern in {source['local_dir']}: "
            f"{[str(path) for path in found]}; give the format column"
        )
    return format_from_extension(found[0]) if found else None


def local_raw_paths(sheet, config):
    """Each participant's raw file in source.local_dir (kind local), in sheet order.

    The file named by source.file_pattern, its extension in any case (sub-023.EDF is
    sub-023's edf file); where none exists, the name it should have. An absent
    local_dir, and missing files under source.missing_raw: error, stop the run here,
    naming every missing file; under skip, the participants without a file are
    logged by the workflow and recorded in qc.tsv.
    """
    from mimicry.io.recordings import format_from_extension

    source = config["source"]
    local_dir = Path(source["local_dir"])
    absolute = Path(source["file_pattern"]).is_absolute()
    if not absolute and not local_dir.is_dir():
        raise ConfigError(
            f"source.local_dir '{local_dir}' is not a directory (relative to "
            f"{Path.cwd()}); set source.local_dir to the folder with the raw files"
        )
    paths = []
    for _, record in sheet.iterrows():
        file_format = record["format"]
        found = [
            path
            for path in _local_raw_files(record, source)
            if format_from_extension(path) == file_format
        ]
        if len(found) > 1:
            raise ConfigError(
                f"sample sheet line {sheet_line(sheet, record['recording'])} "
                f"({record['recording']}): {len(found)} {file_format} files match "
                f"source.file_pattern in {local_dir}: {[str(p) for p in found]}; make "
                "the pattern name one file"
            )
        expected = local_dir / raw_file_name(record, source, file_format)
        paths.append(str(found[0] if found else expected))
    missing = [path for path in paths if not Path(path).is_file()]
    if missing and source["missing_raw"] == "error":
        from mimicry.io.recording_types import absence

        where = "" if absolute else f" in source.local_dir {local_dir}"
        listed = [
            path if absence(path) == "does not exist" else f"{path} {absence(path)}"
            for path in missing
        ]
        raise ConfigError(
            f"{len(missing)} of {len(paths)} raw files are missing{where}: "
            f"{', '.join(listed)} (named by source.file_pattern); set "
            "source.missing_raw: skip to go on without those participants (recorded "
            "in qc.tsv)"
        )
    if len(missing) == len(paths):
        raise ConfigError(
            f"source.missing_raw is skip, but none of the {len(paths)} participants "
            f"has a raw file in source.local_dir {local_dir} (e.g. {missing[0]}, "
            "named by source.file_pattern): check source.local_dir and "
            "source.file_pattern"
        )
    return paths


def check_declared_rates(config, sheet, paths):
    """The band-pass edges (preprocess.band_hz, and with the multiverse every value
    of multiverse.axes.band_hz) against the sampling rates the recordings declare.

    paths: participant -> raw file, for the files that exist. Declared rates: the
    simulation's, a text export's recording.text.sampling_rate_hz, and the rate an
    EDF/BDF, BrainVision or AcqKnowledge header gives the configured channels.
    """
    from mimicry.io.recordings import declared_sampling_rate
    from mimicry.io.text_exports import TEXT_DELIMITERS

    declared = {}
    if config["source"]["kind"] == "simulated":
        simulation = config["simulation"]
        key = "export_rate_hz" if simulation["export_rate_hz"] else "sampling_rate_hz"
        origin = f"simulation.{key}"
        declared = {p: (file_rate_hz(simulation), origin) for p in sheet.index}
    text_rate = config["recording"]["text"]["sampling_rate_hz"]
    channels = list(config["channels"].values())
    for participant, path in paths.items():
        file_format = sheet.loc[participant, "format"]
        if file_format in TEXT_DELIMITERS:
            if text_rate is not None:
                declared[participant] = (text_rate, "recording.text.sampling_rate_hz")
            continue
        rate = declared_sampling_rate(path, file_format, channels)
        if rate is not None:
            declared[participant] = (rate, f"{path}'s header")
    problems = list(checks.rate_problems(config["preprocess"]["band_hz"], declared))
    settings = [("preprocess", config["preprocess"])]
    if config["multiverse"]["enabled"]:
        from mimicry.robustness import multiverse

        problems += multiverse.band_rate_problems(config, declared)
        settings += [
            (f"multiverse universe {universe.id}: preprocess", universe.preprocess)
            for universe in multiverse.universes(config)
        ]
    problems += _window_problems(settings, declared)
    if problems:
        raise ConfigError("\n".join(problems))


def _window_problems(settings, declared):
    """Windows that hold no sample at a declared rate, each naming its key and the
    participants (and where their rate is declared). settings: (key prefix,
    preprocess section) pairs; declared: participant -> (rate, origin)."""
    by_rate = {}
    for participant, (rate, origin) in sorted(declared.items()):
        by_rate.setdefault(rate, []).append((participant, origin))
    for rate, recordings in sorted(by_rate.items()):
        origins = {origin for _, origin in recordings}
        if len(origins) == 1:
            names = [participant for participant, _ in recordings]
            suffix = f" ({origins.pop()})"
        else:
            names = [f"{participant} ({origin})" for participant, origin in recordings]
            suffix = ""
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        listed = f"{', '.join(names[:3])}{more}{suffix}"
        for prefix, preprocess in settings:
            for problem in checks.window_problems(preprocess, rate, prefix):
                yield f"{problem}; the rate of {listed}"


def check_shared_recording_files(sheet, paths):
    """Raise when two participants' BrainVision headers name the same data or
    marker file: a renamed set whose header still names another participant's
    files would be analysed as that participant's data.

    paths: participant -> raw file, for the files that exist."""
    from mimicry.io.brainvision import brainvision_files

    owners = {}
    for participant, path in sorted(paths.items()):
        if sheet.loc[participant, "format"] != "vhdr":
            continue
        for key, named in zip(("DataFile", "MarkerFile"), brainvision_files(path)):
            if named is None:
                continue
            other = owners.setdefault(named.resolve(), (participant, path, key))
            if other[0] != participant:
                raise ConfigError(
                    f"{named} is the {other[2]} of both {other[0]} ({other[1]}) and "
                    f"{participant} ({path}): a renamed BrainVision set still names "
                    "the files it was renamed from; set DataFile and MarkerFile in "
                    f"{participant}'s header to its own files"
                )


def raw_file_name(record, source, file_format):
    """The recording's file name inside source.local_dir: source.file_pattern with
    the fields of its sheet row, its recording id and file_format."""
    fields = {key: value for key, value in record.items() if not pd.isna(value)}
    try:
        return source["file_pattern"].format_map(fields | {"format": file_format})
    except KeyError as error:
        raise ConfigError(
            f"source.file_pattern '{source['file_pattern']}' names column "
            f"{error.args[0]}, which is empty in the sample sheet's row of "
            f"{record.get('recording', record['participant_id'])}"
        ) from None


def _check_recording_format(file_format, config, place):
    """Recording settings that this participant's file format cannot honour."""
    from mimicry.io.mne_formats import MNE_FORMATS
    from mimicry.io.recordings import event_source
    from mimicry.io.text_exports import TEXT_DELIMITERS

    recording = config["recording"]
    where = f"sample sheet {place}: format {file_format}"
    if file_format in TEXT_DELIMITERS:
        if not recording["triggers"]:
            raise ConfigError(
                f"{where}: text exports carry no markers; set recording.triggers to the "
                "trigger column(s) that mark stimulus onsets"
            )
        if recording["event_source"] not in (None, "triggers"):
            raise ConfigError(
                f"{where}: recording.event_source '{recording['event_source']}' does "
                "not exist in text exports; events come from recording.triggers"
            )
        delimiter = recording["text"]["delimiter"] or TEXT_DELIMITERS[file_format]
        if recording["text"]["decimal"] == delimiter:
            raise ConfigError(
                f"{where}: recording.text.decimal '{delimiter}' is also the delimiter; "
                "set recording.text.delimiter"
            )
        return
    if file_format == "physio" and recording["triggers"]:
        raise ConfigError(
            f"{where}: BIDS physio events come from the matching *_events.tsv; remove "
            "recording.triggers"
        )
    positions = {m: c for m, c in config["channels"].items() if isinstance(c, int)}
    if positions:
        raise ConfigError(
            f"{where}: channels {positions} are column positions, which only text "
            "exports (csv, tsv, txt) have; give channel names"
        )
    source = event_source(recording, file_format)
    allowed = (
        ("annotations", "stim_channel")
        if file_format in MNE_FORMATS
        else ("annotations", "triggers")
    )
    if source not in allowed:
        raise ConfigError(
            f"{where}: recording.event_source '{source}' is not available for this "
            f"format; use one of {list(allowed)}"
        )


# The sample sheet's own columns; any other column is the study's (age, sex, notes, an
# inclusion flag) and is carried into trials.parquet and cells.parquet as written.
SHEET_COLUMNS = (
    "participant_id",
    "group",
    "session",
    "url",
    "sha256",
    "format",
    "member",
)
# Columns of the workflow's tables (the preprocessing table, trials, cells and qc.tsv,
# the design's period and sequence) and of its participants table (recording, the
# raw file's path), which a sheet column of the same name would overwrite.
RESERVED_COLUMNS = (
    "participant",
    "recording",
    "trial",
    "condition",
    "muscle",
    "bin",
    "t",
    "value",
    "rejected",
    "reason",
    "y",
    "n_trials",
    "kind",
    "count",
    "period",
    "sequence",
    "raw_path",
)
COLUMN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def extra_columns(sheet):
    """The sheet's columns that are the study's, not the workflow's, in sheet order."""
    return [column for column in sheet.columns if column not in SHEET_COLUMNS]


def check_sample_sheet(sheet, config, path):
    """The sheet as a whole: its extra columns, sessions, unique recordings, groups,
    study.design, study.participant_factor and the fields of source.file_pattern.
    Errors name the sheet, the lines and the participant."""
    _check_extra_columns(sheet, path)
    _check_sessions_given(sheet, path)
    _check_unique_recordings(sheet, config, path)
    groups = config["study"]["groups"]
    for position, group in enumerate(sheet["group"]):
        if group not in groups:
            raise ConfigError(
                f"{_row_name(sheet, path, position)}: group '{group}' is not one of "
                f"study.groups {groups}"
            )
    if config["study"]["design"] == "crossover":
        _check_crossover(sheet, groups, path)
    if config["study"]["participant_factor"] is not None:
        _check_participant_factor(sheet, config["study"]["participant_factor"], path)
    if config["source"]["kind"] == "local":
        _check_file_pattern(config["source"]["file_pattern"], sheet.columns)


def _header_place(sheet, path):
    line = sheet.attrs.get("header_line")
    return f"sample sheet {path}, " + (
        "header" if line is None else f"line {line} (header)"
    )


def _check_extra_columns(sheet, path):
    for column in extra_columns(sheet):
        if not COLUMN_NAME.match(column):
            raise ConfigError(
                f"{_header_place(sheet, path)}: column '{column}' is not a name the "
                "tables can carry: letters, digits and '_', starting with a letter "
                f"(the sheet's own columns are {', '.join(SHEET_COLUMNS)})"
            )
        if column in RESERVED_COLUMNS:
            raise ConfigError(
                f"{_header_place(sheet, path)}: column '{column}' is also a column of "
                "the workflow's tables (trials.parquet, cells.parquet, qc.tsv), which "
                "carry the sheet's extra columns; rename it"
            )


def _check_sessions_given(sheet, path):
    if "session" not in sheet:
        return
    for position in np.flatnonzero(sheet["session"].isna().to_numpy()):
        raise ConfigError(
            f"{_row_name(sheet, path, position)}: column 'session' is empty; with a "
            "session column every row needs one"
        )


def _check_unique_recordings(sheet, config, path):
    """One row per participant and session (per participant without sessions); a
    participant with several rows under study.design parallel is told about crossover.
    """
    keys = ["participant_id", "session"] if "session" in sheet else ["participant_id"]
    table = sheet[keys].reset_index(drop=True)
    for position in table.index[table.duplicated()]:
        first = table.index[(table == table.loc[position]).all(axis=1)][0]
        what = "participant_id and session" if len(keys) == 2 else "participant_id"
        raise ConfigError(
            f"{_row_name(sheet, path, position)}: duplicate {what}, first on "
            f"{_row_place(sheet, first)}"
        )
    ids = pd.Series(recording_ids(sheet))
    for position in ids.index[ids.duplicated()]:
        first = ids.index[ids == ids[position]][0]
        raise ConfigError(
            f"{_row_name(sheet, path, position)}: its recording id '{ids[position]}' "
            f"(<participant_id>_ses-<session>) is also that of {_row_place(sheet, first)}"
        )
    if config["study"]["design"] != "parallel":
        return
    participants = sheet["participant_id"].reset_index(drop=True)
    for position in participants.index[participants.duplicated()]:
        first = participants.index[participants == participants[position]][0]
        raise ConfigError(
            f"{_row_name(sheet, path, position)}: a second row of this participant "
            f"(first on {_row_place(sheet, first)}), but study.design is parallel, "
            "one row per participant; for a participant recorded once under each "
            "group, set study.design: crossover"
        )


def _check_crossover(sheet, groups, path):
    """Every participant has every group of study.groups exactly once."""
    if "session" not in sheet:
        raise ConfigError(
            f"sample sheet {path}: study.design is crossover, but the sheet has no "
            "session column; give one row per participant and session, its group the "
            "session's treatment"
        )
    rows = sheet.reset_index(drop=True)
    for participant, positions in rows.groupby(
        "participant_id", sort=True
    ).groups.items():
        found = rows.loc[positions, "group"]
        twice = found[found.duplicated()]
        missing = [group for group in groups if group not in set(found)]
        if len(twice) == 0 and not missing:
            continue
        lines = ", ".join(_row_place(sheet, position) for position in positions)
        problem = (
            f"group '{twice.iloc[0]}' in more than one session"
            if len(twice)
            else f"no session under {', '.join(map(repr, missing))}"
        )
        raise ConfigError(
            f"sample sheet {path}, participant {participant} ({lines}): {problem}; "
            f"study.design crossover needs every participant once under each of "
            f"study.groups {groups}"
        )


def _check_participant_factor(sheet, factor, path):
    """The factor's column exists, its values are levels, constant per participant."""
    column, levels = factor["column"], factor["levels"]
    key = "study.participant_factor.column"
    if column in SHEET_COLUMNS:
        raise ConfigError(
            f"{key} '{column}' is one of the sheet's own columns; name a column of the "
            "study's, such as age_group"
        )
    if column not in sheet:
        raise ConfigError(
            f"{key} '{column}': sample sheet {path} has no such column; its columns "
            f"are {list(sheet.columns)}"
        )
    values = sheet[column].reset_index(drop=True)
    for position, value in values.items():
        if value not in levels:
            raise ConfigError(
                f"{_row_name(sheet, path, position)}: {column} "
                f"{'is empty' if pd.isna(value) else repr(value)}, not one of "
                f"study.participant_factor.levels {levels}"
            )
    participants = sheet["participant_id"].reset_index(drop=True)
    first_value = values.groupby(participants).transform("first")
    for position in values.index[values != first_value]:
        first = values.index[(participants == participants[position])][0]
        raise ConfigError(
            f"{_row_name(sheet, path, position)}: {column} '{values[position]}', but "
            f"'{values[first]}' on {_row_place(sheet, first)}; "
            "study.participant_factor is a participant's, the same in every session"
        )


def with_design_columns(sheet, config):
    """The sheet with each row's recording id, and in a crossover study its period
    (1-based rank of the session among the participant's: numeric order when every
    session of the sheet is a number, else text order) and sequence (the
    participant's groups by period, joined with '-')."""
    sheet = sheet.assign(recording=recording_ids(sheet))
    if config["study"]["design"] != "crossover":
        return sheet
    sessions = sheet["session"]
    numbers = pd.to_numeric(sessions, errors="coerce")
    order = numbers if numbers.notna().all() else sessions
    ranked = sheet.assign(_order=order.to_numpy()).sort_values(
        ["participant_id", "_order"], kind="stable"
    )
    period = ranked.groupby("participant_id", sort=False).cumcount() + 1
    sequence = ranked.groupby("participant_id", sort=False)["group"].agg("-".join)
    return sheet.assign(
        period=period.reindex(sheet.index).astype("int64"),
        sequence=sheet["participant_id"].map(sequence),
    )


def recording_fields(participants, config):
    """What each recording adds to the trials and cells tables, as columns
    (column -> recording -> value, in table order): the participant id where it
    differs from the recording id, the session, in a crossover study period and
    sequence, and the sheet's extra columns. Empty for a parallel-group sheet of
    participant_id and group alone, whose tables keep their columns."""
    columns = []
    if "session" in participants:
        columns += ["participant_id", "session"]
    if config["study"]["design"] == "crossover":
        columns += ["period", "sequence"]
    columns += extra_columns(
        participants.drop(columns=DERIVED_COLUMNS, errors="ignore")
    )
    recordings = participants["recording"].tolist()
    return {
        column: dict(zip(recordings, _plain_values(participants[column])))
        for column in columns
    }


def _plain_values(column):
    """column's values as Python objects (params are written to metadata), None where
    missing."""
    return [None if pd.isna(value) else value for value in column.tolist()]


# Columns the workflow adds to the sheet (recording, design and raw file columns).
DERIVED_COLUMNS = ["recording", "period", "sequence", "raw_path"]


def check_config(config, participant_ids):
    """Cross-key consistency of the configuration."""
    study = config["study"]
    if study["reference_group"] not in study["groups"]:
        raise ConfigError(
            f"study.reference_group '{study['reference_group']}' is not one of "
            f"study.groups {study['groups']}"
        )
    missing_channels = [m for m in study["muscles"] if m not in config["channels"]]
    if missing_channels:
        raise ConfigError(f"channels: no channel name for muscles {missing_channels}")
    unknown_channels = sorted(set(config["channels"]) - set(study["muscles"]))
    if unknown_channels:
        raise ConfigError(f"channels: {unknown_channels} are not in study.muscles")
    if len(study["conditions"]) < 2:
        raise ConfigError(
            f"study.conditions {study['conditions']}: the mimicry contrast needs at "
            "least two conditions"
        )
    contrast = study.get("mimicry_contrast")
    if contrast is not None:
        unknown = [c for c in contrast if c not in study["conditions"]]
        if unknown:
            raise ConfigError(
                f"study.mimicry_contrast: {unknown} not in study.conditions "
                f"{study['conditions']}"
            )
        if contrast[0] == contrast[1]:
            raise ConfigError(
                f"study.mimicry_contrast {contrast} names one condition twice"
            )
    _check_recording(config["recording"], study["conditions"])
    simulated = config["source"]["kind"] == "simulated"
    for problem in checks.setting_problems(
        config["preprocess"], config["simulation"] if simulated else None
    ):
        raise ConfigError(problem)
    if simulated:
        _check_simulation(config["simulation"], study, set(participant_ids))
    if config["multiverse"]["enabled"]:
        _check_multiverse(config)


def _check_multiverse(config):
    from mimicry import config_schema
    from mimicry.robustness import multiverse

    schema = config_schema.load_schema(CONFIG_SCHEMA)
    preprocess_schema = schema["properties"]["preprocess"]
    try:
        problems = list(multiverse.universe_problems(config, preprocess_schema))
    except multiverse.MultiverseConfigError as error:
        raise ConfigError(str(error)) from None
    if problems:
        raise ConfigError("\n".join(problems))


def _check_recording(recording, conditions):
    """Recording settings that contradict each other or the study's conditions."""
    for label, condition in recording["event_labels"].items():
        if condition not in conditions:
            raise ConfigError(
                f"recording.event_labels.{label}: '{condition}' is not one of "
                f"study.conditions {conditions}"
            )
    for name, meaning in recording["triggers"].items():
        mapping = {"": meaning} if isinstance(meaning, str) else meaning
        for level, condition in mapping.items():
            key = f"recording.triggers.{name}" + (f".{level}" if level else "")
            if condition not in conditions:
                raise ConfigError(
                    f"{key}: '{condition}' is not one of study.conditions {conditions}"
                )
            try:
                float(level or 0)
            except ValueError:
                raise ConfigError(
                    f"{key}: the pulse level '{level}' is not a number"
                ) from None
    source = recording["event_source"]
    if recording["triggers"] and source in ("annotations", "stim_channel"):
        raise ConfigError(
            f"recording.triggers is set but recording.event_source is {source}, which "
            "would ignore it; remove one"
        )
    if source == "triggers" and not recording["triggers"]:
        raise ConfigError(
            "recording.event_source is triggers but recording.triggers is empty"
        )
    text = recording["text"]
    if text["header"] and text["column_names"] is not None:
        raise ConfigError(
            "recording.text.column_names names the columns of a headerless file; set "
            "recording.text.header: false, or remove column_names to use the header"
        )


def _check_file_pattern(pattern, columns):
    """The fields of source.file_pattern are the sheet's columns (recording and
    format included)."""
    import string

    known = [*columns, "recording", "format"]
    fields = {field for _, field, _, _ in string.Formatter().parse(pattern) if field}
    unknown = sorted(fields - set(known))
    if unknown:
        raise ConfigError(
            f"source.file_pattern '{pattern}': unknown fields {unknown}; the fields "
            f"are the sample sheet's columns, recording and format: "
            f"{', '.join('{' + name + '}' for name in dict.fromkeys(known))}"
        )


def mimicry_contrast(study):
    """The mimicry contrast's [first, second] conditions: study.mimicry_contrast, else
    the first two of study.conditions."""
    contrast = study.get("mimicry_contrast")
    return list(contrast) if contrast is not None else list(study["conditions"][:2])


def contrast_label(contrast):
    """ "Happy - Angry" for the contrast [Happy, Angry]."""
    first, second = contrast
    return f"{first} - {second}"


# Keys of the study section that only the report's front page reads.
DESCRIPTION_KEYS = ("title", "reference")


def study_settings(study):
    """study without its title and reference, for every step but the report's front
    page: renaming the report must not re-run an analysis."""
    return {key: value for key, value in study.items() if key not in DESCRIPTION_KEYS}


def study_design(study):
    """study_settings without mimicry_contrast, for the steps that never read it:
    changing the contrast must not re-run preprocessing or sampling."""
    return {
        key: value
        for key, value in study_settings(study).items()
        if key != "mimicry_contrast"
    }


def _check_simulation(simulation, study, participant_ids):
    cells = simulation.get("cells", {})
    for muscle in study["muscles"]:
        for condition in study["conditions"]:
            if condition not in cells.get(muscle, {}):
                raise ConfigError(
                    f"simulation.cells.{muscle}.{condition} is missing: the simulated "
                    "study needs a, b, c for every muscle and condition"
                )
    for i, effect in enumerate(simulation["drug_effects"]):
        for key, allowed in (
            ("group", study["groups"]),
            ("muscle", study["muscles"]),
            ("condition", study["conditions"]),
        ):
            if effect[key] not in allowed:
                raise ConfigError(
                    f"simulation.drug_effects[{i}].{key}: '{effect[key]}' is not one "
                    f"of {allowed}"
                )
    for flaw, ids in simulation["flawed_participants"].items():
        unknown = sorted(set(ids) - participant_ids)
        if unknown:
            raise ConfigError(
                f"simulation.flawed_participants.{flaw}: {unknown} are not in the "
                "sample sheet"
            )
    shares = simulation["response_type_shares"]
    if shares["none"] + shares["reverse"] > 1:
        raise ConfigError(
            "simulation.response_type_shares: none + reverse is "
            f"{shares['none'] + shares['reverse']:g}, more than all participants"
        )
    problem = export_rate_problem(simulation) or simulation_problem(simulation, study)
    if problem:
        raise ConfigError(problem)
    if simulation["period_effects"] and study["design"] != "crossover":
        raise ConfigError(
            "simulation.period_effects need study.design: crossover (a period is a "
            "session's place in a participant's order of treatments)"
        )
    window = 1.0 + simulation["response_s"] + 1.0
    if simulation["trial_onset_spacing_s"] < window:
        raise ConfigError(
            f"simulation.trial_onset_spacing_s must be at least {window} s (1 s "
            "baseline + response_s + 1 s jitter)"
        )


def validate_config(config, schema_path):
    """Validate config against the schema in place and fill in its defaults.

    Text spelling a number, boolean or null where the schema wants one becomes that
    value (Snakemake's --config gives nested values as text); unknown keys are named with the closest known
    key; anything else wrong gets snakemake.utils.validate's message.
    """
    from snakemake.utils import validate

    from mimicry import config_schema

    schema = config_schema.load_schema(schema_path)
    config_schema.coerce_scalars(config, schema)
    unknown = config_schema.unknown_key_messages(config, schema)
    if unknown:
        raise ConfigError("\n".join(unknown))
    validate(config, str(schema_path))


def load_config(*paths, allow_yte=False):
    """The configuration a workflow run with these config files sees, defaults filled.

    For code outside Snakemake (tests, benchmarks); the workflow itself validates in
    workflow/rules/common.smk. A YTE template among paths is refused (YteRefused)
    unless allow_yte.
    """
    from snakemake.utils import update_config

    from mimicry.config_files import read_config_file

    config = {}
    for path in paths:
        update_config(config, read_config_file(path, allow_yte))
    validate_config(config, CONFIG_SCHEMA)
    return config


def check_sources(config, sheet):
    """Every participant has what the configured source needs to find its raw file."""
    source = config["source"]
    if source["kind"] != "download":
        return
    from mimicry.io.download import scheme_problem

    archive = source["archive_url"] is not None
    local = "; for files on this computer, use source.kind local"
    if archive and (problem := scheme_problem(source["archive_url"])):
        raise ConfigError(f"source.archive_url: {problem}{local}")
    needed = "member" if archive else "url"
    for _, record in sheet.iterrows():
        participant = record["participant_id"]
        where = (
            f"sample sheet {sheet.attrs['path']}, line "
            f"{sheet_line(sheet, participant)} (participant {participant})"
        )
        if pd.isna(record.get(needed)):
            raise ConfigError(
                f"{where}: no '{needed}', which source.kind download needs"
                f"{' with source.archive_url' if archive else ''}"
            )
        if not archive and (problem := scheme_problem(record["url"])):
            raise ConfigError(f"{where}: {problem}{local}")
        if record["format"] in ("vhdr", "physio"):
            raise ConfigError(
                f"sample sheet: {participant} is {record['format']}, several files "
                "that one url cannot carry; use source.kind local for it"
            )
