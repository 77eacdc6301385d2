"""The study's sample sheet: read as written, validated against its schema, checked as a
whole (extra columns, sessions, groups, the study design), and the columns the workflow
derives from it (recording ids, a crossover's period and sequence)."""

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd

from mimicry.config.validation import ConfigError
from mimicry.package_data import PARTICIPANTS_SCHEMA


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
    """Check every row against the sample sheet's schema (PARTICIPANTS_SCHEMA); raise
    naming the sheet, the row's line (header = line 1) and its participant."""
    import jsonschema

    from mimicry.config import schema as config_schema

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


def participant_place(sheet, recording, row):
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
