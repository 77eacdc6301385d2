"""Quality-control figures: one per participant, one for the group.

The participant figure shows, for one recording, what preprocessing did and found:

- per channel, the Welch spectrum of the raw and of the filtered signal, with the
  band-pass edges and every mains frequency actually notched marked;
- per muscle and condition, the trials x bins matrix of response values (heatmap),
  each rejected trial marked at its row with its rejection reason's marker and colour
  (``REASON_STYLES``: fixed per reason, the same for every participant and in the
  group figure);
- per muscle, the participant's cell curves: the mean over kept trials per bin and
  condition.

An excluded participant's figure names the exclusion reasons in its title. The group
figure shows the kept-trial share per participant and muscle, why participants were
excluded and why trials were rejected.

A participant job is one of ~130 in the default run, so it stays cheap: it draws the
spectra the `preprocess` job wrote (`mimicry.preprocessing.spectra`) instead of reading
and filtering the raw file again, the figure is drawn without pyplot, seaborn, pandas or
SciPy, with few tick labels (text is most of the drawing time), and the PNG has a modest
resolution. Drawing and saving happen inside a fixed style and with fixed PNG metadata
(mimicry.plots.style, as for the paper's figures), so the same inputs give the same
bytes; mimicry.plots.figures is not imported: it loads ArviZ, xarray and seaborn, more
than a second per job.
"""

import logging
import textwrap

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from matplotlib.transforms import offset_copy  # noqa: E402

from mimicry.plots.style import save_figure, styled  # noqa: E402

log = logging.getLogger(__name__)

PNG_DPI = 90
# Applied over matplotlib's defaults while drawing and saving (mimicry.plots.style), so
# that neither a matplotlibrc nor an earlier figure changes a QC figure's bytes.
STYLE = {
    "font.size": 7.5,
    "axes.titlesize": 8,
    "axes.labelsize": 7.5,
    "xtick.labelsize": 6.5,
    "ytick.labelsize": 6.5,
    "legend.fontsize": 6.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.facecolor": "white",
    "savefig.dpi": PNG_DPI,
}
RAW_COLOUR = "0.6"
FILTERED_COLOUR = "C0"
EDGE_COLOUR = "C3"
NOTCH_COLOUR = "C2"
HEATMAP_CMAP = "RdBu_r"
# Colour limits of the heatmaps: this quantile of |value| over kept trials.
HEATMAP_QUANTILE = 0.99
# One marker and colour per rejection reason (mimicry.preprocessing.preprocess), the
# same for every participant and in every QC figure; C0-C3 mark muscles, notches and
# exclusions.
REASON_STYLES = {
    "outside_recording": ("X", "0.45"),
    "flat_channel": ("v", "C6"),
    "saturated_channel": ("^", "C4"),
    "transient": ("o", "black"),
    "baseline": ("s", "C5"),
    "condition_outlier": ("D", "C9"),
}
# A reason missing above (a rule added later) still draws, in grey, and is logged.
UNKNOWN_REASON_STYLE = ("*", "0.6")
EXCLUDED_COLOUR = "C3"
VALUE_LABELS = {
    "log_ratio": "log ratio to baseline",
    "difference": "difference to baseline (µV)",
    "zscore": "z-scored log ratio",
}
TIME_LABEL = "time after stimulus onset (s)"
# Tick labels are most of the drawing time: a few per axis.
MAX_TICKS = 4
# Participant ids written next to an exclusion reason's bar in the group figure.
MAX_IDS_SHOWN = 6


def _few_ticks(ax, x=True, y=True):
    if x:
        ax.xaxis.set_major_locator(MaxNLocator(MAX_TICKS))
    if y:
        ax.yaxis.set_major_locator(MaxNLocator(MAX_TICKS))


def reason_styles(reasons):
    """reason -> (marker, colour) from REASON_STYLES, in its order, for the reasons
    given; a reason it lacks gets UNKNOWN_REASON_STYLE and a warning."""
    reasons = sorted(set(reasons), key=reason_order)
    unknown = [reason for reason in reasons if reason not in REASON_STYLES]
    if unknown:
        log.warning(
            "rejection reasons %s have no style in mimicry.plots.qc_figures.REASON_STYLES: "
            "drawn as %s",
            unknown,
            UNKNOWN_REASON_STYLE,
        )
    return {
        reason: REASON_STYLES.get(reason, UNKNOWN_REASON_STYLE) for reason in reasons
    }


def reason_order(reason):
    """Sort key: REASON_STYLES' order, then reasons it lacks alphabetically."""
    known = list(REASON_STYLES)
    return (known.index(reason), "") if reason in known else (len(known), reason)


# Reading


def table_columns(table):
    """A pyarrow trial table (or anything with ``column(name)``) as numpy columns."""
    names = ("trial", "condition", "muscle", "bin", "t", "value", "rejected", "reason")
    columns = {}
    for name in names:
        column = table.column(name)
        if hasattr(column, "to_numpy"):  # pyarrow ChunkedArray
            column = column.to_numpy(zero_copy_only=False)
        columns[name] = np.asarray(column)
    return columns


# Spectra


def decibels(psd):
    """Power spectral density in dB re 1 µV²/Hz (a linear axis needs no mathtext)."""
    with np.errstate(divide="ignore"):
        return 10 * np.log10(psd)


def _spectrum_panel(ax, muscle, channel, spectra, qc, legend):
    frequencies = spectra["frequencies_hz"]
    for kind, colour in (("raw", RAW_COLOUR), ("filtered", FILTERED_COLOUR)):
        ax.plot(
            frequencies,
            decibels(spectra[kind][muscle]),
            color=colour,
            linewidth=0.8,
            label=kind,
            gid=kind,
        )
    low, high = qc["band_hz"]
    for index, edge in enumerate((low, high)):
        ax.axvline(
            edge,
            color=EDGE_COLOUR,
            linestyle="--",
            linewidth=0.9,
            label=f"band-pass {low:g}-{high:g} Hz" if index == 0 else None,
            gid="band_edge",
        )
    for index, frequency in enumerate(qc["notch_hz"]):
        ax.axvline(
            frequency,
            color=NOTCH_COLOUR,
            linestyle=":",
            linewidth=0.9,
            label="notched" if index == 0 else None,
            gid="notch",
        )
    ax.set_xlim(0, frequencies[-1])
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("PSD (dB re 1 µV²/Hz)")
    finite = decibels(spectra["raw"][muscle][1:])
    finite = finite[np.isfinite(finite)]
    if finite.size:  # the filtered spectrum falls far below the raw one: cut at 60 dB
        ax.set_ylim(finite.max() - 60, finite.max() + 5)
    else:
        ax.text(
            0.5, 0.5, "no signal (flat channel)", ha="center", transform=ax.transAxes
        )
    _few_ticks(ax, x=False)
    ax.xaxis.set_major_locator(MaxNLocator(6, steps=[1, 2, 5, 10]))
    ax.set_title(f"{muscle} ({channel}): spectrum")
    if legend:  # one legend per row: legends cost more drawing time than lines
        ax.legend(loc="upper right", frameon=False, ncols=2)


# Trials x bins


def trial_matrix(columns, muscle, condition):
    """Trials (rows, in recording order) x bins of one muscle and condition.

    Returns (trials, bin_centres_s, values, reasons): the participant's trial
    numbers, the bin centres, the (trials, bins) response values and each trial's
    rejection reason ('' when kept).
    """
    rows = (columns["muscle"] == muscle) & (columns["condition"] == condition)
    trial, bin_index = columns["trial"][rows], columns["bin"][rows]
    trials = np.unique(trial)
    bins = np.unique(bin_index)
    values = np.full((len(trials), len(bins)), np.nan)
    values[np.searchsorted(trials, trial), np.searchsorted(bins, bin_index)] = columns[
        "value"
    ][rows]
    centres = np.zeros(len(bins))
    centres[np.searchsorted(bins, bin_index)] = columns["t"][rows]
    reasons = np.full(len(trials), "", dtype=object)
    rejected = columns["rejected"][rows]
    reasons[np.searchsorted(trials, trial[rejected])] = columns["reason"][rows][
        rejected
    ]
    return trials, centres, values, reasons


def heatmap_limit(columns):
    """Symmetric colour limit of the heatmaps: a high quantile of |value| over kept
    trials (all trials when none is kept), 1 when there is no finite value."""
    values = columns["value"]
    for chosen in (values[~columns["rejected"]], values):
        finite = np.abs(chosen[np.isfinite(chosen)])
        if finite.size and np.quantile(finite, HEATMAP_QUANTILE) > 0:
            return float(np.quantile(finite, HEATMAP_QUANTILE))
    return 1.0


def _heatmap_panel(ax, columns, muscle, condition, limit, styles):
    trials, centres, values, reasons = trial_matrix(columns, muscle, condition)
    ax.set_xlabel(TIME_LABEL)
    if not len(trials):
        ax.set_title(f"{muscle}, {condition}: no trials")
        ax.text(0.5, 0.5, "no trials", ha="center", transform=ax.transAxes)
        return None
    width = centres[1] - centres[0] if len(centres) > 1 else 1.0
    cmap = matplotlib.colormaps[HEATMAP_CMAP].with_extremes(bad="0.8")
    image = ax.imshow(
        values,
        aspect="auto",
        cmap=cmap,
        vmin=-limit,
        vmax=limit,
        interpolation="nearest",
        extent=(
            centres[0] - width / 2,
            centres[-1] + width / 2,
            len(trials) - 0.5,
            -0.5,
        ),
    )
    ax.set_xlim(centres[0] - width, centres[-1] + width / 2)
    marker_x = centres[0] - 0.75 * width
    for reason, (marker, colour) in styles.items():
        rows = np.flatnonzero(reasons == reason)
        if rows.size:
            ax.plot(
                np.full(rows.size, marker_x),
                rows,
                linestyle="",
                marker=marker,
                markersize=4.5,
                color=colour,
                markeredgecolor="none",
                label=reason,
                gid="rejected",
            )
    step = max(1, -(-len(trials) // MAX_TICKS))
    ax.set_yticks(np.arange(0, len(trials), step), trials[::step])
    _few_ticks(ax, y=False)
    ax.set_title(f"{muscle}, {condition}: {np.count_nonzero(reasons)} rejected")
    return image


# Cell curves


def cell_means(columns, muscle, condition):
    """Bin centres and the mean response over kept trials per bin (None: no kept trial)."""
    rows = (
        (columns["muscle"] == muscle)
        & (columns["condition"] == condition)
        & ~columns["rejected"]
    )
    if not rows.any():
        return None
    bins, inverse = np.unique(columns["bin"][rows], return_inverse=True)
    sums = np.bincount(inverse, weights=columns["value"][rows], minlength=len(bins))
    counts = np.bincount(inverse, minlength=len(bins))
    centres = np.zeros(len(bins))
    centres[inverse] = columns["t"][rows]
    return centres, sums / counts


def _lines_with_gid(ax, gid):
    return [line for line in ax.get_lines() if line.get_gid() == gid]


def _curves_panel(ax, columns, muscle, conditions, value_label, legend):
    missing = []
    for index, condition in enumerate(conditions):
        means = cell_means(columns, muscle, condition)
        if means is None:
            missing.append(condition)
            continue
        ax.plot(
            *means,
            color=f"C{index}",
            marker="o",
            markersize=2.5,
            linewidth=1.2,
            label=condition,
            gid="cell_curve",
        )
    ax.axhline(0, color="0.75", linewidth=0.8, zorder=0)
    if missing:
        ax.text(
            0.02,
            0.95,
            f"no kept trials: {', '.join(missing)}",
            transform=ax.transAxes,
            va="top",
            color=EXCLUDED_COLOUR,
        )
    _few_ticks(ax)
    ax.set_title(f"{muscle}: mean over kept trials")
    ax.set_xlabel(TIME_LABEL)
    ax.set_ylabel(value_label)
    if legend and _lines_with_gid(ax, "cell_curve"):
        ax.legend(frameon=False)


# The participant figure


def participant_title(qc):
    """First line: who and what; then, if excluded, the exclusion reasons."""
    rejected = {
        muscle: sum(details["rejected_by_reason"].values())
        for muscle, details in qc["muscles"].items()
    }
    counts = ", ".join(f"{muscle} {count}" for muscle, count in rejected.items())
    head = (
        f"{qc['participant']}: {qc['n_trials']} trials at "
        f"{qc['sampling_rate_hz']:g} Hz, {qc['duration_s']:.0f} s; "
        f"rejected trials per muscle: {counts}"
    )
    if not qc["excluded"]:
        return f"{head}\nincluded"
    reasons = "; ".join(qc["exclusion_reasons"])
    return f"{head}\nEXCLUDED: " + "\n".join(
        textwrap.wrap(reasons, 140, break_long_words=False, break_on_hyphens=False)
    )


@styled(STYLE)
def participant_figure(spectra, table, qc, settings):
    """The QC figure of one participant.

    spectra: its channel spectra (`mimicry.preprocessing.spectra.channel_spectra`);
    table: its preprocessed trial table (pyarrow, as `preprocess_participant` returns
    and the rule writes); qc: its QC report (band edges and notches); settings: the
    config sections `study`, `channels` and `preprocess` as the validated config has
    them (every default filled in).
    Returns the figure.
    """
    study = settings["study"]
    muscles, conditions = study["muscles"], study["conditions"]
    columns = table_columns(table)
    value_label = VALUE_LABELS.get(qc["value"], qc["value"])

    cells = [(muscle, condition) for muscle in muscles for condition in conditions]
    figure = Figure(figsize=(2.6 * len(cells) + 1.0, 9.0))
    # A fixed grid (no layout engine): laying out ~20 panels costs more than drawing.
    grid = figure.add_gridspec(
        3,
        len(cells) + 1,
        width_ratios=[1.0] * len(cells) + [0.05],
        height_ratios=[1.0, 1.4, 1.0],
        left=0.06,
        right=0.95,
        top=0.89,
        bottom=0.12,
        hspace=0.5,
        wspace=0.35,
    )
    span = len(conditions)
    for index, muscle in enumerate(muscles):
        ax = figure.add_subplot(grid[0, index * span : (index + 1) * span])
        _spectrum_panel(
            ax, muscle, settings["channels"][muscle], spectra, qc, legend=index == 0
        )

    limit = heatmap_limit(columns)
    styles = reason_styles(columns["reason"][columns["rejected"]].tolist())
    images = []
    for index, (muscle, condition) in enumerate(cells):
        ax = figure.add_subplot(grid[1, index])
        images.append(_heatmap_panel(ax, columns, muscle, condition, limit, styles))
        if index == 0:
            ax.set_ylabel("trial")
    images = [image for image in images if image is not None]
    if images:
        colorbar = figure.colorbar(
            images[0], cax=figure.add_subplot(grid[1, -1]), label=value_label
        )
        colorbar.locator = MaxNLocator(MAX_TICKS)

    curve_axes = []
    for index, muscle in enumerate(muscles):
        ax = figure.add_subplot(grid[2, index * span : (index + 1) * span])
        # The first panel with curves holds the legend.
        legend = not any(_lines_with_gid(other, "cell_curve") for other in curve_axes)
        _curves_panel(ax, columns, muscle, conditions, value_label, legend)
        curve_axes.append(ax)

    if styles:
        handles = [
            Line2D([], [], linestyle="", marker=marker, color=colour, label=reason)
            for reason, (marker, colour) in styles.items()
        ]
        figure.legend(
            handles=handles,
            title="rejected trials (marked left of their heatmap row)",
            loc="lower center",
            ncols=len(handles),
            frameon=False,
        )
    figure.suptitle(
        participant_title(qc),
        color=EXCLUDED_COLOUR if qc["excluded"] else "black",
        fontsize="medium",
    )
    return figure


def write_participant_figure(spectra_path, table_path, qc_path, png_path, settings):
    """Read a participant's spectra, trial table and QC report; write its figure."""
    import pyarrow.parquet as pq

    from mimicry.io.result_files import read_json, read_result
    from mimicry.preprocessing.spectra import read_spectra

    figure = participant_figure(
        read_spectra(spectra_path),
        read_result(table_path, lambda path: pq.ParquetFile(path).read()),
        read_json(qc_path),
        settings,
    )
    save_figure(figure, STYLE, png_path)


# The group figure


def kept_shares(qc_table, qcs, muscles):
    """Kept-trial share per participant and muscle.

    The rejected trial counts come from qc_table (results/aggregate/qc.tsv, a
    DataFrame), the trial totals from each participant's QC report. Returns
    (participants, shares): sorted ids and a (participants, muscles) array.
    """
    rejected = qc_table[qc_table["kind"] == "trial_rejected"]
    counts = rejected.groupby(["participant", "muscle"])["count"].sum()
    participants = sorted(qcs)
    shares = np.ones((len(participants), len(muscles)))
    for row, participant in enumerate(participants):
        total = qcs[participant]["n_trials"]
        for column, muscle in enumerate(muscles):
            n_rejected = counts.get((participant, muscle), 0)
            shares[row, column] = (total - n_rejected) / total if total else 0.0
    return participants, shares


def exclusion_counts(qc_table):
    """Participants per exclusion kind (flat_channel, too_few_trials, ..., no raw
    file), each participant counted once per kind; (kind -> count, kind -> ids)."""
    excluded = qc_table[qc_table["kind"].isin(["participant_excluded", "raw_missing"])]
    kinds = excluded["reason"].astype(str).str.split(":").str[0]
    ids = excluded.groupby(kinds)["participant"].unique()
    return {kind: len(p) for kind, p in ids.items()}, {
        kind: sorted(p) for kind, p in ids.items()
    }


def rejection_counts(qc_table, muscles):
    """Rejected trial x muscle counts per reason: reason -> [count per muscle]."""
    rejected = qc_table[qc_table["kind"] == "trial_rejected"]
    totals = rejected.groupby(["reason", "muscle"])["count"].sum()
    return {
        reason: [int(totals.get((reason, muscle), 0)) for muscle in muscles]
        for reason in sorted(rejected["reason"].unique(), key=reason_order)
    }


@styled(STYLE)
def group_figure(qc_table, qcs, settings):
    """Kept-trial share per participant and muscle (top), participants per exclusion
    reason and rejected trials per reason (bottom).

    qc_table: results/aggregate/qc.tsv as a DataFrame; qcs: participant -> QC report;
    settings: the config sections `study` and `preprocess`.
    """
    muscles = settings["study"]["muscles"]
    options = settings["preprocess"]
    participants, shares = kept_shares(qc_table, qcs, muscles)
    missing = sorted(
        qc_table.loc[qc_table["kind"] == "raw_missing", "participant"].unique()
    )
    order = sorted(participants + missing)
    position = {participant: index for index, participant in enumerate(order)}

    figure = Figure(
        figsize=(max(8.0, 0.075 * len(order) + 2.0), 7.0), layout="constrained"
    )
    top, bottom = figure.subfigures(2, 1, height_ratios=[1.2, 1.0])
    ax = top.subplots()
    x = np.array([position[participant] for participant in participants])
    for column, muscle in enumerate(muscles):
        ax.plot(
            x,
            shares[:, column],
            linestyle="",
            marker="os^D"[column % 4],
            markersize=3.5,
            color=f"C{column}",
            label=muscle,
            gid="kept_share",
        )
    ax.axhline(
        options["min_kept_share"],
        color="0.5",
        linestyle="--",
        linewidth=0.8,
        label=f"min_kept_share\n{options['min_kept_share']:g} (per cell)",
    )
    excluded = [p for p in participants if qcs[p]["excluded"]]
    for participant in excluded + missing:
        ax.axvspan(
            position[participant] - 0.5,
            position[participant] + 0.5,
            color=EXCLUDED_COLOUR if participant in excluded else "0.6",
            alpha=0.2,
            linewidth=0,
            gid="excluded" if participant in excluded else "missing",
        )
    ax.set_xticks(range(len(order)), order, rotation=90, fontsize=5)
    for label in ax.get_xticklabels():
        if label.get_text() in excluded:
            label.set_color(EXCLUDED_COLOUR)
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.set_ylim(min(0.0, shares.min() - 0.05) if shares.size else 0, 1.02)
    ax.set_ylabel("kept trial share")
    ax.set_title(
        f"kept trials per participant and muscle ({len(participants)} participants; "
        f"excluded in red: {len(excluded)}; missing raw file in grey: {len(missing)})"
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)

    exclusion_ax, rejection_ax = bottom.subplots(1, 2)
    counts, ids = exclusion_counts(qc_table)
    kinds = list(counts)
    exclusion_ax.barh(
        range(len(kinds)),
        [counts[k] for k in kinds],
        color=EXCLUDED_COLOUR,
        gid="exclusions",
    )
    for index, kind in enumerate(kinds):
        shown = ids[kind][:MAX_IDS_SHOWN]
        more = len(ids[kind]) - len(shown)
        exclusion_ax.annotate(
            " " + ", ".join(shown) + (f" (+{more} more)" if more else ""),
            xy=(counts[kind], index),
            va="center",
            fontsize=5.5,
        )
    exclusion_ax.set_yticks(range(len(kinds)), kinds)
    exclusion_ax.invert_yaxis()
    exclusion_ax.set_xlabel("participants")
    exclusion_ax.set_title(
        f"exclusion reasons ({len(excluded) + len(missing)} participants)"
    )
    if not kinds:
        exclusion_ax.text(
            0.5, 0.5, "no exclusions", ha="center", transform=exclusion_ax.transAxes
        )

    reasons = rejection_counts(qc_table, muscles)
    height = 0.8 / max(len(muscles), 1)
    for column, muscle in enumerate(muscles):
        rejection_ax.barh(
            np.arange(len(reasons)) + (column - (len(muscles) - 1) / 2) * height,
            [counts_[column] for counts_ in reasons.values()],
            height=height,
            color=f"C{column}",
            label=muscle,
            gid="rejections",
        )
    rejection_ax.set_yticks(range(len(reasons)), list(reasons))
    # Each reason's marker, as in the participants' figures, left of its label's row.
    rejection_ax.tick_params(axis="y", length=0, pad=10)
    at_axis = offset_copy(
        rejection_ax.get_yaxis_transform(), figure, x=-5, units="points"
    )
    for index, (marker, colour) in enumerate(reason_styles(reasons).values()):
        rejection_ax.plot(
            0,
            index,
            linestyle="",
            marker=marker,
            markersize=4.5,
            color=colour,
            markeredgecolor="none",
            transform=at_axis,
            clip_on=False,
            gid="reason_marker",
        )
    rejection_ax.invert_yaxis()
    rejection_ax.set_xlabel("rejected trial x muscle")
    rejection_ax.set_title("rejected trials by reason (all participants)")
    if reasons:
        rejection_ax.legend(frameon=False)
    return figure


def write_group_figure(qc_table_path, qc_paths, png_path, settings):
    """Read results/aggregate/qc.tsv and the participants' QC reports; write the figure."""
    from mimicry.io.result_files import read_json
    from mimicry.io.tables import read_tsv

    qcs = {}
    for path in qc_paths:
        qc = read_json(path)
        qcs[qc["participant"]] = qc
    qc_table = read_tsv(qc_table_path)
    save_figure(group_figure(qc_table, qcs, settings), STYLE, png_path)
