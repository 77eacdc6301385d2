"""Fetch raw recordings: one url per participant, or members of one study archive.

Every file is written under a temporary name beside its destination, checked against its
sha256 when one is given, and only then renamed into place; so whenever the destination
exists, it is complete. HTTP transfers retry transient failures (connection errors, cut
or stalled bodies, 5xx answers) with exponential backoff and resume with Range requests;
4xx answers fail at once. Standard library only.
"""

import hashlib
import http.client
import logging
import os
import re
import secrets
import time
import urllib.error
import urllib.request
import zipfile
from contextlib import contextmanager
from difflib import get_close_matches
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

SCHEMES = ("http", "https", "file")
CHUNK_BYTES = 1 << 20
PROGRESS_INTERVAL_BYTES = 8 << 20
# Some repositories refuse urllib's default agent string.
USER_AGENT = "mimicry-workflow (python urllib)"
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
CONTENT_RANGE_PATTERN = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


class DownloadError(RuntimeError):
    """A raw file could not be fetched, extracted or verified; the message says why."""


class _TransferCut(ConnectionError):
    """The server closed the connection before sending the whole body."""


# Failures worth another attempt. HTTPError (also a URLError) is sorted by status first.
_TRANSIENT_ERRORS = (
    ConnectionError,  # refused, reset, _TransferCut
    TimeoutError,
    http.client.IncompleteRead,
    http.client.BadStatusLine,
    urllib.error.URLError,  # urlopen wraps connection failures and timeouts in it
)


def sha256_of(path):
    """Hex SHA-256 digest of the file at path."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def download(
    url,
    destination,
    *,
    sha256=None,
    participant=None,
    attempts=5,
    backoff_s=1.0,
    timeout_s=60.0,
):
    """Fetch url (http, https or file) to destination, verified and atomic; return it.

    The body goes to a hidden temporary file in the destination's directory, which is
    renamed to destination only after the whole body arrived and, when sha256 is given,
    matched it. Any failure removes the temporary file; a failed transfer or check
    raises DownloadError naming the participant and url. Over HTTP, connection errors,
    cut or stalled transfers and 5xx answers are retried up to `attempts` times in all,
    waiting backoff_s, 2 * backoff_s, 4 * backoff_s, ... in between, and each retry
    resumes where the last one stopped when the server honours Range requests; 4xx
    answers fail at once. timeout_s bounds the connection and every wait for data.
    """
    who = _who(participant)
    expected = _expected_sha256(sha256, who, url)
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise DownloadError(
            f"{who}: url scheme '{scheme}' of {url} is not one of {', '.join(SCHEMES)}"
        )
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    destination = Path(destination)
    started = time.monotonic()
    with _partial_file(destination) as partial:
        if scheme == "file":
            _copy_local_file(url, partial, who)
        else:
            _fetch_with_retries(url, partial, who, attempts, backoff_s, timeout_s)
        _publish(partial, destination, expected, who, url)
    _log_done(who, url, destination, started, expected)
    return destination


def extract_member(archive, member, destination, *, sha256=None, participant=None):
    """Copy one member of a zip archive to destination, verified and atomic; return it.

    For studies published as one archive: `member` is the participant's file inside it.
    A member missing from the archive, an unreadable archive and a sha256 mismatch raise
    DownloadError naming the participant, the archive and the member.
    """
    who = _who(participant)
    archive = Path(archive)
    destination = Path(destination)
    source = f"member '{member}' of archive {archive}"
    expected = _expected_sha256(sha256, who, source)
    started = time.monotonic()
    try:
        with zipfile.ZipFile(archive) as bundle:
            info = _member_info(bundle, member, archive, who)
            with _partial_file(destination) as partial, bundle.open(info) as stream:
                _write_stream(
                    stream, partial, append=False, total=info.file_size, who=who
                )
                _publish(partial, destination, expected, who, source)
    except (OSError, zipfile.BadZipFile) as error:
        raise DownloadError(f"{who}: cannot extract {source}: {error}") from error
    _log_done(who, source, destination, started, expected)
    return destination


def _who(participant):
    return f"participant {participant}" if participant else "raw file"


def _expected_sha256(sha256, who, source):
    """The expected digest in lower case, or None when none is given."""
    if not sha256:
        return None
    normalised = sha256.strip().lower()
    if not SHA256_PATTERN.fullmatch(normalised):
        raise DownloadError(
            f"{who}: sha256 '{sha256}' given for {source} is not 64 hexadecimal digits"
        )
    return normalised


@contextmanager
def _partial_file(destination):
    """Yield a new empty temporary file beside destination; remove it come what may."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Same directory, so os.replace is an atomic rename; hidden and ending in .part, so
    # nothing that looks for finished files picks it up.
    partial = destination.with_name(f".{destination.name}.{secrets.token_hex(4)}.part")
    partial.touch(exist_ok=False)
    try:
        yield partial
    finally:
        partial.unlink(missing_ok=True)


def _publish(partial, destination, expected_sha256, who, source):
    """Rename partial to destination once its digest matches any expected one."""
    if expected_sha256 is not None:
        actual = sha256_of(partial)
        if actual != expected_sha256:
            raise DownloadError(
                f"{who}: sha256 mismatch for {source}: expected {expected_sha256}, "
                f"got {actual}; the file was discarded"
            )
    os.replace(partial, destination)


def _write_stream(stream, partial, *, append, total, who):
    """Copy a binary stream into partial (appending or from zero), logging progress."""
    done_before = partial.stat().st_size if append else 0
    copied = 0
    next_report = PROGRESS_INTERVAL_BYTES
    started = time.monotonic()
    with open(partial, "ab" if append else "wb") as out:
        while chunk := stream.read1(CHUNK_BYTES):
            out.write(chunk)
            copied += len(chunk)
            if copied >= next_report:
                of_total = f" of {_megabytes(total)}" if total else ""
                log.info(
                    "%s: %s%s at %s",
                    who,
                    _megabytes(done_before + copied),
                    of_total,
                    _rate(copied, time.monotonic() - started),
                )
                next_report += PROGRESS_INTERVAL_BYTES
        out.flush()
        # The rename that publishes the file must never expose unwritten data.
        os.fsync(out.fileno())


def _copy_local_file(url, partial, who):
    path = Path(urllib.request.url2pathname(urlsplit(url).path))
    try:
        stream = open(path, "rb")
    except OSError as error:
        raise DownloadError(f"{who}: cannot read {url}: {error.strerror}") from error
    with stream:
        total = os.fstat(stream.fileno()).st_size
        _write_stream(stream, partial, append=False, total=total, who=who)


def _fetch_with_retries(url, partial, who, attempts, backoff_s, timeout_s):
    for attempt in range(1, attempts + 1):
        try:
            _fetch_once(url, partial, who, timeout_s)
            return
        except urllib.error.HTTPError as error:
            error.close()
            if error.code < 500:
                raise DownloadError(
                    f"{who}: {url} answered HTTP {error.code} {error.reason}"
                ) from None
            failure = error
        except _TRANSIENT_ERRORS as error:
            failure = error
        if attempt < attempts:
            delay_s = backoff_s * 2 ** (attempt - 1)
            log.warning(
                "%s: attempt %d of %d for %s failed (%s); retrying in %.2f s",
                who,
                attempt,
                attempts,
                url,
                failure,
                delay_s,
            )
            time.sleep(delay_s)
    raise DownloadError(
        f"{who}: gave up on {url} after {attempts} attempt(s); last error: {failure}"
    ) from failure


def _fetch_once(url, partial, who, timeout_s):
    """One HTTP request, asking to resume after the bytes partial already holds."""
    offset = partial.stat().st_size
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        append, total = _continuation(response, offset, who, url)
        _write_stream(response, partial, append=append, total=total, who=who)
    # A body cut short simply ends (read1 returns b""), so count what arrived.
    received = partial.stat().st_size
    if total is not None and received < total:
        raise _TransferCut(f"connection closed after {received} of {total} bytes")


def _continuation(response, offset, who, url):
    """Whether the body continues partial (206) or replaces it (200); the full size."""
    if response.status == 206:
        content_range = response.headers.get("Content-Range", "")
        match = CONTENT_RANGE_PATTERN.fullmatch(content_range)
        if not match or int(match[1]) != offset:
            raise DownloadError(
                f"{who}: asked {url} for bytes from {offset} but it answered "
                f"Content-Range '{content_range}'"
            )
        log.info("%s: resuming %s at byte %d", who, url, offset)
        return True, None if match[2] == "*" else int(match[2])
    if offset:
        log.info("%s: %s does not resume transfers; restarting from zero", who, url)
    length = response.headers.get("Content-Length")
    return False, int(length) if length else None


def _member_info(bundle, member, archive, who):
    try:
        return bundle.getinfo(member)
    except KeyError:
        similar = get_close_matches(member, bundle.namelist(), n=3)
        hint = f" (similar members: {', '.join(similar)})" if similar else ""
        raise DownloadError(
            f"{who} is in the sample sheet but not in archive {archive}: it has no "
            f"member '{member}'{hint}"
        ) from None


def _log_done(who, source, destination, started, expected_sha256):
    size = destination.stat().st_size
    elapsed_s = time.monotonic() - started
    check = "sha256 verified" if expected_sha256 else "no sha256 given, not verified"
    log.info(
        "%s: %s from %s in %.1f s (%s) to %s; %s",
        who,
        _megabytes(size),
        source,
        elapsed_s,
        _rate(size, elapsed_s),
        destination,
        check,
    )


def _megabytes(size):
    return f"{size / 1e6:.1f} MB"


def _rate(size, seconds):
    return f"{size / max(seconds, 1e-6) / 1e6:.1f} MB/s"
