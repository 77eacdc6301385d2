"""The artifact rules on stationary noise and on bursts, at every sampling rate.

For each sampling rate (100, 250, 500, 1000, 2000 Hz) and band-pass valid at it,
preprocesses recordings of stationary Gaussian noise (seeds apart from the
calibration's) with each rule alone, and prints:

- the share of trials each rule rejects with its noise limit alone (the configured
  ratio set to 1, so the calibration is what is tested) and with the configured
  defaults, with 95% Clopper-Pearson intervals: the target is
  preprocess.rejection.false_alarm_rate;
- the rules' limits at that rate (noise limit and the limit applied);
- the smallest burst (amplitude ratio over --burst-s seconds, one per trial at a random
  place in the epoch) that the default rules reject in 95% of trials.

    .venv/bin/python benchmarks/false_alarms.py
"""

import argparse
import copy
import logging

import numpy as np
from scipy.stats import binomtest

import helpers_path  # noqa: F401 (tests/ on sys.path)
from helpers.devtools import PROJECT_ROOT
from mimicry.config.validation import load_config
from mimicry.io.recording_types import Recording
from mimicry.preprocessing.noise_limits import rule_limits
from mimicry.preprocessing.preprocess import Rectified, epoch_and_screen

# Band-pass edges valid at each rate: the fmov study's and its neighbours at 100 Hz,
# the default and the multiverse's bands where the rate allows.
BANDS = {
    100: ([20, 45], [20, 40], [10, 45]),
    250: ([20, 100], [20, 120], [10, 100]),
    500: ([20, 200], [20, 240], [10, 200]),
    1000: ([20, 450], [20, 250], [10, 400]),
    2000: ([20, 450], [20, 250], [10, 400]),
}
TRIALS_PER_RECORDING = 200
TRIAL_SPACING_S = 10.0
BURST_RATIOS = (2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 48, 64)
RULES = ("transient", "baseline")
# Configured ratios just above 1: the noise limit alone decides.
NOISE_LIMIT_ALONE = {"transient_ratio": 1.0001, "baseline_ratio": 1.0001}


def noise_recordings(fs, n_trials, seed, burst=None):
    """Recordings of unit-free Gaussian noise (10 uV rms), TRIALS_PER_RECORDING trials
    each; burst=(ratio, seconds) multiplies the noise by ratio over that long a stretch
    at a random place in each trial's epoch (-1 to 6 s)."""
    rng = np.random.default_rng(seed)
    spacing = int(TRIAL_SPACING_S * fs)
    for start in range(0, n_trials, TRIALS_PER_RECORDING):
        n = min(TRIALS_PER_RECORDING, n_trials - start)
        onsets = spacing + spacing * np.arange(n)
        signals = {}
        for muscle in ("ZM", "CS"):
            signal = 10 * rng.standard_normal((n + 2) * spacing)
            if burst is not None:
                ratio, seconds = burst
                length = int(round(seconds * fs))
                offsets = rng.uniform(-1, 6 - seconds, n)
                for onset, offset in zip(onsets, offsets):
                    first = onset + int(round(offset * fs))
                    signal[first : first + length] *= ratio
            signals[muscle] = signal
        yield Recording(
            participant=f"noise-{start}",
            path=f"<{fs:g} Hz noise>",
            sampling_rate_hz=fs,
            signals_uv=signals,
            onset_samples=onsets,
            conditions=("A",) * n,
        )


def rejected_shares(fs, variants, n_trials, seed, burst=None):
    """(rejected, judged) trial x muscle pairs under each of variants (preprocess
    options sharing one filter), filtering each recording once."""
    counts = np.zeros((len(variants), 2), dtype=int)
    for recording in noise_recordings(fs, n_trials, seed, burst):
        rectified = Rectified(recording, variants[0])
        for counter, options in zip(counts, variants):
            _, qc = epoch_and_screen(recording, ["A"], options, rectified)
            counter += len(qc["rejected_trials"]), 2 * len(recording.conditions)
    return [tuple(map(int, counter)) for counter in counts]


def with_rejection(options, **changes):
    changed = copy.deepcopy(options)
    changed["rejection"].update(changes)
    return changed


def interval(rejected, judged):
    low, high = binomtest(rejected, judged).proportion_ci(0.95)
    return f"{rejected / judged:.4f} [{low:.4f}, {high:.4f}]"


def smallest_burst(fs, options, n_trials, seed, seconds):
    for ratio in BURST_RATIOS:
        [(rejected, judged)] = rejected_shares(
            fs, [options], n_trials, seed, (ratio, seconds)
        )
        if rejected >= 0.95 * judged:
            return ratio
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trials", type=int, default=2000, help="noise trials per figure"
    )
    parser.add_argument("--burst-trials", type=int, default=400)
    parser.add_argument("--burst-s", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    # Every noise recording at a noise-only limit draws a warning; the table says it.
    logging.getLogger("mimicry").setLevel(logging.ERROR)
    config = load_config(PROJECT_ROOT / "config" / "config.yaml")
    defaults = config["preprocess"]
    target = defaults["rejection"]["false_alarm_rate"]
    print(
        f"target false-alarm rate {target:g} per rule and trial x muscle; "
        f"{args.trials} noise trials per figure (x 2 muscles), seed {args.seed}; "
        f"defaults: transient_ratio {defaults['rejection']['transient_ratio']:g}, "
        f"baseline_ratio {defaults['rejection']['baseline_ratio']:g}"
    )
    header = (
        "rate_hz\tband_hz\trule\tnoise_limits\tapplied_limits\t"
        "rate_noise_limit_alone [95% CI]\trate_defaults [95% CI]\tmeets_target"
    )
    print(header)
    bursts = []
    for fs, bands in BANDS.items():
        for band in bands:
            mains = 50.0 if fs > 200 else None
            options = copy.deepcopy(defaults) | {"band_hz": band, "mains_hz": mains}
            limits = rule_limits(fs, options)
            variants = [
                with_rejection(options, rules=[rule], **ratios)
                for rule in RULES
                for ratios in (NOISE_LIMIT_ALONE, {})
            ]
            shares = iter(rejected_shares(fs, variants, args.trials, args.seed))
            for rule in RULES:
                alone, default = next(shares), next(shares)
                limit = limits[rule]
                low = binomtest(*alone).proportion_ci(0.95).low
                print(
                    f"{fs}\t{band[0]}-{band[1]}\t{rule}\t"
                    f"{np.exp(limit['noise_lower']):.3g}-{np.exp(limit['noise_upper']):.3g}\t"
                    f"{np.exp(limit['lower']):.3g}-{np.exp(limit['upper']):.3g}\t"
                    f"{interval(*alone)}\t{interval(*default)}\t{low <= target}",
                    flush=True,
                )
            bursts.append(
                (
                    fs,
                    band,
                    smallest_burst(
                        fs, options, args.burst_trials, args.seed + 1, args.burst_s
                    ),
                )
            )
    print(
        f"\nsmallest burst ({args.burst_s:g} s, amplitude x ratio) the default rules "
        f"reject in 95% of {args.burst_trials} trials x 2 muscles:"
    )
    print("rate_hz\tband_hz\tburst_ratio")
    for fs, band, ratio in bursts:
        print(
            f"{fs}\t{band[0]}-{band[1]}\t{ratio if ratio else f'> {BURST_RATIOS[-1]}'}"
        )


if __name__ == "__main__":
    main()
