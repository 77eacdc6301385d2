"""The sample sheet as data: fields kept as written, errors naming sheet, line and id."""

import zipfile

import pytest

from mimicry.config.raw_files import check_sources, raw_formats
from mimicry.config.sample_sheet import (
    read_sample_sheet,
    validate_sample_sheet,
    with_design_columns,
)
from mimicry.config.validation import ConfigError
from mimicry.io.download import DownloadError, extract_member

CHECKSUM = "ab" * 32
DOWNLOAD = {"source": {"kind": "download", "archive_url": None}}


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_hash_signs_inside_a_line_are_data_and_only_whole_lines_are_comments(
    tmp_path,
):
    sheet_path = write(
        tmp_path / "sheet.tsv",
        [
            "participant_id\tgroup\turl\tsha256\tmember",
            "# a comment line, skipped",
            f"sub-01\tplacebo\thttp://host/sub-01.edf#v2\t{CHECKSUM}\t",
            "",
            "sub-03\tdrug\t\t\tsub-03.edf#1",
            "\t\t\t\t",  # a spreadsheet's row of separators: skipped like a blank line
        ],
    )
    sheet = read_sample_sheet(sheet_path)

    assert sheet["participant_id"].tolist() == ["sub-01", "sub-03"]
    assert sheet.loc[0, "url"] == "http://host/sub-01.edf#v2"
    assert sheet.loc[0, "sha256"] == CHECKSUM
    assert sheet.loc[1, "member"] == "sub-03.edf#1"
    assert sheet[["url", "sha256"]].iloc[1].isna().all()
    assert list(sheet.attrs["lines"]) == [("sub-01", 3), ("sub-03", 5)]
    validate_sample_sheet(sheet, sheet_path)


def test_member_with_a_hash_sign_is_not_another_member(tmp_path):
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("sub-03.edf", b"another recording")
    destination = tmp_path / "raw" / "sub-03.edf"

    with pytest.raises(DownloadError, match=r"no member 'sub-03.edf#1' \(similar"):
        extract_member(archive, "sub-03.edf#1", destination, participant="sub-03")

    assert not destination.parent.exists() or not any(destination.parent.iterdir())


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "sub-01#x\tplacebo",
            "line 3 (participant sub-01#x): participant_id 'sub-01#x' is not an id",
        ),
        ("sub-02\t", "line 3 (participant sub-02): column 'group' is empty"),
        ("\tplacebo", "line 3 (no participant_id): column 'participant_id' is empty"),
    ],
)
def test_schema_errors_name_sheet_line_and_participant(tmp_path, row, message):
    path = write(tmp_path / "sheet.tsv", ["participant_id\tgroup", "# note", row])
    with pytest.raises(ConfigError) as raised:
        validate_sample_sheet(read_sample_sheet(path), path)
    assert str(raised.value).startswith(f"sample sheet {path}, {message}")


def test_error_in_a_long_sheet_names_its_line_as_the_field_count_check_does(tmp_path):
    rows = [f"sub-{i:04d},placebo,{CHECKSUM}" for i in range(1, 5000)]
    rows[2998] = "sub-2999,placebo,not-a-checksum"  # line 3000 (header = line 1)
    path = write(tmp_path / "sheet.csv", ["participant_id,group,sha256", *rows])

    with pytest.raises(ConfigError) as raised:
        validate_sample_sheet(read_sample_sheet(path), path)
    assert str(raised.value).startswith(
        f"sample sheet {path}, line 3000 (participant sub-2999): column sha256: "
        "'not-a-checksum' does not match"
    )

    # A '#' does not hide the field after it from the field count.
    rows[2998] = "sub-2999,placebo,http://host/a#b,extra"
    write(path, ["participant_id,group,sha256", *rows])
    with pytest.raises(ConfigError, match="line 3000: 4 fields, but the header"):
        read_sample_sheet(path)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ["participant_id\tgroup", '"sub-01\tplacebo'],
            "line 2: unexpected end of data",
        ),
        (["participant_id\tgroup\tgroup"], "column 'group' appears twice"),
        (["participant_id\t\tgroup"], "column 2 has no name"),
        (["# only a comment", "\t"], "is empty"),
    ],
)
def test_malformed_sheets_are_refused_by_line(tmp_path, lines, message):
    path = write(tmp_path / "sheet.tsv", lines)
    with pytest.raises(ConfigError, match=message):
        read_sample_sheet(path)


def test_file_urls_are_refused_before_any_download(tmp_path):
    path = write(
        tmp_path / "sheet.tsv",
        [
            "participant_id\tgroup\tformat\turl",
            "sub-01\tplacebo\ttxt\thttps://host/sub-01.txt",
            "sub-02\tplacebo\ttxt\tfile:///etc/passwd",
        ],
    )
    sheet = read_sample_sheet(path)
    with pytest.raises(ConfigError) as raised:
        check_sources(DOWNLOAD, sheet)
    assert str(raised.value) == (
        f"sample sheet {path}, line 3 (participant sub-02): url file:///etc/passwd has "
        "the scheme 'file'; only http and https urls are downloaded; for files on this "
        "computer, use source.kind local"
    )

    archive = {"source": {"kind": "download", "archive_url": "file:///data/study.zip"}}
    with pytest.raises(ConfigError, match="^source.archive_url: url file:///data"):
        check_sources(archive, sheet)


def test_format_errors_name_the_line_after_the_sheet_is_sorted(tmp_path, quick_config):
    sheet_path = write(
        tmp_path / "sheet.tsv",
        [
            "participant_id\tgroup\tformat",
            "sub-002\tplacebo\tedf",
            "sub-001\tplacebo\ttxt",
        ],
    )
    sheet = read_sample_sheet(sheet_path)
    config = {**quick_config, "source": {**quick_config["source"], "kind": "local"}}
    # As the workflow holds it (workflow/rules/common.smk): indexed and sorted by id.
    sheet = with_design_columns(sheet, config)
    sheet = sheet.set_index("recording", drop=False).sort_index()
    with pytest.raises(
        ConfigError, match=r"sample sheet line 3 \(sub-001\): format txt"
    ):
        raw_formats(sheet, config)
