"""Delimited text exports (csv, tsv, txt; e.g. BIOPAC's): columns by header name or
position (recording.text), the sampling rate from the time column or the config, stimulus
onsets on an analog trigger column.
"""

import dataclasses

import numpy as np

from mimicry.io.recording_types import RecordingError
from mimicry.io.triggers import check_emg, check_triggers, trigger_onsets

TEXT_DELIMITERS = {"csv": ",", "tsv": "\t", "txt": "\t"}


MICROVOLTS_PER_UNIT = {"uV": 1.0, "mV": 1e3, "V": 1e6}
SECONDS_PER_TIME_UNIT = {"s": 1.0, "ms": 1e-3, "min": 60.0}
TIME_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "min": "minutes"}
# A time step this far (as a share of the sampling interval) from the interval is a gap
# or jitter; exported stamps rounded to a tenth of the interval stay well within it.
MAX_TIME_STEP_DEVIATION = 0.5
# A time column implying a lower rate is in other units than seconds.
MIN_EMG_RATE_HZ = 100


@dataclasses.dataclass(frozen=True)
class TextLayout:
    """Where the data of a text export are: column names, field count and data lines."""

    names: list  # one per field, trailing empty field excluded
    first_data_line: int  # 0-based index of the first data line in the file
    data_line_numbers: np.ndarray  # 1-based file line number of each data row


def read_text(where, path, channels, recording, file_format):
    """(signals in µV by muscle, sampling rate, events) of a text export (csv, tsv,
    txt), its events from the trigger columns."""
    import pandas as pd

    text = recording["text"]
    delimiter = text["delimiter"] or TEXT_DELIMITERS[file_format]
    layout = _text_layout(where, path, text, delimiter)
    columns = _TextColumns(where, layout.names)
    channel_positions = {
        muscle: columns.position(ref, f"channels.{muscle}")
        for muscle, ref in channels.items()
    }
    trigger_positions = {
        name: columns.position(name, f"recording.triggers.{name}")
        for name in recording["triggers"]
    }
    used = [*channel_positions.values(), *trigger_positions.values()]
    if text["time_column"] is not None:
        time_position = columns.position(
            text["time_column"], "recording.text.time_column"
        )
        used.append(time_position)
    used = sorted(set(used))
    try:
        table = pd.read_csv(
            path,
            sep=delimiter,
            header=None,
            skiprows=layout.first_data_line,
            usecols=used,
            dtype=np.float64,
            decimal=text["decimal"],
            comment=text["comment"],
            engine="c",
            encoding_errors="replace",
        )
        values = {position: table[position].to_numpy() for position in used}
    except (ValueError, pd.errors.ParserError):
        values = None
    if values is None or not all(
        np.isfinite(column).all() for column in values.values()
    ):
        # The fast parser says little about where; find the first bad field.
        _raise_first_bad_field(where, path, layout, used, columns, text, delimiter)
    if len(layout.data_line_numbers) < 2:
        raise RecordingError(f"{where}: fewer than two data lines")

    scale = MICROVOLTS_PER_UNIT[text["units"]]
    signals = {
        muscle: values[position] * scale
        for muscle, position in channel_positions.items()
    }
    trigger_data = {
        name: values[position] for name, position in trigger_positions.items()
    }
    if text["time_column"] is not None:
        time_s = values[time_position] * SECONDS_PER_TIME_UNIT[text["time_unit"]]
        _check_time_column(where, time_s, layout, columns.describe(time_position))
        fs = _text_sampling_rate(
            where, time_s, text["sampling_rate_hz"], text["time_unit"]
        )
    elif text["sampling_rate_hz"] is None:
        raise RecordingError(
            f"{where}: no time column (recording.text.time_column), so "
            "recording.text.sampling_rate_hz is required"
        )
    else:
        fs = float(text["sampling_rate_hz"])
    if recording["check_channels"]:
        for muscle, position in channel_positions.items():
            check_emg(
                where, columns.describe(position), f"channels.{muscle}", signals[muscle]
            )
        check_triggers(
            where,
            trigger_data,
            recording,
            fs,
            lambda name: columns.describe(trigger_positions[name]),
        )
    events = trigger_onsets(
        where,
        trigger_data,
        recording,
        fs,
        lambda name: columns.describe(trigger_positions[name]),
        lambda sample: f"line {layout.data_line_numbers[sample]}",
    )
    return signals, fs, events


class _TextColumns:
    """Column references (name or 1-based position) resolved against a text layout."""

    def __init__(self, where, names):
        self.where = where
        self.names = names

    def position(self, reference, key):
        """0-based position of a column reference; key is the config key holding it."""
        if isinstance(reference, int):
            if not 1 <= reference <= len(self.names):
                raise RecordingError(
                    f"{self.where}: {key} is column {reference}, but the data lines "
                    f"have {len(self.names)} fields"
                )
            return reference - 1
        matches = [i for i, name in enumerate(self.names) if name == reference]
        if not matches:
            raise RecordingError(
                f"{self.where}: column '{reference}' ({key}) not found; the columns "
                f"are {self.names} (or refer to a column by its 1-based position)"
            )
        if len(matches) > 1:
            raise RecordingError(
                f"{self.where}: column name '{reference}' ({key}) is shared by columns "
                f"{[i + 1 for i in matches]}; refer to the column by its position"
            )
        return matches[0]

    def describe(self, position):
        return f"column {position + 1} ('{self.names[position]}')"


def _text_layout(where, path, text, delimiter):
    """Header names, field count and data lines of a text export, or an error.

    Field counts come from counting delimiters per line over the raw bytes, so that a
    line with a field too many or too few is found however long the file is.
    """
    content = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    if content.size == 0:
        raise RecordingError(f"{where}: the file is empty")
    newlines = np.flatnonzero(content == ord("\n"))
    if newlines.size == 0 or newlines[-1] != content.size - 1:
        newlines = np.append(newlines, content.size)
    starts = np.concatenate([[0], newlines[:-1] + 1])
    ends = newlines.copy()
    # Windows line ends: the carriage return is not part of the last field.
    carriage = (ends > starts) & (content[np.maximum(ends - 1, 0)] == ord("\r"))
    ends[carriage] -= 1
    delimiter_byte = ord(delimiter)
    # Every line holds at least its newline, so the segments are never empty.
    raw_fields = 1 + np.add.reduceat(content == delimiter_byte, starts, dtype=np.int64)
    trailing = (ends > starts) & (content[np.maximum(ends - 1, 0)] == delimiter_byte)
    fields = raw_fields - trailing
    # Lines of spaces only are blank, as the parser treats them.
    blank = ends - starts == 0
    for i in np.flatnonzero(~blank & (ends - starts < 8)):
        blank[i] = not bytes(content[starts[i] : ends[i]]).strip()
    skippable = blank.copy()
    if text["comment"] is not None:
        first_byte = content[np.minimum(starts, content.size - 1)]
        skippable |= (ends > starts) & (first_byte == ord(text["comment"]))
    skippable[: text["skip_rows"]] = True

    def line_text(i):
        return bytes(content[starts[i] : ends[i]]).decode("utf-8", errors="replace")

    candidates = np.flatnonzero(~skippable)
    if candidates.size == 0:
        raise RecordingError(f"{where}: no data lines after recording.text.skip_rows")
    if text["header"]:
        header_line, data_lines = candidates[0], candidates[1:]
    else:
        header_line, data_lines = None, candidates
    if data_lines.size == 0:
        raise RecordingError(f"{where}: no data lines below the header line")
    n_fields = int(fields[data_lines[0]])
    wrong = data_lines[fields[data_lines] != n_fields]
    if wrong.size:
        line = int(wrong[0])
        raise RecordingError(
            f"{where}: line {line + 1} has {fields[line]} fields, but the first data "
            f"line ({data_lines[0] + 1}) has {n_fields} (an empty field after a "
            f"trailing delimiter not counted): '{line_text(line)[:120]}'"
        )
    if header_line is not None:
        names = [name.strip() for name in line_text(header_line).split(delimiter)]
        if trailing[header_line]:
            names = names[:-1]
        if len(names) != n_fields:
            raise RecordingError(
                f"{where}: the header (line {header_line + 1}) names {len(names)} "
                f"columns but the data lines have {n_fields} fields (an empty field "
                "after a trailing delimiter not counted), so the columns cannot be "
                "matched without guessing; if the file has no header line set "
                "recording.text.header: false, if it has a preamble set "
                "recording.text.skip_rows, and check recording.text.delimiter"
            )
    elif text["column_names"] is not None:
        names = list(text["column_names"])
        if len(names) != n_fields:
            raise RecordingError(
                f"{where}: recording.text.column_names names {len(names)} columns but "
                f"the data lines (from line {data_lines[0] + 1}) have {n_fields} "
                "fields (an empty field after a trailing delimiter not counted)"
            )
    else:
        names = [str(position) for position in range(1, n_fields + 1)]
    return TextLayout(
        names=names,
        first_data_line=int(data_lines[0]),
        data_line_numbers=data_lines + 1,
    )


def _raise_first_bad_field(where, path, layout, used, columns, text, delimiter):
    """Raise naming the first data line whose used field is empty or not a number."""
    wanted = set(layout.data_line_numbers.tolist())
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if number not in wanted:
                continue
            fields = line.rstrip("\r\n").split(delimiter)
            for position in used:
                field = fields[position].strip()
                try:
                    finite = np.isfinite(float(field.replace(text["decimal"], ".")))
                    problem = None if finite else f"'{field}' is not a finite number"
                except ValueError:
                    problem = f"'{field}' is not a number" if field else "is empty"
                if problem:
                    raise RecordingError(
                        f"{where}: line {number}, {columns.describe(position)}: "
                        f"{problem} (decimal mark '{text['decimal']}', "
                        "recording.text.decimal); every sample must be a finite number"
                    )
    raise RecordingError(f"{where}: cannot parse the data lines")


def _check_time_column(where, time_s, layout, column):
    """Raise unless the time stamps step evenly: a gap or jitter would shift events."""
    key = "recording.text.time_column"
    steps = np.diff(time_s)
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise RecordingError(
            f"{where}: {column}, the time column ({key}), does not "
            f"increase at line {layout.data_line_numbers[row]} ({time_s[row - 1]} then "
            f"{time_s[row]}); if its stamps are rounded coarser than the sampling "
            f"interval, leave {key} null and set recording.text.sampling_rate_hz"
        )
    # Span over count, not the median step: stamps rounded coarser than a step make
    # the steps take two values, neither of them the sampling interval.
    step = (time_s[-1] - time_s[0]) / (len(time_s) - 1)
    uneven = np.abs(steps - step) > MAX_TIME_STEP_DEVIATION * step
    if uneven.any():
        row = int(np.argmax(uneven)) + 1
        missing = round(steps[row - 1] / step) - 1
        what = (
            f"a gap of {steps[row - 1]:.6g} s (about {missing} samples missing)"
            if missing >= 1
            else f"a step of {steps[row - 1]:.6g} s"
        )
        raise RecordingError(
            f"{where}: {column}, the time column ({key}), jumps from {time_s[row - 1]} "
            f"to {time_s[row]} at line {layout.data_line_numbers[row]}: {what} where "
            f"the samples are {step:.4g} s apart; {np.count_nonzero(uneven)} steps are "
            "uneven. The workflow needs evenly sampled recordings: export the recording "
            "without gaps (or split it at the gap)"
        )
    # Rounded stamps stay within half a step of the even grid; drift does not.
    grid = time_s[0] + step * np.arange(len(time_s))
    drift = np.abs(time_s - grid)
    if drift.max() > step / 2:
        row = int(np.argmax(drift > step / 2))
        raise RecordingError(
            f"{where}: {column}, the time column ({key}), drifts from an even "
            f"{step:.6g} s grid by more than half a sample from line "
            f"{layout.data_line_numbers[row]} ({time_s[row]} s, the grid says "
            f"{grid[row]:.6g} s): the sampling is jittered; the workflow needs evenly "
            "sampled recordings"
        )


def _text_sampling_rate(where, time_s, configured, unit):
    """The sampling rate the time column implies: the whole span over the sample
    count, given as the roundest rate its stamps' rounding allows (rounded single
    steps, or the rounding of the first and last stamp, say little)."""
    span = time_s[-1] - time_s[0]
    measured = (len(time_s) - 1) / span
    # The stamps lie within this of the even grid from the first to the last: the
    # span, and so the rate, is known to twice that.
    grid = np.linspace(time_s[0], time_s[-1], len(time_s))
    uncertainty = measured * 2 * float(np.max(np.abs(time_s - grid))) / span
    measured = _roundest(measured, uncertainty)
    if configured is not None and not np.isclose(measured, configured, rtol=1e-3):
        raise RecordingError(
            f"{where}: the time column implies {measured} Hz but "
            f"recording.text.sampling_rate_hz is {configured}"
            f"{_time_unit_hint(measured, configured, unit)}"
        )
    if measured < MIN_EMG_RATE_HZ:
        raise RecordingError(
            f"{where}: the time column implies {measured} Hz, too slow for EMG (below "
            f"{MIN_EMG_RATE_HZ} Hz){_time_unit_hint(measured, configured, unit)}"
        )
    return measured


def _roundest(value, uncertainty):
    """The value with the fewest decimals (at most 3) within uncertainty of it."""
    for decimals in range(3):
        rounded = round(value, decimals)
        if rounded > 0 and abs(rounded - value) <= uncertainty:
            return float(rounded)
    return float(round(value, 3))


def _time_unit_hint(measured_hz, configured_hz, unit):
    """How to fix a time column read in the wrong unit, as far as the rates tell."""
    if configured_hz is not None:
        # The rate read in another unit is measured_hz times that unit's length.
        for other, seconds in SECONDS_PER_TIME_UNIT.items():
            scale = seconds / SECONDS_PER_TIME_UNIT[unit]
            if other != unit and np.isclose(measured_hz, configured_hz * scale, 1e-3):
                return (
                    f"; the time column counts {TIME_UNIT_NAMES[other]}: set "
                    f"recording.text.time_unit: {other}"
                )
    if measured_hz >= MIN_EMG_RATE_HZ:
        return ""
    return (
        "; if the time column counts milliseconds, set recording.text.time_unit: ms, "
        "if it counts samples, leave recording.text.time_column null and set "
        "recording.text.sampling_rate_hz"
    )
