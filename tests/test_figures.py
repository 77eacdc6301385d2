"""Figures 1-3 drawn from synthetic cells and hand-made posteriors.

Every check reads the matplotlib objects the figure functions build and compares
them with numbers computed here, independently of mimicry.plots.figures.
"""

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.container import ErrorbarContainer
from matplotlib.patches import PathPatch, Rectangle

from mimicry.asymptotic import asymptotic_curve
from mimicry.bayes.summaries import contrasts_table
from mimicry.bayes.synthetic import balanced_participants, synthetic_cells
from mimicry.config.study_section import mimicry_contrast
from mimicry.plots import figures
from mimicry.plots.style import save_figure

CHAINS, DRAWS = 2, 100
N_PARTICIPANTS = 9


@pytest.fixture(scope="module")
def study(quick_config):
    return quick_config["study"]


@pytest.fixture(scope="module")
def prior_curves(quick_config):
    return quick_config["figures"]["fig2"]["prior_curves"]


@pytest.fixture(scope="module")
def cells(quick_config, study):
    participants = balanced_participants(study["groups"], N_PARTICIPANTS)
    return synthetic_cells(quick_config, participants, noise_sd=0.05)


def _draws(rng, shape, loc, scale):
    return loc + scale * rng.standard_normal((CHAINS, DRAWS, *shape))


def _cell_coords(study):
    return {"muscle": study["muscles"], "condition": study["conditions"]}


def _cell_parameter_draws(study, seed, group, a, b, log_c):
    """InferenceData with a, b, c draws per muscle x condition: (mean, sd) each."""
    rng = np.random.default_rng(seed)
    shape = (len(study["muscles"]), len(study["conditions"]))
    return az.from_dict(
        **{
            group: {
                "a": _draws(rng, shape, *a),
                "b": _draws(rng, shape, *b),
                "c": np.exp(_draws(rng, shape, *log_c)),
            }
        },
        coords=_cell_coords(study),
        dims={name: ["muscle", "condition"] for name in "abc"},
    )


@pytest.fixture(scope="module")
def prior(study):
    return _cell_parameter_draws(
        study, 1, "prior", a=(0.0, 0.5), b=(0.0, 0.2), log_c=(np.log(0.5), 1.0)
    )


@pytest.fixture(scope="module")
def pooled(study):
    return _cell_parameter_draws(
        study, 2, "posterior", a=(0.1, 0.03), b=(0.0, 0.01), log_c=(np.log(0.5), 0.2)
    )


@pytest.fixture(scope="module")
def window_end_s(quick_config):
    return quick_config["preprocess"]["response_s"][1]


# Rates far slower than 1 / window end (drug model group, muscle, condition indices):
# one drug in every condition of the first muscle, the reference group in one cell.
SLOW_CELLS = [(1, 0, slice(None)), (0, 1, 0)]


@pytest.fixture(scope="module")
def drug(study, window_end_s):
    """A drug-model posterior whose contrasts are computed from its a and c draws."""
    rng = np.random.default_rng(3)
    groups = study["groups"]
    shape = (len(groups), len(study["muscles"]), len(study["conditions"]))
    a = _draws(rng, shape, 0.1, 0.05)
    log_c = _draws(rng, shape, np.log(0.5), 0.2)
    for group, muscle, condition in SLOW_CELLS:
        log_c[:, :, group, muscle, condition] += np.log(0.1 / window_end_s)
    c = np.exp(log_c)
    b = _draws(rng, shape[1:], 0.0, 0.01)
    reference = groups.index(study["reference_group"])
    others = [index for index, group in enumerate(groups) if index != reference]
    contrast = [f"{groups[index]} - {groups[reference]}" for index in others]
    cell_dims = ["muscle", "condition"]
    return az.from_dict(
        posterior={
            "a": a,
            "b": b,
            "c": c,
            "contrast_a": a[:, :, others] - a[:, :, [reference]],
            "contrast_c": c[:, :, others] - c[:, :, [reference]],
        },
        coords={"group": groups, "contrast": contrast, **_cell_coords(study)},
        dims={
            "a": ["group", *cell_dims],
            "b": cell_dims,
            "c": ["group", *cell_dims],
            "contrast_a": ["contrast", *cell_dims],
            "contrast_c": ["contrast", *cell_dims],
        },
    )


@pytest.fixture(scope="module")
def contrasts(drug, quick_config, study):
    return contrasts_table(
        drug,
        quick_config["models"]["rope"],
        study["reference_group"],
        mimicry_contrast(study),
    )


@pytest.fixture(scope="module")
def figure1_drawn(cells, study):
    figure, table = figures.figure1(cells, study)
    yield figure, table
    plt.close(figure)


@pytest.fixture(scope="module")
def figure2_drawn(cells, prior, pooled, study, prior_curves):
    figure, table, n_outside = figures.figure2(
        cells, prior, pooled, study, prior_curves
    )
    yield figure, table, n_outside
    plt.close(figure)


@pytest.fixture(scope="module")
def figure3_drawn(drug, contrasts, study, window_end_s):
    figure, table = figures.figure3(drug, contrasts, study, window_end_s)
    yield figure, table
    plt.close(figure)


def _panel(figure, title):
    return next(ax for ax in figure.get_axes() if ax.get_title() == title)


def _cell_panels(figure, study):
    """The muscle x condition grid, keyed by (muscle, condition).

    Grids are drawn last and row by row, so they are the figure's last axes.
    """
    keys = [(m, k) for m in study["muscles"] for k in study["conditions"]]
    return dict(zip(keys, figure.get_axes()[-len(keys) :]))


def _gid_lines(ax, gid):
    return [line for line in ax.get_lines() if line.get_gid() == gid]


def _figure_texts(figure):
    """Every label text of a figure: axis labels, titles and sup-labels."""
    texts = [
        text.get_text()
        for container in (figure, *figure.subfigs)
        for text in container.texts
    ]
    for ax in figure.get_axes():
        texts += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title()]
        texts += [text.get_text() for text in ax.texts]
    return [text for text in texts if text]


# Figure 1


def test_figure1_has_a_panel_per_cell_and_a_line_per_group(figure1_drawn, study):
    figure, _ = figure1_drawn
    panels = _cell_panels(figure, study)
    assert len(figure.get_axes()) == len(study["muscles"]) * len(study["conditions"])
    for ax in panels.values():
        errorbars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert [c.get_label() for c in errorbars] == study["groups"]
    _assert_labelled_grid(figure, study)
    texts = _figure_texts(figure)
    assert any("SEM" in text and figures.RESPONSE_UNIT in text for text in texts)


def _assert_labelled_grid(figure, study):
    """Conditions title the columns, muscles name the rows, time labels the x-axis."""
    panels = _cell_panels(figure, study)
    top_row = [panels[study["muscles"][0], k].get_title() for k in study["conditions"]]
    assert top_row == study["conditions"]
    texts = _figure_texts(figure)
    for muscle in study["muscles"]:
        assert figures.muscle_label(muscle) in texts
    assert figures.TIME_LABEL in texts


def test_figure1_points_and_error_bars_are_the_table_means_and_sems(
    figure1_drawn, cells, study
):
    figure, table = figure1_drawn
    expected = cells.groupby(["muscle", "condition", "group", "t"])["y"].agg(
        ["mean", "sem"]
    )
    assert len(table) == len(expected)
    for (muscle, condition), ax in _cell_panels(figure, study).items():
        for container in ax.containers:
            group = container.get_label()
            rows = expected.loc[(muscle, condition, group)]
            data_line, _, (bars,) = container.lines
            np.testing.assert_allclose(data_line.get_ydata(), rows["mean"])
            np.testing.assert_allclose(data_line.get_xdata(), rows.index, atol=0.1)
            bar_lengths = [high - low for (_, low), (_, high) in bars.get_segments()]
            np.testing.assert_allclose(bar_lengths, 2 * rows["sem"])
            drawn = table[
                (table["muscle"] == muscle)
                & (table["condition"] == condition)
                & (table["group"] == group)
            ]
            np.testing.assert_allclose(data_line.get_ydata(), drawn["mean"])


def test_figure1_has_one_grid_per_level_of_the_participant_factor(cells, study):
    levels = ["young", "old"]
    participants = sorted(cells["participant"].unique())
    age_group = {p: levels[i % 2] for i, p in enumerate(participants)}
    cells = cells.assign(age_group=cells["participant"].map(age_group))
    study = study | {"participant_factor": {"column": "age_group", "levels": levels}}
    figure, table = figures.figure1(cells, study)
    try:
        assert [sub.get_suptitle() for sub in figure.subfigs] == [
            f"age_group: {level}" for level in levels
        ]
        for sub, level in zip(figure.subfigs, levels):
            expected = (
                cells[cells["age_group"] == level]
                .groupby(["muscle", "condition", "group", "t"])["y"]
                .mean()
            )
            axes = sub.get_axes()
            assert len(axes) == len(study["muscles"]) * len(study["conditions"])
            for ax, ((_, muscle), (_, condition)) in zip(axes, figures._cells(study)):
                for container in ax.containers:
                    line = container.lines[0]
                    rows = expected.loc[(muscle, condition, container.get_label())]
                    np.testing.assert_allclose(line.get_ydata(), rows)
        assert list(table["age_group"].unique()) == levels
    finally:
        plt.close(figure)


def _group_size_texts(ax):
    return [text.get_text() for text in ax.texts if text.get_gid() == "group_sizes"]


def _panel_counts(cells, muscle, condition):
    panel = cells[(cells["muscle"] == muscle) & (cells["condition"] == condition)]
    return panel.groupby("group")["participant"].nunique()


def test_figure1_legend_gives_each_groups_participants(figure1_drawn, cells, study):
    figure, _ = figure1_drawn
    (legend,) = figure.legends
    n = cells.groupby("group")["participant"].nunique()
    assert [text.get_text() for text in legend.get_texts()] == [
        f"{group} (n = {n[group]})" for group in study["groups"]
    ]
    # The same in every panel, so no panel repeats it.
    for (muscle, condition), ax in _cell_panels(figure, study).items():
        assert _panel_counts(cells, muscle, condition).to_dict() == n.to_dict()
        assert not _group_size_texts(ax)


def test_figure1_states_n_per_panel_where_it_differs(cells, study):
    """A participant without one muscle x condition cell (e.g. none of its trials
    kept there) counts in the other panels only."""
    participant, group = cells.iloc[0][["participant", "group"]]
    muscle, condition = study["muscles"][-1], study["conditions"][-1]
    fewer = cells[
        ~(
            (cells["participant"] == participant)
            & (cells["muscle"] == muscle)
            & (cells["condition"] == condition)
        )
    ]
    figure, _ = figures.figure1(fewer, study)
    n = cells.groupby("group")["participant"].nunique()
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == [
        f"{g} (n = {n[g] - 1}-{n[g]}, per panel)" if g == group else f"{g} (n = {n[g]})"
        for g in study["groups"]
    ]
    for (panel_muscle, panel_condition), ax in _cell_panels(figure, study).items():
        counts = _panel_counts(fewer, panel_muscle, panel_condition)
        expected = ", ".join(f"{g} {counts[g]}" for g in study["groups"])
        assert _group_size_texts(ax) == [f"n: {expected}"]
    assert _panel_counts(fewer, muscle, condition)[group] == n[group] - 1
    plt.close(figure)


def test_figure1_uses_the_study_names_not_the_papers(cells, study):
    renamed = {"placebo": "control", "naltrexone": "drug X", "amisulpride": "drug Y"}
    other_study = {
        **study,
        "groups": list(renamed.values()),
        "reference_group": "control",
        "muscles": ["ZM"],
    }
    other_cells = cells[cells["muscle"] == "ZM"].assign(
        group=cells["group"].map(renamed)
    )
    figure, table = figures.figure1(other_cells, other_study)
    assert len(figure.get_axes()) == len(study["conditions"])
    assert list(table["group"].unique()) == other_study["groups"]
    plt.close(figure)


# Figure 2


def test_figure2a_draws_the_example_curve_and_its_dashed_asymptote(figure2_drawn):
    figure, table, _ = figure2_drawn
    ax = _panel(figure, "a = 0.1, b = 0, c = 0.25")
    curve, asymptote = ax.get_lines()
    np.testing.assert_allclose(
        curve.get_ydata(), asymptotic_curve(curve.get_xdata(), 0.1, 0.0, 0.25)
    )
    assert asymptote.get_linestyle() == "--"
    assert set(asymptote.get_ydata()) == {0.1}
    drawn = table[(table["panel"] == "A") & (table["element"] == "curve")]
    np.testing.assert_allclose(drawn["value"], curve.get_ydata())
    assert ax.get_xlabel() and ax.get_ylabel()


def test_figure2b_draws_each_chosen_prior_draw_as_a_curve(
    figure2_drawn, prior, prior_curves
):
    figure, table, _ = figure2_drawn
    ax = _panel(figure, f"{prior_curves} prior draws")
    curves = [line for line in ax.get_lines() if len(line.get_xdata()) > 2]
    assert len(curves) == prior_curves
    draws = prior["prior"]
    for line, index in ((curves[0], 0), (curves[-1], -1)):
        a, b, c = (draws[name].values.reshape(-1)[index] for name in ("a", "b", "c"))
        np.testing.assert_allclose(
            line.get_ydata(), asymptotic_curve(line.get_xdata(), a, b, c)
        )
    assert curves[0].get_xdata()[0] == 0  # from stimulus onset
    drawn = table[table["panel"] == "B"].pivot(index="t", columns="curve")["value"]
    np.testing.assert_allclose(
        drawn.to_numpy().T, [line.get_ydata() for line in curves]
    )


def test_figure2c_boxes_summarise_the_participants_of_each_bin(
    figure2_drawn, cells, study
):
    figure, table, _ = figure2_drawn
    for (muscle, condition), ax in _cell_panels(figure, study).items():
        cell = cells[(cells["muscle"] == muscle) & (cells["condition"] == condition)]
        boxes = [patch for patch in ax.patches if isinstance(patch, PathPatch)]
        assert len(boxes) == cell["bin"].nunique()
        by_bin = cell.groupby("t")["y"]
        drawn = table[
            (table["element"] == "box")
            & (table["muscle"] == muscle)
            & (table["condition"] == condition)
        ].pivot(index="t", columns="statistic")["value"]
        np.testing.assert_allclose(drawn["med"], by_bin.median())
        np.testing.assert_allclose(drawn["q1"], by_bin.quantile(0.25))
        np.testing.assert_allclose(drawn.index, by_bin.median().index)
        extents = [patch.get_path().get_extents() for patch in boxes]
        np.testing.assert_allclose([box.y0 for box in extents], drawn["q1"])
        np.testing.assert_allclose([box.y1 for box in extents], drawn["q3"])
        np.testing.assert_allclose(
            [box.intervalx.mean() for box in extents], drawn.index
        )
    _assert_labelled_grid(figure, study)
    grid_labels = [text.get_text() for text in figure.subfigs[1].texts]
    assert any(figures.RESPONSE_UNIT in label for label in grid_labels)


def test_figure2c_band_is_the_pooled_hdi_of_the_mean_curve(
    figure2_drawn, pooled, study
):
    figure, table, _ = figure2_drawn
    posterior = pooled["posterior"]
    for (muscle, condition), ax in _cell_panels(figure, study).items():
        (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
        rows = table[
            (table["element"] == "hdi_band")
            & (table["muscle"] == muscle)
            & (table["condition"] == condition)
        ].pivot(index="t", columns="statistic")["value"]
        t = rows.index.to_numpy()
        a, b, c = (
            posterior[name].sel(muscle=muscle, condition=condition).values[..., None]
            for name in ("a", "b", "c")
        )
        hdi = az.hdi(asymptotic_curve(t, a, b, c), hdi_prob=0.95)
        np.testing.assert_allclose(rows["hdi_low"], hdi[:, 0])
        np.testing.assert_allclose(rows["hdi_high"], hdi[:, 1])
        expected = np.vstack(
            [np.column_stack([t, hdi[:, 0]]), np.column_stack([t, hdi[:, 1]])]
        )
        vertices = band.get_paths()[0].vertices
        np.testing.assert_allclose(
            np.unique(vertices.round(12), axis=0), np.unique(expected.round(12), axis=0)
        )


def test_figure2c_y_axis_spans_the_whiskers_and_counts_what_it_leaves_out(
    cells, prior, pooled, study, prior_curves
):
    extreme = cells.copy()
    muscle = study["muscles"][0]
    extreme.loc[(extreme["muscle"] == muscle).idxmax(), "y"] = 5.0  # far above all
    figure, table, n_outside = figures.figure2(
        extreme, prior, pooled, study, prior_curves
    )
    axis = table[table["element"] == "y_axis"].pivot(
        index=["muscle", "condition"], columns="statistic"
    )["value"]
    whiskers = (
        table[table["statistic"].isin(["whislo", "whishi"])]
        .groupby(["muscle", "condition"])["value"]
        .agg(["min", "max"])
    )
    for cell, ax in _cell_panels(figure, study).items():
        low, high = ax.get_ylim()
        assert (low, high) == pytest.approx(tuple(axis.loc[cell, ["lower", "upper"]]))
        assert low < whiskers.loc[cell, "min"] and whiskers.loc[cell, "max"] < high
    assert axis.loc[muscle, "upper"].max() < 1.0  # the outlier does not stretch it
    limits = extreme.join(axis[["lower", "upper"]], on=["muscle", "condition"])
    beyond = (limits["y"] < limits["lower"]) | (limits["y"] > limits["upper"])
    assert n_outside == beyond.sum() == axis["n_outside"].sum() >= 1
    plt.close(figure)


# Figure 3


def test_figure3_points_are_posterior_means_and_lines_their_hdis(
    figure3_drawn, drug, study
):
    figure, table = figure3_drawn
    posterior = drug["posterior"]
    for parameter in ("a", "c"):
        ax = _panel(figure, f"{figures.PARAMETER_NAMES[parameter]} per drug group")
        markers = _gid_lines(ax, "mean")
        assert [line.get_label() for line in markers] == study["groups"]
        intervals = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert len(intervals) == len(study["groups"])
        for line, interval in zip(markers, intervals):
            group = line.get_label()
            draws = posterior[parameter].sel(group=group).values
            means = draws.mean(axis=(0, 1)).reshape(-1)
            np.testing.assert_allclose(line.get_xdata(), means)
            hdi = az.hdi(draws, hdi_prob=0.95).reshape(-1, 2)
            ends = np.array([[x0, x1] for (x0, _), (x1, _) in interval.get_segments()])
            np.testing.assert_allclose(ends, hdi)
            rows = table[
                (table["panel"] == "estimate")
                & (table["parameter"] == parameter)
                & (table["group"] == group)
            ]
            np.testing.assert_allclose(rows["mean"], means)
        assert figures.PARAMETER_UNITS[parameter] in ax.get_xlabel()
    left_column = figure.get_axes()[0]  # the others share its y tick labels
    labels = [tick.get_text() for tick in left_column.get_yticklabels()]
    assert labels == [
        f"{m}, {k}" for m in study["muscles"] for k in study["conditions"]
    ]


def test_figure3_contrasts_come_from_the_table_with_the_rope_around_zero(
    figure3_drawn, contrasts, study
):
    figure, table = figure3_drawn
    reference = study["reference_group"]
    drugs = [group for group in study["groups"] if group != reference]
    for parameter in ("a", "c"):
        ax = _panel(figure, f"{figures.PARAMETER_NAMES[parameter]}: drug − {reference}")
        markers = _gid_lines(ax, "mean")
        assert [line.get_label() for line in markers] == drugs
        for line in markers:
            rows = contrasts[
                (contrasts["parameter"] == parameter)
                & (contrasts["contrast"] == f"{line.get_label()} - {reference}")
            ]
            np.testing.assert_allclose(line.get_xdata(), rows["mean"])
        bands = [patch for patch in ax.patches if isinstance(patch, Rectangle)]
        cells = contrasts[contrasts["parameter"] == parameter].drop_duplicates(
            ["muscle", "condition"]
        )
        assert len(bands) == len(cells)
        for band, half_width in zip(
            sorted(bands, key=Rectangle.get_y), cells["rope_half_width"]
        ):
            x0, x1 = band.get_x(), band.get_x() + band.get_width()
            assert (x0, x1) == pytest.approx((-half_width, half_width))
        assert ax.get_xlabel().startswith("difference in")
    drawn = table[table["panel"] == "contrast"]
    assert len(drawn) == len(contrasts)
    assert set(drawn["group"]) == set(drugs)


def test_figure3_marks_asymptotes_beyond_the_window_with_the_fit_there(
    figure3_drawn, drug, contrasts, study, window_end_s
):
    figure, table = figure3_drawn
    posterior = drug["posterior"]
    a, b, c = (posterior[name] for name in ("a", "b", "c"))
    c_times_t = (c.mean(("chain", "draw")) * window_end_s).to_series()
    mu = (a + (b - a) * np.exp(-c * window_end_s)).mean(("chain", "draw")).to_series()
    beyond = c_times_t[c_times_t < 1].index
    # The slow cells of the fixture and no other.
    assert len(beyond) == len(study["conditions"]) + 1
    palette = figures.drug_palette(study["groups"])
    groups = {to_rgb(colour): group for group, colour in palette.items()}

    def drawn(ax, gid):
        """(group, x) of every point of the lines with this gid, by their colour."""
        points = []
        for line in _gid_lines(ax, gid):
            group = groups[to_rgb(line.get_markeredgecolor())]
            points += [(group, round(x, 9)) for x in line.get_xdata()]
        return sorted(points)

    estimates = _panel(figure, "asymptote a per drug group")
    means = a.mean(("chain", "draw")).to_series()
    assert drawn(estimates, "beyond_window") == sorted(
        (group, round(means[group, m, k], 9)) for group, m, k in beyond
    )
    assert drawn(estimates, "window_end") == sorted(
        (group, round(mu[group, m, k], 9)) for group, m, k in beyond
    )
    for line in _gid_lines(estimates, "beyond_window"):
        assert line.get_markerfacecolor() == "white"
    values = sorted(
        text.get_text()
        for text in estimates.texts
        if text.get_gid() == "window_end_value"
    )
    assert values == sorted(f"μ(T) = {mu[key]:.2g}" for key in beyond)
    # A contrast is open where the drug's or the reference group's asymptote is.
    reference = study["reference_group"]
    slow = set(beyond)
    open_contrasts = [
        (row["contrast"].split(" - ")[0], round(row["mean"], 9))
        for _, row in contrasts[contrasts["parameter"] == "a"].iterrows()
        if (row["contrast"].split(" - ")[0], row["muscle"], row["condition"]) in slow
        or (reference, row["muscle"], row["condition"]) in slow
    ]
    contrast_ax = _panel(figure, f"asymptote a: drug − {reference}")
    assert drawn(contrast_ax, "beyond_window") == sorted(open_contrasts)
    assert not _gid_lines(_panel(figure, "rate c per drug group"), "beyond_window")
    # The legend says what the open points and crosses are, with T.
    notes = [text.get_text() for text in figure.legends[-1].get_texts()]
    assert f"T = {window_end_s:g} s" in notes[0]
    rows = table[(table["panel"] == "estimate") & (table["parameter"] == "a")]
    rows = rows.set_index(["group", "muscle", "condition"])
    np.testing.assert_allclose(rows["mu_window_end"], mu[rows.index])
    assert set(rows.index[rows["beyond_window"]]) == slow


def test_figure3_table_carries_each_contrasts_bayes_factor(figure3_drawn, contrasts):
    _, table = figure3_drawn
    keys = ["parameter", "contrast", "muscle", "condition"]
    columns = ["bf01", "bf01_mcse", "bf01_is_upper_bound"]
    drawn = table[table["panel"] == "contrast"].set_index(keys)[columns]
    expected = contrasts.set_index(keys)[columns]
    assert drawn.loc[expected.index].astype(expected.dtypes).equals(expected)


def test_one_palette_colours_every_figure(figure1_drawn, figure3_drawn, study):
    palette = figures.drug_palette(study["groups"])
    figure1, _ = figure1_drawn
    figure3, _ = figure3_drawn
    line_colours = {
        container.get_label(): to_rgb(container.lines[0].get_color())
        for container in figure1.get_axes()[0].containers
    }
    marker_colours = {
        line.get_label(): to_rgb(line.get_color())
        for line in _gid_lines(figure3.get_axes()[0], "mean")
    }
    expected = {group: to_rgb(colour) for group, colour in palette.items()}
    assert line_colours == expected == marker_colours


# Output files


@pytest.mark.parametrize("name", ["figure1", "figure2", "figure3"])
def test_same_inputs_give_the_same_png_and_pdf_bytes(
    name,
    tmp_path,
    cells,
    prior,
    pooled,
    drug,
    contrasts,
    study,
    prior_curves,
    window_end_s,
):
    """Also when the caller's rcParams differ (a matplotlibrc, an earlier theme)."""
    arguments = {
        "figure1": (cells, study),
        "figure2": (cells, prior, pooled, study, prior_curves),
        "figure3": (drug, contrasts, study, window_end_s),
    }[name]
    foreign_style = {"font.size": 17, "axes.facecolor": "red", "savefig.dpi": 50}
    outputs = []
    for run, style in (("first", {}), ("second", foreign_style)):
        with plt.rc_context(style):
            figure = getattr(figures, name)(*arguments)[0]
            png, pdf = tmp_path / f"{run}.png", tmp_path / f"{run}.pdf"
            save_figure(figure, figures.STYLE, png, pdf)
        assert not plt.fignum_exists(figure.number)  # save_figure frees its memory
        outputs.append((png.read_bytes(), pdf.read_bytes()))
    assert outputs[0] == outputs[1]
    png_bytes, pdf_bytes = outputs[0]
    assert png_bytes.startswith(b"\x89PNG") and pdf_bytes.startswith(b"%PDF")
    assert b"CreationDate" not in pdf_bytes  # a timestamp would differ between runs
