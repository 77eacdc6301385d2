"""Cross-key checks of the `preprocess` settings that a JSON schema cannot express.

`study.check_config` runs them once before any job, so an inconsistent setting stops
the run with a message naming the keys. They live apart from
`mimicry.preprocessing.preprocess` because every Snakemake start (and every cluster job)
runs them, and importing the preprocessing module would add SciPy's and pyarrow's import
time to each.
"""

from mimicry.preprocessing.epochs import EpochWindows
from mimicry.simulate import ONSET_JITTER_S


def setting_problems(preprocess, simulation=None):
    """Messages, one per inconsistency, naming the config keys involved.

    preprocess is the validated `preprocess` section; simulation, the `simulation`
    section when the study is simulated (its trial spacing bounds the epoch).
    """
    low, high = preprocess["band_hz"]
    if not low < high:
        yield f"preprocess.band_hz {preprocess['band_hz']}: need low < high"
    baseline_start, baseline_end = preprocess["baseline_s"]
    response_start, response_end = preprocess["response_s"]
    if not baseline_start < baseline_end <= response_start < response_end:
        yield (
            f"preprocess.baseline_s {preprocess['baseline_s']} must be an interval "
            f"that ends before preprocess.response_s {preprocess['response_s']} starts"
        )
    n_bins = (response_end - response_start) / preprocess["bin_s"]
    if abs(n_bins - round(n_bins)) > 1e-9 or round(n_bins) < 1:
        yield (
            f"preprocess.bin_s {preprocess['bin_s']} must divide the response window "
            f"preprocess.response_s {preprocess['response_s']}"
        )
    rejection = preprocess["rejection"]
    if rejection["transient_context_s"] < 2 * rejection["transient_window_s"]:
        yield (
            f"preprocess.rejection.transient_context_s "
            f"{rejection['transient_context_s']:g} must be at least twice "
            f"preprocess.rejection.transient_window_s "
            f"{rejection['transient_window_s']:g}: the median around a window needs "
            "at least five windows to stay at the surrounding level"
        )
    if simulation is not None:
        span = response_end - baseline_start
        gap = simulation["trial_onset_spacing_s"] - ONSET_JITTER_S
        if span > gap:
            yield (
                f"preprocess.baseline_s {preprocess['baseline_s']} to "
                f"preprocess.response_s {preprocess['response_s']} spans {span:g} s, "
                f"more than the {gap:g} s between simulated onsets "
                f"(simulation.trial_onset_spacing_s "
                f"{simulation['trial_onset_spacing_s']:g} s minus {ONSET_JITTER_S:g} s "
                "jitter): each epoch would reach into the next trial"
            )


def rate_problems(band_hz, declared_rates, key="preprocess.band_hz"):
    """Messages for recordings whose declared sampling rate a band-pass cannot use.

    band_hz: the band's [low, high] edges, set by config key ``key``;
    declared_rates: participant -> (rate in Hz, where the rate is declared: a config
    key or a file's header).
    """
    high = band_hz[1]
    too_slow = {}
    for participant, (rate, origin) in sorted(declared_rates.items()):
        if high >= rate / 2:
            too_slow.setdefault((rate, origin), []).append(participant)
    if not too_slow:
        return
    listed = [
        f"{', '.join(names) if len(names) <= 3 else f'{len(names)} participants'} "
        f"({rate:g} Hz, {origin})"
        for (rate, origin), names in too_slow.items()
    ]
    more = len(listed) - 10
    yield (
        f"{key} {list(band_hz)}: the upper edge {high:g} Hz "
        "is at or above the Nyquist frequency (half the sampling rate) of "
        f"{'; '.join(listed[:10])}{f'; and {more} more' if more > 0 else ''}; set "
        f"{key} below half the lowest rate"
    )


def window_problems(preprocess, rate_hz, key_prefix="preprocess"):
    """Messages for windows that hold no sample at rate_hz: the baseline, a response
    bin and the transient rule's window. An empty window's mean is 0/0, so every
    value made from it would be NaN.

    preprocess: a validated `preprocess` section, set by config keys under
    key_prefix."""
    windows = EpochWindows(preprocess, rate_hz)
    lengths = windows.stops - windows.starts
    sample_ms = 1000 / rate_hz
    if lengths[0] < 1:
        yield (
            f"{key_prefix}.baseline_s {preprocess['baseline_s']} holds no sample at "
            f"{rate_hz:g} Hz (one sample every {sample_ms:.3g} ms): lengthen it"
        )
    if (lengths[1:] < 1).any():
        yield (
            f"{key_prefix}.bin_s {preprocess['bin_s']:g} s: a bin of "
            f"{key_prefix}.response_s {preprocess['response_s']} holds no sample at "
            f"{rate_hz:g} Hz (one sample every {sample_ms:.3g} ms): widen the bins"
        )
    rejection = preprocess["rejection"]
    if "transient" in rejection["rules"]:
        if round(rejection["transient_window_s"] * rate_hz) < 1:
            yield (
                f"{key_prefix}.rejection.transient_window_s "
                f"{rejection['transient_window_s']:g} s is shorter than one sample at "
                f"{rate_hz:g} Hz ({sample_ms:.3g} ms): lengthen it"
            )
