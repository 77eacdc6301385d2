"""The download layer against a real HTTP server on 127.0.0.1, real files, real zips."""

import hashlib
import logging
import os
import socket
import zipfile

import pytest
from http_server import Route, ScriptedHTTPServer

from mimicry.download import (
    PROGRESS_INTERVAL_BYTES,
    DownloadError,
    download,
    extract_member,
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
    """Neither the destination nor any temporary file exists after a failure."""
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
    assert list(destination.parent.iterdir()) == [destination]
    assert server.requests_for("/sub-007.edf")[0].range is None


def test_checksum_comparison_ignores_letter_case(server, body, destination):
    server.routes["/sub-007.edf"] = Route(body)
    download(
        server.url("/sub-007.edf"), destination, sha256=digest(body).upper(), **FAST
    )
    assert destination.read_bytes() == body


@pytest.mark.parametrize("scheme", ["http", "file"])
def test_checksum_mismatch_names_everything_and_leaves_nothing(
    scheme, server, body, destination, tmp_path
):
    if scheme == "http":
        server.routes["/sub-007.edf"] = Route(body)
        url = server.url("/sub-007.edf")
    else:
        local = tmp_path / "source" / "sub-007.edf"
        local.parent.mkdir()
        local.write_bytes(body)
        url = local.as_uri()
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

    download(server.url("/sub-007.edf"), destination, attempts=4, backoff_s=0.05)

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


def test_file_url_copies_the_local_file(tmp_path, body, destination):
    local = tmp_path / "export dir" / "sub-007.edf"
    local.parent.mkdir()
    local.write_bytes(body)

    download(local.as_uri(), destination, sha256=digest(body), participant=PARTICIPANT)

    assert destination.read_bytes() == body
    assert local.read_bytes() == body


def test_missing_local_file_names_participant_and_url(tmp_path, destination):
    url = (tmp_path / "nowhere.edf").as_uri()

    with pytest.raises(DownloadError, match="No such file") as raised:
        download(url, destination, participant=PARTICIPANT)

    assert PARTICIPANT in str(raised.value)
    assert url in str(raised.value)
    assert_nothing_published(destination)


@pytest.mark.parametrize(
    ("url", "sha256", "complaint"),
    [
        ("ftp://example.org/sub-007.edf", None, "scheme 'ftp'"),
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

    with caplog.at_level(logging.INFO, logger="mimicry.download"):
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
        "sub-002.edf",
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
