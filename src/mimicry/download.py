"""Fetch raw recordings: one url per participant, or members of one study archive.

Every file is written under a temporary name beside its destination, verified, and only
then renamed into place, with a marker `<destination>.verified.json` written beside it
that records how it was verified; so whenever the destination and its marker exist, the
file is complete. Verified means: matching its sha256 when one is given; otherwise every
check the file allows: no HTML page (the body's first bytes, an HTTP Content-Type of
text/html), as many bytes as Content-Length announced, and the format's own structure
(an EDF/BDF header's record count x record size against the file size; a zip's central
directory and the CRC of every member). In the workflow, preprocessing asks for the
marker, so a file without one (e.g. from a killed run or an older version) is fetched
again rather than trusted.
HTTP transfers retry transient failures (connection errors, cut or stalled bodies, 5xx
and 429 answers, honouring Retry-After) with exponential backoff and resume with Range
requests; other 4xx answers fail at once. Standard library only.
"""

import email.utils
import hashlib
import http.client
import json
import logging
import os
import re
import secrets
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from contextlib import contextmanager
from datetime import datetime, timezone
from difflib import get_close_matches
from pathlib import Path
from urllib.parse import urlsplit

from mimicry import edf_header

log = logging.getLogger(__name__)

SCHEMES = ("http", "https", "file")
CHUNK_BYTES = 1 << 20
PROGRESS_INTERVAL_BYTES = 8 << 20
# Some repositories refuse urllib's default agent string.
USER_AGENT = "mimicry-workflow (python urllib)"
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
CONTENT_RANGE_PATTERN = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")
MARKER_SUFFIX = ".verified.json"
HTML_STARTS = (b"<!doctype html", b"<html")
SHEET_SHA256 = "the sample sheet's sha256 column"
TOO_MANY_REQUESTS = 429


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
# What a damaged member raises while it is read: bad deflate data, a stream that ends
# early, a CRC or size mismatch (BadZipFile).
_MEMBER_DAMAGE = (zlib.error, EOFError, zipfile.BadZipFile)


def sha256_of(path):
    """Hex SHA-256 digest of the file at path."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def marker_path(destination):
    """The marker written beside destination once it is verified and published."""
    destination = Path(destination)
    return destination.with_name(destination.name + MARKER_SUFFIX)


def download(
    url,
    destination,
    *,
    sha256=None,
    participant=None,
    attempts=5,
    backoff_s=1.0,
    max_backoff_s=None,
    timeout_s=60.0,
    sha256_key=SHEET_SHA256,
):
    """Fetch url (http, https or file) to destination, verified and atomic; return it.

    The body goes to a hidden temporary file in the destination's directory, which is
    renamed to destination only after the whole body arrived and was verified (see the
    module docstring); then the marker (marker_path) is written. Temporary files left
    by an earlier, killed run for this destination are removed first. Any failure
    removes the temporary file; a failed transfer or check raises DownloadError naming
    the participant and url. Over HTTP, connection errors, cut or stalled transfers,
    5xx and 429 answers are retried up to `attempts` times in all, waiting backoff_s,
    2 * backoff_s, 4 * backoff_s, ... (at most max_backoff_s) in between, or as long as
    the answer's Retry-After asks; a Retry-After longer than max_backoff_s fails at
    once. Each retry resumes where the last one stopped when the server honours Range
    requests; other 4xx answers fail at once. timeout_s bounds the connection and every
    wait for data. sha256_key names where a checksum would be given, for the message
    when a file without one fails its checks.
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
            content_type = None
        else:
            retries = (attempts, backoff_s, max_backoff_s)
            content_type = _fetch_with_retries(url, partial, who, retries, timeout_s)
        check = _verify(
            partial, destination, expected, who, url, content_type, key=sha256_key
        )
        _publish(partial, destination, check, url, expected)
    _log_done(who, url, destination, started, check)
    return destination


def extract_member(archive, member, destination, *, sha256=None, participant=None):
    """Copy one member of a zip archive to destination, verified and atomic; return it.

    For studies published as one archive: `member` is the participant's file inside it.
    A member missing from the archive, an unreadable archive, a damaged member (bad
    compressed data, CRC mismatch), a sha256 mismatch and, without a sha256, a member
    whose structure is broken raise DownloadError naming the participant, the archive
    and the member.
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
                try:
                    _write_stream(
                        stream, partial, append=False, total=info.file_size, who=who
                    )
                except _MEMBER_DAMAGE as error:
                    raise DownloadError(
                        f"{who}: {source} is damaged ({error}); the archive may be "
                        "truncated or corrupt: delete it to download it again"
                    ) from error
                check = _verify(
                    partial, destination, expected, who, source, None, key=SHEET_SHA256
                )
                _publish(partial, destination, check, source, expected)
    except (OSError, zipfile.BadZipFile) as error:
        raise DownloadError(f"{who}: cannot extract {source}: {error}") from error
    _log_done(who, source, destination, started, check)
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
    # A run killed outright (SIGKILL, power loss) cannot remove its temporary file;
    # Snakemake never runs two jobs for one destination, so any left now is stale.
    for stale in destination.parent.glob(f".{destination.name}.*.part"):
        log.info("removing %s, left by an interrupted download", stale)
        stale.unlink(missing_ok=True)
    # Same directory, so os.replace is an atomic rename; hidden and ending in .part, so
    # nothing that looks for finished files picks it up.
    partial = destination.with_name(f".{destination.name}.{secrets.token_hex(4)}.part")
    partial.touch(exist_ok=False)
    try:
        yield partial
    finally:
        partial.unlink(missing_ok=True)


def _verify(partial, destination, expected_sha256, who, source, content_type, *, key):
    """Check partial before it is published; return how it was verified.

    With a sha256 the digest decides. Without one, every check the file allows: not an
    HTML page, and the structure of an EDF/BDF (by destination's extension) or zip.
    """
    if expected_sha256 is not None:
        actual = sha256_of(partial)
        if actual != expected_sha256:
            hint = "; it is an HTML page, not a recording" if _is_html(partial) else ""
            raise DownloadError(
                f"{who}: sha256 mismatch for {source}: expected {expected_sha256}, "
                f"got {actual}{hint}; the file was discarded"
            )
        return "sha256 verified"
    unverified = (
        f"; the file was discarded (if it is right after all, give its sha256 in {key} "
        "to accept it as it is)"
    )
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type == "text/html" or _is_html(partial):
        raise DownloadError(
            f"{who}: {source} is an HTML page (Content-Type {content_type or '-'}), "
            f"not a recording: an error or login page?{unverified}"
        )
    size = partial.stat().st_size
    if size == 0:
        raise DownloadError(f"{who}: {source} is empty{unverified}")
    suffix = destination.suffix.lower()
    try:
        if suffix[1:] in edf_header.SAMPLE_BYTES:
            return _check_edf_size(partial, suffix, size)
        if suffix == ".zip":
            return _check_zip(partial)
    except DownloadError as error:
        raise DownloadError(f"{who}: {source} {error}{unverified}") from None
    return (
        "no sha256 given; not HTML, any Content-Length matched; no structure check for "
        f"'{suffix}' files"
    )


def _is_html(path):
    with open(path, "rb") as stream:
        start = stream.read(512).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith(HTML_STARTS)


def _check_edf_size(path, suffix, size):
    """The size an EDF/BDF header announces (records x record bytes) against size."""
    try:
        header = edf_header.read_header(path, suffix[1:])
        edf_header.check_size(header, size)
    except edf_header.HeaderError as error:
        raise DownloadError(str(error)) from None
    if header.n_records == -1:
        # A file cut at a record boundary would pass: only a checksum can tell.
        raise DownloadError(
            "has a header that cannot be checked (-1 data records, unknown), so its "
            "size says nothing of whether it is complete"
        )
    return (
        f"no sha256 given; {header.kind} header's {header.n_records} records match "
        "the size"
    )


def _check_zip(path):
    """Read the central directory and every member through its CRC check."""
    try:
        bundle = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DownloadError(f"is not a readable zip archive ({error})") from None
    with bundle:
        for info in bundle.infolist():
            # Unlike testzip, which lets zlib.error through without the member's name.
            try:
                with bundle.open(info) as stream:
                    while stream.read1(CHUNK_BYTES):
                        pass
            except _MEMBER_DAMAGE as error:
                raise DownloadError(
                    f"is a damaged zip archive: member '{info.filename}' ({error})"
                ) from None
    return "no sha256 given; zip directory and member CRCs verified"


def _publish(partial, destination, check, source, known_sha256):
    """Rename partial to destination, then write its marker saying how it was verified."""
    marker = marker_path(destination)
    # First the old marker goes, so that a crash mid-way leaves no marker to trust.
    marker.unlink(missing_ok=True)
    os.replace(partial, destination)
    record = {
        "file": destination.name,
        "source": source,
        "size": destination.stat().st_size,
        "sha256": known_sha256 or sha256_of(destination),
        "verified": check,
    }
    written = marker.with_name(f".{marker.name}.{secrets.token_hex(4)}.part")
    written.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(written, marker)


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


def _fetch_with_retries(url, partial, who, retries, timeout_s):
    """Fetch url into partial, retrying transient failures; return its Content-Type."""
    attempts, backoff_s, max_backoff_s = retries
    for attempt in range(1, attempts + 1):
        delay_s = backoff_s * 2 ** (attempt - 1)
        if max_backoff_s is not None:
            delay_s = min(delay_s, max_backoff_s)
        try:
            return _fetch_once(url, partial, who, timeout_s)
        except urllib.error.HTTPError as error:
            error.close()
            if error.code < 500 and error.code != TOO_MANY_REQUESTS:
                raise DownloadError(
                    f"{who}: {url} answered HTTP {error.code} {error.reason}"
                ) from None
            failure = error
            asked_s = _retry_after_s(error.headers.get("Retry-After"))
            if asked_s is not None:
                if max_backoff_s is not None and asked_s > max_backoff_s:
                    raise DownloadError(
                        f"{who}: {url} answered HTTP {error.code} {error.reason} and "
                        f"asked to retry after {asked_s:.0f} s, longer than "
                        f"download.max_backoff_s ({max_backoff_s:g} s); try again "
                        "later or raise download.max_backoff_s"
                    ) from None
                delay_s = asked_s
        except _TRANSIENT_ERRORS as error:
            failure = error
        if attempt < attempts:
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


def _retry_after_s(value):
    """Seconds a Retry-After header asks to wait (delay or HTTP date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, with the zone left unstated
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _fetch_once(url, partial, who, timeout_s):
    """One HTTP request, resuming after the bytes partial holds; its Content-Type."""
    offset = partial.stat().st_size
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        append, total = _continuation(response, offset, who, url)
        _write_stream(response, partial, append=append, total=total, who=who)
        content_type = response.headers.get("Content-Type")
    # A body cut short simply ends (read1 returns b""), so count what arrived.
    received = partial.stat().st_size
    if total is not None and received < total:
        raise _TransferCut(f"connection closed after {received} of {total} bytes")
    return content_type


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


def _log_done(who, source, destination, started, check):
    size = destination.stat().st_size
    elapsed_s = time.monotonic() - started
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
