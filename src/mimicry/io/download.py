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
requests; other 4xx answers fail at once. Only http and https urls are fetched, on the
first request and on every redirect. A size limit (download.max_file_mb,
download.max_archive_mb) is checked against the announced size before any byte is
read, against the bytes received, and against a zip member's declared size before it
is extracted; a full disk is a DownloadError naming the url and the destination. Urls
are written only through redact_url (no credentials, no query string). Standard
library only.
"""

import base64
import email.utils
import errno
import http.client
import json
import logging
import os
import re
import secrets
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from difflib import get_close_matches
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

from mimicry.io import edf_header
from mimicry.io.files import sha256_of, write_whole

log = logging.getLogger(__name__)

SCHEMES = ("http", "https")
# The download settings (config key download) that govern retries.
RETRY_KEYS = ("attempts", "backoff_s", "max_backoff_s", "timeout_s")
BYTES_PER_MB = 1_000_000
REDACTED = "***"
# Writing the file failed for want of room or permission, not because of the network.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES}
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


def redact_url(url):
    """url as it may be written anywhere (logs, markers, messages, results): credentials
    (user:password@), the query string and the fragment become '***'."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{REDACTED}@{host}" if "@" in parts.netloc else host
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return f"{REDACTED} (an unparseable url)"
    query = REDACTED if parts.query else ""
    fragment = REDACTED if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def scheme_problem(url):
    """Why url may not be fetched (its scheme is not http or https), or None."""
    allowed = f"only {' and '.join(SCHEMES)} urls are downloaded"
    try:
        parts = urlsplit(url)
    except ValueError as error:
        return f"url {redact_url(url)} cannot be read ({error}); {allowed}"
    scheme = parts.scheme.lower()
    if scheme in SCHEMES and parts.hostname:
        return None
    what = f"the scheme '{scheme}'" if scheme else "no scheme"
    if scheme in SCHEMES:
        what = "no host"
    return f"url {redact_url(url)} has {what}; {allowed}"


class _RefusedRedirect(DownloadError):
    """A server redirected to a url whose scheme is not http or https."""


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http and https only (urllib's own also follows ftp); the
    url's credentials go along only to the same scheme, host and port."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        authorization = req.unredirected_hdrs.get("Authorization")
        if (
            new is not None
            and authorization
            and _origin(newurl) == _origin(req.full_url)
        ):
            new.add_unredirected_header("Authorization", authorization)
        return new

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("Location") or headers.get("URI")
        if location is not None:
            target = urljoin(req.full_url, location)
            problem = scheme_problem(target)
            if problem is not None:
                fp.close()
                raise _RefusedRedirect(
                    f"{redact_url(req.full_url)} redirected (HTTP {code}) elsewhere: {problem}"
                )
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def _origin(url):
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.hostname, parts.port


def _request(url, headers):
    """A request for url; its user:password@, which urllib cannot send, goes as HTTP
    basic authentication (and is never followed to another host)."""
    parts = urlsplit(url)
    if parts.username is None:
        return urllib.request.Request(url, headers=headers)
    host = parts.netloc.rpartition("@")[2]
    request = urllib.request.Request(
        urlunsplit(parts._replace(netloc=host)), headers=headers
    )
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    request.add_unredirected_header("Authorization", f"Basic {token}")
    return request


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
    max_mb=None,
    max_mb_key=None,
):
    """Fetch url (http or https) to destination, verified and atomic; return it.

    The body goes to a hidden temporary file in the destination's directory, which is
    renamed to destination only after the whole body arrived and was verified (see the
    module docstring); then the marker (marker_path) is written. Temporary files left
    by an earlier, killed run for this destination are removed first. Any failure
    removes the temporary file; a failed transfer or check raises DownloadError naming
    the participant and url (redacted). Over HTTP, connection errors, cut or stalled
    transfers, 5xx and 429 answers are retried up to `attempts` times in all, waiting
    backoff_s, 2 * backoff_s, 4 * backoff_s, ... (at most max_backoff_s) in between, or
    as long as the answer's Retry-After asks; a Retry-After longer than max_backoff_s
    fails at once. Each retry resumes where the last one stopped when the server honours
    Range requests; other 4xx answers and a redirect to another scheme fail at once.
    timeout_s bounds the connection and every wait for data. A file larger than max_mb
    (MB; None: no limit) fails, before any byte is read when the server announces its
    size; max_mb_key names the setting in the message. sha256_key names where a checksum
    would be given, for the message when a file without one fails its checks.
    """
    who = _who(participant)
    shown = redact_url(url)
    expected = _expected_sha256(sha256, who, shown)
    problem = scheme_problem(url)
    if problem is not None:
        raise DownloadError(f"{who}: {problem}")
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    destination = Path(destination)
    limit = _Limit.of(max_mb, max_mb_key)
    started = time.monotonic()
    with _disk_errors(who, shown, destination), _partial_file(destination) as partial:
        retries = (attempts, backoff_s, max_backoff_s)
        target = _Target(url, shown, partial, destination, who, limit)
        content_type = _fetch_with_retries(target, retries, timeout_s)
        check = _verify(
            partial, destination, expected, who, shown, content_type, key=sha256_key
        )
        _publish(partial, destination, check, shown, expected)
    _log_done(who, shown, destination, started, check)
    return destination


def extract_member(
    archive,
    member,
    destination,
    *,
    sha256=None,
    participant=None,
    max_mb=None,
    max_mb_key=None,
):
    """Copy one member of a zip archive to destination, verified and atomic; return it.

    For studies published as one archive: `member` is the participant's file inside it.
    A member missing from the archive, an unreadable archive, a member declaring more
    than max_mb (MB; None: no limit; checked before extracting), a damaged member (bad
    compressed data, CRC mismatch, more data than declared), a sha256 mismatch and,
    without a sha256, a member whose structure is broken raise DownloadError naming the
    participant, the archive and the member.
    """
    who = _who(participant)
    archive = Path(archive)
    destination = Path(destination)
    source = f"member '{member}' of archive {archive}"
    expected = _expected_sha256(sha256, who, source)
    limit = _Limit.of(max_mb, max_mb_key)
    started = time.monotonic()
    try:
        with zipfile.ZipFile(archive) as bundle:
            info = _member_info(bundle, member, archive, who)
            if limit is not None and info.file_size > limit.bytes:
                raise DownloadError(
                    f"{who}: {source} {limit.exceeded(info.file_size, 'declares')}"
                )
            with (
                _disk_errors(who, source, destination),
                _partial_file(destination) as partial,
                bundle.open(info) as stream,
            ):
                target = _Target(None, source, partial, destination, who, limit)
                try:
                    _write_stream(stream, target, append=False, total=info.file_size)
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


@dataclass(frozen=True)
class _Limit:
    """The most bytes one file may have, and the setting that raises it."""

    bytes: int
    key: str

    @classmethod
    def of(cls, max_mb, key):
        return None if max_mb is None else cls(int(max_mb * BYTES_PER_MB), key)

    def exceeded(self, size, verb):
        return (
            f"{verb} {_megabytes(size)}, more than the limit of "
            f"{self.bytes / BYTES_PER_MB:g} MB ({self.key}); raise {self.key} if the file is "
            "right"
        )


@dataclass(frozen=True)
class _Target:
    """What is being fetched and where it goes."""

    url: str | None  # None for an archive member
    shown: str  # the url redacted, or the member and its archive
    partial: Path
    destination: Path
    who: str
    limit: _Limit | None


@contextmanager
def _disk_errors(who, shown, destination):
    """Turn a failure to write (a full disk, a quota, no permission) into a
    DownloadError naming the source and the destination."""
    try:
        yield
    except OSError as error:
        if error.errno not in _DISK_ERRNOS:
            raise
        full = error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        hint = "; free space on that disk and run again" if full else ""
        raise DownloadError(
            f"{who}: cannot write {shown} to {destination}: {error.strerror}{hint}; "
            "the partial file was removed"
        ) from error


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
    write_whole(marker, json.dumps(record, indent=1) + "\n")


def _write_stream(stream, target, *, append, total):
    """Copy a binary stream into target.partial (appending or from zero), logging
    progress and stopping once the file would exceed target.limit."""
    partial, who, limit = target.partial, target.who, target.limit
    done_before = partial.stat().st_size if append else 0
    copied = 0
    next_report = PROGRESS_INTERVAL_BYTES
    started = time.monotonic()
    with open(partial, "ab" if append else "wb") as out:
        while chunk := stream.read1(CHUNK_BYTES):
            copied += len(chunk)
            if limit is not None and done_before + copied > limit.bytes:
                raise DownloadError(
                    f"{who}: {target.shown} "
                    f"{limit.exceeded(done_before + copied, 'sent at least')}; the "
                    "partial file was removed"
                )
            out.write(chunk)
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


def _fetch_with_retries(target, retries, timeout_s):
    """Fetch target.url into target.partial, retrying transient failures; return its
    Content-Type."""
    attempts, backoff_s, max_backoff_s = retries
    who, shown = target.who, target.shown
    for attempt in range(1, attempts + 1):
        delay_s = backoff_s * 2 ** (attempt - 1)
        if max_backoff_s is not None:
            delay_s = min(delay_s, max_backoff_s)
        try:
            return _fetch_once(target, timeout_s)
        except _RefusedRedirect as error:
            raise DownloadError(f"{who}: {error}") from None
        except urllib.error.HTTPError as error:
            error.close()
            if error.code < 500 and error.code != TOO_MANY_REQUESTS:
                raise DownloadError(
                    f"{who}: {shown} answered HTTP {error.code} {error.reason}"
                ) from None
            failure = f"HTTP {error.code} {error.reason}"
            asked_s = _retry_after_s(error.headers.get("Retry-After"))
            if asked_s is not None:
                if max_backoff_s is not None and asked_s > max_backoff_s:
                    raise DownloadError(
                        f"{who}: {shown} answered HTTP {error.code} {error.reason} and "
                        f"asked to retry after {asked_s:.0f} s, longer than "
                        f"download.max_backoff_s ({max_backoff_s:g} s); try again "
                        "later or raise download.max_backoff_s"
                    ) from None
                delay_s = asked_s
        except _TRANSIENT_ERRORS as error:
            failure = _error_text(error)
        if attempt < attempts:
            log.warning(
                "%s: attempt %d of %d for %s failed (%s); retrying in %.2f s",
                who,
                attempt,
                attempts,
                shown,
                failure,
                delay_s,
            )
            time.sleep(delay_s)
    raise DownloadError(
        f"{who}: gave up on {shown} after {attempts} attempt(s); last error: {failure}"
    )


def _error_text(error):
    """A transient error's text; a URLError's reason only (its text may hold the url)."""
    if isinstance(error, urllib.error.URLError):
        return f"URLError: {error.reason}"
    return f"{type(error).__name__}: {error}"


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


def _fetch_once(target, timeout_s):
    """One HTTP request, resuming after the bytes target.partial holds; its
    Content-Type."""
    partial = target.partial
    offset = partial.stat().st_size
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = _request(target.url, headers)
    with _OPENER.open(request, timeout=timeout_s) as response:
        append, total = _continuation(response, offset, target)
        _check_announced_size(total, offset if append else 0, target)
        _write_stream(response, target, append=append, total=total)
        content_type = response.headers.get("Content-Type")
    # A body cut short simply ends (read1 returns b""), so count what arrived.
    received = partial.stat().st_size
    if total is not None and received < total:
        raise _TransferCut(f"connection closed after {received} of {total} bytes")
    return content_type


def _check_announced_size(total, have, target):
    """Refuse, before reading, a body larger than the limit or the free disk space."""
    if total is None:
        return
    if target.limit is not None and total > target.limit.bytes:
        raise DownloadError(
            f"{target.who}: {target.shown} "
            f"{target.limit.exceeded(total, 'announces')}"
        )
    free = shutil.disk_usage(target.partial.parent).free
    if total - have > free:
        raise DownloadError(
            f"{target.who}: {target.shown} announces {_megabytes(total)}, but only "
            f"{_megabytes(free)} are free where it goes ({target.destination}); free "
            "space on that disk and run again"
        )


def _continuation(response, offset, target):
    """Whether the body continues partial (206) or replaces it (200); the full size."""
    who, shown = target.who, target.shown
    if response.status == 206:
        content_range = response.headers.get("Content-Range", "")
        match = CONTENT_RANGE_PATTERN.fullmatch(content_range)
        if not match or int(match[1]) != offset:
            raise DownloadError(
                f"{who}: asked {shown} for bytes from {offset} but it answered "
                f"Content-Range '{content_range}'"
            )
        log.info("%s: resuming %s at byte %d", who, shown, offset)
        return True, None if match[2] == "*" else int(match[2])
    if offset:
        log.info("%s: %s does not resume transfers; restarting from zero", who, shown)
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
