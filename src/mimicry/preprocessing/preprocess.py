"""Per-participant EMG preprocessing: filter, rectify, epoch, bin, reject artifacts.

Each channel is filtered once over the whole recording (band-pass and mains notches in
one zero-phase second-order-section cascade), rectified, and every baseline and bin mean
is then read off prefix sums by fancy indexing, with no loop over samples or trials.

Artifact rejection (`rejection_reasons`) judges each trial x muscle only on what a
facial response does not change: short transients against the running median around
them (`mimicry.preprocessing.epochs.window_deviations`) and the pre-stimulus baseline
level, each beyond a limit that stationary noise at the recording's rate and band
crosses with a known probability (`mimicry.preprocessing.noise_limits`). A rule
comparing a trial with the participant's trials of all conditions reads one condition's
strong response as an outlier; the opt-in same-condition rule needs large cells.

The per-participant table is a pyarrow Table (``table.to_pandas()`` gives the
DataFrame): building and writing it needs no pandas import, which would cost a quarter
of the time of the whole job.
"""

import json
import logging
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.signal import sosfiltfilt

from mimicry.io.recording_types import RecordingError
from mimicry.io.recordings import read_recording
from mimicry.preprocessing.checks import window_problems
from mimicry.preprocessing.epochs import EpochWindows, window_deviations
from mimicry.preprocessing.filters import design_filter
from mimicry.preprocessing.noise_limits import rule_limits
from mimicry.preprocessing.spectra import channel_spectra, write_spectra

log = logging.getLogger(__name__)

# Scales the median absolute deviation to the standard deviation of a normal sample.
MAD_TO_SD = 1.4826

TABLE_SCHEMA = pa.schema(
    [
        ("participant", pa.string()),
        ("trial", pa.int64()),
        ("condition", pa.string()),
        ("muscle", pa.string()),
        ("bin", pa.int64()),
        ("t", pa.float64()),
        ("value", pa.float64()),
        ("rejected", pa.bool_()),
        ("reason", pa.string()),
    ]
)


def preprocess_participant(
    recording_path,
    participant,
    settings,
    file_format=None,
    events_path=None,
    limits_cache=None,
):
    """Read and preprocess one participant's recording.

    settings holds the config sections `study` (muscles, conditions), `channels`
    (muscle -> channel name), `recording` and `preprocess`, as the validated config
    has them (defaults filled in by the schema; cross-key checks in
    `mimicry.preprocessing.checks`, run once by `study.check_config`). file_format
    (e.g. from the sample sheet) overrides the configured or extension-derived format.
    events_path, a BIDS events.tsv, makes recording_path an EMG-BIDS recording
    (`mimicry.io.bids`). limits_cache is `preprocess_recording`'s. Returns (table, qc)
    as `preprocess_recording` does.
    """
    recording = read_participant_recording(
        recording_path, participant, settings, file_format, events_path
    )
    return preprocess_recording(
        recording, settings["study"]["conditions"], settings["preprocess"], limits_cache
    )


def read_participant_recording(
    recording_path, participant, settings, file_format=None, events_path=None
):
    """The participant's `Recording`, as preprocessing and the QC figures read it.

    settings holds the config sections `study`, `channels` and `recording`;
    events_path, a BIDS events.tsv, makes recording_path an EMG-BIDS recording.
    """
    muscles = settings["study"]["muscles"]
    channels = {muscle: settings["channels"][muscle] for muscle in muscles}
    conditions = settings["study"]["conditions"]
    if events_path is not None:
        from mimicry.io.bids import read_bids_recording

        return read_bids_recording(
            recording_path,
            events_path,
            participant,
            channels,
            conditions,
            settings["recording"],
        )
    return read_recording(
        recording_path,
        participant,
        channels=channels,
        conditions=conditions,
        settings=settings["recording"],
        file_format=file_format,
    )


def read_job_recording(job_input, participant, params):
    """The recording a preprocessing job of the workflow reads (rules preprocess and
    multiverse_preprocess): input.recording (with input.events for an EMG-BIDS one),
    params.settings and params.file_format."""
    return read_participant_recording(
        job_input.recording,
        participant,
        params.settings,
        file_format=params.file_format,
        # Only BIDS participants have an events.tsv input.
        events_path=job_input.events or None,
    )


def preprocess_recording(recording, conditions, options, limits_cache=None):
    """Filter, rectify, epoch, bin and screen one `Recording`.

    conditions lists the study's conditions (a condition without trials leaves its
    cells empty, which excludes the participant); options is the validated config's
    `preprocess` section; limits_cache, a folder where the rules' noise limits are
    kept for other jobs (`mimicry.preprocessing.noise_limits`; None: this process only).

    Returns (table, qc): a pyarrow Table with one row per trial x muscle x bin
    (participant, trial, condition, muscle, bin, t, value, rejected, reason) and a
    JSON-ready QC dict (exclusion and its reasons, rejections by reason, kept share per
    muscle x condition cell, filter details, the rejection settings and the limits
    they came to at this rate, warnings, the rejected trials with each one's reason
    and detail).
    """
    return epoch_and_screen(
        recording, conditions, options, Rectified(recording, options), limits_cache
    )


class Rectified:
    """A recording's channels filtered and rectified, as cumulative sums.

    prefix holds each channel's cumulative sum with a leading zero, so every window
    mean is two lookups; what depends only on the filter is computed once here and
    shared by every pipeline with the same filter settings (`FILTER_KEYS`).
    band_key: the config key that set options' band_hz, for the error of a band the
    recording's rate cannot carry.
    """

    def __init__(self, recording, options, band_key="preprocess.band_hz"):
        signals = np.vstack(
            [recording.signals_uv[muscle] for muscle in recording.signals_uv]
        )
        sos, notch_hz, skipped_notch_hz = design_filter(recording, options, band_key)
        self.saturated_share = saturated_sample_share(signals)
        rectified = np.abs(sosfiltfilt(sos, signals, axis=-1))
        self.prefix = np.zeros((len(signals), rectified.shape[1] + 1))
        np.cumsum(rectified, axis=-1, out=self.prefix[:, 1:])
        self.mean_amplitude_uv = self.prefix[:, -1] / rectified.shape[1]
        self.filter_details = {
            "band_hz": list(options["band_hz"]),
            "notch_hz": notch_hz,
            "skipped_notch_hz": skipped_notch_hz,
        }


def epoch_and_screen(recording, conditions, options, rectified, limits_cache=None):
    """`preprocess_recording` from the filtered, rectified signal (`Rectified`, made
    with the same filter settings as options)."""
    muscles = list(recording.signals_uv)
    prefix = rectified.prefix
    fs = recording.sampling_rate_hz
    for problem in window_problems(options, fs):
        # The rate was not known before the job (e.g. a file not yet downloaded).
        raise RecordingError(f"{recording.participant}: {recording.path}: {problem}")
    windows = EpochWindows(options, fs)
    check_epochs_apart(recording, windows, options)
    baseline, bins, inside = windows.means(prefix, recording.onset_samples)

    channel_checks = [
        check_channel(muscle, amplitude, share, options)
        for muscle, amplitude, share in zip(
            muscles, rectified.mean_amplitude_uv, rectified.saturated_share
        )
    ]
    rules = options["rejection"]["rules"]
    limits = rule_limits(fs, options, limits_cache) if rules else None
    transients = (
        window_deviations(prefix, recording.onset_samples, options, fs)
        if "transient" in rules
        else None
    )
    reasons, details = rejection_reasons(
        baseline,
        bins,
        inside,
        channel_checks,
        np.array(recording.conditions),
        transients,
        options["rejection"],
        limits,
    )
    values = response_values(baseline, bins, reasons == "", options["value"])

    qc = quality_report(
        recording,
        conditions,
        muscles,
        reasons,
        details,
        channel_checks,
        rectified.filter_details,
        options,
        limits,
    )
    log.info(
        "%s: %d trials at %g Hz; rejected trial x muscle: %s; excluded: %s",
        recording.participant,
        len(recording.conditions),
        recording.sampling_rate_hz,
        {muscle: qc["muscles"][muscle]["rejected_by_reason"] for muscle in muscles},
        qc["exclusion_reasons"] or "no",
    )
    for warning in qc["warnings"]:
        log.warning("%s: %s", recording.participant, warning["message"])
    if recording.without_events:
        log.warning("%s: excluded: %s", recording.participant, recording.without_events)
    for pulse in recording.dropped_pulses:
        log.warning(
            "%s: trigger pulse dropped: the pulse on %s at %.3f s %s",
            recording.participant,
            pulse["trigger"],
            pulse["time_s"],
            pulse["problem"],
        )
    table = trial_table(recording, muscles, values, reasons, windows.bin_centres_s)
    return table, qc


def saturated_sample_share(signals):
    """Per channel, the share of samples sitting at that channel's minimum or maximum."""
    at_extreme = (signals == signals.min(axis=1, keepdims=True)) | (
        signals == signals.max(axis=1, keepdims=True)
    )
    return at_extreme.mean(axis=1)


def check_channel(muscle, mean_amplitude_uv, saturated_share, options):
    """Channel-level QC of one muscle: its flaw ('' when none) and why it excludes."""
    check = {
        "mean_amplitude_uv": float(mean_amplitude_uv),
        "saturated_share": float(saturated_share),
        "flaw": "",
        "exclusion": None,
    }
    if mean_amplitude_uv < options["flat_amplitude_uv"]:
        check["flaw"] = "flat_channel"
        check["exclusion"] = (
            f"flat_channel:{muscle} mean amplitude {mean_amplitude_uv:.3g} uV < "
            f"{options['flat_amplitude_uv']:g} uV"
        )
    elif saturated_share > options["saturation_share"]:
        check["flaw"] = "saturated_channel"
        check["exclusion"] = (
            f"saturated_channel:{muscle} {saturated_share:.2%} of samples at the "
            f"extremes > {options['saturation_share']:.2%}"
        )
    return check


def check_epochs_apart(recording, windows, options):
    """Raise when one trial's epoch (baseline start to response end) reaches into the
    next's: the next stimulus's response would be read as this trial's."""
    fs = recording.sampling_rate_hz
    span = windows.stops.max() - windows.starts.min()
    onsets = np.sort(recording.onset_samples)
    spacing = np.diff(onsets)
    close = spacing < span
    if not close.any():
        return
    first = int(np.argmax(close))
    raise RecordingError(
        f"{recording.participant}: {recording.path}: the epoch from "
        f"preprocess.baseline_s {options['baseline_s'][0]:g} s to preprocess.response_s "
        f"{options['response_s'][1]:g} s spans {span / fs:g} s, but the stimuli at "
        f"{onsets[first] / fs:.3f} s and {onsets[first + 1] / fs:.3f} s are "
        f"{spacing[first] / fs:.3f} s apart ({np.count_nonzero(spacing < span)} such "
        "pairs): each epoch would reach into the next trial; shorten "
        f"preprocess.response_s or move preprocess.baseline_s{_train_hint(recording, close, spacing / fs)}"
    )


# Close stimuli this often of one condition look like the pulses of blocks.
TRAIN_LIKE_SHARE = 0.9


def _train_hint(recording, close, spacing_s):
    """A hint at recording.trigger_train_gap_s when the stimuli too close to each
    other are mostly of one condition, like one pulse per stimulus of a block."""
    if recording.block_s is not None:
        return ""
    conditions = np.array(recording.conditions)[np.argsort(recording.onset_samples)]
    same = conditions[1:][close] == conditions[:-1][close]
    if same.mean() < TRAIN_LIKE_SHARE:
        return ""
    return (
        f". {same.mean():.0%} of these pairs are of one condition (median spacing "
        f"{np.median(spacing_s[close]):.3g} s), like a block's trigger pulses, one per "
        "stimulus: if so, set recording.trigger_train_gap_s, longer than the pause "
        "between a block's pulses and shorter than the pause between blocks, to make "
        "each train of pulses one trial"
    )


def robust_z(values, axis):
    """|x - median| / (1.4826 MAD) along axis, NaN-aware; 0 where the MAD is 0."""
    median = np.nanmedian(values, axis=axis, keepdims=True)
    deviation = np.abs(values - median)
    scale = MAD_TO_SD * np.nanmedian(deviation, axis=axis, keepdims=True)
    # No spread among the trials leaves nothing to call an outlier.
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, deviation / scale, 0.0)


def rejection_reasons(
    baseline, bins, inside, channel_checks, conditions, transients, rejection, limits
):
    """Reason and detail for each (muscle, trial), '' when kept; first match wins.

    Order: outside_recording, the channel's flaw, then the rules named in
    rejection["rules"] in this order, each judging only the trials still kept:
    transient (a window's `window_deviations` beyond limits["transient"]), baseline
    (the log baseline mean's departure from the median baseline of the muscle's kept
    trials beyond limits["baseline"]: the baseline precedes the stimulus, so all
    conditions share one reference) and condition_outlier (robust z of a bin's log
    ratio among the kept trials of the same condition above rejection.condition_z,
    only in cells with at least rejection.condition_min_trials of them: a response is
    shared by its condition's trials, and a MAD of a handful of trials is noise).
    transients is `window_deviations`' result, or None without the transient rule;
    limits is `mimicry.preprocessing.noise_limits.rule_limits`' result (log ratios).
    """
    reasons = np.full(baseline.shape, "", dtype=object)
    details = np.full(baseline.shape, "", dtype=object)
    reasons[:, ~inside] = "outside_recording"
    details[:, ~inside] = "baseline or response window reaches outside the recording"
    for muscle_index, check in enumerate(channel_checks):
        if check["flaw"]:
            open_trials = reasons[muscle_index] == ""
            reasons[muscle_index, open_trials] = check["flaw"]
            details[muscle_index, open_trials] = check["exclusion"]
    rules = rejection["rules"]
    if "transient" in rules:
        deviation, centres_s = transients
        limit = limits["transient"]
        with np.errstate(invalid="ignore"):
            excess = np.maximum(deviation - limit["upper"], limit["lower"] - deviation)
        excess = np.where(np.isnan(excess), -np.inf, excess)
        worst = excess.argmax(axis=-1)
        worst_excess = np.take_along_axis(excess, worst[..., None], axis=-1)[..., 0]
        for muscle_index, trial in zip(
            *np.nonzero((reasons == "") & (worst_excess > 0))
        ):
            window = worst[muscle_index, trial]
            reasons[muscle_index, trial] = "transient"
            details[muscle_index, trial] = (
                f"{rejection['transient_window_s']:g} s window at "
                f"{centres_s[window]:.2f} s: "
                f"{np.exp(deviation[muscle_index, trial, window]):.3g} x the median "
                f"around it (limits {_ratio_limits(limit)})"
            )
    with np.errstate(divide="ignore", invalid="ignore"):
        log_baseline = np.log(baseline)
    if "baseline" in rules:
        for muscle_index, kept in enumerate(reasons == ""):
            if not kept.any():
                continue
            reference = np.median(log_baseline[muscle_index, kept])
            deviation = log_baseline[muscle_index] - reference
            limit = _widened_by_level_spread(
                limits["baseline"], deviation[kept], rejection["false_alarm_rate"]
            )
            beyond = (deviation > limit["upper"]) | (deviation < limit["lower"])
            for trial in np.nonzero(kept & beyond)[0]:
                reasons[muscle_index, trial] = "baseline"
                details[muscle_index, trial] = (
                    f"baseline {np.exp(deviation[trial]):.3g} x the median of the "
                    f"muscle's {np.count_nonzero(kept)} kept baselines (limits "
                    f"{_ratio_limits(limit)})"
                )
    if "condition_outlier" in rules:
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = np.log(bins) - log_baseline[..., None]
        for condition in np.unique(conditions):
            for muscle_index, kept in enumerate(reasons == ""):
                cell = np.nonzero(kept & (conditions == condition))[0]
                if len(cell) < rejection["condition_min_trials"]:
                    continue
                z = robust_z(log_ratio[muscle_index, cell], axis=0)
                worst_bin = z.argmax(axis=1)
                worst = z[np.arange(len(cell)), worst_bin]
                for trial, bin_index, z_value in zip(cell, worst_bin, worst):
                    if z_value <= rejection["condition_z"]:
                        continue
                    reasons[muscle_index, trial] = "condition_outlier"
                    details[muscle_index, trial] = (
                        f"bin {bin_index}: robust z {z_value:.3g} among the "
                        f"{len(cell)} kept {condition} trials (limit "
                        f"{rejection['condition_z']:g})"
                    )
    return reasons, details


def _widened_by_level_spread(limit, deviations, false_alarm_rate):
    """The baseline limits, widened to what the muscle's own resting level reaches
    between trials: the two-sided normal quantile at false_alarm_rate times the
    robust sd (1.4826 MAD) of its kept baselines' log deviations. A level that
    wanders between trials is what baseline correction is for, not an artifact."""
    spread = MAD_TO_SD * np.median(np.abs(deviations))
    reach = NormalDist().inv_cdf(1 - false_alarm_rate / 2) * spread
    return {
        "upper": max(limit["upper"], reach),
        "lower": min(limit["lower"], -reach),
    }


def _ratio_limits(limit):
    return f"{np.exp(limit['lower']):.3g}, {np.exp(limit['upper']):.3g}"


def response_values(baseline, bins, kept, kind):
    """Per (muscle, trial, bin) response relative to the trial's baseline.

    log_ratio: log(bin / baseline); difference: bin - baseline (microvolts); zscore:
    the log ratio z-scored per muscle over the participant's kept trials.
    """
    if kind == "difference":
        return bins - baseline[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(bins / baseline[..., None])
    if kind == "log_ratio":
        return log_ratio
    zscores = np.full_like(log_ratio, np.nan)
    for muscle_index, kept_trials in enumerate(kept):
        reference = log_ratio[muscle_index, kept_trials]
        if reference.size > 1:
            zscores[muscle_index] = (
                log_ratio[muscle_index] - reference.mean()
            ) / reference.std(ddof=1)
    return zscores


def quality_report(
    recording,
    condition_names,
    muscles,
    reasons,
    details,
    channel_checks,
    filter_details,
    options,
    limits,
):
    """JSON-ready QC: exclusion and its reasons, rejections, kept share per cell,
    the rules' limits (None without rules) and warnings.

    A participant is excluded when its recording has no usable stimulus event
    (recording.without_events: exclude), when a channel is flat or saturated, or when
    a muscle x condition cell of an intact channel keeps fewer than
    options["min_kept_share"] of its trials or fewer than options["min_kept_trials"]
    trials. A rule that rejects more than rejection.warn_rejected_share of a
    muscle's trials is a warning.
    """
    conditions = np.array(recording.conditions)
    min_share, min_trials = options["min_kept_share"], options["min_kept_trials"]
    per_muscle = {}
    exclusion_reasons = [recording.without_events] if recording.without_events else []
    for muscle, muscle_reasons, check in zip(muscles, reasons, channel_checks):
        exclusions = [check["exclusion"]] if check["flaw"] else []
        cells = {}
        for condition in condition_names:
            in_cell = conditions == condition
            kept = int(np.count_nonzero(muscle_reasons[in_cell] == ""))
            total = int(np.count_nonzero(in_cell))
            kept_share = kept / total if total else 0.0
            cells[condition] = {"kept": kept, "total": total, "kept_share": kept_share}
            if check["flaw"] or recording.without_events:
                continue
            if kept_share < min_share:
                exclusions.append(
                    f"too_few_trials:{muscle}/{condition} {kept}/{total} < {min_share:.0%}"
                )
            elif kept < min_trials:
                exclusions.append(
                    f"too_few_trials:{muscle}/{condition} {kept}/{total} < {min_trials} "
                    "trials"
                )
        rejected, counts = np.unique(
            muscle_reasons[muscle_reasons != ""], return_counts=True
        )
        per_muscle[muscle] = {
            "mean_amplitude_uv": check["mean_amplitude_uv"],
            "saturated_share": check["saturated_share"],
            "rejected_by_reason": dict(zip(map(str, rejected), map(int, counts))),
            "cells": cells,
            "excluded": bool(exclusions),
            "exclusion_reasons": exclusions,
        }
        exclusion_reasons.extend(exclusions)
    trial_indices, muscle_indices = np.nonzero(reasons.T != "")
    warnings = rule_share_warnings(muscles, reasons, options["rejection"])
    blocks = {}
    if recording.block_s is not None:
        blocks = {
            "block_s": [round(float(length), 6) for length in recording.block_s],
            "block_pulses": recording.block_pulses.tolist(),
        }
    return {
        "participant": recording.participant,
        "recording": str(recording.path),
        "sampling_rate_hz": recording.sampling_rate_hz,
        "duration_s": recording.n_samples / recording.sampling_rate_hz,
        "n_trials": len(recording.conditions),
        "trials_per_condition": {
            condition: int(np.count_nonzero(conditions == condition))
            for condition in condition_names
        },
        **filter_details,
        "value": options["value"],
        "rejection": options["rejection"],
        "rejection_limits": limit_ratios(limits),
        "warnings": warnings,
        "excluded": bool(exclusion_reasons),
        "exclusion_reasons": exclusion_reasons,
        "dropped_trigger_pulses": list(recording.dropped_pulses),
        **blocks,
        "muscles": per_muscle,
        "rejected_trials": [
            {
                "trial": int(trial),
                "condition": recording.conditions[trial],
                "muscle": muscles[muscle_index],
                "reason": reasons[muscle_index, trial],
                "detail": details[muscle_index, trial],
            }
            for trial, muscle_index in zip(trial_indices, muscle_indices)
        ],
    }


def rule_share_warnings(muscles, reasons, rejection):
    """One warning ({muscle, rule, rejected, trials, message}) per muscle x rule that
    rejects more than rejection.warn_rejected_share of the muscle's trials."""
    most = rejection["warn_rejected_share"]
    warnings = []
    for muscle, muscle_reasons in zip(muscles, reasons):
        trials = len(muscle_reasons)
        for rule in rejection["rules"]:
            rejected = int(np.count_nonzero(muscle_reasons == rule))
            if rejected <= most * trials:
                continue
            message = (
                f"rule {rule} rejects {rejected} of {trials} {muscle} trials "
                f"({rejected / trials:.0%}), more than "
                f"preprocess.rejection.warn_rejected_share {most:.0%}; on real "
                "recordings that is more often the rule's fault than the data's "
                "(each trial's detail is in the QC JSON's rejected_trials)"
            )
            warnings.append(
                {
                    "muscle": muscle,
                    "rule": rule,
                    "rejected": rejected,
                    "trials": trials,
                    "message": message,
                }
            )
    return warnings


def limit_ratios(limits):
    """The rules' limits as ratios (JSON-ready), or None."""
    if limits is None:
        return None
    return {
        rule: {
            "upper_ratio": float(np.exp(limit["upper"])),
            "lower_ratio": float(np.exp(limit["lower"])),
            "noise_upper_ratio": float(np.exp(limit["noise_upper"])),
            "noise_lower_ratio": float(np.exp(limit["noise_lower"])),
            "configured_ratio": limit["ratio"],
        }
        for rule, limit in limits.items()
    }


def trial_table(recording, muscles, values, reasons, bin_centres_s):
    """One row per trial x muscle x bin, trials in recording order; with merged
    trigger trains (recording.trigger_train_gap_s) a last column, block_s."""
    n_muscles, n_trials, n_bins = values.shape
    rows_per_trial = n_muscles * n_bins
    reasons_by_row = np.repeat(reasons.T.ravel(), n_bins).astype(str)
    columns = {
        "participant": np.full(n_trials * rows_per_trial, recording.participant),
        "trial": np.repeat(np.arange(n_trials), rows_per_trial),
        "condition": np.repeat(np.array(recording.conditions), rows_per_trial),
        "muscle": np.tile(np.repeat(np.array(muscles), n_bins), n_trials),
        "bin": np.tile(np.arange(n_bins), n_trials * n_muscles),
        "t": np.tile(bin_centres_s, n_trials * n_muscles),
        "value": values.transpose(1, 0, 2).ravel(),
        "rejected": reasons_by_row != "",
        "reason": reasons_by_row,
    }
    schema = TABLE_SCHEMA
    if recording.block_s is not None:
        schema = schema.append(pa.field("block_s", pa.float64()))
        columns["block_s"] = np.repeat(recording.block_s, rows_per_trial)
    return pa.Table.from_arrays(
        [arrow_array(columns[field.name], field.type) for field in schema],
        schema=schema,
    )


def arrow_array(values, arrow_type):
    """Arrow array of a 1-D numpy array (numbers, bools or text), built from buffers.

    pa.array() would be shorter, but it checks whether its input is a pandas object
    and so imports pandas: about 0.3 s, a quarter of a whole preprocessing job.
    """
    if arrow_type == pa.string():
        encoded = [value.encode() for value in values.tolist()]
        offsets = np.cumsum([0] + [len(value) for value in encoded], dtype=np.int32)
        buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
        return pa.Array.from_buffers(arrow_type, len(values), buffers)
    if arrow_type == pa.bool_():
        data = np.packbits(values, bitorder="little")
    else:
        data = np.ascontiguousarray(values, dtype=arrow_type.to_pandas_dtype())
    return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(data)])


def preprocess_and_write(
    recording, settings, limits_cache, table_path, qc_path, spectra_path
):
    """What a `preprocess` job makes of its `Recording`: the trial table and QC report
    (`preprocess_recording`, written by `write_outputs`) and the channel spectra its QC
    figure draws (`mimicry.preprocessing.spectra`). settings holds the config sections
    `study` and `preprocess`."""
    options = settings["preprocess"]
    table, qc = preprocess_recording(
        recording, settings["study"]["conditions"], options, limits_cache
    )
    write_outputs(table, qc, table_path, qc_path)
    write_spectra(channel_spectra(recording, options), spectra_path)


def write_outputs(table, qc, parquet_path, qc_path):
    """Write the trial table (parquet) and the QC report (JSON); same input, same bytes."""
    for path in (parquet_path, qc_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, parquet_path)
    with open(qc_path, "w") as handle:
        json.dump(qc, handle, indent=1)
        handle.write("\n")
