"""The multiverse grid (mimicry.multiverse) and every universe's preprocessing of one
recording (mimicry.preprocess.preprocess_universes), on a simulated quick-study
participant."""

import copy

import pandas as pd
import pytest
import yaml

from mimicry import multiverse
from mimicry.devtools import job_counts, run_snakemake
from mimicry.preprocess import (
    preprocess_recording,
    preprocess_universes,
    read_participant_recording,
)
from mimicry.simulate import simulate_participant


def with_axes(config, axes, exclude=()):
    config = copy.deepcopy(config)
    config["multiverse"] = {"enabled": True, "axes": axes, "exclude": list(exclude)}
    return config


def test_default_grid_has_at_least_72_universes_with_unique_readable_ids(
    default_config,
):
    grid = multiverse.universes(default_config)
    axes = default_config["multiverse"]["axes"]
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
    return (
        MULTIVERSE_OUTPUT,
        *settings_files,
        *targets,
        "--configfile",
        "config/quick.yaml",
        "multiverse.yaml",
    )


def test_four_universes_through_snakemake(workflow_copy, quick_config):
    """A 2 x 2 grid on the quick study: four rows per contrast; the universe with the
    main pipeline's settings reproduces its contrasts exactly; a changed axis value
    runs the participants' jobs and the new universes only."""
    arguments = multiverse_run(
        workflow_copy, quick_config, ["log_ratio", "zscore"], *MAIN_CONTRASTS
    )
    run_snakemake(workflow_copy, "--cores", "2", *arguments)
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
        for column in ("estimate", "ci_low", "ci_high", "p"):
            assert (universe[column] == main.loc[universe.index, column]).all(), column

    changed = multiverse_run(workflow_copy, quick_config, ["log_ratio", "difference"])
    dry = run_snakemake(workflow_copy, "-n", "--cores", "2", *changed)
    participants = len(
        list((workflow_copy / "results" / "multiverse" / "qc").iterdir())
    )
    counts = job_counts(dry.stdout)
    # The simulated raw files are temporary: made again to be read again.
    assert counts.pop("simulate_raw", participants) == participants
    assert counts == {
        "multiverse_preprocess": participants,
        "multiverse_settings": 2,
        "multiverse_universe": 2,
        "multiverse_contrasts": 1,
    }, dry.stdout
    assert "value-difference" in dry.stdout
