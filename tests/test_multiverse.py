"""The multiverse grid (mimicry.robustness.multiverse) and every universe's preprocessing of one
recording (mimicry.robustness.multiverse_preprocess.preprocess_universes), on a simulated quick-study
participant."""

import copy
import json
import re

import pandas as pd
import pytest
import yaml
from helpers import physio_text

from mimicry.config import validation
from mimicry.robustness import multiverse
from helpers.devtools import job_counts, run_snakemake
from mimicry.plots.figures import specification_curve
from mimicry.preprocessing.preprocess import (
    preprocess_recording,
    read_participant_recording,
)
from mimicry.robustness.multiverse_analysis import robustness_summary, variance_by_axis
from mimicry.robustness.multiverse_preprocess import preprocess_universes
from mimicry.simulate import simulate_participant


def with_axes(config, axes, exclude=()):
    config = copy.deepcopy(config)
    config["multiverse"] |= {"enabled": True, "axes": axes, "exclude": list(exclude)}
    return config


def test_default_grid_has_at_least_72_universes_with_unique_readable_ids(
    default_config,
):
    grid = multiverse.universes(default_config)
    axes = multiverse.axis_values(default_config)
    expected = 1
    for values in axes.values():
        expected *= len(values)
    assert len(grid) == expected >= 72
    assert len({universe.id for universe in grid}) == len(grid)
    first = grid[0]
    assert first.id == (
        "band-20to450__baseline-m1to0__bin-0.5__rules-transient+baseline"
        "__value-log_ratio"
    )
    assert first.preprocess["rejection"]["rules"] == ["transient", "baseline"]
    assert first.preprocess["band_hz"] == [20.0, 450.0]


def test_ids_stay_when_values_are_added_and_axes_reordered(default_config):
    axes = {"bin_s": [0.5], "value": ["log_ratio", "zscore"]}
    before = {
        u.id: u.choices for u in multiverse.universes(with_axes(default_config, axes))
    }
    more = {"value": ["difference", "log_ratio", "zscore"], "bin_s": [0.5]}
    after = multiverse.universes(with_axes(default_config, more))
    assert len(after) == 3
    for universe in after:
        if universe.id in before:
            assert before[universe.id] == universe.choices
    assert set(before) <= {universe.id for universe in after}


def test_exclusions_and_unknown_keys(default_config):
    axes = {"value": ["log_ratio", "zscore"], "bin_s": [0.5, 1.0]}
    grid = multiverse.universes(
        with_axes(default_config, axes, exclude=[{"value": "zscore", "bin_s": 1.0}])
    )
    assert [universe.choices for universe in grid] == [
        {"value": "log_ratio", "bin_s": 0.5},
        {"value": "log_ratio", "bin_s": 1.0},
        {"value": "zscore", "bin_s": 0.5},
    ]
    with pytest.raises(
        multiverse.MultiverseConfigError, match="names \\['smoothing'\\]"
    ):
        multiverse.universes(
            with_axes(default_config, axes, exclude=[{"smoothing": 3}])
        )
    with pytest.raises(
        multiverse.MultiverseConfigError, match="'rejection.window_s' is not a key"
    ):
        multiverse.universes(with_axes(default_config, {"rejection.window_s": [1.0]}))


def test_every_universe_preprocesses_as_the_main_pipeline_would(quick_config, tmp_path):
    """Each universe's table and QC equal preprocess_recording's with that universe's
    settings, though the recording is filtered once per band."""
    axes = {
        "band_hz": [[20.0, 450.0], [10.0, 400.0]],
        "baseline_s": [[-1.0, 0.0], [-0.5, 0.0]],
        "value": ["log_ratio", "zscore"],
    }
    config = with_axes(quick_config, axes)
    participant = "sub-001"
    raw = tmp_path / f"{participant}.edf"
    simulate_participant(config, participant, "placebo", raw)
    settings = {key: config[key] for key in ("study", "channels", "recording")}
    recording = read_participant_recording(raw, participant, settings)
    conditions = config["study"]["conditions"]
    grid = multiverse.universes(config)
    results = preprocess_universes(recording, conditions, grid)
    assert list(results) == [universe.id for universe in grid]
    for universe in grid:
        table, qc = preprocess_recording(recording, conditions, universe.preprocess)
        assert results[universe.id][0].equals(table), universe.id
        assert results[universe.id][1] == qc, universe.id
    main = next(
        universe
        for universe in grid
        if universe.preprocess == quick_config["preprocess"]
    )
    assert main.id == "band-20to450__baseline-m1to0__value-log_ratio"


MULTIVERSE_OUTPUT = "results/multiverse/contrasts.tsv"
MAIN_CONTRASTS = [
    "results/stats/mimicry_contrasts.tsv",
    "results/stats/drug_contrasts.tsv",
]


def multiverse_run(workflow_copy, quick_config, values, *targets):
    """Snakemake arguments for the multiverse of the quick study over two bands and
    the given values, with its targets as the default target requests them."""
    axes = {"band_hz": [[20.0, 450.0], [20.0, 250.0]], "value": values}
    settings = {"multiverse": {"enabled": True, "axes": axes}}
    (workflow_copy / "multiverse.yaml").write_text(yaml.safe_dump(settings))
    ids = [u.id for u in multiverse.universes(with_axes(quick_config, axes))]
    settings_files = [f"results/multiverse/settings/{id_}.json" for id_ in ids]
    # Targets before --configfile, which takes every argument after it.
    curves = ("mimicry-placebo", "drug-naltrexone", "drug-amisulpride")
    return (
        MULTIVERSE_OUTPUT,
        *settings_files,
        *(f"results/figures/multiverse/{name}.png" for name in curves),
        *targets,
        "--configfile",
        "config/quick.yaml",
        "multiverse.yaml",
    )


@pytest.mark.workflow
def test_four_universes_through_snakemake(workflow_copy, quick_config):
    """A 2 x 2 grid on the quick study: four rows per contrast; the universe with the
    main pipeline's settings reproduces its contrasts exactly; a changed axis value
    runs the participants' jobs and the new universes only."""
    arguments = multiverse_run(
        workflow_copy, quick_config, ["log_ratio", "zscore"], *MAIN_CONTRASTS
    )
    run_snakemake(workflow_copy, "--cores", "2", *arguments)
    multiverse_results = workflow_copy / "results" / "multiverse"
    summary = pd.read_csv(multiverse_results / "summary.tsv", sep="\t")
    assert (summary["universes"] == 4).all()
    variance = pd.read_csv(multiverse_results / "variance_by_axis.tsv", sep="\t")
    assert set(variance["axis"]) == {"band_hz", "value"}
    figures = sorted(
        path.name
        for path in (workflow_copy / "results" / "figures" / "multiverse").iterdir()
    )
    assert figures == sorted(
        f"{name}.{suffix}"
        for name in ("mimicry-placebo", "drug-naltrexone", "drug-amisulpride")
        for suffix in ("png", "pdf")
    )
    contrasts = pd.read_csv(workflow_copy / MULTIVERSE_OUTPUT, sep="\t")
    per_contrast = contrasts.groupby(["muscle", "contrast", "group"])["universe"]
    assert (per_contrast.nunique() == 4).all() and (per_contrast.size() == 4).all()
    assert contrasts["n_trials"].gt(0).all() and contrasts["n_participants"].gt(0).all()

    main_universe = contrasts[
        (contrasts["band_hz"] == "[20.0, 450.0]") & (contrasts["value"] == "log_ratio")
    ]
    for path, kind in zip(MAIN_CONTRASTS, ["mimicry", "drug"]):
        main = pd.read_csv(workflow_copy / path, sep="\t").set_index(
            ["muscle", "group"]
        )
        universe = main_universe[main_universe["contrast"] == kind].set_index(
            ["muscle", "group"]
        )
        for column in ("estimate", "se", "z", "ci_low", "ci_high", "p"):
            assert (universe[column] == main.loc[universe.index, column]).all(), column

    changed = multiverse_run(workflow_copy, quick_config, ["log_ratio", "difference"])
    dry = run_snakemake(workflow_copy, "-n", "--cores", "2", *changed)
    participants = len(
        list((workflow_copy / "results" / "multiverse" / "qc").iterdir())
    )
    counts = job_counts(dry.stdout)
    # The simulated raw files are temporary: made again to be read again, and
    # their content stamps with them.
    assert counts.pop("simulate_raw", participants) == participants
    assert counts.pop("raw_content", participants) == participants
    assert counts == {
        "multiverse_preprocess": participants,
        "multiverse_settings": 2,
        "multiverse_universe": 2,
        "multiverse_contrasts": 1,
        "multiverse_figure": 3,
    }, dry.stdout
    assert "value-difference" in dry.stdout


@pytest.mark.workflow
def test_the_drug_model_per_universe_on_the_log_ratio_scale(
    workflow_copy, quick_config
):
    """With multiverse.bayesian and its sampler set to stan's, the universe with the
    main pipeline's settings reproduces the main drug fit's contrasts (to float32:
    posterior.nc stores float32 draws); the z-score universe is not fitted."""
    stan = quick_config["stan"]
    sampler = {key: stan[key] for key in ("chains", "warmup", "draws")}
    axes = {"value": ["log_ratio", "zscore"]}
    settings = {
        "multiverse": {
            "enabled": True,
            "axes": axes,
            "bayesian": {"enabled": True, "sampler": sampler},
        }
    }
    (workflow_copy / "multiverse.yaml").write_text(yaml.safe_dump(settings))
    main_contrasts = "results/models/drug/contrasts.tsv"
    bayes_output = "results/multiverse/bayes_contrasts.tsv"
    run_snakemake(
        workflow_copy,
        "--cores",
        "2",
        bayes_output,
        main_contrasts,
        "--configfile",
        "config/quick.yaml",
        "multiverse.yaml",
    )
    bayes = pd.read_csv(workflow_copy / bayes_output, sep="\t")
    assert set(bayes["universe"]) == {"value-log_ratio"}
    assert set(bayes["value"]) == {"log_ratio"}
    keys = ["parameter", "contrast", "muscle", "condition"]
    main = pd.read_csv(workflow_copy / main_contrasts, sep="\t").set_index(keys)
    universe = bayes.set_index(keys).loc[main.index]
    for column in ("mean", "hdi_low", "hdi_high", "rope_half_width", "bf01"):
        assert universe[column].to_numpy() == pytest.approx(
            main[column].to_numpy(), rel=1e-5, abs=1e-7
        ), column
    for column in ("p_greater_than_zero", "p_in_rope"):
        assert universe[column].to_numpy() == pytest.approx(
            main[column].to_numpy(), abs=1e-3
        ), column
    assert (bayes["divergences"] >= 0).all()
    # The same fit as the main one, judged as summarize_model judged it.
    report = json.loads(
        (workflow_copy / "results/models/drug/diagnostics.json").read_text()
    )
    assert (bayes["fit_passes_diagnostics"] == report["passed"]).all()
    assert (
        bayes["participant_shortfalls"] == len(report["participant_shortfalls"])
    ).all()
    # Each contrast's own R-hat, at most the fit's worst over the group-level ones.
    assert bayes["r_hat"].notna().all() and bayes["ess_bulk"].gt(0).all()
    assert (bayes["r_hat"] <= bayes["max_r_hat"]).all()
    assert (bayes["ess_bulk"] >= bayes["min_ess_bulk"]).all()
    # A contrast's verdict: its own R-hat and ESS within models.diagnostics, and
    # no divergence; a whole fit that passes passes every contrast.
    gate = quick_config["models"]["diagnostics"]
    own = (
        (bayes["r_hat"] <= gate["max_rhat"])
        & (bayes["ess_bulk"] >= gate["min_ess_bulk"])
        & (bayes["ess_tail"] >= gate["min_ess_tail"])
        & (bayes["divergences"] <= gate["max_divergences"])
    )
    assert (bayes["passes_diagnostics"] <= own).all()
    assert (bayes["passes_diagnostics"] >= bayes["fit_passes_diagnostics"]).all()

    summary = pd.read_csv(
        workflow_copy / "results/multiverse/bayes_summary.tsv", sep="\t"
    )
    assert len(summary) == len(main) and (summary["universes"] == 1).all()
    excludes = (universe["hdi_low"] > 0) | (universe["hdi_high"] < 0)
    assert (
        summary.set_index(keys)
        .loc[main.index, "share_hdi_excludes_0"]
        .equals(excludes.astype(float))
    )
    assert summary["statement"].str.contains(" of 1 universes ").all()


def test_the_bayesian_arm_needs_a_universe_on_the_log_ratio_scale(
    default_config, default_participants
):
    config = with_axes(default_config, {"value": ["difference", "zscore"]})
    config["multiverse"]["bayesian"]["enabled"] = True
    participants = [participant for participant, _ in default_participants]
    with pytest.raises(validation.ConfigError) as raised:
        validation.check_config(config, participants)
    assert str(raised.value) == (
        "multiverse.bayesian.enabled: no universe has the response on the drug "
        "model's scale (preprocess.value log_ratio)"
    )


def contrasts_table():
    """Four universes (two bands x two values), two muscles, a mimicry and a drug
    contrast; the estimate is 0.1, plus 0.2 under zscore and 0.05 with the 250 Hz
    band; standard error 0.05."""
    rows = []
    for band in ("[20.0, 450.0]", "[20.0, 250.0]"):
        for value in ("log_ratio", "zscore"):
            for muscle in ("ZM", "CS"):
                for contrast, group in (("mimicry", "placebo"), ("drug", "naltrexone")):
                    estimate = 0.1 + 0.2 * (value == "zscore") + 0.05 * ("250" in band)
                    estimate = estimate if muscle == "ZM" else -estimate
                    rows.append(
                        {
                            "universe": f"{band}-{value}",
                            "muscle": muscle,
                            "contrast": contrast,
                            "group": group,
                            "estimate": estimate,
                            "se": 0.05,
                            "z": estimate / 0.05,
                            "ci_low": estimate - 0.098,
                            "ci_high": estimate + 0.098,
                            "p": 0.01 if value == "zscore" else 0.2,
                            "band_hz": band,
                            "value": value,
                        }
                    )
    return pd.DataFrame(rows)


def test_robustness_summary_and_variance_by_axis():
    contrasts = contrasts_table()
    shares = variance_by_axis(contrasts, ["band_hz", "value"])
    summary = robustness_summary(contrasts, shares, alpha=0.05)
    summary = summary.set_index(["muscle", "contrast", "group"])
    zm = summary.loc[("ZM", "drug", "naltrexone")]
    assert zm["universes"] == 4 and zm["share_p_below_alpha"] == 0.5
    assert zm["share_positive"] == 1 and zm["median_estimate"] == pytest.approx(0.225)
    # Between-value sums of squares: 0.2^2 for value, 0.05^2 for the band.
    value_share = 0.2**2 / (0.2**2 + 0.05**2)
    assert zm["main_axis"] == "value"
    assert zm["main_axis_share"] == pytest.approx(value_share)
    assert zm["statement"].startswith("ZM, naltrexone's mimicry minus the reference")
    assert "p < 0.05 in 2 of 4 universes" in zm["statement"]
    assert "moves the z statistics most is value (94% of their variance)" in (
        zm["statement"]
    )
    assert zm["main_axis_within_units"] == (
        "log_ratio band_hz (100%), zscore band_hz (100%)"
    )
    assert summary.loc[("CS", "mimicry", "placebo"), "share_negative"] == 1

    shares = shares.set_index(["universes", "muscle", "contrast", "group", "axis"])
    overall = shares.loc["all"]
    for column in ("estimate_share", "z_share"):
        assert overall.xs("value", level="axis")[column].to_numpy() == pytest.approx(
            value_share
        )
        assert overall.xs("band_hz", level="axis")[column].to_numpy() == pytest.approx(
            1 - value_share
        )
    for units in ("value=log_ratio", "value=zscore"):
        within = shares.loc[units]
        assert set(within.index.get_level_values("axis")) == {"band_hz"}
        assert within["estimate_share"].to_numpy() == pytest.approx(1.0)


def test_specification_curve_draws_sorted_estimates_and_each_universes_choices():
    contrasts = contrasts_table()
    figure, plotted = specification_curve(
        contrasts, ["band_hz", "value"], "drug", "naltrexone", alpha=0.05
    )
    # Row-major: the curves of ZM and CS, then their indicator panels.
    curves, indicators = figure.axes[0:2], figure.axes[2:4]
    assert curves[0].get_title().endswith("(ZM)")
    labels = [tick.get_text() for tick in indicators[0].get_yticklabels()]
    for column, muscle in enumerate(["ZM", "CS"]):
        ordered = plotted[plotted["muscle"] == muscle]
        assert ordered["estimate"].is_monotonic_increasing
        points = {
            line.get_label(): list(zip(line.get_xdata(), line.get_ydata()))
            for line in curves[column].get_lines()
            if line.get_label().startswith("p ")
        }
        significant = ordered["p"].to_numpy() < 0.05
        estimates = ordered["estimate"].to_numpy()
        assert points["p < 0.05"] == [
            (rank, estimates[rank]) for rank in range(4) if significant[rank]
        ]
        assert len(points["p >= 0.05"]) == 4 - significant.sum()
        # Each universe has one mark per axis, on the row of its value.
        marks = [
            (int(x), labels[int(y)])
            for line in indicators[column].get_lines()
            for x, y in zip(line.get_xdata(), line.get_ydata())
        ]
        assert len(marks) == 4 * 2
        for rank, row in enumerate(ordered.itertuples()):
            assert (rank, f"band_hz: {row.band_hz}") in marks
            assert (rank, f"value: {row.value}") in marks


@pytest.mark.parametrize(
    "axes, message",
    [
        (
            {"value": ["log_ratio", "ratio"]},
            "universe value-ratio: preprocess.value: 'ratio' is not one of",
        ),
        (
            {"bin_s": [0.5, 0.7]},
            "universe bin-0.7: preprocess.bin_s 0.7",
        ),
    ],
)
def test_a_universe_the_preprocess_section_would_refuse_is_named(
    default_config, default_participants, axes, message
):
    config = with_axes(default_config, axes)
    participants = [participant for participant, _ in default_participants]
    with pytest.raises(validation.ConfigError, match=re.escape(message)):
        validation.check_config(config, participants)


@pytest.mark.workflow
def test_a_crossover_multiverse_follows_the_design(workflow_copy):
    """A two-universe multiverse of a crossover study (physio text files, two
    sessions per participant, an age group): each universe's cells carry the
    recordings' fields, its mixed models are the crossover ones, so the universe
    with the main settings reproduces the main contrasts exactly, and it counts
    participants, not recordings."""
    config, recordings = physio_text.write_study(workflow_copy)
    axes = {"baseline_s": [list(physio_text.BASELINE_S), [-0.5, 0.0]]}
    config["multiverse"] = {"enabled": True, "axes": axes}
    (workflow_copy / "physio" / "config.yaml").write_text(yaml.safe_dump(config))
    full = validation.load_config(
        workflow_copy / "config" / "config.yaml",
        workflow_copy / "physio" / "config.yaml",
    )
    ids = [universe.id for universe in multiverse.universes(full)]
    run_snakemake(
        workflow_copy,
        MULTIVERSE_OUTPUT,
        *MAIN_CONTRASTS,
        "--cores",
        "2",
        "--configfile",
        "physio/config.yaml",
    )
    settings = json.loads(
        (workflow_copy / f"results/multiverse/settings/{ids[0]}.json").read_text()
    )
    assert set(settings["fields"]) == {
        "participant_id",
        "session",
        "period",
        "sequence",
        "age_group",
    }
    first = recordings[0]
    recording = f"{first.participant}_ses-{first.session}"
    assert settings["fields"]["period"][recording] == first.period
    assert settings["fields"]["sequence"][recording] == first.sequence
    contrasts = pd.read_csv(workflow_copy / MULTIVERSE_OUTPUT, sep="\t")
    assert set(contrasts["universe"]) == set(ids)
    assert (contrasts["n_participants"] == len(physio_text.PARTICIPANTS)).all()
    main_universe = contrasts[contrasts["baseline_s"] == str(axes["baseline_s"][0])]
    for path, kind in zip(MAIN_CONTRASTS, ["mimicry", "drug"]):
        main = pd.read_csv(workflow_copy / path, sep="\t").set_index(
            ["muscle", "group"]
        )
        universe = main_universe[main_universe["contrast"] == kind].set_index(
            ["muscle", "group"]
        )
        assert len(universe) == len(main) > 0, kind
        for column in ("estimate", "se", "p"):
            assert (universe[column] == main.loc[universe.index, column]).all(), column
