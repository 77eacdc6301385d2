"""Simulated facial EMG beside real facial EMG, on the statistics that the artifact
rules and the models see.

    .venv/bin/python benchmarks/signal_realism.py
    .venv/bin/python benchmarks/signal_realism.py --participants 37 \\
        --config config/config.yaml config/quick.yaml config/lowrate.yaml

Real: the public FMOV study (--real, default ../shared/realdata/fmov: 37 BIOPAC text
exports at 100 Hz) read with config/examples/fmov's reader and preprocessing settings
(band-pass 20-45 Hz, no notch). Simulated: --participants participants of the simulated
study under --config (by default the quick study exported at 100 Hz with the same band,
config/lowrate.yaml), synthesised into a scratch directory and read back by the
workflow's reader; participants given a flaw are left out. Noise: stationary Gaussian
white noise at the real rate, the floor of every statistic. All three go through the
workflow's own filter (mimicry.preprocessing.preprocess.Rectified), windows and transient statistic
(mimicry.preprocessing.epochs: EpochWindows, window_deviations) and spectra
(mimicry.preprocessing.spectra.channel_spectra).

Prints one row per statistic:
- window ratios up / down: each transient_window_s window's mean rectified amplitude
  over the median of the windows within transient_context_s on either side
  (window_deviations); per trial x muscle the
  largest ratio upwards, and the largest downwards as 1/ratio, over baseline start to
  response end; quantiles over trials x muscles. The simulated study's are also given
  without the trial x muscle pairs that hold an injected artifact.
- bursts at rest: share of baseline windows (1 s) holding a window more than 3x the
  median around it.
- baseline deviation: each baseline mean over the median baseline of its muscle's
  trials, either way (what the baseline rule judges); quantiles over trials x muscles.
- log baseline sd: sd over a participant's trials of the log baseline mean, per muscle;
  median and quartiles over participants.
- log response sd: the same for log(mean of the response bins / baseline), the trial
  noise of what the models see.
- level autocorrelation: of the log mean rectified amplitude of 1 s windows over the
  whole recording, at lags of 1-40 s (how slowly the level wanders).
- spectrum: share of the raw power in the band per 10 Hz; mains: share of the raw
  power from 1 Hz to Nyquist within 1 Hz of the mains frequency (median and quartiles
  over channels).
- rejected: share of trial x muscle rejected by each artifact rule of this checkout
  (mimicry.preprocessing.preprocess.preprocess_recording with each side's preprocess settings), and
  of participants excluded.
"""

import argparse
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from mimicry.bayes.synthetic import balanced_participants
import helpers_path  # noqa: F401 (tests/ on sys.path)
from helpers.devtools import PROJECT_ROOT
from mimicry.config.validation import load_config
from mimicry.io.recording_types import Recording
from mimicry.preprocessing.epochs import EpochWindows, window_deviations
from mimicry.preprocessing.preprocess import (
    Rectified,
    preprocess_recording,
    read_participant_recording,
)
from mimicry.preprocessing.spectra import channel_spectra
from mimicry.simulate import simulate_participant

QUANTILES = (0.5, 0.9, 0.95, 0.99)
BURST_RATIO = 3.0
SPECTRUM_BAND_HZ = 10.0
MAINS_HALF_WIDTH_HZ = 1.0
LEVEL_WINDOW_S = 1.0
LEVEL_LAGS_S = (1, 2, 5, 10, 20, 40)
NOISE_TRIALS = 4000
NOISE_SPACING_S = 10.0
# The real study was recorded in Sweden.
REAL_MAINS_HZ = 50.0


def recording_statistics(recording, options, conditions, artifact_pairs=None):
    """The statistics of one recording: per-trial arrays and per-channel values."""
    rectified = Rectified(recording, options)
    fs, onsets = recording.sampling_rate_hz, recording.onset_samples
    deviations = window_deviations(rectified.prefix, onsets, options, fs)[0]
    windows = EpochWindows(options, fs)
    baseline, bins, _ = windows.means(rectified.prefix, onsets)
    log_baseline = np.log(baseline)
    log_response = np.log(bins.mean(axis=-1)) - log_baseline
    n_baseline = round(
        (options["baseline_s"][1] - options["baseline_s"][0])
        / options["rejection"]["transient_window_s"]
    )
    window = round(LEVEL_WINDOW_S * fs)
    level = np.log(np.diff(rectified.prefix[:, ::window], axis=1))
    level -= level.mean(axis=1, keepdims=True)
    lags = [round(lag / LEVEL_WINDOW_S) for lag in LEVEL_LAGS_S]
    _, qc = preprocess_recording(recording, conditions, options)
    muscles = list(recording.signals_uv)
    counts = Counter(entry["reason"] for entry in qc["rejected_trials"])
    rejected = {
        reason: count / (len(muscles) * qc["n_trials"])
        for reason, count in counts.items()
    }
    return {
        "up": deviations.max(axis=-1),
        "down": -deviations.min(axis=-1),
        "artifact": (
            artifact_pairs
            if artifact_pairs is not None
            else np.zeros(deviations.shape[:2], dtype=bool)
        ),
        "burst_at_rest": (deviations[..., :n_baseline] > np.log(BURST_RATIO)).any(
            axis=-1
        ),
        "baseline_deviation": np.abs(
            log_baseline - np.median(log_baseline, axis=1, keepdims=True)
        ),
        "baseline_sd": dict(zip(muscles, log_baseline.std(axis=1, ddof=1))),
        "response_sd": dict(zip(muscles, log_response.std(axis=1, ddof=1))),
        "level_autocorrelation": {
            muscle: [np.corrcoef(series[:-lag], series[lag:])[0, 1] for lag in lags]
            for muscle, series in zip(muscles, level)
        },
        "spectra": channel_spectra(recording, options),
        "rejected": rejected,
        "excluded": qc["excluded"],
        "sampling_rate_hz": fs,
    }


def real_statistics(real_dir):
    config = load_config(
        PROJECT_ROOT / "config" / "config.yaml",
        PROJECT_ROOT / "config" / "examples" / "fmov" / "config.yaml",
    )
    sheet = pd.read_csv(real_dir / "participants.csv", dtype=str)
    results = []
    for participant in sheet["participant_id"]:
        path = real_dir / "FMOV" / f"{participant}_FMOV_preprocessed.txt"
        recording = read_participant_recording(path, participant, config)
        results.append(
            recording_statistics(
                recording, config["preprocess"], config["study"]["conditions"]
            )
        )
    return config, results


def simulated_statistics(config_paths, n_participants):
    config = load_config(*config_paths)
    participants = balanced_participants(config["study"]["groups"], n_participants)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for participant, group in participants:
            path = Path(scratch) / f"{participant}.edf"
            plan = simulate_participant(config, participant, group, path)
            if plan.flaw is not None:
                continue
            recording = read_participant_recording(path, participant, config)
            artifacts = np.array(
                [
                    [
                        trial.artifact is not None and muscle in trial.artifact.muscles
                        for trial in plan.trials
                    ]
                    for muscle in config["study"]["muscles"]
                ]
            )
            results.append(
                recording_statistics(
                    recording,
                    config["preprocess"],
                    config["study"]["conditions"],
                    artifacts,
                )
            )
    return config, results


def noise_statistics(options, sampling_rate_hz):
    """White noise with onsets every NOISE_SPACING_S seconds, as one recording."""
    spacing = round(NOISE_SPACING_S * sampling_rate_hz)
    rng = np.random.default_rng(0)
    recording = Recording(
        participant="noise",
        path=Path("white-noise"),
        sampling_rate_hz=sampling_rate_hz,
        signals_uv={"noise": rng.standard_normal((NOISE_TRIALS + 1) * spacing)},
        onset_samples=spacing // 2 + spacing * np.arange(NOISE_TRIALS),
        conditions=("noise",) * NOISE_TRIALS,
    )
    return [recording_statistics(recording, options, ["noise"])]


def pooled(results, key, keep=None):
    values = [
        result[key][keep(result)] if keep else result[key].ravel() for result in results
    ]
    return np.concatenate(values)


def quantiles(log_values):
    return " ".join(
        f"{value:5.2f}" for value in np.exp(np.quantile(log_values, QUANTILES))
    )


def per_channel(results, key):
    """Median [quartiles] over participants, per muscle (in the order of the files)."""
    by_muscle = {}
    for result in results:
        for muscle, value in result[key].items():
            by_muscle.setdefault(muscle, []).append(value)
    return ", ".join(
        f"{muscle} {np.median(values):.2f} [{np.quantile(values, 0.25):.2f}-"
        f"{np.quantile(values, 0.75):.2f}]"
        for muscle, values in by_muscle.items()
    )


def autocorrelations(results):
    by_muscle = {}
    for result in results:
        for muscle, values in result["level_autocorrelation"].items():
            by_muscle.setdefault(muscle, []).append(values)
    return ", ".join(
        f"{muscle} " + " ".join(f"{value:.2f}" for value in np.median(values, axis=0))
        for muscle, values in by_muscle.items()
    )


def spectrum_shares(results, band_hz):
    low, high = band_hz
    edges = np.arange(low, high, SPECTRUM_BAND_HZ).tolist() + [high]
    shares = []
    for result in results:
        frequencies = result["spectra"]["frequencies_hz"]
        for psd in result["spectra"]["raw"].values():
            in_band = (frequencies >= low) & (frequencies <= high)
            total = psd[in_band].sum()
            shares.append(
                [
                    (
                        psd[(frequencies >= start) & (frequencies < stop)].sum() / total
                        if stop < high
                        else psd[(frequencies >= start) & (frequencies <= stop)].sum()
                        / total
                    )
                    for start, stop in zip(edges[:-1], edges[1:])
                ]
            )
    medians = np.median(shares, axis=0)
    return " ".join(
        f"{start:g}-{stop:g} {share:.2f}"
        for start, stop, share in zip(edges[:-1], edges[1:], medians)
    )


def mains_share(results, mains_hz):
    shares = []
    for result in results:
        frequencies = result["spectra"]["frequencies_hz"]
        for psd in result["spectra"]["raw"].values():
            line = np.abs(frequencies - mains_hz) <= MAINS_HALF_WIDTH_HZ
            shares.append(psd[line].sum() / psd[frequencies >= 1.0].sum())
    return (
        f"{np.median(shares):.3f} [{np.quantile(shares, 0.25):.3f}-"
        f"{np.quantile(shares, 0.75):.3f}]"
    )


def rejected(results):
    reasons = sorted({reason for result in results for reason in result["rejected"]})
    shares = {
        reason: np.mean([result["rejected"].get(reason, 0.0) for result in results])
        for reason in reasons
    }
    excluded = np.mean([result["excluded"] for result in results])
    return " ".join(f"{reason} {share:.3f}" for reason, share in shares.items()) + (
        f"; excluded {excluded:.2f}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--real", type=Path, default=PROJECT_ROOT.parent / "shared/realdata/fmov"
    )
    parser.add_argument(
        "--config",
        nargs="+",
        default=[
            PROJECT_ROOT / "config" / name
            for name in ("config.yaml", "quick.yaml", "lowrate.yaml")
        ],
    )
    parser.add_argument("--participants", type=int, default=37)
    arguments = parser.parse_args()
    real_config, real = real_statistics(arguments.real)
    simulated_config, simulated = simulated_statistics(
        arguments.config, arguments.participants
    )
    noise = noise_statistics(real_config["preprocess"], real[0]["sampling_rate_hz"])
    options = real_config["preprocess"]
    print(
        f"real: {len(real)} recordings ({arguments.real}); simulated: {len(simulated)} "
        f"participants ({', '.join(map(str, arguments.config))}); band "
        f"{options['band_hz']} Hz, windows {options['rejection']['transient_window_s']:g}"
        f" s vs the median within {options['rejection']['transient_context_s']:g} s"
    )
    sides = {"real": real, "simulated": simulated, "noise": noise}
    header = " ".join(f"{int(q * 100)}%".rjust(5) for q in QUANTILES)
    print(f"\nper trial x muscle, largest window ratio ({header})")
    for name, results in sides.items():
        print(f"  up    {name:<28} {quantiles(pooled(results, 'up'))}")
    without = pooled(simulated, "up", lambda result: ~result["artifact"])
    print(f"  up    {'simulated without artifacts':<28} {quantiles(without)}")
    for name, results in sides.items():
        print(f"  down  {name:<28} {quantiles(pooled(results, 'down'))}")
    print(f"\nbaselines holding a window > {BURST_RATIO:g}x the median around it")
    for name, results in sides.items():
        print(f"  {name:<10} {pooled(results, 'burst_at_rest').mean():.3f}")
    print(
        "\n|log baseline - the muscle's median| over trials x muscles, as a ratio "
        f"({header})"
    )
    for name, results in sides.items():
        print(f"  {name:<10} {quantiles(pooled(results, 'baseline_deviation'))}")
    for key, label in (
        ("baseline_sd", "sd of the log baseline over a participant's trials"),
        ("response_sd", "sd of log(response / baseline) over a participant's trials"),
    ):
        print(f"\n{label}: median [quartiles] over participants")
        for name, results in sides.items():
            print(f"  {name:<10} {per_channel(results, key)}")
    lags = ", ".join(f"{lag:g}" for lag in LEVEL_LAGS_S)
    print(
        f"\nautocorrelation of the log mean of {LEVEL_WINDOW_S:g} s windows at lags "
        f"{lags} s (median over channels)"
    )
    for name, results in (("real", real), ("simulated", simulated)):
        print(f"  {name:<10} {autocorrelations(results)}")
    print("\nraw spectrum: share of the band's power per 10 Hz (median over channels)")
    for name, results in (("real", real), ("simulated", simulated)):
        print(f"  {name:<10} {spectrum_shares(results, options['band_hz'])}")
    print(
        f"\nshare of raw power (>= 1 Hz) within {MAINS_HALF_WIDTH_HZ:g} Hz of mains "
        "(median [quartiles] over channels)"
    )
    print(f"  real       {mains_share(real, REAL_MAINS_HZ)}")
    print(
        f"  simulated  "
        f"{mains_share(simulated, simulated_config['simulation']['mains_hz'])}"
    )
    print("\nrejected trial x muscle by rule; participants excluded")
    for name, results, config in (
        ("real", real, real_config),
        ("simulated", simulated, simulated_config),
    ):
        # The settings of the rules that ran (the opt-in condition rule aside).
        settings = ", ".join(
            f"{key} {value:g}"
            for key, value in config["preprocess"]["rejection"].items()
            if key.startswith(("transient", "baseline"))
        )
        print(f"  {name:<10} {rejected(results)} ({settings})")


if __name__ == "__main__":
    main()
