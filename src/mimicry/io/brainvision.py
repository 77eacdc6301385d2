"""BrainVision header (.vhdr) parsing: the data and marker files it names and the checks
that the binary data file matches it, before MNE reads it.
"""

import configparser
import dataclasses
from pathlib import Path

import numpy as np

from mimicry.io.recording_types import RecordingError, absence

# Bytes per sample of the BrainVision binary formats MNE reads.
BRAINVISION_SAMPLE_BYTES = {"INT_16": 2, "INT_32": 4, "IEEE_FLOAT_32": 4}
# Data read as 32-bit floats: amplitudes in any unit (V to nV) lie in this range or
# are 0. Integers read as floats almost never do (their upper bytes make tiny or huge
# exponents), and floats read as integers almost always do.
PLAUSIBLE_FLOAT_RANGE = (1e-12, 1e9)
FLOAT_LIKE_SHARE = 0.99
# The share of the data file read to tell floats from integers.
FORMAT_PROBE_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class BrainVisionHeader:
    """What a BrainVision header (.vhdr) says of its data and marker files."""

    data_file: Path
    marker_file: Path  # None when the header names none
    n_channels: int
    binary_format: str  # None for ASCII data
    data_points: int  # None when the header does not say


def read_brainvision_header(where, path):
    """The header's files (each checked to be a file name beside the header), channel
    count, binary format and sample count."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    # The first line names the format; the rest is INI.
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text[text.find("[") :] if "[" in text else "")
        common = parser["Common Infos"]
    except (configparser.Error, KeyError) as error:
        raise RecordingError(
            f"{where}: not a BrainVision header: no readable [Common Infos] section "
            f"({error})"
        ) from None

    def beside_header(key, required):
        name = common.get(key, "").strip()
        if not name:
            if required:
                raise RecordingError(f"{where}: the header names no {key}")
            return None
        if Path(name).name != name or name in (".", "..") or "\\" in name:
            raise RecordingError(
                f"{where}: {key}={name} in the header is not a file name beside the "
                f"header; a BrainVision header may only name files in its own folder "
                f"({Path(path).parent}), so write the bare file name there"
            )
        return Path(path).parent / name

    data_file = beside_header("DataFile", required=True)
    marker_file = beside_header("MarkerFile", required=False)
    try:
        n_channels = int(common.get("NumberOfChannels", ""))
        data_points = common.get("DataPoints")
        data_points = None if data_points is None else int(data_points)
    except ValueError as error:
        raise RecordingError(
            f"{where}: the header's NumberOfChannels or DataPoints is not a whole "
            f"number ({error})"
        ) from None
    binary_format = None
    if common.get("DataFormat", "BINARY").strip().upper() == "BINARY":
        binary_format = parser.get("Binary Infos", "BinaryFormat", fallback="").strip()
    return BrainVisionHeader(
        data_file, marker_file, n_channels, binary_format, data_points
    )


def check_brainvision(where, path, source):
    """Raise when a BrainVision header names files outside its folder or absent, or
    when its data file's size or content disagrees with its channel count and
    binary format."""
    header = read_brainvision_header(where, path)
    if not header.data_file.is_file():
        raise RecordingError(
            f"{where}: the data file {header.data_file} (DataFile in the header) "
            f"{absence(header.data_file)}"
        )
    if source == "annotations":
        if header.marker_file is None:
            raise RecordingError(
                f"{where}: the header names no MarkerFile, and the stimulus events "
                "come from its markers (recording.event_source annotations)"
            )
        if not header.marker_file.is_file():
            raise RecordingError(
                f"{where}: the marker file {header.marker_file} (MarkerFile in the "
                f"header) {absence(header.marker_file)}; the stimulus events come "
                "from its markers (if the set was renamed, set DataFile and "
                "MarkerFile in the header to the new names)"
            )
    if header.binary_format is None:
        return
    sample_bytes = BRAINVISION_SAMPLE_BYTES.get(header.binary_format)
    if sample_bytes is None:
        raise RecordingError(
            f"{where}: BinaryFormat={header.binary_format} is not one of "
            f"{list(BRAINVISION_SAMPLE_BYTES)}"
        )
    size = header.data_file.stat().st_size
    frame = header.n_channels * sample_bytes
    described = (
        f"{header.n_channels} channels of {sample_bytes} bytes "
        f"(NumberOfChannels, BinaryFormat={header.binary_format})"
    )
    if header.data_points is not None and size != header.data_points * frame:
        raise RecordingError(
            f"{where}: the data file {header.data_file} has {size} bytes, but the "
            f"header announces {header.data_points * frame}: DataPoints="
            f"{header.data_points} samples of {described}"
        )
    if size == 0 or size % frame:
        raise RecordingError(
            f"{where}: the data file {header.data_file} is truncated or not what the "
            f"header describes: {size} bytes are not a whole number of samples of "
            f"{described}"
        )
    with open(header.data_file, "rb") as stream:
        probe = stream.read(FORMAT_PROBE_BYTES // 4 * 4)
    float_like = _float_like_share(probe)
    floats = header.binary_format == "IEEE_FLOAT_32"
    if floats == (float_like >= FLOAT_LIKE_SHARE) or not _any_nonzero(probe):
        return
    actual, other = (
        ("integers", "INT_16") if floats else ("32-bit floats", "IEEE_FLOAT_32")
    )
    other_frame = header.n_channels * BRAINVISION_SAMPLE_BYTES[other]
    raise RecordingError(
        f"{where}: the data file {header.data_file} holds {actual}, not "
        f"BinaryFormat={header.binary_format} as the header says ({float_like:.1%} "
        "of its first values, read as 32-bit floats, are amplitudes or 0): its "
        f"{size} bytes are {size // frame} samples per channel as "
        f"{header.binary_format} but {size // other_frame} as {other}; set "
        "BinaryFormat in the header to what the recorder wrote"
    )


def _float_like_share(block):
    """The share of block's 32-bit words that, read as floats, are 0 or amplitudes."""
    values = np.abs(np.frombuffer(block[: len(block) // 4 * 4], dtype="<f4"))
    if values.size == 0:
        return 0.0
    low, high = PLAUSIBLE_FLOAT_RANGE
    with np.errstate(invalid="ignore"):
        plausible = (values == 0) | ((values >= low) & (values <= high))
    return float(np.mean(plausible))


def _any_nonzero(block):
    return bool(np.frombuffer(block, dtype=np.uint8).any())


def brainvision_files(path):
    """The data and marker files a BrainVision header names (None for each that it
    does not name or that is not beside it): for checks across participants."""
    try:
        header = read_brainvision_header(str(path), path)
    except (RecordingError, OSError):
        return None, None
    return header.data_file, header.marker_file
