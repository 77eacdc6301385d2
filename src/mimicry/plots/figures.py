"""Figures 1-3 as Korb et al. (2023) drew them, of the study analysed, from the
workflow's tables and posteriors.

Each figure function returns the matplotlib Figure and a table of the numbers it
plots, so the rule can save both and tests can compare the drawing with the table.
Groups, muscles and conditions come from the study configuration (``study``) and the
data, never from this module.
"""

import matplotlib

matplotlib.use("Agg")

import arviz as az  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.cbook import boxplot_stats  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from mimicry.asymptotic import asymptotic_curve  # noqa: E402
from mimicry.bayes.summaries import CONTRASTS, HDI_PROB  # noqa: E402
from mimicry.plots.style import styled  # noqa: E402

MUSCLE_NAMES = {"ZM": "zygomaticus major (ZM)", "CS": "corrugator supercilii (CS)"}
RESPONSE_UNIT = "log ratio to baseline"
RESPONSE_LABEL = f"EMG ({RESPONSE_UNIT})"
CURVE_LABEL = f"μ(t) ({RESPONSE_UNIT})"
TIME_LABEL = "time after stimulus onset (s)"
PARAMETER_NAMES = {"a": "asymptote a", "c": "rate c"}
PARAMETER_UNITS = {"a": RESPONSE_UNIT, "c": "1/s"}
PNG_DPI = 300
# Applied on top of matplotlib's defaults around drawing and saving
# (mimicry.plots.style), instead of sns.set_theme, so that neither a matplotlibrc nor a
# figure drawn before in the same process changes a figure's bytes.
STYLE = {
    **sns.axes_style("ticks"),
    **sns.plotting_context("paper"),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 42,  # TrueType text, editable in vector editors
    "savefig.dpi": PNG_DPI,
}
NEUTRAL_COLOUR = "0.35"
MODEL_COLOUR = sns.color_palette("colorblind")[4]
TIME_GRID_POINTS = 121
# Whisker reach of the boxplots, in interquartile ranges (Tukey's convention).
WHISKER_IQR = 1.5


def drug_palette(groups):
    """One colour per drug group, the same in every figure."""
    return dict(zip(groups, sns.color_palette("colorblind", len(groups))))


def muscle_label(muscle):
    """The muscle's full name where known, else its code."""
    return MUSCLE_NAMES.get(muscle, muscle)


def parameter_label(parameter, prefix=""):
    """Axis label of a model parameter with its unit, e.g. "rate c (1/s)"."""
    return f"{prefix}{PARAMETER_NAMES[parameter]} ({PARAMETER_UNITS[parameter]})"


def _in_study_order(table, study):
    """Rows ordered by the participant factor's levels (study.participant_factor),
    the study's muscles, conditions and groups, not alphabetically."""
    factor = study.get("participant_factor")
    rank = {
        **({factor["column"]: factor["levels"]} if factor else {}),
        "muscle": study["muscles"],
        "condition": study["conditions"],
        "group": study["groups"],
    }
    columns = [name for name in rank if name in table.columns]
    return table.sort_values(
        columns + [name for name in ("bin", "t") if name in table.columns],
        key=lambda column: (
            column.map({value: i for i, value in enumerate(rank[column.name])})
            if column.name in rank
            else column
        ),
        kind="stable",
        ignore_index=True,
    )


def _dodge(keys, width):
    """Small offsets so that intervals of different series at one position stay apart."""
    positions = np.linspace(-width / 2, width / 2, len(keys)) if len(keys) > 1 else [0]
    return dict(zip(keys, positions))


def _cells(study):
    """(row, muscle), (column, condition) for every panel of a cell grid."""
    return [
        (row_muscle, column_condition)
        for row_muscle in enumerate(study["muscles"])
        for column_condition in enumerate(study["conditions"])
    ]


def _cell_axes(container, study):
    """Muscles as rows, conditions as columns, labelled like a facet grid.

    ``container`` is a Figure or SubFigure. Conditions title the columns and muscles
    label the rows on the right, so each row keeps its y tick labels on the left.
    """
    muscles, conditions = study["muscles"], study["conditions"]
    axes = container.subplots(
        len(muscles), len(conditions), sharex=True, sharey="row", squeeze=False
    )
    for column, condition in enumerate(conditions):
        axes[0, column].set_title(condition)
    for row, muscle in enumerate(muscles):
        axes[row, -1].annotate(
            muscle_label(muscle),
            xy=(1.03, 0.5),
            xycoords="axes fraction",
            rotation=-90,
            ha="left",
            va="center",
        )
    for ax in axes.flat:
        ax.axhline(0, color="0.75", linewidth=0.8, zorder=0)
    return axes


def _group_legend(figure, handles, labels):
    figure.legend(
        handles, labels, loc="outside upper center", ncols=len(labels), frameon=False
    )


def _facets(study):
    """Fig. 1's facets: (column, level) per level of study.participant_factor, or one
    facet of every participant, (None, None)."""
    factor = study.get("participant_factor")
    if not factor:
        return [(None, None)]
    return [(factor["column"], level) for level in factor["levels"]]


def figure1_table(cells, study):
    """Mean over participants and its SEM per participant-factor level (if any),
    muscle, condition, group and bin."""
    factor = study.get("participant_factor")
    keys = [*([factor["column"]] if factor else []), "muscle", "condition", "group"]
    keys += ["bin", "t"]
    summary = (
        cells.groupby(keys, observed=True)["y"]
        .agg(mean="mean", sem="sem", n_participants="count")
        .reset_index()
    )
    return _in_study_order(summary, study)


def participants_per_panel(cells, study):
    """Participants behind each line: muscle x condition x group -> count, 0 where a
    group has no cells in a panel."""
    counts = cells.groupby(["muscle", "condition", "group"], observed=True)[
        "participant"
    ].nunique()
    panels = pd.MultiIndex.from_product(
        [study["muscles"], study["conditions"], study["groups"]],
        names=counts.index.names,
    )
    return counts.reindex(panels, fill_value=0)


def group_sizes(counts, study):
    """Each group's legend label and, when its n differs between panels, the
    per-panel texts: (group -> label, (muscle, condition) -> text or None)."""
    by_group = counts.groupby(level="group", sort=False)
    uniform = {group: n.nunique() == 1 for group, n in by_group}
    labels = {
        group: (
            f"{group} (n = {n.iloc[0]})"
            if uniform[group]
            else f"{group} (n = {n.min()}-{n.max()}, per panel)"
        )
        for group, n in by_group
    }
    texts = {
        (muscle, condition): (
            None
            if all(uniform.values())
            else "n: "
            + ", ".join(
                f"{group} {counts[muscle, condition, group]}"
                for group in study["groups"]
            )
        )
        for (_, muscle), (_, condition) in _cells(study)
    }
    return {group: labels[group] for group in study["groups"]}, texts


@styled(STYLE)
def figure1(cells, study):
    """Facial EMG by muscle (rows), condition (columns), time and drug (lines); with
    study.participant_factor one such grid per level, side by side.

    The legend gives each group's participants (after exclusions, counted in
    ``cells``); a group whose count differs between a facet's panels has it in every
    panel. Returns the figure and ``figure1_table(cells, study)``, whose means and
    SEMs are the plotted points and error bars.
    """
    table = figure1_table(cells, study)
    labels, study_panel_texts = group_sizes(participants_per_panel(cells, study), study)
    facets = _facets(study)
    figure = plt.figure(
        figsize=(
            3.3 * len(study["conditions"]) * len(facets),
            2.4 * len(study["muscles"]) + 0.6 + 0.3 * (len(facets) > 1),
        ),
        layout="constrained",
    )
    containers = figure.subfigures(1, len(facets)) if len(facets) > 1 else [figure]
    for container, (column, level) in zip(containers, facets):
        if column is None:
            axes = _figure1_panels(container, table, study_panel_texts, study)
            continue
        in_facet = _level_rows(column, level)
        container.suptitle(f"{column}: {level}", fontsize="medium")
        _, panel_texts = group_sizes(
            participants_per_panel(in_facet(cells), study), study
        )
        axes = _figure1_panels(container, in_facet(table), panel_texts, study)
    figure.supxlabel(TIME_LABEL, fontsize="medium")
    figure.supylabel(f"{RESPONSE_LABEL}, mean ± SEM", fontsize="medium")
    handles, groups = axes[0, 0].get_legend_handles_labels()
    _group_legend(figure, handles, [labels[group] for group in groups])
    return figure, table


def _level_rows(column, level):
    return lambda frame: frame[frame[column] == level]


def _figure1_panels(container, table, panel_texts, study):
    """One grid of Fig. 1 (muscles x conditions) from its rows of the table, with
    each panel's group sizes where group_sizes gives them."""
    palette = drug_palette(study["groups"])
    axes = _cell_axes(container, study)
    offsets = _dodge(study["groups"], width=0.12)
    for (row, muscle), (column, condition) in _cells(study):
        ax = axes[row, column]
        cell = table[(table["muscle"] == muscle) & (table["condition"] == condition)]
        for group in study["groups"]:
            series = cell[cell["group"] == group]
            ax.errorbar(
                series["t"].to_numpy() + offsets[group],
                series["mean"].to_numpy(),
                yerr=series["sem"].to_numpy(),
                color=palette[group],
                marker="o",
                markersize=3,
                linewidth=1.2,
                capsize=2,
                label=group,
            )
        if panel_texts[muscle, condition]:
            ax.text(
                0.02,
                0.98,
                panel_texts[muscle, condition],
                transform=ax.transAxes,
                ha="left",
                va="top",
                fontsize="x-small",
                gid="group_sizes",
            )
    return axes


def _bin_width(cells):
    """Width of the (equal-width) time bins, from the spacing of their centres."""
    centres = np.sort(cells["t"].unique())
    return centres[1] - centres[0] if len(centres) > 1 else 2 * centres[0]


def _time_grid(cells):
    """Fine grid from stimulus onset to the end of the last bin."""
    return np.linspace(0.0, cells["t"].max() + _bin_width(cells) / 2, TIME_GRID_POINTS)


def _long(panel, element, t, statistics, **labels):
    """One row per time point and statistic: the layout of figure 2's table."""
    frame = pd.DataFrame({"t": t, **statistics}).melt(
        id_vars="t", var_name="statistic", value_name="value"
    )
    for name, value in reversed(labels.items()):
        frame.insert(0, name, value)
    frame.insert(0, "element", element)
    frame.insert(0, "panel", panel)
    return frame


def figure2a(ax, a=0.1, b=0.0, c=0.25, t_max=20.0):
    """The asymptotic curve with the paper's example values and its dashed asymptote.

    The window is longer than a trial so that the approach to the asymptote shows.
    Returns the plotted numbers.
    """
    t = np.linspace(0, t_max, 201)
    mu = asymptotic_curve(t, a, b, c)
    ax.plot(t, mu, color="black", linewidth=1.5)
    ax.axhline(a, color="black", linestyle="--", linewidth=1)
    ax.annotate(
        "asymptote",
        xy=(0, a),
        xytext=(4, -3),
        textcoords="offset points",
        ha="left",
        va="top",
    )
    ax.margins(y=0.12)  # keep the asymptote off the axes' edge
    ax.set_xlabel("time (s)")
    ax.set_ylabel(CURVE_LABEL)
    ax.set_title("A", loc="left", fontweight="bold")
    ax.set_title(f"a = {a:g}, b = {b:g}, c = {c:g}")
    return pd.concat(
        [
            _long("A", "curve", t, {"mu": mu}, a=a, b=b, c=c),
            _long("A", "asymptote", t[[0, -1]], {"mu": [a, a]}, a=a, b=b, c=c),
        ],
        ignore_index=True,
    )


def figure2b(ax, prior, t, n_curves):
    """Prior predictive curves mu(t), each from one prior draw of a, b and c.

    Draws are taken evenly spaced over all chains, draws and cells, so the same
    prior gives the same lines. Returns the plotted numbers.
    """
    parameters = prior["prior"][["a", "b", "c"]]
    samples = parameters.stack(sample=list(parameters["a"].dims))
    n_curves = min(n_curves, samples.sizes["sample"])
    chosen = np.linspace(0, samples.sizes["sample"] - 1, n_curves).round().astype(int)
    a, b, c = (samples[name].values[chosen, None] for name in ("a", "b", "c"))
    curves = asymptotic_curve(t[None, :], a, b, c)
    ax.plot(t, curves.T, color=NEUTRAL_COLOUR, linewidth=0.5, alpha=0.4)
    ax.axhline(0, color="0.75", linewidth=0.8, zorder=0)
    ax.set_xlabel(TIME_LABEL)
    ax.set_ylabel(CURVE_LABEL)
    ax.set_title("B", loc="left", fontweight="bold")
    ax.set_title(f"{n_curves} prior draws")
    return pd.concat(
        [
            _long("B", "prior_curve", t, {"mu": curve}, curve=index)
            for index, curve in enumerate(curves)
        ],
        ignore_index=True,
    )


def pooled_curve_band(pooled, t):
    """Posterior mean and 95% HDI of mu(t) per muscle x condition on the grid t."""
    posterior = pooled["posterior"]
    time = xr.DataArray(t, dims="t", coords={"t": t})
    mu = posterior["a"] + (posterior["b"] - posterior["a"]) * np.exp(
        -posterior["c"] * time
    )
    hdi = az.hdi(mu, hdi_prob=HDI_PROB)
    hdi = hdi[mu.name] if isinstance(hdi, xr.Dataset) else hdi
    return xr.Dataset(
        {
            "mean": mu.mean(("chain", "draw")),
            "hdi_low": hdi.sel(hdi="lower", drop=True),
            "hdi_high": hdi.sel(hdi="higher", drop=True),
        }
    )


@styled(STYLE)
def figure2(cells, prior, pooled, study, n_prior_curves):
    """The model (A), its prior predictive check (B) and the pooled fit (C).

    C shows boxplots of the participants' mean responses per bin for every muscle x
    condition and the pooled model's 95% HDI of mu(t) as a band. Its y-axis spans
    the whiskers and the band of each muscle, so extreme participants fall outside,
    as in the paper. Returns the figure, a long table of the plotted numbers (panel,
    element, statistic, value; element "y_axis" holds each row's limits and how many
    participant means lie beyond them) and the total number of such means.
    """
    figure = plt.figure(figsize=(7.0, 8.4), layout="constrained")
    model_row, data_row = figure.subfigures(2, 1, height_ratios=[1.0, 2.1])
    ax_a, ax_b = model_row.subplots(1, 2)
    t = _time_grid(cells)
    tables = [figure2a(ax_a), figure2b(ax_b, prior, t, n_prior_curves)]
    axes = _cell_axes(data_row, study)
    tables.append(figure2c(axes, cells, pooled, study, t))
    table = pd.concat(tables, ignore_index=True).astype({"curve": "Int64"})
    labels = ["panel", "element", "muscle", "condition", "curve", "a", "b", "c"]
    table = table[labels + ["t", "statistic", "value"]]
    n_outside = int(table.loc[table["statistic"] == "n_outside", "value"].sum())
    # The paper omits outliers for clarity; the figure says how many.
    data_row.supxlabel(
        f"{TIME_LABEL}\n{n_outside} participant means lie beyond the axes (not shown)",
        fontsize="medium",
    )
    data_row.supylabel(f"participant mean, {RESPONSE_LABEL}", fontsize="medium")
    _group_legend(data_row, *axes[0, 0].get_legend_handles_labels())
    return figure, table, n_outside


def figure2c(axes, cells, pooled, study, t):
    """Per-bin boxplots of participant means and the pooled model's HDI band.

    Each muscle's row of panels shares y-limits that span its whiskers and bands;
    the returned table counts, per panel, the participant means beyond them.
    """
    band = pooled_curve_band(pooled, t)
    tables = []
    for row, muscle in enumerate(study["muscles"]):
        row_tables = {}
        for column, condition in enumerate(study["conditions"]):
            cell = cells[
                (cells["muscle"] == muscle) & (cells["condition"] == condition)
            ]
            row_tables[condition] = _box_and_band(
                axes[row, column],
                cell,
                band.sel(muscle=muscle, condition=condition),
                t,
                muscle=muscle,
                condition=condition,
            )
        low, high = _row_limits(pd.concat(row_tables.values()))
        axes[row, 0].set_ylim(low, high)
        for condition, table in row_tables.items():
            y = cells.loc[
                (cells["muscle"] == muscle) & (cells["condition"] == condition), "y"
            ]
            limits = {
                "lower": [low],
                "upper": [high],
                "n_outside": [int(((y < low) | (y > high)).sum())],
            }
            tables += [
                table,
                _long(
                    "C", "y_axis", [np.nan], limits, muscle=muscle, condition=condition
                ),
            ]
    axes[0, 0].set_title("C", loc="left", fontweight="bold")
    return pd.concat(tables, ignore_index=True)


def _box_and_band(ax, cell, curve, t, **labels):
    """Draw one panel of figure 2C and return its numbers."""
    bins = cell.groupby(["bin", "t"])["y"]
    times = [time for (_, time), _ in bins]
    boxes = [boxplot_stats(y.to_numpy(), whis=WHISKER_IQR)[0] for _, y in bins]
    ax.bxp(
        boxes,
        positions=times,
        widths=0.6 * _bin_width(cell),
        patch_artist=True,
        manage_ticks=False,
        boxprops={"facecolor": "white", "edgecolor": NEUTRAL_COLOUR},
        medianprops={"color": NEUTRAL_COLOUR},
        whiskerprops={"color": NEUTRAL_COLOUR},
        capprops={"color": NEUTRAL_COLOUR},
        flierprops={"markersize": 2, "markeredgecolor": NEUTRAL_COLOUR},
    )
    ax.fill_between(
        t,
        curve["hdi_low"],
        curve["hdi_high"],
        color=MODEL_COLOUR,
        alpha=0.35,
        linewidth=0,
        label=f"pooled model: {HDI_PROB:.0%} HDI of μ(t)",
    )
    ax.plot(
        t,
        curve["mean"],
        color=MODEL_COLOUR,
        linewidth=1,
        label="posterior mean of μ(t)",
    )
    box_statistics = {
        name: [box[name] for box in boxes]
        for name in ("whislo", "q1", "med", "q3", "whishi")
    }
    band_statistics = {name: curve[name].values for name in curve.data_vars}
    return pd.concat(
        [
            _long("C", "box", times, box_statistics, **labels),
            _long("C", "hdi_band", t, band_statistics, **labels),
        ],
        ignore_index=True,
    )


def _row_limits(table):
    """Y-limits spanning every whisker and band in the table, with a small margin."""
    shown = table.loc[
        table["statistic"].isin(["whislo", "whishi", "hdi_low", "hdi_high"]), "value"
    ]
    margin = 0.05 * (shown.max() - shown.min())
    return shown.min() - margin, shown.max() + margin


def contrast_groups(study):
    """Contrast label -> the drug it compares with the reference group.

    Labels follow ModelInput.contrast_labels ("naltrexone - placebo").
    """
    reference = study["reference_group"]
    return {
        f"{group} - {reference}": group
        for group in study["groups"]
        if group != reference
    }


def window_end_fit(drug, window_end_s):
    """Per drug x muscle x condition: c x T (posterior mean of the rate c times the
    response window's end T), the posterior mean of the fitted value there, mu(T) =
    a + (b - a) exp(-c T), and whether the asymptote a lies beyond the observed
    window (c x T < 1: less than 63% of the way from b to a by T)."""
    posterior = drug["posterior"]
    a, b, c = (posterior[name] for name in ("a", "b", "c"))
    mu = a + (b - a) * np.exp(-c * window_end_s)
    fit = xr.Dataset(
        {
            "c_times_window_end": c.mean(("chain", "draw")) * window_end_s,
            "mu_window_end": mu.mean(("chain", "draw")),
        }
    ).to_dataframe(dim_order=["group", "muscle", "condition"])
    fit = fit[["c_times_window_end", "mu_window_end"]].reset_index()
    return fit.assign(beyond_window=fit["c_times_window_end"] < 1)


def figure3_table(drug, contrasts, study, window_end_s):
    """Posterior mean and 95% HDI of each drug x muscle x condition parameter, and
    the drug - reference contrasts with their ROPE and Bayes factors, in one table.

    Rows of the "estimate" panel come from the drug model's posterior, rows of the
    "contrast" panel from ``contrasts`` (the workflow's contrasts.tsv), with all its
    columns (P(in ROPE), bf01 and its MCSE, ...). The asymptote's estimate rows also
    hold ``window_end_fit``'s columns; its contrast rows are ``beyond_window`` when
    the drug's or the reference group's asymptote is.
    """
    posterior = drug["posterior"]
    estimates = []
    for parameter in CONTRASTS.values():
        draws = posterior[parameter]
        hdi = az.hdi(draws, hdi_prob=HDI_PROB)
        hdi = hdi[parameter] if isinstance(hdi, xr.Dataset) else hdi
        statistics = xr.Dataset(
            {
                "mean": draws.mean(("chain", "draw")),
                "hdi_low": hdi.sel(hdi="lower", drop=True),
                "hdi_high": hdi.sel(hdi="higher", drop=True),
            }
        ).to_dataframe(dim_order=["group", "muscle", "condition"])
        estimates.append(statistics.reset_index().assign(parameter=parameter))
    estimates = pd.concat(estimates, ignore_index=True).assign(panel="estimate")
    keys = ["group", "muscle", "condition"]
    fit = window_end_fit(drug, window_end_s).assign(parameter="a")
    estimates = estimates.merge(fit, on=["parameter", *keys], how="left")
    drugs = contrasts["contrast"].map(contrast_groups(study))
    if drugs.isna().any():
        unknown = sorted(set(contrasts.loc[drugs.isna(), "contrast"]))
        raise ValueError(
            f"contrasts {unknown} do not compare a study group with the reference "
            f"group '{study['reference_group']}'"
        )
    contrast_rows = contrasts.assign(panel="contrast", group=drugs)
    beyond = fit.set_index(keys)["beyond_window"]
    reference = contrast_rows.assign(group=study["reference_group"])
    either = (
        beyond.reindex(pd.MultiIndex.from_frame(contrast_rows[keys])).to_numpy()
        | beyond.reindex(pd.MultiIndex.from_frame(reference[keys])).to_numpy()
    )
    contrast_rows["beyond_window"] = pd.array(either, dtype="boolean")
    contrast_rows.loc[contrast_rows["parameter"] != "a", "beyond_window"] = pd.NA
    columns = ["panel", "parameter", "group", "contrast", "muscle", "condition"]
    estimates["beyond_window"] = estimates["beyond_window"].astype("boolean")
    table = pd.concat([estimates, contrast_rows], ignore_index=True)
    ordered = [
        _in_study_order(
            table[(table["panel"] == panel) & (table["parameter"] == parameter)], study
        )
        for panel in ("estimate", "contrast")
        for parameter in CONTRASTS.values()
    ]
    table = pd.concat(ordered, ignore_index=True)
    return table[columns + [name for name in table.columns if name not in columns]]


@styled(STYLE)
def figure3(drug, contrasts, study, window_end_s):
    """Drug model fixed effects (top) and drug - reference contrasts (bottom).

    One column per parameter (a, c); muscle x condition cells on the y-axis; a point
    at the posterior mean and a line over the 95% HDI per drug, coloured by drug (a
    contrast takes its drug's colour). Each cell's ROPE (``rope_half_width`` of
    ``contrasts``) is shaded around 0 in the contrast panels. An asymptote beyond
    the observed window (c x T < 1, T = ``window_end_s``, the response window's end)
    is an extrapolation: its point, and that of every contrast involving it, is
    open, and a cross with its value marks the fitted mu(T) beside it. Returns the
    figure and ``figure3_table``.
    """
    table = figure3_table(drug, contrasts, study, window_end_s)
    palette = drug_palette(study["groups"])
    parameters = list(CONTRASTS.values())
    cell_labels = [
        _cell_label(muscle, condition) for (_, muscle), (_, condition) in _cells(study)
    ]
    figure, axes = plt.subplots(
        2,
        len(parameters),
        figsize=(3.7 * len(parameters), 0.55 * len(cell_labels) * 2 + 1.6),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    reference = study["reference_group"]
    for column, parameter in enumerate(parameters):
        estimate_ax, contrast_ax = axes[:, column]
        rows = {
            panel: table[(table["panel"] == panel) & (table["parameter"] == parameter)]
            for panel in ("estimate", "contrast")
        }
        for ax, panel in ((estimate_ax, "estimate"), (contrast_ax, "contrast")):
            _forest(ax, rows[panel], cell_labels, palette)
            if parameter == "a":
                _beyond_window(ax, rows[panel], cell_labels, palette)
        estimate_ax.set_title(f"{PARAMETER_NAMES[parameter]} per drug group")
        estimate_ax.set_xlabel(parameter_label(parameter))
        contrast_ax.set_title(f"{PARAMETER_NAMES[parameter]}: drug − {reference}")
        contrast_ax.set_xlabel(parameter_label(parameter, prefix="difference in "))
        _rope_bands(contrast_ax, rows["contrast"], cell_labels)
        contrast_ax.axvline(0, color="0.5", linewidth=0.8, zorder=0)
    axes[0, 0].set_yticks(range(len(cell_labels)), cell_labels)
    axes[0, 0].invert_yaxis()  # first cell on top
    handles = [
        Line2D([], [], color=palette[group], marker="o", markersize=4, label=group)
        for group in study["groups"]
    ]
    handles.append(Patch(color="0.88", label="ROPE"))
    _group_legend(figure, handles, [handle.get_label() for handle in handles])
    if table["beyond_window"].any():
        figure.legend(
            handles=_beyond_window_handles(window_end_s),
            loc="outside lower center",
            frameon=False,
        )
    return figure, table


def _cell_label(muscle, condition):
    """Category label of a muscle x condition cell (works on columns too)."""
    return muscle + ", " + condition


def _rope_bands(ax, rows, cell_labels):
    """One grey band per cell over -ROPE..ROPE (contrast rows of figure3_table)."""
    position = {label: index for index, label in enumerate(cell_labels)}
    bands = rows.drop_duplicates(["muscle", "condition"])
    half_width = bands["rope_half_width"]
    ax.barh(
        _cell_label(bands["muscle"], bands["condition"]).map(position),
        2 * half_width,
        left=-half_width,
        height=0.9,
        color="0.88",
        zorder=0,
    )


def _row_positions(rows, cell_labels):
    """Y of each row of figure3_table in a forest panel: its cell, dodged by group."""
    offsets = _dodge(list(dict.fromkeys(rows["group"])), width=0.45)
    position = {label: index for index, label in enumerate(cell_labels)}
    cells = _cell_label(rows["muscle"], rows["condition"])
    return cells.map(position) + rows["group"].map(offsets)


def _forest(ax, rows, cell_labels, palette):
    """Mean (point) and 95% HDI (line) per group, dodged within each cell."""
    y = _row_positions(rows, cell_labels)
    for group, series in rows.groupby("group", sort=False):
        ax.hlines(
            y[series.index], series["hdi_low"], series["hdi_high"], color=palette[group]
        )
        ax.plot(
            series["mean"],
            y[series.index],
            linestyle="",
            marker="o",
            markersize=4,
            color=palette[group],
            label=group,
            gid="mean",
        )


def _beyond_window(ax, rows, cell_labels, palette):
    """Open points over the rows whose asymptote lies beyond the observed window; for
    estimates also a cross at the fitted mu(T) and its value."""
    y = _row_positions(rows, cell_labels)
    flagged = rows[rows["beyond_window"].fillna(False).astype(bool)]
    for group, series in flagged.groupby("group", sort=False):
        ax.plot(
            series["mean"],
            y[series.index],
            linestyle="",
            marker="o",
            markersize=4,
            markerfacecolor="white",
            markeredgecolor=palette[group],
            zorder=3,
            gid="beyond_window",
        )
        if series["mu_window_end"].isna().all():  # contrasts: no fit of their own
            continue
        ax.plot(
            series["mu_window_end"],
            y[series.index],
            linestyle="",
            marker="x",
            markersize=3.5,
            color=palette[group],
            gid="window_end",
        )
        for index, row in series.iterrows():
            ax.annotate(
                f"μ(T) = {row['mu_window_end']:.2g}",
                xy=(max(row["hdi_high"], row["mu_window_end"]), y[index]),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=5,
                color=palette[group],
                gid="window_end_value",
            )


def _beyond_window_handles(window_end_s):
    note = (
        f"asymptote beyond the observed window: c·T < 1, T = {window_end_s:g} s "
        "(end of the response window), an extrapolation"
    )
    return [
        Line2D(
            [],
            [],
            linestyle="",
            marker="o",
            markersize=4,
            markerfacecolor="white",
            markeredgecolor=NEUTRAL_COLOUR,
            label=note,
        ),
        Line2D(
            [],
            [],
            linestyle="",
            marker="x",
            markersize=3.5,
            color=NEUTRAL_COLOUR,
            label="μ(T) = a + (b − a) exp(−c·T), the fit at the window's end",
        ),
    ]


SENSITIVITY_METHOD_LABELS = {
    "lrt_drug_x_condition": "drug x condition LRT (p < alpha)",
    "contrast_1df": "1-df mimicry contrast (p < alpha)",
    "bayes_hdi_excludes_0": "95% HDI excludes 0",
    "bayes_hdi_in_rope": "95% HDI inside the ROPE",
}
SENSITIVITY_EFFECT_LABELS = {
    "a": f"injected shift of the asymptote a ({RESPONSE_UNIT})",
    "c": "injected log rate factor (c times exp(value))",
}


@styled(STYLE)
def power_figure(power, power_target):
    """Power curves of the design sensitivity sweep (mimicry.robustness.sensitivity):
    per parameter a panel, per decision rule a line of the detection rate against the
    injected effect with its 95% binomial interval, and the power target dashed.

    Returns the figure and the plotted table (power.tsv's rows, in drawing order).
    """
    parameters = [p for p in ("a", "c") if p in set(power["parameter"])]
    methods = [m for m in SENSITIVITY_METHOD_LABELS if m in set(power["method"])]
    colours = dict(zip(methods, sns.color_palette("colorblind", len(methods))))
    figure, axes = plt.subplots(
        1, len(parameters), figsize=(3.6 * len(parameters), 3.2), squeeze=False
    )
    plotted = []
    for ax, parameter in zip(axes[0], parameters):
        panel = power[power["parameter"] == parameter]
        for method in methods:
            line = panel[panel["method"] == method].sort_values("effect")
            ax.errorbar(
                line["effect"],
                line["power"],
                yerr=[
                    line["power"] - line["power_low"],
                    line["power_high"] - line["power"],
                ],
                color=colours[method],
                marker="o",
                markersize=3,
                capsize=2,
                label=SENSITIVITY_METHOD_LABELS[method],
            )
            plotted.append(line)
        ax.axhline(power_target, color=NEUTRAL_COLOUR, linestyle="--", linewidth=0.8)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel(SENSITIVITY_EFFECT_LABELS[parameter])
        ax.set_ylabel("detection rate")
        first = panel.iloc[0]
        ax.set_title(
            f"{first['group']}: {first['muscle']}, {first['condition']}", fontsize=8
        )
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=2, frameon=False)
    figure.tight_layout(rect=(0, 0.16, 1, 1))
    return figure, pd.concat(plotted, ignore_index=True)


@styled(STYLE)
def specification_curve(contrasts, axes, contrast, group, alpha):
    """Specification curve of one contrast over the multiverse: per muscle a column,
    above the universes' estimates sorted with their 95% intervals (filled where p <
    alpha), below an indicator panel marking each universe's value of every axis, as
    Simonsohn, Simmons & Nelson (2020, Nat Hum Behav) draw them.

    contrasts: results/multiverse/contrasts.tsv; axes: the axis columns, in order;
    contrast and group pick its rows ("mimicry" per group, "drug" per drug group).
    Returns the figure and the plotted rows (per muscle, in drawing order).
    """
    rows = contrasts[
        (contrasts["contrast"] == contrast) & (contrasts["group"] == group)
    ]
    muscles = list(dict.fromkeys(rows["muscle"]))
    levels = [(axis, value) for axis in axes for value in dict.fromkeys(rows[axis])]
    figure, panels = plt.subplots(
        2,
        len(muscles),
        figsize=(4.2 * len(muscles), 2.6 + 0.16 * len(levels)),
        squeeze=False,
        sharex="col",
        gridspec_kw={"height_ratios": [2.6, 0.16 * len(levels)]},
    )
    plotted = []
    for column, muscle in enumerate(muscles):
        curve, indicators = panels[0, column], panels[1, column]
        ordered = rows[rows["muscle"] == muscle].sort_values("estimate")
        rank = np.arange(len(ordered))
        clear = (ordered["p"] < alpha).to_numpy()
        curve.vlines(
            rank, ordered["ci_low"], ordered["ci_high"], color="0.75", linewidth=0.8
        )
        for filled, marker_face in ((True, NEUTRAL_COLOUR), (False, "white")):
            chosen = clear == filled
            curve.plot(
                rank[chosen],
                ordered["estimate"].to_numpy()[chosen],
                linestyle="none",
                marker="o",
                markersize=3,
                color=NEUTRAL_COLOUR,
                markerfacecolor=marker_face,
                label=f"p {'<' if filled else '>='} {alpha:g}",
            )
        curve.axhline(0, color=NEUTRAL_COLOUR, linewidth=0.6, linestyle="--")
        curve.set_title(muscle_label(muscle), fontsize=8)
        curve.set_ylabel(f"{contrast} contrast, {group}" if column == 0 else "")
        for level_index, (axis, value) in enumerate(levels):
            marked = (ordered[axis] == value).to_numpy()
            indicators.plot(
                rank[marked],
                np.full(marked.sum(), level_index),
                linestyle="none",
                marker="|",
                markersize=4,
                color=NEUTRAL_COLOUR,
            )
        indicators.set_yticks(range(len(levels)))
        indicators.set_yticklabels(
            [f"{axis}: {value}" for axis, value in levels] if column == 0 else []
        )
        indicators.set_ylim(len(levels) - 0.5, -0.5)
        indicators.set_xlabel("universes, by estimate")
        plotted.append(ordered)
    handles, labels = panels[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper right", frameon=False, fontsize=7)
    figure.tight_layout()
    return figure, pd.concat(plotted, ignore_index=True)
