"""Sample sheets of sessions and designs, read from real files: one row per recording,
the study's own columns carried, crossover and parallel designs and the participant
factor checked at start with errors naming the sheet, its lines and the participant."""

import copy
import re

import pytest
import yaml

from mimicry import aggregate
from mimicry.config.sample_sheet import (
    RESERVED_COLUMNS,
    check_sample_sheet,
    read_sample_sheet,
    recording_fields,
    validate_sample_sheet,
    with_design_columns,
)
from mimicry.config.validation import ConfigError
from mimicry.package_data import PARTICIPANTS_SCHEMA
from mimicry.preprocessing import preprocess


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def configured(
    quick_config, design="parallel", factor=None, pattern=None, kind="local"
):
    config = copy.deepcopy(quick_config)
    config["study"] |= {
        "groups": ["placebo", "drug"],
        "reference_group": "placebo",
        "design": design,
        "participant_factor": factor,
    }
    config["source"] |= {"kind": kind}
    if pattern is not None:
        config["source"]["file_pattern"] = pattern
    return config


def checked(path, config):
    """The sheet as the workflow holds it after its start-up checks."""
    sheet = read_sample_sheet(path)
    validate_sample_sheet(sheet, path)
    check_sample_sheet(sheet, config, path)
    return with_design_columns(sheet, config)


CROSSOVER = [
    "participant_id\tsession\tgroup\tage_group\tnotes",
    "09\t1\tplacebo\tyoung\t",
    "09\t2\tdrug\tyoung\tslept badly",
    "10\t2\tplacebo\told\t",
    "10\t1\tdrug\told\t",
]


def test_a_crossover_sheet_gives_recordings_periods_and_sequences(
    tmp_path, quick_config
):
    path = write(tmp_path / "sheet.tsv", CROSSOVER)
    config = configured(
        quick_config,
        "crossover",
        {"column": "age_group", "levels": ["young", "old"]},
        "sub-{participant_id}/ses-{session}/func/sub-{participant_id}_*.tsv",
    )
    sheet = checked(path, config)

    assert sheet["recording"].tolist() == [
        "09_ses-1",
        "09_ses-2",
        "10_ses-2",
        "10_ses-1",
    ]
    assert sheet["period"].tolist() == [1, 2, 2, 1]
    assert sheet["sequence"].tolist() == [
        "placebo-drug",
        "placebo-drug",
        "drug-placebo",
        "drug-placebo",
    ]
    # Lines are found by recording, the header being line 1.
    assert list(sheet.attrs["lines"])[2] == ("10_ses-2", 4)
    fields = recording_fields(sheet.set_index("recording", drop=False), config)
    assert list(fields) == [
        "participant_id",
        "session",
        "period",
        "sequence",
        "age_group",
        "notes",
    ]
    assert fields["notes"] == {
        "09_ses-1": None,
        "09_ses-2": "slept badly",
        "10_ses-1": None,
        "10_ses-2": None,
    }
    assert fields["period"]["10_ses-1"] == 1
    # Written to .snakemake/metadata as params: plain Python values only.
    yaml.safe_dump(fields)


def test_sessions_are_ordered_as_numbers_when_all_are_numbers(tmp_path, quick_config):
    config = configured(quick_config, "crossover")
    numbers = write(
        tmp_path / "numbers.tsv",
        ["participant_id\tsession\tgroup", "a\t10\tplacebo", "a\t9\tdrug"],
    )
    assert checked(numbers, config)["period"].tolist() == [2, 1]
    labels = write(
        tmp_path / "labels.tsv",
        ["participant_id\tsession\tgroup", "a\t10\tplacebo", "a\tpre\tdrug"],
    )
    assert checked(labels, config)["period"].tolist() == [1, 2]


def test_a_parallel_sheet_of_ids_and_groups_adds_nothing_to_the_tables(
    tmp_path, quick_config
):
    plain = write(
        tmp_path / "plain.tsv",
        ["participant_id\tgroup\turl", "sub-1\tplacebo\t", "sub-2\tdrug\t"],
    )
    config = configured(quick_config)
    sheet = checked(plain, config)
    assert sheet["recording"].tolist() == ["sub-1", "sub-2"]
    assert recording_fields(sheet, config) == {}
    extra = write(
        tmp_path / "extra.tsv",
        ["participant_id\tgroup\tage", "sub-1\tplacebo\t31", "sub-2\tdrug\t"],
    )
    sheet = checked(extra, config)
    assert recording_fields(sheet, config) == {"age": {"sub-1": "31", "sub-2": None}}


@pytest.mark.parametrize(
    ("design", "rows", "message"),
    [
        (
            "crossover",
            ["09\t1\tplacebo", "10\t1\tdrug", "09\t1\tdrug"],
            r"line 4 \(participant 09\): duplicate participant_id and session, "
            r"first on line 2",
        ),
        (
            "parallel",
            ["09\t1\tplacebo", "09\t2\tdrug"],
            r"line 3 \(participant 09\): a second row of this participant \(first on "
            r"line 2\), but study.design is parallel.*set study.design: crossover",
        ),
        (
            "crossover",
            ["09\t1\tplacebo", "09\t2\tplacebo", "10\t1\tplacebo", "10\t2\tdrug"],
            r"participant 09 \(line 2, line 3\): group 'placebo' in more than one "
            r"session; study.design crossover needs every participant once under "
            r"each of study.groups",
        ),
        (
            "crossover",
            ["09\t1\tplacebo", "09\t2\tdrug", "10\t1\tplacebo"],
            r"participant 10 \(line 4\): no session under 'drug'",
        ),
        (
            "parallel",
            ["09\t\tplacebo"],
            r"line 2 \(participant 09\): column 'session' is empty; with a session "
            "column every row needs one",
        ),
    ],
)
def test_sessions_and_designs_are_checked_naming_lines_and_participant(
    tmp_path, quick_config, design, rows, message
):
    path = write(tmp_path / "sheet.tsv", ["participant_id\tsession\tgroup", *rows])
    with pytest.raises(ConfigError, match=f"sample sheet {path}.*{message}"):
        checked(path, configured(quick_config, design))


def test_a_crossover_needs_a_session_column(tmp_path, quick_config):
    path = write(
        tmp_path / "sheet.tsv", ["participant_id\tgroup", "09\tplacebo", "10\tdrug"]
    )
    with pytest.raises(ConfigError, match="crossover, but the sheet has no session"):
        checked(path, configured(quick_config, "crossover"))


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("trial", "column 'trial' is also a column of the workflow's tables"),
        ("period", "column 'period' is also a column of the workflow's tables"),
        ("age group", "column 'age group' is not a name the tables can carry"),
        ("2nd_visit", "column '2nd_visit' is not a name"),
    ],
)
def test_extra_columns_must_fit_into_the_tables(
    tmp_path, quick_config, column, message
):
    path = write(
        tmp_path / "sheet.tsv",
        ["# a comment", f"participant_id\tgroup\t{column}", "09\tplacebo\tx"],
    )
    with pytest.raises(
        ConfigError, match=f"sample sheet {path}, line 2 \\(header\\): {message}"
    ):
        checked(path, configured(quick_config))


@pytest.mark.parametrize(
    ("factor", "message"),
    [
        (
            {"column": "age", "levels": ["young", "old"]},
            r"study.participant_factor.column 'age': sample sheet .* has no such "
            r"column; its columns are \['participant_id', 'session', 'group', "
            r"'age_group'\]",
        ),
        (
            {"column": "session", "levels": ["1", "2"]},
            "'session' is one of the sheet's own columns",
        ),
        (
            {"column": "age_group", "levels": ["young", "middle"]},
            r"line 4 \(participant 10\): age_group 'old', not one of "
            r"study.participant_factor.levels \['young', 'middle'\]",
        ),
    ],
)
def test_the_participant_factor_is_a_sheet_column_of_known_levels(
    tmp_path, quick_config, factor, message
):
    path = write(tmp_path / "sheet.tsv", [r.rsplit("\t", 1)[0] for r in CROSSOVER])
    with pytest.raises(ConfigError, match=message):
        checked(path, configured(quick_config, "crossover", factor))


def test_the_participant_factor_is_the_same_in_every_session(tmp_path, quick_config):
    rows = [r.rsplit("\t", 1)[0] for r in CROSSOVER]
    rows[2] = rows[2].replace("young", "old")
    path = write(tmp_path / "sheet.tsv", rows)
    factor = {"column": "age_group", "levels": ["young", "old"]}
    with pytest.raises(
        ConfigError,
        match=r"line 3 \(participant 09\): age_group 'old', but 'young' on line 2",
    ):
        checked(path, configured(quick_config, "crossover", factor))


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (
            "{participant_id}_{visit}.txt",
            r"unknown fields \['visit'\]; the fields are the sample sheet's columns, "
            r"recording and format: \{participant_id\}, \{session\}, \{group\}, "
            r"\{age_group\}, \{notes\}, \{recording\}, \{format\}",
        ),
    ],
)
def test_file_pattern_fields_are_the_sheets_columns(
    tmp_path, quick_config, pattern, message
):
    path = write(tmp_path / "sheet.tsv", CROSSOVER)
    with pytest.raises(ConfigError, match=message):
        checked(path, configured(quick_config, "crossover", pattern=pattern))


def test_reserved_columns_are_the_tables_columns_and_documented():
    tables = {field.name for field in preprocess.TABLE_SCHEMA}
    tables |= {*aggregate.CELL_KEYS, "y", "n_trials", *aggregate.QC_COLUMNS}
    # group is the sheet's own column, which the tables carry.
    assert tables - {"group"} <= set(RESERVED_COLUMNS)
    schema = yaml.safe_load(PARTICIPANTS_SCHEMA.read_text())
    (listed,) = re.findall(
        r"not a column of those tables \(([^)]*)\)", schema["description"]
    )
    assert listed.split(", ") == list(RESERVED_COLUMNS)
