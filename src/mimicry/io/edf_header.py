"""The fixed fields of an EDF/BDF header: what the file says of its size and rates.

Downloads check a file's size against them before publishing it, the readers before
MNE reads it (MNE's own messages do not say which header field is off), and the
workflow's start checks the configured band against the rates they declare. Standard
library only: every Snakemake start reads these headers.
"""

from dataclasses import dataclass

# Bytes per sample, and the version field that starts the file.
SAMPLE_BYTES = {"edf": 2, "bdf": 3}
VERSIONS = {"edf": b"0       ", "bdf": b"\xffBIOSEMI"}


class HeaderError(ValueError):
    """The header is missing, broken or disagrees with the file; says which field."""


@dataclass(frozen=True)
class EdfHeader:
    kind: str  # "EDF" or "BDF"
    header_bytes: int
    n_records: int
    record_duration_s: float
    labels: list
    samples_per_record: list

    @property
    def record_bytes(self):
        return sum(self.samples_per_record) * SAMPLE_BYTES[self.kind.lower()]

    @property
    def announced_bytes(self):
        return self.header_bytes + self.n_records * self.record_bytes

    def records_in(self, size):
        """Data records in a file of size bytes: the header's count unless unknown."""
        if self.n_records >= 0:
            return self.n_records
        return (size - self.header_bytes) // self.record_bytes

    def sampling_rates_hz(self):
        """Channel label -> the sampling rate the header declares."""
        return {
            label: samples / self.record_duration_s
            for label, samples in zip(self.labels, self.samples_per_record)
        }


def read_header(path, file_format):
    """The header of an EDF (file_format "edf") or BDF ("bdf") file."""
    kind = file_format.upper()
    with open(path, "rb") as stream:
        fixed = stream.read(256)
        if len(fixed) < 256:
            raise HeaderError(
                f"is truncated: {len(fixed)} bytes, shorter than an {kind} header "
                "(256 bytes)"
            )
        if fixed[:8] != VERSIONS[file_format]:
            raise HeaderError(
                f"is not an {kind} file: it starts with {fixed[:8]!r}, not "
                f"{VERSIONS[file_format]!r}"
            )
        header_bytes = _number(fixed, 184, 8, "header bytes", kind, int)
        n_records = _number(fixed, 236, 8, "number of data records", kind, int)
        duration_s = _number(fixed, 244, 8, "duration of a data record", kind, float)
        n_signals = _number(fixed, 252, 4, "number of signals", kind, int)
        # -1 records: "unknown", as a recorder writes it until the recording ends.
        if n_signals < 1 or header_bytes != 256 * (n_signals + 1) or n_records < -1:
            raise HeaderError(
                f"has a header that cannot be checked ({header_bytes} header bytes for "
                f"{n_signals} signals, {n_records} data records)"
            )
        signals = stream.read(256 * n_signals)
    if len(signals) < 256 * n_signals:
        raise HeaderError(
            f"is truncated: shorter than its header for {n_signals} signals "
            f"({header_bytes} bytes)"
        )
    labels = [
        signals[16 * i : 16 * (i + 1)].decode("latin-1").strip()
        for i in range(n_signals)
    ]
    # The samples-per-record fields follow 216 bytes of other fields per signal.
    samples = [
        _number(signals, n_signals * 216 + 8 * i, 8, "samples per record", kind, int)
        for i in range(n_signals)
    ]
    return EdfHeader(kind, header_bytes, n_records, duration_s, labels, samples)


def check_size(header, size):
    """Raise when size is not the size the header announces (with an unknown record
    count: when the data are not a whole number of records)."""
    if header.n_records == -1:
        data_bytes = size - header.header_bytes
        if data_bytes < 0 or data_bytes % header.record_bytes:
            raise HeaderError(
                f"is truncated mid-record: {data_bytes} data bytes are not a whole "
                f"number of {header.kind} data records of {header.record_bytes} bytes "
                "(the header's record count is -1, unknown)"
            )
        return
    announced = header.announced_bytes
    if size == announced:
        return
    if size < announced:
        state = "is truncated"
    else:
        state = (
            "is longer than its header says (trailing bytes, or a wrong record count)"
        )
    raise HeaderError(
        f"{state}: {size} bytes, but its {header.kind} header announces {announced} "
        f"({header.n_records} data records of {header.record_bytes} bytes after "
        f"{header.header_bytes} header bytes)"
    )


def _number(block, offset, width, field, kind, parse):
    text = block[offset : offset + width].decode("ascii", "replace").strip()
    try:
        return parse(text)
    except ValueError:
        raise HeaderError(
            f"has a broken {kind} header: {field} is '{text}', not a number"
        ) from None
