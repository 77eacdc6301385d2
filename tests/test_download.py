"""The download layer against a real HTTP server on 127.0.0.1, real files, real zips."""

import email.utils
import hashlib
import json
import logging
import os
import socket
import subprocess
import time
import zipfile

import edfio
import numpy as np
import pytest
from helpers.http_server import Route, ScriptedHTTPServer

from helpers.devtools import job_counts, run_snakemake
from mimicry.io.download import (
    PROGRESS_INTERVAL_BYTES,
    DownloadError,
    download,
    extract_member,
    marker_path,
    redact_url,
    sha256_of,
)

PARTICIPANT = "sub-007"
# Fast retries: the tests exercise the retry logic, not the waiting.
FAST = {"backoff_s": 0.01, "timeout_s": 5.0}


@pytest.fixture
def server():
    with ScriptedHTTPServer() as running:
        yield running


@pytest.fixture
def body():
    return os.urandom(300_000)


@pytest.fixture
def destination(tmp_path):
    return tmp_path / "raw" / f"{PARTICIPANT}.edf"


def digest(data):
    return hashlib.sha256(data).hexdigest()


def assert_nothing_published(destination):
    """Neither the destination, its marker nor any temporary file exists after a failure."""
    assert not destination.exists()
    if destination.parent.exists():
        assert list(destination.parent.iterdir()) == []


def test_sha256_of_matches_the_standard_test_vector(tmp_path):
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert sha256_of(path) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_download_verifies_checksum_and_publishes_the_file(server, body, destination):
    server.routes["/sub-007.edf"] = Route(body)

    result = download(
        server.url("/sub-007.edf"),
        destination,
        sha256=digest(body),
        participant=PARTICIPANT,
        **FAST,
    )

    assert result == destination
    assert destination.read_bytes() == body
    assert sorted(destination.parent.iterdir()) == [
        destination,
        marker_path(destination),
    ]
    marker = json.loads(marker_path(destination).read_text())
    assert marker["sha256"] == digest(body)
    assert marker["verified"] == "sha256 verified"
    assert server.requests_for("/sub-007.edf")[0].range is None


def test_checksum_comparison_ignores_letter_case(server, body, destination):
    server.routes["/sub-007.edf"] = Route(body)
    download(
        server.url("/sub-007.edf"), destination, sha256=digest(body).upper(), **FAST
    )
    assert destination.read_bytes() == body


def test_checksum_mismatch_names_everything_and_leaves_nothing(
    server, body, destination
):
    server.routes["/sub-007.edf"] = Route(body)
    url = server.url("/sub-007.edf")
    expected = digest(b"another recording")

    with pytest.raises(DownloadError) as raised:
        download(url, destination, sha256=expected, participant=PARTICIPANT, **FAST)

    message = str(raised.value)
    for part in (PARTICIPANT, url, expected, digest(body)):
        assert part in message
    assert_nothing_published(destination)


def test_not_found_fails_at_once_naming_participant_and_url(server, destination):
    url = server.url("/missing.edf")

    with pytest.raises(DownloadError, match="404") as raised:
        download(url, destination, participant=PARTICIPANT, attempts=5, **FAST)

    assert PARTICIPANT in str(raised.value)
    assert url in str(raised.value)
    assert len(server.requests_for("/missing.edf")) == 1
    assert_nothing_published(destination)


def test_server_errors_are_retried_until_the_file_arrives(server, body, destination):
    server.routes["/sub-007.edf"] = Route(body, failures=2)

    download(
        server.url("/sub-007.edf"),
        destination,
        sha256=digest(body),
        attempts=3,
        **FAST,
    )

    assert destination.read_bytes() == body
    assert len(server.requests_for("/sub-007.edf")) == 3


def test_retries_wait_exponentially_longer(server, body, destination):
    server.routes["/sub-007.edf"] = Route(body, failures=3)

    download(
        server.url("/sub-007.edf"),
        destination,
        sha256=digest(body),
        attempts=4,
        backoff_s=0.05,
    )

    arrivals = [r.arrived_s for r in server.requests_for("/sub-007.edf")]
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    assert len(gaps) == 3
    for gap_s, minimum_s in zip(gaps, (0.05, 0.1, 0.2)):
        assert gap_s >= minimum_s


def test_persistent_server_errors_exhaust_the_attempts(server, body, destination):
    server.routes["/sub-007.edf"] = Route(body, failures=10)
    url = server.url("/sub-007.edf")

    with pytest.raises(DownloadError, match="after 3 attempt") as raised:
        download(url, destination, participant=PARTICIPANT, attempts=3, **FAST)

    assert PARTICIPANT in str(raised.value)
    assert url in str(raised.value)
    assert "500" in str(raised.value)
    assert len(server.requests_for("/sub-007.edf")) == 3
    assert_nothing_published(destination)


def test_cut_transfer_resumes_with_a_range_request(server, body, destination):
    server.routes["/sub-007.edf"] = Route(body, cuts=1)

    download(server.url("/sub-007.edf"), destination, sha256=digest(body), **FAST)

    assert destination.read_bytes() == body
    assert sha256_of(destination) == digest(body)
    first, resumed = server.requests_for("/sub-007.edf")
    assert first.range is None
    assert resumed.range == f"bytes={len(body) // 2}-"


def test_cut_transfer_restarts_from_zero_when_ranges_are_ignored(
    server, body, destination
):
    server.routes["/sub-007.edf"] = Route(body, cuts=1, honour_range=False)

    download(server.url("/sub-007.edf"), destination, sha256=digest(body), **FAST)

    assert destination.read_bytes() == body
    # The client asked to resume, got the whole body (200) and replaced its partial.
    assert server.requests_for("/sub-007.edf")[1].range == f"bytes={len(body) // 2}-"


def test_stalled_transfer_times_out_and_resumes(server, body, destination):
    server.routes["/sub-007.edf"] = Route(body, stalls=1, stall_s=2.0)

    download(
        server.url("/sub-007.edf"),
        destination,
        sha256=digest(body),
        backoff_s=0.01,
        timeout_s=0.2,
    )

    assert destination.read_bytes() == body
    assert server.requests_for("/sub-007.edf")[1].range == f"bytes={len(body) // 2}-"


def test_interrupted_download_never_leaves_the_destination(server, body, destination):
    server.routes["/sub-007.edf"] = Route(body, cuts=5)
    url = server.url("/sub-007.edf")

    with pytest.raises(DownloadError, match="closed after") as raised:
        download(url, destination, participant=PARTICIPANT, attempts=2, **FAST)

    assert PARTICIPANT in str(raised.value)
    assert len(server.requests_for("/sub-007.edf")) == 2
    assert_nothing_published(destination)


def test_failed_download_keeps_an_earlier_complete_file(server, body, destination):
    destination.parent.mkdir()
    destination.write_bytes(b"earlier complete download")
    server.routes["/sub-007.edf"] = Route(body, cuts=5)

    with pytest.raises(DownloadError):
        download(server.url("/sub-007.edf"), destination, attempts=2, **FAST)

    assert destination.read_bytes() == b"earlier complete download"
    assert list(destination.parent.iterdir()) == [destination]


def test_refused_connection_is_retried_then_reported(destination):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{closed_port}/sub-007.edf"

    with pytest.raises(DownloadError, match="after 2 attempt") as raised:
        download(url, destination, participant=PARTICIPANT, attempts=2, **FAST)

    assert url in str(raised.value)
    assert_nothing_published(destination)


@pytest.mark.parametrize(
    ("url", "sha256", "complaint"),
    [
        ("ftp://example.org/sub-007.edf", None, "scheme 'ftp'"),
        ("file:///etc/passwd", None, "scheme 'file'; only http and https"),
        ("127.0.0.1/sub-007.edf", None, "has no scheme"),
        ("http:///sub-007.edf", None, "has no host"),
        ("SERVER/sub-007.edf", "d41d8cd98f00b204e9800998ecf8427e", "64 hexadecimal"),
    ],
)
def test_bad_requests_fail_before_any_transfer(
    url, sha256, complaint, server, body, destination
):
    server.routes["/sub-007.edf"] = Route(body)
    url = url.replace("SERVER", server.url(""))

    with pytest.raises(DownloadError, match=complaint) as raised:
        download(url, destination, sha256=sha256, participant=PARTICIPANT, **FAST)

    assert PARTICIPANT in str(raised.value)
    assert server.requests == []
    assert_nothing_published(destination)


def test_progress_is_logged_with_bytes_and_rate(server, destination, caplog):
    large_body = os.urandom(PROGRESS_INTERVAL_BYTES * 5 // 2)
    server.routes["/sub-007.edf"] = Route(large_body)

    with caplog.at_level(logging.INFO, logger="mimicry.io.download"):
        download(
            server.url("/sub-007.edf"),
            destination,
            sha256=digest(large_body),
            participant=PARTICIPANT,
            **FAST,
        )

    messages = [record.getMessage() for record in caplog.records]
    progress = [m for m in messages if "MB of" in m]
    summary = messages[-1]
    assert len(progress) == 2
    assert all("MB/s" in line for line in progress)
    assert PARTICIPANT in summary
    assert f"{len(large_body) / 1e6:.1f} MB" in summary
    assert "MB/s" in summary
    assert "sha256 verified" in summary


@pytest.fixture
def archive_bytes():
    """A study archive as repositories serve them: a folder, a file per participant."""
    return {
        "study/sub-001.edf": os.urandom(50_000),
        "study/sub-002.edf": os.urandom(60_000),
    }


@pytest.fixture
def archive(tmp_path, archive_bytes):
    path = tmp_path / "study.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, data in archive_bytes.items():
            bundle.writestr(name, data)
    return path


def test_archive_is_downloaded_then_members_extracted(
    server, archive, archive_bytes, tmp_path
):
    server.routes["/study.zip"] = Route(archive.read_bytes(), cuts=1)
    downloaded = download(
        server.url("/study.zip"),
        tmp_path / "downloads" / "study.zip",
        sha256=sha256_of(archive),
        **FAST,
    )

    for participant in ("sub-001", "sub-002"):
        member = f"study/{participant}.edf"
        target = tmp_path / "raw" / f"{participant}.edf"
        extract_member(
            downloaded,
            member,
            target,
            sha256=digest(archive_bytes[member]),
            participant=participant,
        )
        assert target.read_bytes() == archive_bytes[member]
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == [
        "sub-001.edf",
        "sub-001.edf.verified.json",
        "sub-002.edf",
        "sub-002.edf.verified.json",
    ]


def test_participant_missing_from_archive_is_named(archive, tmp_path):
    destination = tmp_path / "raw" / "sub-003.edf"

    with pytest.raises(DownloadError) as raised:
        extract_member(archive, "study/sub-003.edf", destination, participant="sub-003")

    message = str(raised.value)
    for part in ("sub-003", str(archive), "'study/sub-003.edf'", "not in archive"):
        assert part in message
    assert "similar members: study/sub-00" in message
    assert_nothing_published(destination)


def test_member_checksum_mismatch_discards_the_member(archive, tmp_path):
    destination = tmp_path / "raw" / "sub-001.edf"
    expected = digest(b"another recording")

    with pytest.raises(DownloadError, match="sha256 mismatch") as raised:
        extract_member(
            archive,
            "study/sub-001.edf",
            destination,
            sha256=expected,
            participant="sub-001",
        )

    for part in ("sub-001", str(archive), "study/sub-001.edf", expected):
        assert part in str(raised.value)
    assert_nothing_published(destination)


def test_unreadable_archive_is_a_download_error(tmp_path):
    not_a_zip = tmp_path / "study.zip"
    not_a_zip.write_bytes(b"<html>login required</html>")
    destination = tmp_path / "raw" / "sub-001.edf"

    with pytest.raises(DownloadError, match="not a zip file") as raised:
        extract_member(
            not_a_zip, "study/sub-001.edf", destination, participant="sub-001"
        )

    assert str(not_a_zip) in str(raised.value)
    assert_nothing_published(destination)


def write_biosignal(path, kind="edf", seconds=60):
    """A real EDF+ or BDF+ file (edfio): two signals at different rates, annotations."""
    signal_type, file_type = (
        (edfio.EdfSignal, edfio.Edf) if kind == "edf" else (edfio.BdfSignal, edfio.Bdf)
    )
    rng = np.random.default_rng(7)
    signals = [
        signal_type(
            rng.normal(0, 50, rate * seconds),
            sampling_frequency=rate,
            label=label,
            physical_range=(-500, 500),
        )
        for label, rate in (("EMG_ZM", 1000), ("EMG_CS", 500))
    ]
    annotations = [
        edfio.EdfAnnotation(onset, None, "AngryToHappy") for onset in (5, 15)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    file_type(signals, annotations=annotations).write(path)
    return path


@pytest.fixture
def recording(tmp_path):
    return write_biosignal(tmp_path / "source" / "sub-007.edf").read_bytes()


def assert_not_trusted(destination):
    """Nothing under the final name or its marker, so a re-run fetches it again."""
    assert not destination.exists()
    assert not marker_path(destination).exists()
    assert not list(destination.parent.glob("*.part"))


@pytest.mark.parametrize("kind", ["edf", "bdf"])
def test_complete_recording_without_sha256_is_verified_by_its_header(
    kind, server, tmp_path
):
    body = write_biosignal(tmp_path / f"source.{kind}", kind).read_bytes()
    server.routes[f"/sub-007.{kind}"] = Route(body, content_length=False)
    destination = tmp_path / "raw" / f"sub-007.{kind}"

    download(server.url(f"/sub-007.{kind}"), destination, **FAST)

    assert destination.read_bytes() == body
    marker = json.loads(marker_path(destination).read_text())
    assert marker["size"] == len(body)
    assert marker["sha256"] == digest(body)
    assert f"{kind.upper()} header's 60 records match the size" in marker["verified"]


def test_cut_body_without_content_length_is_not_published(
    server, recording, destination
):
    server.routes["/sub-007.edf"] = Route(recording, cuts=1, content_length=False)
    url = server.url("/sub-007.edf")

    with pytest.raises(DownloadError, match="is truncated") as raised:
        download(url, destination, participant=PARTICIPANT, **FAST)

    message = str(raised.value)
    announced = f"{len(recording) // 2} bytes, but its EDF header announces"
    for part in (PARTICIPANT, url, announced, str(len(recording)), "sha256"):
        assert part in message
    assert_not_trusted(destination)
    # The next run fetches it again and publishes the whole file.
    download(url, destination, participant=PARTICIPANT, **FAST)
    assert destination.read_bytes() == recording


@pytest.mark.parametrize("kind", ["edf", "bdf"])
def test_truncated_or_padded_recording_is_not_published(kind, server, tmp_path):
    body = write_biosignal(tmp_path / f"source.{kind}", kind).read_bytes()
    destination = tmp_path / "raw" / f"sub-007.{kind}"
    for broken, complaint in [
        (body[:-1000], "is truncated"),
        (body + b"\0" * 10, "is longer than its header says"),
        (body[:100], "shorter than an"),
        (body[:236] + b"-1      " + body[244:], "-1 data records"),
    ]:
        server.routes[f"/broken.{kind}"] = Route(broken)
        url = server.url(f"/broken.{kind}")
        with pytest.raises(DownloadError, match=complaint) as raised:
            download(url, destination, participant=PARTICIPANT, **FAST)
        assert url in str(raised.value)
        assert_not_trusted(destination)


@pytest.mark.parametrize(
    ("body", "content_type", "name"),
    [
        (b"<!DOCTYPE html>\n<title>Sign in</title>", "text/html", "sub-007.edf"),
        (b"\n  <HTML><body>Quota exceeded</body></HTML>", "text/plain", "sub-007.csv"),
        (b"time,ZM\n0,1\n", "text/html; charset=utf-8", "sub-007.csv"),
    ],
)
def test_html_page_is_never_published_as_a_recording(
    body, content_type, name, server, tmp_path
):
    server.routes["/download"] = Route(body, content_type=content_type)
    url = server.url("/download")
    destination = tmp_path / "raw" / name

    with pytest.raises(DownloadError, match="HTML page") as raised:
        download(url, destination, participant=PARTICIPANT, **FAST)

    assert PARTICIPANT in str(raised.value) and url in str(raised.value)
    assert_not_trusted(destination)


def test_text_export_without_sha256_is_published_when_not_html(server, tmp_path):
    body = b"time,ZM,CS\n0.000,1.5,-2.0\n0.001,1.2,-1.1\n"
    server.routes["/sub-007.csv"] = Route(body, content_type="text/csv")
    destination = tmp_path / "raw" / "sub-007.csv"

    download(server.url("/sub-007.csv"), destination, **FAST)

    assert destination.read_bytes() == body
    verified = json.loads(marker_path(destination).read_text())["verified"]
    assert "no structure check for '.csv' files" in verified


def test_html_page_against_a_sha256_is_named_in_the_mismatch(server, destination):
    server.routes["/sub-007.edf"] = Route(b"<html>Not logged in</html>")

    with pytest.raises(DownloadError, match="sha256 mismatch.*HTML page"):
        download(
            server.url("/sub-007.edf"),
            destination,
            sha256=digest(b"the recording"),
            **FAST,
        )

    assert_not_trusted(destination)


def test_truncated_archive_without_sha256_is_not_published(server, archive, tmp_path):
    server.routes["/study.zip"] = Route(
        archive.read_bytes(), cuts=1, content_length=False
    )
    url = server.url("/study.zip")
    destination = tmp_path / "download" / "study.zip"

    with pytest.raises(DownloadError, match="not a readable zip archive") as raised:
        download(url, destination, participant="study archive", **FAST)

    assert "study archive" in str(raised.value) and url in str(raised.value)
    assert_not_trusted(destination)


def damage_member(archive, member, share):
    """Flip bytes share of the way into member's compressed data, as a bad copy would."""
    with zipfile.ZipFile(archive) as bundle:
        info = bundle.getinfo(member)
    data = bytearray(archive.read_bytes())
    # The local header: 30 bytes, then the name and extra field, then the data.
    header = info.header_offset
    name_length = little_endian(data[header + 26 : header + 28])
    extra_length = little_endian(data[header + 28 : header + 30])
    start = header + 30 + name_length + extra_length
    at = start + int(info.compress_size * share)
    data[at : at + 16] = bytes(b ^ 0xFF for b in data[at : at + 16])
    archive.write_bytes(bytes(data))


def little_endian(raw):
    return int.from_bytes(raw, "little")


@pytest.mark.parametrize(
    ("share", "complaint"),
    # Broken block headers make zlib fail; broken data inside a block fails the CRC.
    [(0.0, "while decompressing data"), (0.5, "Bad CRC-32")],
)
def test_damaged_member_is_a_download_error_naming_member_and_archive(
    share, complaint, archive, server, tmp_path
):
    damage_member(archive, "study/sub-002.edf", share)
    destination = tmp_path / "raw" / "sub-002.edf"

    with pytest.raises(DownloadError, match=complaint) as raised:
        extract_member(archive, "study/sub-002.edf", destination, participant="sub-002")

    for part in ("sub-002", "'study/sub-002.edf'", str(archive), "damaged"):
        assert part in str(raised.value)
    assert_not_trusted(destination)

    # Downloading that archive without a sha256 reads every member and refuses it.
    copy = tmp_path / "download" / "study.zip"
    server.routes["/study.zip"] = Route(archive.read_bytes())
    with pytest.raises(DownloadError, match="member 'study/sub-002.edf'"):
        download(server.url("/study.zip"), copy, participant="study archive", **FAST)
    assert_not_trusted(copy)


def test_too_many_requests_is_retried_after_the_time_asked(server, body, destination):
    server.routes["/sub-007.edf"] = Route(body, throttles=1, retry_after="1")

    download(server.url("/sub-007.edf"), destination, sha256=digest(body), **FAST)

    first, second = server.requests_for("/sub-007.edf")
    assert second.arrived_s - first.arrived_s >= 1.0
    assert destination.read_bytes() == body


def test_retry_after_as_a_date_is_honoured(server, body, destination):
    # A date already past means at once, instead of the 30 s backoff.
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    server.routes["/sub-007.edf"] = Route(body, throttles=1, retry_after=past)

    download(
        server.url("/sub-007.edf"),
        destination,
        sha256=digest(body),
        backoff_s=30.0,
        timeout_s=5.0,
    )

    first, second = server.requests_for("/sub-007.edf")
    assert second.arrived_s - first.arrived_s < 5.0


def test_too_many_requests_without_retry_after_backs_off(server, body, destination):
    server.routes["/sub-007.edf"] = Route(body, throttles=2)

    download(server.url("/sub-007.edf"), destination, sha256=digest(body), **FAST)

    assert len(server.requests_for("/sub-007.edf")) == 3


def test_retry_after_beyond_the_backoff_limit_fails_at_once(server, body, destination):
    server.routes["/sub-007.edf"] = Route(body, throttles=1, retry_after="120")
    url = server.url("/sub-007.edf")

    with pytest.raises(DownloadError) as raised:
        download(url, destination, participant=PARTICIPANT, max_backoff_s=5.0, **FAST)

    message = str(raised.value)
    for part in (PARTICIPANT, url, "429", "120 s", "download.max_backoff_s"):
        assert part in message
    assert len(server.requests_for("/sub-007.edf")) == 1
    assert_not_trusted(destination)


def test_backoff_doubles_only_up_to_its_limit(server, body, destination):
    server.routes["/sub-007.edf"] = Route(body, failures=2)

    download(
        server.url("/sub-007.edf"),
        destination,
        sha256=digest(body),
        backoff_s=30.0,
        max_backoff_s=0.05,
        timeout_s=5.0,
    )

    arrivals = [r.arrived_s for r in server.requests_for("/sub-007.edf")]
    assert len(arrivals) == 3
    assert arrivals[-1] - arrivals[0] < 5.0


def test_stale_partial_file_of_a_killed_run_is_removed(server, body, destination):
    destination.parent.mkdir()
    stale = destination.with_name(f".{destination.name}.0badf00d.part")
    stale.write_bytes(body[:1000])
    other = destination.with_name(".sub-008.edf.0badf00d.part")
    other.write_bytes(b"another participant's transfer")
    server.routes["/sub-007.edf"] = Route(body)

    download(server.url("/sub-007.edf"), destination, sha256=digest(body), **FAST)

    assert not stale.exists()
    assert other.exists()
    assert destination.read_bytes() == body


def test_redact_url_hides_credentials_query_and_fragment():
    assert redact_url("https://ann:pw@host:8443/data/s.edf?token=T&x=1#v2") == (
        "https://***@host:8443/data/s.edf?***#***"
    )
    assert redact_url("http://host/data/s.edf") == "http://host/data/s.edf"


@pytest.mark.parametrize(
    "target", ["ftp://127.0.0.1/sub-007.edf", "file:///etc/passwd"]
)
def test_redirect_to_another_scheme_is_refused_at_once(target, server, destination):
    server.routes["/sub-007.edf"] = Route(b"", redirect_to=target)
    scheme = target.split(":")[0]

    with pytest.raises(DownloadError, match=f"has the scheme '{scheme}'") as raised:
        download(
            server.url("/sub-007.edf"), destination, participant=PARTICIPANT, **FAST
        )

    assert "redirected (HTTP 302)" in str(raised.value) and PARTICIPANT in str(
        raised.value
    )
    assert len(server.requests_for("/sub-007.edf")) == 1  # not retried as transient
    assert_nothing_published(destination)


def test_credentials_and_token_reach_the_server_but_nothing_written(
    server, body, destination, caplog
):
    secrets = ("S3CRET-TOKEN", "pw-S3CRET")
    server.routes["/sub-007.edf"] = Route(
        body, query="token=S3CRET-TOKEN", credentials="ann:pw-S3CRET"
    )
    port = server.server_port
    url = f"http://ann:pw-S3CRET@127.0.0.1:{port}/sub-007.edf?token=S3CRET-TOKEN"
    caplog.set_level(logging.INFO, logger="mimicry.io.download")

    download(url, destination, sha256=digest(body), participant=PARTICIPANT, **FAST)
    with pytest.raises(DownloadError, match="sha256 mismatch") as raised:
        download(url, destination, sha256=digest(b"other"), **FAST)

    assert destination.read_bytes() == body
    shown = f"http://***@127.0.0.1:{port}/sub-007.edf?***"
    marker = marker_path(destination).read_text()
    assert json.loads(marker)["source"] == shown and shown in str(raised.value)
    for text in (marker, str(raised.value), caplog.text):
        assert not any(secret in text for secret in secrets)


def test_credentials_follow_a_redirect_only_to_the_same_host(server, body, destination):
    port = server.server_port
    server.routes["/sub-007.edf"] = Route(body, credentials="ann:pw")
    server.routes["/same"] = Route(b"", redirect_to="/sub-007.edf")
    server.routes["/other"] = Route(
        b"", redirect_to=f"http://localhost:{port}/sub-007.edf"
    )

    checksum = digest(body)
    download(
        f"http://ann:pw@127.0.0.1:{port}/same", destination, sha256=checksum, **FAST
    )
    with pytest.raises(DownloadError, match="HTTP 401"):
        download(
            f"http://ann:pw@127.0.0.1:{port}/other",
            destination,
            sha256=checksum,
            **FAST,
        )

    assert destination.read_bytes() == body
    authorizations = [r.authorization for r in server.requests_for("/sub-007.edf")]
    assert authorizations[0].startswith("Basic ") and authorizations[1] is None


LIMIT = {"max_mb": 0.1, "max_mb_key": "download.max_file_mb"}


@pytest.mark.parametrize(
    ("content_length", "complaint"),
    [(True, "announces 0.3 MB"), (False, "sent at least")],
)
def test_file_larger_than_the_limit_is_refused(
    content_length, complaint, server, body, destination
):
    server.routes["/sub-007.edf"] = Route(body, content_length=content_length)

    with pytest.raises(DownloadError, match=complaint) as raised:
        download(
            server.url("/sub-007.edf"),
            destination,
            participant=PARTICIPANT,
            **LIMIT,
            **FAST,
        )

    message = str(raised.value)
    assert "more than the limit of 0.1 MB (download.max_file_mb)" in message
    assert "raise download.max_file_mb" in message and PARTICIPANT in message
    assert len(server.requests_for("/sub-007.edf")) == 1
    assert_nothing_published(destination)


def test_member_declaring_more_than_the_limit_is_not_extracted(body, tmp_path):
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("study/sub-001.edf", body)
    destination = tmp_path / "raw" / "sub-001.edf"

    with pytest.raises(DownloadError, match="declares 0.3 MB, more than") as raised:
        extract_member(archive, "study/sub-001.edf", destination, **LIMIT)

    assert "'study/sub-001.edf'" in str(raised.value)
    assert_nothing_published(destination)


def test_member_holding_more_than_it_declares_is_cut_and_refused(tmp_path):
    """A zip bomb's headers understate the member: nothing past the declared size."""
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("sub-001.edf", b"\0" * 5_000_000)
    data = bytearray(archive.read_bytes())
    declared = (1000).to_bytes(4, "little")
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 22 : local + 26] = declared
    data[central + 24 : central + 28] = declared
    archive.write_bytes(bytes(data))
    destination = tmp_path / "raw" / "sub-001.edf"

    with pytest.raises(DownloadError, match="is damaged .*Bad CRC-32"):
        extract_member(archive, "sub-001.edf", destination, **LIMIT)

    assert_nothing_published(destination)


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs: a real full disk without filling the machine's."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_full_disk_is_a_download_error_naming_url_and_destination(
    small_disk, server, tmp_path
):
    big = os.urandom(2_000_000)
    server.routes["/announced.edf"] = Route(big)
    server.routes["/unannounced.edf"] = Route(big, content_length=False)
    destination = small_disk / "raw" / "sub-007.edf"

    with pytest.raises(DownloadError, match="only 1.0 MB are free") as announced:
        download(
            server.url("/announced.edf"), destination, participant=PARTICIPANT, **FAST
        )
    with pytest.raises(DownloadError, match="No space left on device") as unannounced:
        download(
            server.url("/unannounced.edf"), destination, participant=PARTICIPANT, **FAST
        )
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("sub-007.edf", big)
    with pytest.raises(DownloadError, match="No space left on device") as extracted:
        extract_member(archive, "sub-007.edf", destination, participant=PARTICIPANT)

    assert "/announced.edf" in str(announced.value)
    assert server.url("/unannounced.edf") in str(unannounced.value)
    assert "'sub-007.edf' of archive" in str(extracted.value)
    for raised in (announced, unannounced, extracted):
        assert str(destination) in str(raised.value) and PARTICIPANT in str(
            raised.value
        )
    assert_nothing_published(destination)


@pytest.mark.workflow
def test_workflow_fetches_again_what_was_never_verified(workflow_copy, tmp_path):
    """A file without its marker (older version, killed run) is not trusted."""
    good = write_biosignal(tmp_path / "sub-001.edf").read_bytes()
    cut = write_biosignal(tmp_path / "sub-002.edf", seconds=90).read_bytes()
    raw = workflow_copy / "resources" / "raw"
    raw.mkdir(parents=True)
    (raw / "sub-001.edf").write_bytes(good[: len(good) // 2])
    stale = raw / ".sub-001.edf.0badf00d.part"
    stale.write_bytes(good[:1000])
    with ScriptedHTTPServer() as server:
        server.routes["/sub-001.edf"] = Route(good)
        server.routes["/sub-002.edf"] = Route(cut, cuts=10, content_length=False)
        (workflow_copy / "remote.tsv").write_text(
            "participant_id\tgroup\turl\tsha256\n"
            f"sub-001\tplacebo\t{server.url('/sub-001.edf')}\t{digest(good).upper()}\n"
            f"sub-002\tplacebo\t{server.url('/sub-002.edf')}\t\n"
        )
        (workflow_copy / "remote.yaml").write_text(
            "participants: remote.tsv\nsource: {kind: download}\n"
            "download: {attempts: 2, backoff_s: 0.01, timeout_s: 5.0}\n"
            # The files are sampled at 500 Hz.
            "preprocess: {band_hz: [20, 200]}\n"
        )
        # What preprocessing asks for: the marker, not only the file.
        targets = [f"resources/raw/sub-00{i}.edf.verified.json" for i in (1, 2)]
        config = ("--configfile", "config/quick.yaml", "remote.yaml")
        result = run_snakemake(
            workflow_copy,
            "--cores",
            "2",
            "--keep-going",
            *targets,
            *config,
            check=False,
        )
        tables = [f"results/preprocessed/sub-00{i}.parquet" for i in (1, 2)]
        again = run_snakemake(workflow_copy, "-n", *tables, *config)

    assert result.returncode != 0
    assert (raw / "sub-001.edf").read_bytes() == good
    assert json.loads((raw / "sub-001.edf.verified.json").read_text())["sha256"] == (
        digest(good)
    )
    assert not stale.exists()
    log = (workflow_copy / "logs/download_raw/sub-002.edf.log").read_text()
    assert "participant sub-002" in log and "/sub-002.edf is truncated" in log
    assert "sha256 column" in log
    assert sorted(p.name for p in raw.iterdir()) == [
        "sub-001.edf",
        "sub-001.edf.verified.json",
    ]
    assert job_counts(again.stdout) == {
        "download_raw": 1,
        "raw_content": 2,
        "preprocess": 2,
    }
    assert "resources/raw/sub-002.edf.verified.json" in again.stdout
