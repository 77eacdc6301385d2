"""Each participant's raw file: its format, its path in source.local_dir, what the
configured source needs to find it, and the settings checked against what the files
declare (sampling rates, BrainVision file names)."""

from pathlib import Path

import pandas as pd

from mimicry.config.sample_sheet import participant_place, sheet_line
from mimicry.config.validation import ConfigError
from mimicry.preprocessing import checks
from mimicry.simulate import file_rate_hz


def raw_formats(sheet, config):
    """Each participant's raw file format, checked against the recording settings.

    The sample sheet's format, else recording.format, else the extension of the
    participant's file (kind local: the file in source.local_dir matching
    source.file_pattern; kind download: its url or member), else edf. The simulated
    study is always EDF. Returns a list in sheet order.
    """
    from mimicry.io.recordings import format_from_extension

    source, recording = config["source"], config["recording"]
    formats = []
    for row, (_, record) in enumerate(sheet.iterrows(), start=1):
        place = participant_place(sheet, record["recording"], row)
        chosen = record.get("format")
        if source["kind"] == "simulated":
            chosen = "edf"
        elif pd.isna(chosen) or not chosen:
            chosen = recording["format"] and recording["format"].lower()
        if not chosen and source["kind"] == "download":
            name = record.get("member")
            name = record.get("url") if pd.isna(name) else name
            chosen = None if pd.isna(name) else format_from_extension(name)
        if not chosen and source["kind"] == "local":
            chosen = _local_file_format(record, source, place)
        chosen = chosen or "edf"
        _check_recording_format(chosen, config, place)
        formats.append(chosen)
    return formats


def _local_raw_files(record, source):
    """The files in source.local_dir that source.file_pattern names for this
    participant with any extension of a known format (in any case), sorted."""
    from mimicry.io.recordings import format_from_extension

    pattern = Path(raw_file_name(record, source, "*"))
    # An absolute pattern is globbed from the root (Path.glob takes relative ones).
    base = Path(pattern.anchor) if pattern.is_absolute() else Path(source["local_dir"])
    return sorted(
        path
        for path in base.glob(str(pattern.relative_to(pattern.anchor)))
        if format_from_extension(path)
    )


def _local_file_format(record, source, place):
    from mimicry.io.recordings import format_from_extension

    found = _local_raw_files(record, source)
    if len(found) > 1:
        raise ConfigError(
            f"sample sheet {place}: several raw files "
            f"match source.file_pattern in {source['local_dir']}: "
            f"{[str(path) for path in found]}; give the format column"
        )
    return format_from_extension(found[0]) if found else None


def local_raw_paths(sheet, config):
    """Each participant's raw file in source.local_dir (kind local), in sheet order.

    The file named by source.file_pattern, its extension in any case (sub-023.EDF is
    sub-023's edf file); where none exists, the name it should have. An absent
    local_dir, and missing files under source.missing_raw: error, stop the run here,
    naming every missing file; under skip, the participants without a file are
    logged by the workflow and recorded in qc.tsv.
    """
    from mimicry.io.recordings import format_from_extension

    source = config["source"]
    local_dir = Path(source["local_dir"])
    absolute = Path(source["file_pattern"]).is_absolute()
    if not absolute and not local_dir.is_dir():
        raise ConfigError(
            f"source.local_dir '{local_dir}' is not a directory (relative to "
            f"{Path.cwd()}); set source.local_dir to the folder with the raw files"
        )
    paths = []
    for _, record in sheet.iterrows():
        file_format = record["format"]
        found = [
            path
            for path in _local_raw_files(record, source)
            if format_from_extension(path) == file_format
        ]
        if len(found) > 1:
            raise ConfigError(
                f"sample sheet line {sheet_line(sheet, record['recording'])} "
                f"({record['recording']}): {len(found)} {file_format} files match "
                f"source.file_pattern in {local_dir}: {[str(p) for p in found]}; make "
                "the pattern name one file"
            )
        expected = local_dir / raw_file_name(record, source, file_format)
        paths.append(str(found[0] if found else expected))
    missing = [path for path in paths if not Path(path).is_file()]
    if missing and source["missing_raw"] == "error":
        from mimicry.io.recording_types import absence

        where = "" if absolute else f" in source.local_dir {local_dir}"
        listed = [
            path if absence(path) == "does not exist" else f"{path} {absence(path)}"
            for path in missing
        ]
        raise ConfigError(
            f"{len(missing)} of {len(paths)} raw files are missing{where}: "
            f"{', '.join(listed)} (named by source.file_pattern); set "
            "source.missing_raw: skip to go on without those participants (recorded "
            "in qc.tsv)"
        )
    if len(missing) == len(paths):
        raise ConfigError(
            f"source.missing_raw is skip, but none of the {len(paths)} participants "
            f"has a raw file in source.local_dir {local_dir} (e.g. {missing[0]}, "
            "named by source.file_pattern): check source.local_dir and "
            "source.file_pattern"
        )
    return paths


def check_declared_rates(config, sheet, paths):
    """The band-pass edges (preprocess.band_hz, and with the multiverse every value
    of multiverse.axes.band_hz) against the sampling rates the recordings declare.

    paths: participant -> raw file, for the files that exist. Declared rates: the
    simulation's, a text export's recording.text.sampling_rate_hz, and the rate an
    EDF/BDF, BrainVision or AcqKnowledge header gives the configured channels.
    """
    from mimicry.io.recordings import declared_sampling_rate
    from mimicry.io.text_exports import TEXT_DELIMITERS

    declared = {}
    if config["source"]["kind"] == "simulated":
        simulation = config["simulation"]
        key = "export_rate_hz" if simulation["export_rate_hz"] else "sampling_rate_hz"
        origin = f"simulation.{key}"
        declared = {p: (file_rate_hz(simulation), origin) for p in sheet.index}
    text_rate = config["recording"]["text"]["sampling_rate_hz"]
    channels = list(config["channels"].values())
    for participant, path in paths.items():
        file_format = sheet.loc[participant, "format"]
        if file_format in TEXT_DELIMITERS:
            if text_rate is not None:
                declared[participant] = (text_rate, "recording.text.sampling_rate_hz")
            continue
        rate = declared_sampling_rate(path, file_format, channels)
        if rate is not None:
            declared[participant] = (rate, f"{path}'s header")
    problems = list(checks.rate_problems(config["preprocess"]["band_hz"], declared))
    settings = [("preprocess", config["preprocess"])]
    if config["multiverse"]["enabled"]:
        from mimicry.robustness import multiverse

        problems += multiverse.band_rate_problems(config, declared)
        settings += [
            (f"multiverse universe {universe.id}: preprocess", universe.preprocess)
            for universe in multiverse.universes(config)
        ]
    problems += _window_problems(settings, declared)
    if problems:
        raise ConfigError("\n".join(problems))


def _window_problems(settings, declared):
    """Windows that hold no sample at a declared rate, each naming its key and the
    participants (and where their rate is declared). settings: (key prefix,
    preprocess section) pairs; declared: participant -> (rate, origin)."""
    by_rate = {}
    for participant, (rate, origin) in sorted(declared.items()):
        by_rate.setdefault(rate, []).append((participant, origin))
    for rate, recordings in sorted(by_rate.items()):
        origins = {origin for _, origin in recordings}
        if len(origins) == 1:
            names = [participant for participant, _ in recordings]
            suffix = f" ({origins.pop()})"
        else:
            names = [f"{participant} ({origin})" for participant, origin in recordings]
            suffix = ""
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        listed = f"{', '.join(names[:3])}{more}{suffix}"
        for prefix, preprocess in settings:
            for problem in checks.window_problems(preprocess, rate, prefix):
                yield f"{problem}; the rate of {listed}"


def check_shared_recording_files(sheet, paths):
    """Raise when two participants' BrainVision headers name the same data or
    marker file: a renamed set whose header still names another participant's
    files would be analysed as that participant's data.

    paths: participant -> raw file, for the files that exist."""
    from mimicry.io.brainvision import brainvision_files

    owners = {}
    for participant, path in sorted(paths.items()):
        if sheet.loc[participant, "format"] != "vhdr":
            continue
        for key, named in zip(("DataFile", "MarkerFile"), brainvision_files(path)):
            if named is None:
                continue
            other = owners.setdefault(named.resolve(), (participant, path, key))
            if other[0] != participant:
                raise ConfigError(
                    f"{named} is the {other[2]} of both {other[0]} ({other[1]}) and "
                    f"{participant} ({path}): a renamed BrainVision set still names "
                    "the files it was renamed from; set DataFile and MarkerFile in "
                    f"{participant}'s header to its own files"
                )


def raw_file_name(record, source, file_format):
    """The recording's file name inside source.local_dir: source.file_pattern with
    the fields of its sheet row, its recording id and file_format."""
    fields = {key: value for key, value in record.items() if not pd.isna(value)}
    try:
        return source["file_pattern"].format_map(fields | {"format": file_format})
    except KeyError as error:
        raise ConfigError(
            f"source.file_pattern '{source['file_pattern']}' names column "
            f"{error.args[0]}, which is empty in the sample sheet's row of "
            f"{record.get('recording', record['participant_id'])}"
        ) from None


def _check_recording_format(file_format, config, place):
    """Recording settings that this participant's file format cannot honour."""
    from mimicry.io.mne_formats import MNE_FORMATS
    from mimicry.io.recordings import event_source
    from mimicry.io.text_exports import TEXT_DELIMITERS

    recording = config["recording"]
    where = f"sample sheet {place}: format {file_format}"
    if file_format in TEXT_DELIMITERS:
        if not recording["triggers"]:
            raise ConfigError(
                f"{where}: text exports carry no markers; set recording.triggers to the "
                "trigger column(s) that mark stimulus onsets"
            )
        if recording["event_source"] not in (None, "triggers"):
            raise ConfigError(
                f"{where}: recording.event_source '{recording['event_source']}' does "
                "not exist in text exports; events come from recording.triggers"
            )
        delimiter = recording["text"]["delimiter"] or TEXT_DELIMITERS[file_format]
        if recording["text"]["decimal"] == delimiter:
            raise ConfigError(
                f"{where}: recording.text.decimal '{delimiter}' is also the delimiter; "
                "set recording.text.delimiter"
            )
        return
    if file_format == "physio" and recording["triggers"]:
        raise ConfigError(
            f"{where}: BIDS physio events come from the matching *_events.tsv; remove "
            "recording.triggers"
        )
    positions = {m: c for m, c in config["channels"].items() if isinstance(c, int)}
    if positions:
        raise ConfigError(
            f"{where}: channels {positions} are column positions, which only text "
            "exports (csv, tsv, txt) have; give channel names"
        )
    source = event_source(recording, file_format)
    allowed = (
        ("annotations", "stim_channel")
        if file_format in MNE_FORMATS
        else ("annotations", "triggers")
    )
    if source not in allowed:
        raise ConfigError(
            f"{where}: recording.event_source '{source}' is not available for this "
            f"format; use one of {list(allowed)}"
        )


def check_sources(config, sheet):
    """Every participant has what the configured source needs to find its raw file."""
    source = config["source"]
    if source["kind"] != "download":
        return
    from mimicry.io.download import scheme_problem

    archive = source["archive_url"] is not None
    local = "; for files on this computer, use source.kind local"
    if archive and (problem := scheme_problem(source["archive_url"])):
        raise ConfigError(f"source.archive_url: {problem}{local}")
    needed = "member" if archive else "url"
    for _, record in sheet.iterrows():
        participant = record["participant_id"]
        where = (
            f"sample sheet {sheet.attrs['path']}, line "
            f"{sheet_line(sheet, participant)} (participant {participant})"
        )
        if pd.isna(record.get(needed)):
            raise ConfigError(
                f"{where}: no '{needed}', which source.kind download needs"
                f"{' with source.archive_url' if archive else ''}"
            )
        if not archive and (problem := scheme_problem(record["url"])):
            raise ConfigError(f"{where}: {problem}{local}")
        if record["format"] in ("vhdr", "physio"):
            raise ConfigError(
                f"sample sheet: {participant} is {record['format']}, several files "
                "that one url cannot carry; use source.kind local for it"
            )
