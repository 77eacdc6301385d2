"""QC figures of simulated quick-study participants, checked from the matplotlib objects.

Participants are simulated and preprocessed for real (one ordinary, one with a flat
channel, one with artifacts in most trials); every expected number is computed here
from the recording, the trial table or the QC report, independently of the plotting
code.
"""

import copy
import json
import re
import struct

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from matplotlib.colors import to_rgba
from scipy.signal import sosfiltfilt, welch

from mimicry.aggregate import aggregate
from mimicry.plots import qc_figures
from helpers.devtools import job_counts, run_snakemake
from mimicry.io.recordings import read_recording
from mimicry.io.tables import read_tsv
from mimicry.package_data import CONFIG_SCHEMA
from mimicry.preprocessing.filters import design_filter
from mimicry.preprocessing.preprocess import (
    preprocess_recording,
    read_participant_recording,
    write_outputs,
)
from mimicry.preprocessing.spectra import channel_spectra, read_spectra, write_spectra
from mimicry.simulate import simulate_participant

PARTICIPANTS = {"sub-001": "placebo", "sub-011": "naltrexone", "sub-012": "amisulpride"}
# The EMG level wanders (simulation.level_fluctuation: log-amplitude sd about 0.6, 5 dB
# of power), so the 8 spectrum segments' level differs from the whole recording's by
# about 5 / sqrt(8) = 1.8 dB.
SEGMENT_LEVEL_TOLERANCE_DB = 4.0
ORDINARY, FLAT, ARTIFACTS = PARTICIPANTS


def settings_of(config):
    return copy.deepcopy(
        {key: config[key] for key in ("study", "channels", "recording", "preprocess")}
    )


@pytest.fixture(scope="module")
def settings(quick_config):
    return settings_of(quick_config)


def spectra_path(qc_path):
    """Where the preprocess rule writes the spectra: beside the QC report."""
    return qc_path.with_suffix(".spectra.parquet")


@pytest.fixture(scope="module")
def participants(quick_config, settings, tmp_path_factory):
    """participant -> (raw path, table path, QC path, table as pandas, QC report),
    the spectra written beside the QC report, all as the preprocess rule does."""
    directory = tmp_path_factory.mktemp("qc-participants")
    drawn = {}
    for participant, group in PARTICIPANTS.items():
        raw = directory / f"{participant}.edf"
        simulate_participant(quick_config, participant, group, raw)
        recording = read_participant_recording(raw, participant, settings)
        options = settings["preprocess"]
        table, qc = preprocess_recording(
            recording, settings["study"]["conditions"], options
        )
        table_path, qc_path = directory / f"{participant}.parquet", directory / (
            f"{participant}.json"
        )
        write_outputs(table, qc, table_path, qc_path)
        write_spectra(channel_spectra(recording, options), spectra_path(qc_path))
        drawn[participant] = (raw, table_path, qc_path, table.to_pandas(), qc)
    return drawn


@pytest.fixture(scope="module")
def recordings(participants, settings):
    muscles = settings["study"]["muscles"]
    return {
        participant: read_recording(
            raw,
            participant,
            channels={muscle: settings["channels"][muscle] for muscle in muscles},
            conditions=settings["study"]["conditions"],
            settings=settings["recording"],
        )
        for participant, (raw, *_) in participants.items()
    }


@pytest.fixture(scope="module")
def figures(participants, settings):
    """participant -> (figure, spectra), drawn from the files the rule reads."""
    drawn = {}
    for participant, (_, table_path, qc_path, _, _) in participants.items():
        qc = json.loads(qc_path.read_text())
        spectra = read_spectra(spectra_path(qc_path))
        figure = qc_figures.participant_figure(
            spectra, pq.read_table(table_path), qc, settings
        )
        drawn[participant] = figure, spectra
    yield drawn
    for figure, _ in drawn.values():
        plt.close(figure)


def _axes(figure, title):
    (ax,) = [ax for ax in figure.get_axes() if ax.get_title() == title]
    return ax


def _lines(ax, gid):
    return [line for line in ax.get_lines() if line.get_gid() == gid]


def _cells(settings):
    study = settings["study"]
    return [(m, k) for m in study["muscles"] for k in study["conditions"]]


def _heatmap(figure, table, muscle, condition):
    n_rejected = table[
        (table["muscle"] == muscle)
        & (table["condition"] == condition)
        & (table["bin"] == 0)
    ]["rejected"].sum()
    return _axes(figure, f"{muscle}, {condition}: {n_rejected} rejected")


# Spectra


def test_each_channel_has_a_raw_and_a_filtered_spectrum(
    figures, recordings, participants, settings
):
    for participant, (figure, _) in figures.items():
        recording = recordings[participant]
        qc = participants[participant][4]
        for muscle in settings["study"]["muscles"]:
            ax = _axes(figure, f"{muscle} ({settings['channels'][muscle]}): spectrum")
            (raw,), (filtered,) = _lines(ax, "raw"), _lines(ax, "filtered")
            fs = recording.sampling_rate_hz
            expected_frequencies = np.arange(0, fs / 2 + 1)  # 1 Hz resolution
            np.testing.assert_allclose(raw.get_xdata(), expected_frequencies)
            np.testing.assert_allclose(filtered.get_xdata(), expected_frequencies)
            if np.ptp(recording.signals_uv[muscle]) == 0:  # the flat channel
                assert qc["muscles"][muscle]["excluded"]
                assert any("no signal" in text.get_text() for text in ax.texts)
            else:
                assert np.isfinite(raw.get_ydata()[1:]).all()


def test_marked_band_edges_and_notches_are_the_filter_of_the_config(
    figures, participants, settings, quick_config
):
    options = quick_config["preprocess"]
    for participant, (figure, _) in figures.items():
        qc = participants[participant][4]
        nyquist = qc["sampling_rate_hz"] / 2
        multiples = range(1, options["notch_harmonics"] + 1)
        expected_notches = [
            options["mains_hz"] * k
            for k in multiples
            if options["mains_hz"] * k + options["notch_width_hz"] / 2 < nyquist
        ]
        assert expected_notches == qc["notch_hz"]
        for muscle in settings["study"]["muscles"]:
            ax = _axes(figure, f"{muscle} ({settings['channels'][muscle]}): spectrum")
            edges = sorted(line.get_xdata()[0] for line in _lines(ax, "band_edge"))
            assert edges == list(options["band_hz"])
            notches = [line.get_xdata()[0] for line in _lines(ax, "notch")]
            assert notches == expected_notches


def test_segment_spectra_agree_with_the_whole_recording(
    figures, recordings, settings, quick_config
):
    """Median Welch on the segments gives the shape of that of the whole recording
    (its level too, within what the EMG level's wandering between segments allows),
    and the filtered spectrum is the raw one with the mains lines and the out-of-band
    power taken out."""
    figure, spectra = figures[ORDINARY]
    recording = recordings[ORDINARY]
    fs = recording.sampling_rate_hz
    sos, notch_hz, _ = design_filter(recording, quick_config["preprocess"])
    low, high = quick_config["preprocess"]["band_hz"]
    for muscle in settings["study"]["muscles"]:
        signal = recording.signals_uv[muscle]
        frequencies, raw = welch(signal, fs, nperseg=round(fs), average="median")
        _, filtered = welch(
            sosfiltfilt(sos, signal), fs, nperseg=round(fs), average="median"
        )
        ax = _axes(figure, f"{muscle} ({settings['channels'][muscle]}): spectrum")
        (raw_line,), (filtered_line,) = _lines(ax, "raw"), _lines(ax, "filtered")
        in_band = (frequencies > low + 5) & (frequencies < high - 5)
        away = in_band & ~np.isin(frequencies, np.round(notch_hz))
        for line, whole in ((raw_line, raw), (filtered_line, filtered)):
            difference = (line.get_ydata() - 10 * np.log10(whole))[away]
            level = np.median(difference)
            print(f"{muscle}: segments - whole recording {level:.2f} dB")
            assert np.median(np.abs(difference - level)) < 1.0  # dB
            assert abs(level) < SEGMENT_LEVEL_TOLERANCE_DB
        mains = frequencies == quick_config["preprocess"]["mains_hz"]
        assert filtered_line.get_ydata()[mains] < raw_line.get_ydata()[mains] - 10
        below = (frequencies > 0) & (frequencies < low / 2)
        assert (filtered_line.get_ydata()[below] < raw_line.get_ydata()[below]).all()


def test_the_spectra_file_holds_what_channel_spectra_computed(
    participants, recordings, settings
):
    """The QC figure draws the preprocess job's spectra as computed, to the bit."""
    for participant, (_, _, qc_path, _, _) in participants.items():
        computed = channel_spectra(recordings[participant], settings["preprocess"])
        stored = read_spectra(spectra_path(qc_path))
        assert set(stored) == set(computed)
        np.testing.assert_array_equal(
            stored["frequencies_hz"], computed["frequencies_hz"]
        )
        for kind in ("raw", "filtered"):
            assert list(stored[kind]) == settings["study"]["muscles"]
            for muscle, psd in computed[kind].items():
                np.testing.assert_array_equal(stored[kind][muscle], psd)


# Trials x bins


def test_heatmaps_are_the_tables_values_per_muscle_and_condition(
    figures, participants, settings
):
    for participant, (figure, _) in figures.items():
        table = participants[participant][3]
        for muscle, condition in _cells(settings):
            cell = table[
                (table["muscle"] == muscle) & (table["condition"] == condition)
            ]
            expected = cell.pivot(index="trial", columns="bin", values="value")
            ax = _heatmap(figure, table, muscle, condition)
            (image,) = ax.get_images()
            drawn = np.ma.filled(image.get_array().astype(float), np.nan)
            np.testing.assert_allclose(drawn, expected.to_numpy())
            labels = [int(tick.get_text()) for tick in ax.get_yticklabels()]
            rows = ax.get_yticks().astype(int)
            assert labels == expected.index[rows].tolist()


def test_rejected_trials_marked_are_exactly_the_rejected_rows(
    figures, participants, settings
):
    n_marked = 0
    for participant, (figure, _) in figures.items():
        table = participants[participant][3]
        for muscle, condition in _cells(settings):
            cell = table[
                (table["muscle"] == muscle)
                & (table["condition"] == condition)
                & (table["bin"] == 0)
            ].sort_values("trial")
            ax = _heatmap(figure, table, muscle, condition)
            trials = cell["trial"].to_numpy()
            marked = {}
            for line in _lines(ax, "rejected"):
                for row in line.get_ydata():
                    marked[int(trials[int(row)])] = line.get_label()
            rejected = cell[cell["rejected"]]
            assert marked == dict(zip(rejected["trial"], rejected["reason"]))
            n_marked += len(marked)
    assert n_marked > 24  # the flat channel alone rejects every trial of one muscle


def test_reason_legend_names_every_reason_with_its_marker(figures, participants):
    figure, _ = figures[ARTIFACTS]
    table = participants[ARTIFACTS][3]
    (legend,) = figure.legends
    reasons = set(table.loc[table["rejected"], "reason"])
    in_style_order = [r for r in qc_figures.REASON_STYLES if r in reasons]
    assert [text.get_text() for text in legend.get_texts()] == in_style_order
    markers = {}
    for ax in figure.get_axes():
        for line in _lines(ax, "rejected"):
            assert markers.setdefault(line.get_label(), line.get_marker()) == (
                line.get_marker()
            )
    assert len(set(markers.values())) == len(markers) == len(reasons)


def _drawn_reason_styles(figure):
    """reason -> {(marker, colour)} of its heatmap markers and legend entries."""
    drawn = {}
    lines = [line for ax in figure.get_axes() for line in _lines(ax, "rejected")]
    for legend in figure.legends:
        lines += legend.legend_handles
    for line in lines:
        style = (line.get_marker(), to_rgba(line.get_color()))
        drawn.setdefault(line.get_label(), set()).add(style)
    return drawn


def test_a_reason_has_one_marker_and_colour_for_every_participant(figures, group):
    drawn = {p: _drawn_reason_styles(figure) for p, (figure, _) in figures.items()}
    # The ordinary participant's trials are rejected for transients only, the flat
    # channel's also as flat_channel: different reason sets that share a reason.
    assert set(drawn[ORDINARY]) == {"transient"}
    assert set(drawn[FLAT]) == {"flat_channel", "transient"}
    expected = {
        reason: {(marker, to_rgba(colour))}
        for reason, (marker, colour) in qc_figures.REASON_STYLES.items()
    }
    for styles in drawn.values():
        assert styles == {reason: expected[reason] for reason in styles}
    # The group figure marks each reason's row with the same marker and colour.
    figure, *_ = group
    rejections = _axes(figure, "rejected trials by reason (all participants)")
    reasons = [tick.get_text() for tick in rejections.get_yticklabels()]
    markers = _lines(rejections, "reason_marker")
    assert len(markers) == len(reasons) >= 2
    for line in markers:
        (row,) = line.get_ydata()
        style = {(line.get_marker(), to_rgba(line.get_color()))}
        assert style == expected[reasons[int(row)]]


def test_every_rejection_reason_has_its_own_style():
    schema = yaml.safe_load(CONFIG_SCHEMA.read_text())
    rejection = schema["properties"]["preprocess"]["properties"]["rejection"]
    rules = rejection["properties"]["rules"]["items"]["enum"]
    fixed = ["outside_recording", "flat_channel", "saturated_channel"]
    assert set(qc_figures.REASON_STYLES) == {*fixed, *rules}
    styles = list(qc_figures.REASON_STYLES.values())
    assert qc_figures.UNKNOWN_REASON_STYLE not in styles
    assert len(set(styles)) == len(styles)
    assert len({marker for marker, _ in styles}) == len(styles)


# Cell curves


def test_cell_curves_are_the_means_of_the_kept_trials(figures, participants, settings):
    for participant, (figure, _) in figures.items():
        table = participants[participant][3]
        kept = table[~table["rejected"]]
        for muscle in settings["study"]["muscles"]:
            ax = _axes(figure, f"{muscle}: mean over kept trials")
            curves = {line.get_label(): line for line in _lines(ax, "cell_curve")}
            expected = (
                kept[kept["muscle"] == muscle]
                .groupby(["condition", "t"])["value"]
                .mean()
            )
            assert sorted(curves) == sorted(expected.index.unique("condition"))
            for condition, line in curves.items():
                np.testing.assert_allclose(line.get_xdata(), expected[condition].index)
                np.testing.assert_allclose(line.get_ydata(), expected[condition])


def test_a_channel_without_kept_trials_says_so(figures, participants, settings):
    figure, _ = figures[FLAT]
    qc = participants[FLAT][4]
    (flat,) = [m for m, d in qc["muscles"].items() if d["excluded"]]
    ax = _axes(figure, f"{flat}: mean over kept trials")
    assert _lines(ax, "cell_curve") == []
    assert any("no kept trials" in text.get_text() for text in ax.texts)


def test_a_condition_without_trials_leaves_an_empty_panel(participants, settings):
    _, table_path, qc_path, _, qc = participants[ORDINARY]
    table = pq.read_table(table_path)
    condition = settings["study"]["conditions"][-1]
    others = table.filter(pc.not_equal(table.column("condition"), condition))
    figure = qc_figures.participant_figure(
        read_spectra(spectra_path(qc_path)), others, qc, settings
    )
    for muscle in settings["study"]["muscles"]:
        ax = _axes(figure, f"{muscle}, {condition}: no trials")
        assert ax.get_images() == []
        curves = _axes(figure, f"{muscle}: mean over kept trials")
        assert [line.get_label() for line in _lines(curves, "cell_curve")] == (
            settings["study"]["conditions"][:-1]
        )
    plt.close(figure)


# Title


def _title(figure):
    return " ".join(figure.get_suptitle().split())


def test_an_excluded_participants_title_says_why(figures, participants):
    for participant in (FLAT, ARTIFACTS):
        figure, _ = figures[participant]
        qc = participants[participant][4]
        assert qc["excluded"] and qc["exclusion_reasons"]
        assert "EXCLUDED" in _title(figure)
        for reason in qc["exclusion_reasons"]:
            assert " ".join(reason.split()) in _title(figure)
    figure, _ = figures[ORDINARY]
    assert not participants[ORDINARY][4]["excluded"]
    assert "EXCLUDED" not in _title(figure) and "included" in _title(figure)


# Output file


def _png_size(data):
    return struct.unpack(">II", data[16:24])


def test_same_inputs_give_the_same_png_bytes(participants, settings, tmp_path):
    """Also when the caller's rcParams differ (a matplotlibrc, an earlier theme)."""
    _, table_path, qc_path, _, _ = participants[ARTIFACTS]
    outputs = []
    foreign_style = {"font.size": 17, "lines.linewidth": 4, "savefig.dpi": 50}
    for run, style in (("first", {}), ("second", foreign_style)):
        with plt.rc_context(style):
            png = tmp_path / f"{run}.png"
            qc_figures.write_participant_figure(
                spectra_path(qc_path), table_path, qc_path, png, settings
            )
        outputs.append(png.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0].startswith(b"\x89PNG")
    figure = qc_figures.participant_figure(
        read_spectra(spectra_path(qc_path)),
        pq.read_table(table_path),
        json.loads(qc_path.read_text()),
        settings,
    )
    width, height = figure.get_size_inches() * qc_figures.PNG_DPI
    assert _png_size(outputs[0]) == (round(width), round(height))


# Group figure


@pytest.fixture(scope="module")
def group(participants, settings):
    """The aggregate QC table of the three participants plus one without a raw file."""
    tables = [entry[3] for entry in participants.values()]
    trials = pd.concat(tables, ignore_index=True)
    qcs = {participant: entry[4] for participant, entry in participants.items()}
    groups = {**PARTICIPANTS, "sub-013": "placebo"}
    _, _, qc_table = aggregate(trials, qcs, groups, missing=["sub-013"])
    figure = qc_figures.group_figure(qc_table, qcs, settings)
    yield figure, trials, qcs
    plt.close(figure)


def test_group_kept_shares_come_from_every_participants_qc(group, settings):
    figure, _, qcs = group
    (ax,) = [ax for ax in figure.get_axes() if ax.get_title().startswith("kept")]
    order = [tick.get_text() for tick in ax.get_xticklabels()]
    assert order == sorted([*qcs, "sub-013"])
    shares = {line.get_label(): line for line in _lines(ax, "kept_share")}
    assert sorted(shares) == sorted(settings["study"]["muscles"])
    for muscle, line in shares.items():
        expected = {
            participant: sum(c["kept"] for c in qc["muscles"][muscle]["cells"].values())
            / sum(c["total"] for c in qc["muscles"][muscle]["cells"].values())
            for participant, qc in qcs.items()
        }
        drawn = {order[int(x)]: y for x, y in zip(line.get_xdata(), line.get_ydata())}
        assert drawn == pytest.approx(expected)
    threshold = [line for line in ax.get_lines() if line.get_gid() is None]
    assert threshold[0].get_ydata()[0] == settings["preprocess"]["min_kept_share"]
    red = [
        tick.get_text() for tick in ax.get_xticklabels() if tick.get_color() != "black"
    ]
    assert red == sorted(p for p, qc in qcs.items() if qc["excluded"])


def test_group_exclusion_and_rejection_counts(group, settings):
    figure, trials, qcs = group
    exclusions = _axes(figure, "exclusion reasons (3 participants)")
    kinds = [tick.get_text() for tick in exclusions.get_yticklabels()]
    widths = [patch.get_width() for patch in exclusions.patches]
    expected = {}
    for participant, qc in qcs.items():
        for kind in {reason.split(":")[0] for reason in qc["exclusion_reasons"]}:
            expected[kind] = expected.get(kind, 0) + 1
    expected["no raw file"] = 1
    assert dict(zip(kinds, widths)) == expected

    rejections = _axes(figure, "rejected trials by reason (all participants)")
    reasons = [tick.get_text() for tick in rejections.get_yticklabels()]
    first_bin = trials[trials["rejected"] & (trials["bin"] == 0)]
    counts = first_bin.groupby(["reason", "muscle"]).size()
    muscles = settings["study"]["muscles"]
    bars = rejections.containers
    assert [bar.get_label() for bar in bars] == muscles
    for muscle, bar in zip(muscles, bars):
        drawn = dict(zip(reasons, (patch.get_width() for patch in bar.patches)))
        assert drawn == {r: counts.get((r, muscle), 0) for r in reasons}
    assert sorted(reasons) == sorted(first_bin["reason"].unique())


def test_group_figure_of_qc_tsv_keeps_ids_as_written(participants, settings, tmp_path):
    """Ids the sample-sheet schema allows that pandas would read as numbers or as
    missing, through qc.tsv as the aggregate rule writes it and qc_group reads it."""
    ids = dict(zip([*PARTICIPANTS, "sub-013"], ["09", "10", "NA", "1e3"]))
    tables, qcs = [], {}
    for participant, entry in participants.items():
        tables.append(entry[3].assign(participant=ids[participant]))
        qcs[ids[participant]] = {**entry[4], "participant": ids[participant]}
    groups = {
        ids[p]: group for p, group in {**PARTICIPANTS, "sub-013": "placebo"}.items()
    }
    trials = pd.concat(tables, ignore_index=True)
    _, _, qc_table = aggregate(trials, qcs, groups, missing=["1e3"])
    qc_table.to_csv(tmp_path / "qc.tsv", sep="\t", index=False)

    read = read_tsv(tmp_path / "qc.tsv")
    assert set(read["participant"]) == set(ids.values())
    figure = qc_figures.group_figure(read, qcs, settings)
    (ax,) = [ax for ax in figure.get_axes() if ax.get_title().startswith("kept")]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == sorted(ids.values())
    exclusions = _axes(figure, "exclusion reasons (3 participants)")
    labels = " ".join(text.get_text() for text in exclusions.texts)
    assert "10" in labels and "NA" in labels and "1e3" in labels
    plt.close(figure)


# The workflow


def _report_categories(html):
    """The report's category -> subcategory -> files table (its `categories` JSON)."""
    (categories,) = re.findall(r"var categories = (\{.*?\});\n", html)
    return json.loads(categories)


@pytest.mark.workflow
def test_workflow_writes_the_qc_figures_and_reports_them(workflow_copy):
    """A real run on the quick study, restricted to one excluded participant's figure
    and the group figure; the HTML report lists them under Quality control, the
    participant's in a table labelled by participant."""
    targets = ["results/qc/sub-011.png", "results/qc/group.png"]
    config = ["--configfile", "config/quick.yaml"]
    # The report's workflow description, when a rule writes it.
    (description,) = re.findall(
        r'^report: .*"(.+)"',
        (workflow_copy / "workflow" / "Snakefile").read_text(),
        re.M,
    )
    extra = [description] if description.startswith("results/") else []
    result = run_snakemake(workflow_copy, *targets, *extra, "--cores", "2", *config)
    counts = job_counts(result.stdout + result.stderr)
    assert counts["qc_participant"] == 1 and counts["qc_group"] == 1
    for target in targets:
        assert (workflow_copy / target).read_bytes().startswith(b"\x89PNG")
    for name in ("sub-011", "group"):
        assert (workflow_copy / f"results/benchmarks/qc/{name}.tsv").is_file()
        assert (workflow_copy / f"logs/qc/{name}.log").is_file()

    run_snakemake(workflow_copy, *targets, "--report", "report.html", *config)
    html = (workflow_copy / "report.html").read_text()
    quality_control = _report_categories(html)["Quality control"]
    assert quality_control["Participants"] == ["results/qc/sub-011.png"]
    assert quality_control["Group"] == ["results/qc/group.png"]
    assert '"labels": {"recording": "sub-011"}' in html
