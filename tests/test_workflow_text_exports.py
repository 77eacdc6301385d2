"""A study recorded as AcqKnowledge text exports, configured by config alone, end to end.

The exports are what the acquisition software writes without its header option: 100 Hz,
no header line, eight tab-separated columns (time, two raw EMG channels, an empty
column, an integrated EMG channel, three 0/5 V trigger columns, one per condition) and a
tab at the end of every line. Eight participants in two groups, three conditions, a
comma-separated sample sheet and files named by a pattern. The cells the workflow
aggregates are checked against values computed here with numpy/scipy from the samples
written.

The participant ids are of forms the sample-sheet schema allows that pandas would read
as numbers, booleans or missing values (as real studies name their files: 09, 10, ...);
they stay as written in every table, the posterior and the report, which is built here
too.
"""

import csv
import json
import re

import arviz as az
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.signal import butter, sosfiltfilt

from helpers.devtools import run_snakemake
from mimicry.reporting.report import write_report

pytestmark = pytest.mark.workflow

FS = 100
CONDITIONS = ["Happy", "Angry", "Neutral"]
GROUPS = ["placebo", "drug"]
PARTICIPANTS = ["09", "10", "007", "1e3", "NA", "nan", "True", "36"]
# In the sample sheet without a raw file (source.missing_raw: skip): a row of qc.tsv.
MISSING = "011"
TITLE = "Text exports of lab 7"
TRIALS_PER_CONDITION = 6
SPACING_S = 10.0
LEAD_IN_S = 3.0
PULSE_S = 0.1
BAND_HZ = [10.0, 45.0]
BASELINE_S = (-1.0, 0.0)
BIN_S = 0.5
N_BINS = 12
# Log-ratio response per muscle and condition (ZM up to happy faces, CS to angry ones).
RESPONSE = {
    "ZM": {"Happy": 0.4, "Angry": -0.1, "Neutral": 0.0},
    "CS": {"Happy": -0.2, "Angry": 0.3, "Neutral": 0.0},
}
PARTICIPANT_SD = 0.1
TRIAL_SD = 0.1
MUSCLE_COLUMNS = {"ZM": 2, "CS": 3}
TRIGGER_COLUMNS = {"6": "Happy", "7": "Angry", "8": "Neutral"}
CELL_COLUMNS = ["participant", "group", "muscle", "condition", "bin"]
BAYES_AND_FIGURE_TARGETS = (
    "results/models/prior/prior.nc",
    "results/models/pooled/summary.tsv",
    "results/models/drug/summary.tsv",
    "results/models/drug/contrasts.tsv",
    "results/figures/fig2.pdf",
    "results/figures/fig3.pdf",
)


def study_config():
    return {
        "participants": "lab/participants.csv",
        "study": {
            "title": TITLE,
            "reference": None,
            "groups": GROUPS,
            "reference_group": "placebo",
            "conditions": CONDITIONS,
            "muscles": list(MUSCLE_COLUMNS),
        },
        "channels": MUSCLE_COLUMNS,
        "source": {
            "kind": "local",
            "local_dir": "lab/exports",
            "file_pattern": "{group}/{participant_id}_emg.txt",
            "missing_raw": "skip",
        },
        "recording": {
            "format": "TXT",
            "triggers": TRIGGER_COLUMNS,
            "trigger_threshold": 2.5,
            "text": {"header": False, "time_column": 1, "sampling_rate_hz": FS},
        },
        "preprocess": {
            "band_hz": BAND_HZ,
            "mains_hz": None,
            # No artifacts are written: keep every trial so that the cells are plain
            # means the test can recompute.
            "rejection": {"rules": []},
        },
        "stan": {"chains": 2, "warmup": 150, "draws": 150, "prior_draws": 50},
        "models": {"diagnostics": {"mode": "warn"}},
        "figures": {"fig2": {"prior_curves": 50}},
    }


def synthesize(seed):
    """Samples (time, ZM, CS, integrated ZM, 3 triggers) and the onsets per condition."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(np.repeat(CONDITIONS, TRIALS_PER_CONDITION))
    onsets = np.round((LEAD_IN_S + SPACING_S * np.arange(len(order))) * FS).astype(int)
    n = onsets[-1] + int(SPACING_S * FS)
    time_s = np.arange(n) / FS
    signals = {}
    for muscle in MUSCLE_COLUMNS:
        envelope = np.full(n, rng.uniform(3.0, 8.0))
        # Participants and trials differ in how strongly they respond.
        own = {
            c: r + rng.normal(0, PARTICIPANT_SD) for c, r in RESPONSE[muscle].items()
        }
        for onset, condition in zip(onsets, order):
            window = slice(onset, onset + N_BINS * int(BIN_S * FS))
            envelope[window] *= np.exp(own[condition] + rng.normal(0, TRIAL_SD))
        drift = 20.0 * np.sin(2 * np.pi * 0.05 * time_s + rng.uniform(0, 6))
        signals[muscle] = np.round(envelope * rng.standard_normal(n) + drift, 4)
    integrated = np.round(
        np.convolve(np.abs(signals["ZM"]), np.ones(10) / 10, "same"), 4
    )
    triggers = {}
    for column, condition in TRIGGER_COLUMNS.items():
        trigger = np.zeros(n)
        for onset in onsets[order == condition]:
            trigger[onset : onset + int(PULSE_S * FS)] = 5.0
        triggers[column] = trigger
    return time_s, signals, integrated, triggers, onsets, order


def write_export(path, time_s, signals, integrated, triggers):
    """Eight fields a line, the fourth empty, and a tab after the last one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        for i in range(len(time_s)):
            fields = [
                f"{time_s[i]:.2f}",
                f"{signals['ZM'][i]:.4f}",
                f"{signals['CS'][i]:.4f}",
                "",
                f"{integrated[i]:.4f}",
                *(f"{triggers[c][i]:g}" for c in TRIGGER_COLUMNS),
            ]
            handle.write("\t".join(fields) + "\t\n")


def expected_cells(participant, group, signals, onsets, order):
    """Band-pass, rectify, epoch, bin and take the mean log ratio per cell."""
    sos = butter(4, BAND_HZ, "bandpass", fs=FS, output="sos")
    baseline = slice(int(BASELINE_S[0] * FS), int(BASELINE_S[1] * FS))
    bin_samples = int(BIN_S * FS)
    rows = []
    for muscle, signal in signals.items():
        rectified = np.abs(sosfiltfilt(sos, signal))
        for condition in CONDITIONS:
            values = []
            for onset in onsets[order == condition]:
                base = rectified[onset + baseline.start : onset + baseline.stop].mean()
                bins = rectified[onset : onset + N_BINS * bin_samples]
                values.append(np.log(bins.reshape(N_BINS, bin_samples).mean(1) / base))
            means = np.mean(values, axis=0)
            for k, y in enumerate(means):
                rows.append(
                    {
                        "participant": participant,
                        "group": group,
                        "muscle": muscle,
                        "condition": condition,
                        "bin": k,
                        "t": (k + 0.5) * BIN_S,
                        "y": y,
                        "n_trials": len(values),
                    }
                )
    return rows


def test_headerless_acqknowledge_text_exports_run_the_whole_workflow(workflow_copy):
    lab = workflow_copy / "lab"
    groups = {p: GROUPS[i % 2] for i, p in enumerate(PARTICIPANTS)}
    expected = []
    for seed, (participant, group) in enumerate(groups.items()):
        time_s, signals, integrated, triggers, onsets, order = synthesize(seed)
        path = lab / "exports" / group / f"{participant}_emg.txt"
        write_export(path, time_s, signals, integrated, triggers)
        expected += expected_cells(participant, group, signals, onsets, order)
    sheet = pd.DataFrame(
        {
            "participant_id": [*groups, MISSING],
            "group": [*groups.values(), GROUPS[0]],
        }
    )
    sheet.to_csv(lab / "participants.csv", index=False)
    assert "\nNA,placebo\n" in (lab / "participants.csv").read_text()
    (lab / "config.yaml").write_text(yaml.safe_dump(study_config()))
    # One line as the user saw it: eight fields and a trailing tab, no header.
    first_line = path.read_text().splitlines()[0]
    assert first_line.count("\t") == 8 and first_line.endswith("\t")

    result = run_snakemake(
        workflow_copy,
        "--cores",
        "2",
        "--keep-going",
        "--configfile",
        "lab/config.yaml",
        check=False,
    )

    cells_path = workflow_copy / "results/aggregate/cells.parquet"
    assert cells_path.exists(), result.stdout[-4000:] + result.stderr[-4000:]
    cells = pd.read_parquet(cells_path).sort_values(CELL_COLUMNS).reset_index(drop=True)
    wanted = pd.DataFrame(expected).sort_values(CELL_COLUMNS).reset_index(drop=True)
    assert len(cells) == len(wanted) == len(PARTICIPANTS) * 2 * 3 * N_BINS
    for column in ("participant", "group", "muscle", "condition", "bin", "n_trials"):
        assert cells[column].astype(str).tolist() == wanted[column].astype(str).tolist()
    np.testing.assert_allclose(cells["t"], wanted["t"])
    np.testing.assert_allclose(cells["y"], wanted["y"], rtol=0, atol=1e-9)
    # The written responses come through: ZM to Happy above ZM to Angry.
    late = wanted[wanted["bin"] >= 4].groupby(["muscle", "condition"])["y"].mean()
    assert late["ZM", "Happy"] > late["ZM", "Angry"] + 0.2

    # Every stage finishes on this design.
    for target in BAYES_AND_FIGURE_TARGETS:
        assert (workflow_copy / target).exists(), target + result.stderr[-4000:]
    contrasts = pd.read_csv(
        workflow_copy / "results/models/drug/contrasts.tsv", sep="\t"
    )
    # One contrast (drug - placebo) per parameter, muscle and condition.
    assert len(contrasts) == 2 * 2 * len(CONDITIONS)
    assert set(contrasts["condition"]) == set(CONDITIONS)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    assert (workflow_copy / "results/stats/lrt.tsv").exists()
    assert (workflow_copy / "results/figures/fig1.pdf").exists()
    assert_ids_as_written(workflow_copy)


def assert_ids_as_written(workflow_copy):
    """Ids exactly as in the sample sheet in qc.tsv, the cells, the posterior and the
    report, whose title is the config's."""
    results = workflow_copy / "results"
    with open(results / "aggregate/qc.tsv", newline="") as handle:
        qc_rows = list(csv.DictReader(handle, delimiter="\t"))
    assert [(r["participant"], r["kind"]) for r in qc_rows] == [
        (MISSING, "raw_missing")
    ]
    cells = pd.read_parquet(results / "aggregate/cells.parquet")
    assert sorted(cells["participant"].unique()) == sorted(PARTICIPANTS)
    posterior = az.from_netcdf(results / "models/drug/posterior.nc")["posterior"]
    assert sorted(posterior["participant_a"]["participant"].values) == sorted(
        PARTICIPANTS
    )
    assert (results / "qc/group.png").read_bytes().startswith(b"\x89PNG")

    write_report("report.html", ("--configfile", "lab/config.yaml"), cwd=workflow_copy)
    page = (workflow_copy / "report.html").read_text()
    for participant in PARTICIPANTS:
        assert f'"labels": {{"recording": "{participant}"}}' in page, participant
    start = page.index("var workflow_desc = ") + len("var workflow_desc = ")
    description, _ = json.JSONDecoder().raw_decode(page, start)
    (heading,) = re.findall(r"<h1[^>]*>(.*?)</h1>", description)
    assert heading == TITLE
    assert "Korb" not in description
