"""Real Stan sampling with PyStan on small synthetic studies.

The program compiles once per session (httpstan caches it by its code); each fit is
2 chains x (300 warmup + 300 draws) on 36 participants (12 per group) unless stated.
Synthetic cells come from the simulator's own participant plans of the clean study
(config/clean.yaml on config/config.yaml, seed 20230721: every participant mimics,
normal deviations, so the truth is each group's curve) plus residual noise of sd 0.03
(noise seed 0 unless stated).
"""

import copy
import hashlib
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import arviz as az
import httpstan.cache
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.stats
import xarray as xr
from mimicry.bayes import (
    DEFAULT_STAN_FILE,
    build_model_input,
    cmdstan_available,
    comparison_table,
    contrasts_table,
    diagnostics,
    sample,
    summary_table,
    write_netcdf,
)
from mimicry.bayes.backend import (
    SamplingError,
    build_pystan_model,
    pystan_model_name,
)
from mimicry.bayes.bayes_factors import curve_prior, prior_density_at_zero
from mimicry.bayes.comparison import UNITS, loo
from mimicry.bayes.predictive import likelihood_terms, log_likelihood
from mimicry.bayes.synthetic import (
    balanced_participants,
    counterbalanced_sequences,
    crossover_study_config,
    synthetic_cells,
    synthetic_crossover_cells,
)
from helpers.devtools import PROJECT_ROOT, group_alive
from mimicry.config.study_section import mimicry_contrast
from mimicry.config.validation import load_config
from mimicry.simulate import group_cell_parameters

pytestmark = pytest.mark.workflow

CONFIG = load_config(
    PROJECT_ROOT / "config" / "config.yaml", PROJECT_ROOT / "config" / "clean.yaml"
)
STUDY = CONFIG["study"]
PARTICIPANTS = balanced_participants(STUDY["groups"], 36)
SAMPLER = {
    "backend": "pystan",
    "chains": 2,
    "warmup": 300,
    "draws": 300,
    "adapt_delta": 0.8,
    "max_treedepth": 10,
    "seed": 20230721,
}
LENIENT = {
    "max_rhat": 1.05,
    "min_ess_bulk": 100,
    "min_ess_tail": 100,
    "max_divergences": 0,
    "max_treedepth_hits": 0,
    "min_bfmi": 0.3,
    "participant_level": "gate",
}
# Large enough for 12 per group: the contrast's posterior sd is about
# sqrt(2) * 0.06 / sqrt(12) = 0.025, so 0.12 is ~5 sd from zero.
DRUG_EFFECT = {
    "group": "naltrexone",
    "muscle": "ZM",
    "condition": "AngryToHappy",
    "parameter": "a",
    "value": 0.12,
}


def study_config(drug_effects):
    config = copy.deepcopy(CONFIG)
    config["simulation"]["drug_effects"] = drug_effects
    return config


def cells_for(likelihood, drug_effects=(), noise_seed=0, participants=PARTICIPANTS):
    """Synthetic cells with Gaussian noise, or Student-t (df 4) noise for student_t."""
    return synthetic_cells(
        study_config(list(drug_effects)),
        participants,
        noise_df=4 if likelihood == "student_t" else None,
        noise_seed=noise_seed,
    )


def fit(
    cells,
    model="drug",
    likelihood="student_t",
    prior_only=False,
    rate_deviations=False,
    **sampler,
):
    """A fit; without rate deviations unless asked, as the clean study has none."""
    model_input = build_model_input(
        cells, STUDY, model, likelihood, prior_only, rate_deviations=rate_deviations
    )
    return sample(model_input, {**SAMPLER, **sampler})


def hdi_covers(row, value):
    return row["hdi_low"] <= value <= row["hdi_high"]


@pytest.fixture(scope="session")
def build_seconds():
    """Seconds of the first and of a second build of the program."""
    data = build_model_input(
        cells_for("normal"), STUDY, "drug", rate_deviations=False
    ).data
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        build_pystan_model(DEFAULT_STAN_FILE, data, seed=1)
        seconds.append(time.perf_counter() - started)
    return seconds


@pytest.fixture(scope="module", params=["student_t", "normal"])
def effect_fit(request, build_seconds):
    likelihood = request.param
    return likelihood, fit(cells_for(likelihood, [DRUG_EFFECT]), likelihood=likelihood)


def test_second_build_does_not_recompile(build_seconds):
    first, second = build_seconds
    assert second < 10, f"second build took {second:.1f} s (first {first:.1f} s)"
    program = DEFAULT_STAN_FILE.read_text()
    name = pystan_model_name(program)
    assert name in httpstan.cache.list_model_names()


def test_drug_effect_is_recovered(effect_fit):
    likelihood, inference_data = effect_fit
    report = diagnostics(inference_data, LENIENT, SAMPLER["max_treedepth"])
    assert report["passed"], report["checks"]
    table = summary_table(inference_data).set_index("parameter")
    contrast = table.loc["contrast_a[naltrexone - placebo, ZM, AngryToHappy]"]
    assert contrast["hdi_low"] > 0, f"{likelihood}: HDI includes 0"
    assert hdi_covers(contrast, DRUG_EFFECT["value"]), f"{likelihood}: {contrast}"


@pytest.mark.parametrize("likelihood", ["student_t", "normal"])
def test_drug_effect_is_recovered_in_the_realistic_default_study(
    likelihood, default_config, default_participants
):
    """The default study at its full size (130 participants with response types,
    heavy-tailed deviations and outliers), naltrexone raising the ZM asymptote to
    AngryToHappy by 0.5 (added to every participant's, so the group means differ by
    exactly that), fitted as the workflow fits it (models.rate_deviations, since its
    participants differ in rate) with 4 chains: the contrast's HDI excludes 0 and covers 0.5.
    """
    config = copy.deepcopy(default_config)
    effect = {**DRUG_EFFECT, "value": 0.5}
    config["simulation"]["drug_effects"] = [effect]
    cells = synthetic_cells(
        config,
        default_participants,
        noise_df=4 if likelihood == "student_t" else None,
    )
    inference_data = fit(
        cells,
        likelihood=likelihood,
        rate_deviations=default_config["models"]["rate_deviations"],
        # rate_sd's bulk and tail ESS sit near LENIENT's 100 with 2 x 300 draws
        chains=4,
    )
    report = diagnostics(inference_data, LENIENT, SAMPLER["max_treedepth"])
    assert report["passed"], report["checks"]
    table = summary_table(inference_data).set_index("parameter")
    contrast = table.loc["contrast_a[naltrexone - placebo, ZM, AngryToHappy]"]
    assert contrast["hdi_low"] > 0 and hdi_covers(contrast, effect["value"]), contrast


def test_cell_parameters_cover_the_truth(effect_fit):
    """Each 95% HDI covers its truth with probability 0.95; of the 28 population
    parameters (a and c per group x cell, b per cell) at least 24 must cover it
    (fewer happens with probability ~1.5% under Binomial(28, 0.95))."""
    likelihood, inference_data = effect_fit
    table = summary_table(inference_data).set_index("parameter")
    config = study_config([DRUG_EFFECT])
    covered = []
    for group in STUDY["groups"]:
        truth = group_cell_parameters(config["simulation"], STUDY, group)
        for muscle, conditions in truth.items():
            for condition, cell in conditions.items():
                for name in ("a", "c"):
                    row = table.loc[f"{name}[{group}, {muscle}, {condition}]"]
                    covered.append(hdi_covers(row, cell[name]))
    for muscle in STUDY["muscles"]:
        for condition in STUDY["conditions"]:
            covered.append(hdi_covers(table.loc[f"b[{muscle}, {condition}]"], 0.0))
    assert len(covered) == 28
    assert sum(covered) >= 24, f"{likelihood}: {sum(covered)} of 28 HDIs cover truth"


def hdis_excluding_zero(tables, variables=("contrast_a", "contrast_c")):
    """'replicate: parameter' of every contrast whose 95% HDI excludes 0."""
    excluding = []
    for replicate, table in tables.items():
        contrasts = table[table["variable"].isin(variables)]
        assert len(contrasts) == 8 * len(variables)
        outside = (contrasts["hdi_low"] > 0) | (contrasts["hdi_high"] < 0)
        excluding += [
            f"{replicate}: {name}" for name in contrasts["parameter"][outside]
        ]
    return excluding


def test_null_drug_contrasts_are_calibrated():
    """Null truth: the 95% HDIs of the contrasts should exclude 0 about 5% of the time.

    "Every one of a study's 16 contrast HDIs covers 0" holds only by luck (0.95^16 =
    44% of seeds), so the check pools 6 replicate studies (simulation seeds 1000-1005,
    noise seeds 0-5, sampler seed 20230721): at most 10 of the 96 HDIs may exclude 0
    (more happens with probability 0.9% under Binomial(96, 0.05)).
    """
    tables = {}
    for replicate in range(6):
        config = study_config([])
        config["seed"] = 1000 + replicate
        cells = synthetic_cells(config, PARTICIPANTS, noise_df=4, noise_seed=replicate)
        tables[replicate] = summary_table(fit(cells))
    excluding = hdis_excluding_zero(tables)
    assert len(excluding) <= 10, excluding


REALISTIC_NULL_SEEDS = (1, 2, 3, 4, 5, 6)


@pytest.fixture(scope="module")
def realistic_null_tables(default_config, default_participants):
    """Summaries of the drug model as configured by default (rate deviations on) but
    with the normal likelihood and 2 x (400 + 400) draws, on the realistic default
    study at full size, no drug effect, for each seed (simulation and noise seed
    alike)."""
    tables = {}
    for seed in REALISTIC_NULL_SEEDS:
        config = copy.deepcopy(default_config)
        config["seed"] = seed
        cells = synthetic_cells(config, default_participants, noise_seed=seed)
        inference_data = fit(
            cells,
            likelihood="normal",
            rate_deviations=config["models"]["rate_deviations"],
            warmup=400,
            draws=400,
        )
        tables[seed] = summary_table(inference_data)
    return tables


def test_null_asymptote_contrasts_are_calibrated_in_the_realistic_default_study(
    realistic_null_tables,
):
    """Observed: none of the 48 contrast_a HDIs (6 seeds x 8) excludes 0 (1 without
    rate deviations). More than 7 happens with probability 1.0% under
    Binomial(48, 0.05)."""
    excluding = hdis_excluding_zero(realistic_null_tables, ["contrast_a"])
    assert len(excluding) <= 7, excluding


def test_null_rate_contrasts_are_calibrated_in_the_realistic_default_study(
    realistic_null_tables,
):
    """Observed: 2 of 48 (19 of 48 without rate deviations)."""
    excluding = hdis_excluding_zero(realistic_null_tables, ["contrast_c"])
    assert len(excluding) <= 7, excluding


def test_pooled_model_recovers_the_cells():
    """12 population parameters, null truth; at least 10 HDIs must cover the truth
    (fewer happens with probability ~2% under Binomial(12, 0.95))."""
    inference_data = fit(cells_for("student_t"), model="pooled")
    assert "group" not in inference_data.posterior.dims
    assert "contrast_a" not in inference_data.posterior
    table = summary_table(inference_data).set_index("parameter")
    covered = [
        hdi_covers(table.loc[f"{name}[{muscle}, {condition}]"], cell[name])
        for muscle, conditions in CONFIG["simulation"]["cells"].items()
        for condition, cell in conditions.items()
        for name in ("a", "b", "c")
    ]
    assert sum(covered) >= 10, f"{sum(covered)} of 12"


def test_prior_run_draws_from_the_stated_priors():
    inference_data = fit(cells_for("student_t"), prior_only=True, draws=500)
    assert set(inference_data.groups()) == {
        "prior",
        "prior_predictive",
        "sample_stats_prior",
        "observed_data",
    }
    prior = inference_data.prior
    assert prior["a"].dims == ("chain", "draw", "group", "muscle", "condition")
    # Participants' asymptotes drawn around a with the prior's participant sd.
    spread = prior["participant_a"] - prior["a"].sel(group="placebo")
    placebo = prior["participant_a"].sel(participant=["sub-001", "sub-004"])
    assert placebo.dims == ("chain", "draw", "participant", "muscle", "condition")
    assert (
        abs(
            float((spread / prior["participant_sd"]).sel(participant="sub-001").std())
            - 1
        )
        < 0.1
    )
    assert abs(float(prior["a"].std()) - 0.5) < 0.05
    assert abs(float(prior["b"].std()) - 0.2) < 0.02
    assert abs(float(np.log(prior["c"]).mean()) - np.log(0.5)) < 0.1
    assert inference_data.prior_predictive["y_rep"].sizes["obs"] == 36 * 4 * 12


def test_prior_run_draws_participant_rates_around_their_curves():
    inference_data = fit(
        cells_for("normal"), prior_only=True, rate_deviations=True, draws=500
    )
    prior = inference_data.prior
    assert "participant_log_c" not in prior and "participant_log_c_raw" not in prior
    placebo = prior["participant_c"].sel(participant=["sub-001", "sub-004"])
    assert placebo.dims == ("chain", "draw", "participant", "muscle", "condition")
    spread = np.log(placebo) - np.log(prior["c"].sel(group="placebo"))
    assert abs(float((spread / prior["rate_sd"]).std()) - 1) < 0.1
    # rate_sd ~ half-normal(0, 0.5): mean 0.5 * sqrt(2 / pi).
    assert abs(float(prior["rate_sd"].mean()) - 0.5 * np.sqrt(2 / np.pi)) < 0.03


def test_output_structure_and_observation_labels(effect_fit):
    _, inference_data = effect_fit
    posterior = inference_data.posterior
    assert posterior["participant_a"].dims[2:] == ("participant", "muscle", "condition")
    assert list(posterior["contrast_c"].coords["contrast"].values) == [
        "naltrexone - placebo",
        "amisulpride - placebo",
    ]
    assert "a_shift" not in posterior and "participant_a_raw" not in posterior
    observed = inference_data.observed_data
    first = observed.isel(obs=0)
    assert (str(first["participant"].values), int(first["bin"])) == ("sub-001", 0)
    assert (
        inference_data.log_likelihood["log_lik"].sizes["obs"] == observed.sizes["obs"]
    )


@pytest.fixture(scope="module")
def pooled_effect_fit(effect_fit):
    """The pooled model on effect_fit's cells."""
    likelihood, _ = effect_fit
    cells = cells_for(likelihood, [DRUG_EFFECT])
    return fit(cells, model="pooled", likelihood=likelihood)


def test_loo_compares_the_models_per_observation_and_per_participant(
    effect_fit, pooled_effect_fit
):
    _, drug = effect_fit
    table = comparison_table({"pooled": pooled_effect_fit, "drug": drug})
    numbers = table.drop(columns=["unit", "model"])
    assert np.isfinite(numbers.to_numpy(dtype=float)).all(), table
    n_units = {
        "observation": drug.observed_data.sizes["obs"],
        "participant": len(PARTICIPANTS),
    }
    for unit in UNITS:
        rows = table[table["unit"] == unit].set_index("model")
        assert set(rows.index) == {"pooled", "drug"}
        assert (rows["n_units"] == n_units[unit]).all()
        bands = ["pareto_k_good", "pareto_k_bad", "pareto_k_very_bad"]
        assert (rows[bands].sum(axis=1) == n_units[unit]).all()
        best, other = rows.index
        assert rows.loc[best, "elpd_diff"] == 0
        assert rows.loc[other, "elpd_diff"] == pytest.approx(
            rows.loc[best, "elpd_loo"] - rows.loc[other, "elpd_loo"]
        )
        assert rows["weight"].sum() == pytest.approx(1)
    # With their own parameters integrated out, leaving a participant out is mostly
    # what PSIS can approximate; summed over their observations given those
    # parameters, far less often (12 per group: one participant moves a curve).
    participant_rows = table[table["unit"] == "participant"].set_index("model")
    for name, model in {"drug": drug, "pooled": pooled_effect_fit}.items():
        summed = az.loo(
            az.InferenceData(
                posterior=model.posterior,
                log_likelihood=xr.Dataset(
                    {
                        "log_lik": model.log_likelihood["log_lik"]
                        .groupby("participant")
                        .sum()
                    }
                ),
            ),
            pointwise=True,
        )
        good = participant_rows.loc[name, "pareto_k_good"]
        assert good >= 0.8 * len(PARTICIPANTS), table
        assert good > int((summed.pareto_k <= summed.good_k).sum()) + 5, name
    # Grouped LOO: one entry per participant, whatever order the model's series are in.
    for model in (drug, pooled_effect_fit):
        per_participant = loo(model, "participant").loo_i
        assert list(per_participant["participant"].values) == sorted(
            participant for participant, _ in PARTICIPANTS
        )


def test_loo_refuses_to_compare_models_of_different_observations(
    effect_fit, pooled_effect_fit
):
    _, drug = effect_fit
    log_likelihood = pooled_effect_fit.log_likelihood
    fewer = az.InferenceData(
        posterior=pooled_effect_fit.posterior,
        log_likelihood=log_likelihood.isel(
            obs=log_likelihood["participant"].values != PARTICIPANTS[0][0]
        ),
    )
    with pytest.raises(ValueError, match="do not hold the same observations"):
        comparison_table({"pooled": fewer, "drug": drug})


def test_bayes_factors_of_a_real_fit_single_out_the_injected_effect(effect_fit):
    """Every BF01 is finite and positive, with a finite MCSE unless it is a bound;
    the injected effect has the smallest. (Not necessarily below 1: with the normal
    likelihood its posterior mean is 0.08, 2.5 sds from 0, and against a prior sd
    of 0.7 on the contrast the evidence is then about even, although the 95% HDI
    excludes 0.)"""
    likelihood, inference_data = effect_fit
    table = contrasts_table(
        inference_data,
        CONFIG["models"]["rope"],
        STUDY["reference_group"],
        mimicry_contrast(STUDY),
    ).set_index(["parameter", "contrast", "muscle", "condition"])
    assert np.isfinite(table["bf01"]).all() and (table["bf01"] > 0).all()
    estimated = ~table["bf01_is_upper_bound"]
    assert np.isfinite(table.loc[estimated, "bf01_mcse"]).all()
    injected = (
        DRUG_EFFECT["parameter"],
        f"{DRUG_EFFECT['group']} - {STUDY['reference_group']}",
        DRUG_EFFECT["muscle"],
        DRUG_EFFECT["condition"],
    )
    assert table["bf01"].idxmin() == injected, f"{likelihood}: {table['bf01']}"


@pytest.mark.parametrize("parameter", ["a", "c"])
def test_contrast_prior_densities_at_zero_are_the_programs(parameter):
    """The Bayes factors' prior of a contrast against the program's own prior draws
    (2 x 5000), pooled over every contrast: the share of draws within +-0.1 of 0
    over the window's width estimates the density at 0. It is within 4 MCSEs
    (ArviZ, of the per-draw share) of the Python prior's average density over the
    window (its exact probability, by quadrature, over its width), and so of the
    closed-form density at 0 give or take the window's own smoothing."""
    inference_data = fit(
        cells_for("normal", participants=PARTICIPANTS[:6]),
        likelihood="normal",
        prior_only=True,
        draws=5000,
    )
    draws = inference_data.prior[f"contrast_{parameter}"]
    half_width = 0.1
    inside = (abs(draws) < half_width).mean(["contrast", "muscle", "condition"])
    density = float(inside.mean()) / (2 * half_width)
    mcse = az.mcse(inside.values, method="mean") / (2 * half_width)
    prior = curve_prior(parameter)
    window, _ = scipy.integrate.quad(
        lambda x: prior.pdf(x)
        * (prior.cdf(x + half_width) - prior.cdf(x - half_width)),
        *prior.support(),
    )
    window_density = window / (2 * half_width)
    assert abs(density - window_density) < 4 * mcse, (density, window_density, mcse)
    analytic = prior_density_at_zero(parameter)
    smoothing = abs(window_density - analytic)
    assert abs(density - analytic) < 4 * mcse + smoothing, (density, analytic, mcse)


def test_same_seed_gives_identical_draws_and_bytes(tmp_path):
    cells = cells_for("normal", participants=PARTICIPANTS[:12])
    settings = {"chains": 2, "warmup": 100, "draws": 100}
    first = fit(cells, model="pooled", **settings)
    second = fit(cells, model="pooled", **settings)
    other_seed = fit(cells, model="pooled", **settings, seed=7)
    for group in ("posterior", "posterior_predictive", "sample_stats"):
        assert first[group].equals(second[group]), group
    assert not first.posterior.equals(other_seed.posterior)
    digests = [
        hashlib.sha256(write_netcdf(data, tmp_path / f"{i}.nc").read_bytes()).digest()
        for i, data in enumerate((first, second))
    ]
    assert digests[0] == digests[1]


# Samples in a process of its own, which the test kills.
SAMPLING_SCRIPT = """
import pickle, sys
from mimicry.bayes import sample
sample(*pickle.loads(open(sys.argv[1], "rb").read()))
"""


@pytest.fixture
def private_httpstan_cache(build_seconds, tmp_path, monkeypatch):
    """httpstan's cache in tmp_path, holding a copy of the built program: samplings
    in other test processes cannot add fits to it while a test compares its contents."""
    name = pystan_model_name(DEFAULT_STAN_FILE.read_text())
    built = httpstan.cache.model_directory(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shutil.copytree(
        built,
        httpstan.cache.model_directory(name),
        ignore=shutil.ignore_patterns("fits"),
    )
    return name


def test_fits_are_not_left_in_the_httpstan_cache_even_by_a_killed_sampling(
    private_httpstan_cache, tmp_path
):
    """A sampling killed after some chains were cached leaves them to the next
    sampling, which deletes them together with its own."""
    fits = httpstan.cache.model_directory(private_httpstan_cache) / "fits"
    register = httpstan.cache.cache_directory() / "mimicry-fits"

    def cached():
        return set(fits.glob("*")), set(register.glob("*"))

    before = cached()
    # One chain more than httpstan runs at once: the last starts after the first
    # is cached, so the kill lands while cached chains wait for deletion.
    model_input = build_model_input(
        cells_for("normal"), STUDY, "drug", rate_deviations=False
    )
    job = tmp_path / "job.pickle"
    job.write_bytes(
        pickle.dumps((model_input, {**SAMPLER, "chains": os.cpu_count() + 1}))
    )
    (tmp_path / "sample.py").write_text(SAMPLING_SCRIPT)
    child = subprocess.Popen(
        [sys.executable, tmp_path / "sample.py", job], start_new_session=True
    )
    deadline = time.monotonic() + 600
    while not (left := cached()[0] - before[0]):
        assert child.poll() is None, "the sampling ended before any chain was cached"
        assert time.monotonic() < deadline, "no chain cached in 600 s"
        time.sleep(0.01)
    # As Snakemake's jobs die with it: the process and its chains' workers.
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    while group_alive(child.pid):
        time.sleep(0.01)
    assert all(path.exists() for path in left), "the killed sampling's fits are gone"

    fit(cells_for("normal"), likelihood="normal", chains=1, warmup=50, draws=50)
    # Orphans of earlier runs may have gone too.
    fits_after, register_after = cached()
    assert fits_after <= before[0] and register_after <= before[1]


def stan_values(model, unconstrained):
    """Constrained values of one point, by Stan's names ("c.2.3", ...)."""
    return dict(
        zip(model.constrained_param_names, model.constrain_pars(list(unconstrained)))
    )


def named(values, name):
    """The values of one Stan variable, in Stan's (column-major) order."""
    return np.array([v for k, v in values.items() if k.split(".")[0] == name])


def stan_draw(values):
    """One point's constrained values as (chain, draw, ...) arrays."""
    arrays = {}
    for name in ("participant_a", "participant_c", "b", "c", "sigma", "nu"):
        if not any(key.split(".")[0] == name for key in values):
            continue
        indices = {
            tuple(int(i) - 1 for i in key.split(".")[1:]): value
            for key, value in values.items()
            if key.split(".")[0] == name
        }
        shape = np.max(list(indices), axis=0) + 1
        array = np.empty(shape)
        for index, value in indices.items():
            array[index] = value
        arrays[name] = xr.DataArray(array[None, None])
    return arrays


def prior_log_density(values, data):
    """Log density of the priors and of the sampled series asymptotes (Student-t)
    and log rates (with rate deviations) given their curves, in the sampler's
    coordinates, up to constants."""
    norm = scipy.stats.norm
    cell = np.asarray(data["series_cell"]) - 1
    curve = np.asarray(data["series_group"]) - 1 + data["n_groups"] * cell
    series = 0.0
    if data["student_t"]:
        series += norm.logpdf(
            named(values, "participant_a"),
            named(values, "a")[curve],
            named(values, "participant_sd")[cell],
        ).sum()
    if data["rate_deviations"]:
        series += norm.logpdf(
            np.log(named(values, "participant_c")),
            named(values, "log_c")[curve],
            named(values, "rate_sd")[cell],
        ).sum()
    return series + standardisation_jacobian(values, data) + cell_level(values, data)


def standardisation_jacobian(values, data):
    """Log Jacobian of the series' standardised coordinates: the sd of each sampled
    log rate and (Student-t) asymptote given the rest, as the program computes it."""
    cell = np.asarray(data["series_cell"]) - 1
    curve = np.asarray(data["series_group"]) - 1 + data["n_groups"] * cell
    jacobian = 0.0
    if data["rate_deviations"]:
        precision = 1 / named(values, "rate_sd")[cell] ** 2
        jacobian -= 0.5 * np.log(precision + data["series_log_rate_precision"]).sum()
    if data["student_t"]:
        rate = (
            named(values, "participant_c")
            if data["rate_deviations"]
            else named(values, "c")[curve]
        )
        rise_square = (np.expm1(-np.outer(rate, data["t"])) ** 2).sum(axis=1)
        fit_precision = rise_square / named(values, "sigma")[cell] ** 2
        prior_precision = 1 / named(values, "participant_sd")[cell] ** 2
        jacobian -= 0.5 * np.log(fit_precision + prior_precision).sum()
    return jacobian


def cell_level(values, data):
    """Log density of the priors on a, b, log c, the sds and nu in the sampler's
    coordinates, up to constants."""
    norm = scipy.stats.norm
    # The spreads are sampled on the log scale: Jacobian sd.
    spreads = ["participant_sd", "sigma"] + ["rate_sd"] * data["rate_deviations"]
    jacobian = sum(np.log(named(values, name)).sum() for name in spreads)
    rate_sd_prior = (
        norm.logpdf(named(values, "rate_sd"), 0, 0.5).sum()
        if data["rate_deviations"]
        else 0.0
    )
    return (
        jacobian
        + rate_sd_prior
        + norm.logpdf(named(values, "a"), 0, 0.5).sum()
        + norm.logpdf(named(values, "b"), 0, 0.2).sum()
        + norm.logpdf(named(values, "log_c"), np.log(0.5), 1).sum()
        + norm.logpdf(named(values, "participant_sd"), 0, 0.3).sum()
        + norm.logpdf(named(values, "sigma"), 0, 0.3).sum()
        + scipy.stats.gamma.logpdf(named(values, "nu"), 2, scale=10).sum()
    )


def unconstrained_size(data):
    """Length of the program's unconstrained parameter vector."""
    n_cells, n_curves = data["n_cells"], data["n_groups"] * data["n_cells"]
    size = 2 * n_curves + 3 * n_cells
    if data["student_t"]:
        size += 1 + data["n_series"]
    if data["rate_deviations"]:
        size += n_cells + data["n_series"]
    return size


@pytest.mark.parametrize("rate_deviations", [False, True])
def test_normal_model_integrates_the_series_asymptotes_out_exactly(rate_deviations):
    """Between two points, lp changes exactly as much as the priors plus every
    series' multivariate normal density, covariance sigma^2 I + sd^2 rise rise':
    the collapsed likelihood is the marginal of the hierarchical model."""
    model_input = build_model_input(
        cells_for("normal", participants=PARTICIPANTS[:6]),
        STUDY,
        "drug",
        "normal",
        rate_deviations=rate_deviations,
    )
    data = model_input.data
    model = build_pystan_model(DEFAULT_STAN_FILE, data, seed=1)
    n_cells, n_curves = data["n_cells"], data["n_groups"] * data["n_cells"]
    y = np.asarray(data["y"]).reshape(data["n_series"], data["n_bins"])
    t = np.asarray(data["t"])

    def log_density(unconstrained):
        values = stan_values(model, unconstrained)
        series = 0.0
        for s, (group, cell) in enumerate(
            zip(data["series_group"], data["series_cell"])
        ):
            rate = values[
                f"participant_c.{s + 1}" if rate_deviations else f"c.{group}.{cell}"
            ]
            rise = -np.expm1(-rate * t)
            mean = values[f"a.{group}.{cell}"] * rise + values[f"b.{cell}"] * (1 - rise)
            covariance = values[f"sigma.{cell}"] ** 2 * np.eye(len(t)) + values[
                f"participant_sd.{cell}"
            ] ** 2 * np.outer(rise, rise)
            series += scipy.stats.multivariate_normal.logpdf(y[s], mean, covariance)
        return series + prior_log_density(values, data)

    rng = np.random.default_rng(3)
    base = 0.3 * rng.standard_normal(unconstrained_size(data))
    changed = base + 0.2 * rng.standard_normal(len(base))
    lp_change = model.log_prob(list(changed), adjust_transform=False) - model.log_prob(
        list(base), adjust_transform=False
    )
    assert lp_change == pytest.approx(
        log_density(changed) - log_density(base), abs=1e-8
    )


@pytest.mark.parametrize("rate_deviations", [False, True])
def test_stored_log_lik_is_the_student_t_models_likelihood(rate_deviations):
    """Changing only sigma and nu changes lp exactly as much as the pointwise
    log_lik computed from the draws (as stored for LOO) plus their priors."""
    model_input = build_model_input(
        cells_for("student_t", participants=PARTICIPANTS[:6]),
        STUDY,
        "drug",
        rate_deviations=rate_deviations,
    )
    data = model_input.data
    model = build_pystan_model(DEFAULT_STAN_FILE, data, seed=1)
    n_cells, n_curves = data["n_cells"], data["n_groups"] * data["n_cells"]
    sigma_start = n_curves + n_cells + n_curves + n_cells
    rng = np.random.default_rng(3)
    base = 0.3 * rng.standard_normal(unconstrained_size(data))
    changed = base.copy()
    changed[sigma_start : sigma_start + n_cells + 1] += 0.2 * rng.standard_normal(
        n_cells + 1
    )

    def likelihood_free_part(unconstrained):
        values = stan_values(model, unconstrained)
        terms = likelihood_terms(stan_draw(values), data)
        log_lik = log_likelihood(np.asarray(data["y"]), terms).sum()
        lp = model.log_prob(list(unconstrained), adjust_transform=False)
        return lp - log_lik - prior_log_density(values, data)

    assert likelihood_free_part(changed) == pytest.approx(
        likelihood_free_part(base), abs=1e-8
    )


def test_stan_errors_name_the_projects_program_and_its_line(build_seconds):
    """Bad data (a negative bin time) fails in the data block; the message points
    into src/mimicry/bayes/stan/asymptotic_regression.stan, not into a temporary copy.
    """
    model_input = build_model_input(
        cells_for("normal"), STUDY, "drug", rate_deviations=False
    )
    model_input.data["t"] = [-1.0, *model_input.data["t"][1:]]
    with pytest.raises(SamplingError) as raised:
        sample(model_input, SAMPLER, DEFAULT_STAN_FILE)
    message = str(raised.value)
    declaration = next(
        number
        for number, line in enumerate(DEFAULT_STAN_FILE.read_text().splitlines(), 1)
        if "vector<lower=0>[n_bins] t;" in line
    )
    assert f"'{DEFAULT_STAN_FILE}', line {declaration}" in message, message
    assert "httpstan" not in message and "model.stan" not in message


@pytest.mark.skipif(
    not cmdstan_available(),
    reason="no CmdStan installation (cmdstanpy.cmdstan_path() fails); the CmdStanPy "
    "path samples for real wherever one is installed",
)
def test_cmdstanpy_and_pystan_give_the_same_posterior(effect_fit):
    """The same program, data and seed through CmdStan: the same InferenceData layout,
    clean diagnostics, and posterior means within 5 Monte Carlo standard errors of
    PyStan's for every named parameter."""
    likelihood, pystan_fit = effect_fit
    cmdstan_fit = fit(
        cells_for(likelihood, [DRUG_EFFECT]),
        likelihood=likelihood,
        backend="cmdstanpy",
    )
    assert set(cmdstan_fit.groups()) == set(pystan_fit.groups())
    for group in pystan_fit.groups():
        ours, theirs = cmdstan_fit[group], pystan_fit[group]
        assert set(ours.data_vars) == set(theirs.data_vars), group
        assert ours.sizes == theirs.sizes, group
    report = diagnostics(cmdstan_fit, LENIENT, SAMPLER["max_treedepth"])
    assert report["passed"], report["checks"]
    pystan_table = summary_table(pystan_fit).set_index("parameter")
    cmdstan_table = summary_table(cmdstan_fit).set_index("parameter")
    mcse = np.hypot(pystan_table["mcse_mean"], cmdstan_table["mcse_mean"])
    distance = (pystan_table["mean"] - cmdstan_table["mean"]).abs() / mcse
    assert (distance < 5).all(), distance.sort_values().tail()


# Crossover: the clean study as a placebo/naltrexone crossover with conditions
# Angry, Happy and Neutral (crossover_study_config), 24 participants in sequences
# placebo-naltrexone and naltrexone-placebo alternately, each session's asymptotes
# moved by normal(0, 0.05) draws, and asymptotes in period 2 lower by 0.05 in ZM x
# Happy. A within-participant effect of 0.08 (naltrexone, ZM, Happy): the contrast's
# posterior sd is about sqrt(2) * 0.05 / sqrt(24) = 0.015, so 0.08 is ~5 sd from 0.
# Noise seed 1: under seed 0 the drawn session deviations put the period contrast of
# ZM x Happy 2.9 sds from its truth (a mixed model of the late bins' means, fitted
# independently with statsmodels, finds -0.008 of the -0.04 expected there).
CROSSOVER_CONFIG = crossover_study_config(CONFIG)
CROSSOVER_STUDY = CROSSOVER_CONFIG["study"]
CROSSOVER_EFFECT = {
    "group": "naltrexone",
    "muscle": "ZM",
    "condition": "Happy",
    "parameter": "a",
    "value": 0.08,
}
PERIOD_SHIFT = {("ZM", "Happy"): -0.05}


def crossover_cells(drug_effects=(), n_participants=24, noise_seed=1):
    config = copy.deepcopy(CROSSOVER_CONFIG)
    config["simulation"]["drug_effects"] = list(drug_effects)
    return synthetic_crossover_cells(
        config,
        counterbalanced_sequences(CROSSOVER_STUDY["groups"], n_participants),
        session_sd=0.05,
        period_shift=PERIOD_SHIFT,
        noise_seed=noise_seed,
    )


@pytest.fixture(scope="module", params=["student_t", "normal"])
def crossover_fit(request, build_seconds):
    likelihood = request.param
    model_input = build_model_input(
        crossover_cells([CROSSOVER_EFFECT]),
        CROSSOVER_STUDY,
        "drug",
        likelihood,
        rate_deviations=False,
    )
    # participant_sd's tail ESS sits near LENIENT's 100 with 2 x 300 draws: with 24
    # participants its posterior reaches towards 0 in some cells.
    return likelihood, sample(model_input, {**SAMPLER, "draws": 600})


def test_crossover_within_participant_effect_is_recovered(crossover_fit):
    """The injected contrast's HDI excludes 0 and covers 0.08; the period effect's
    covers -0.05; the drug contrasts table keeps its labels."""
    likelihood, inference_data = crossover_fit
    report = diagnostics(inference_data, LENIENT, SAMPLER["max_treedepth"])
    assert report["passed"], report["checks"]
    table = summary_table(inference_data).set_index("parameter")
    contrast = table.loc["contrast_a[naltrexone - placebo, ZM, Happy]"]
    assert contrast["hdi_low"] > 0, f"{likelihood}: {contrast}"
    assert hdi_covers(contrast, CROSSOVER_EFFECT["value"]), f"{likelihood}: {contrast}"
    period = table.loc["period_a[2 - 1, ZM, Happy]"]
    assert hdi_covers(period, PERIOD_SHIFT[("ZM", "Happy")]), f"{likelihood}: {period}"
    contrasts = contrasts_table(
        inference_data,
        CONFIG["models"]["rope"],
        CROSSOVER_STUDY["reference_group"],
        mimicry_contrast(CROSSOVER_STUDY),
    )
    assert set(contrasts["contrast"]) == {"naltrexone - placebo"}
    assert len(contrasts) == 2 * 6


def test_crossover_output_names_sessions_and_shared_deviations(crossover_fit):
    _, inference_data = crossover_fit
    posterior = inference_data.posterior
    assert posterior["participant_a"].dims[2:] == (
        "participant",
        "group",
        "muscle",
        "condition",
    )
    assert posterior["participant_deviation"].dims[2:] == (
        "participant",
        "muscle",
        "condition",
    )
    assert posterior["session_sd"].dims[2:] == ("muscle", "condition")
    assert list(posterior["period_a"].coords["period"].values) == ["2 - 1"]
    # Every participant has a series in both groups: no gaps.
    assert not posterior["participant_a"].isnull().any()
    observed = inference_data.observed_data
    assert set(observed["session"].values) == {"1", "2"}
    assert set(observed["period"].values) == {1, 2}
    # A participant's asymptotes in both sessions move with their shared deviation.
    deviation = posterior["participant_deviation"].mean(("chain", "draw"))
    asymptote = posterior["participant_a"].mean(("chain", "draw", "group"))
    for muscle in CROSSOVER_STUDY["muscles"]:
        for condition in CROSSOVER_STUDY["conditions"]:
            where = {"muscle": muscle, "condition": condition}
            correlation = np.corrcoef(
                deviation.sel(where).values, asymptote.sel(where).values
            )[0, 1]
            assert correlation > 0.8, (where, correlation)


@pytest.mark.parametrize("rate_deviations", [False, True])
def test_crossover_normal_model_integrates_asymptotes_and_deviations_exactly(
    rate_deviations,
):
    """Between two points, lp changes exactly as much as the priors plus every
    participant x cell's multivariate normal density over the bins of all their
    sessions: covariance sigma^2 I + session_sd^2 rise_s rise_s' per session +
    participant_sd^2 R R' (R: the sessions' rises stacked)."""
    cells = crossover_cells(n_participants=6)
    # One participant lacks a session in one cell (an excluded recording).
    cells = cells[
        ~(
            (cells["participant"] == "sub-001")
            & (cells["session"] == "2")
            & (cells["condition"] == "Happy")
        )
    ]
    model_input = build_model_input(
        cells, CROSSOVER_STUDY, "drug", "normal", rate_deviations=rate_deviations
    )
    data = model_input.data
    model = build_pystan_model(DEFAULT_STAN_FILE, data, seed=1)
    n_bins = data["n_bins"]
    y = np.asarray(data["y"]).reshape(data["n_series"], n_bins)
    t = np.asarray(data["t"])
    unit = np.asarray(data["series_unit"])
    period = np.asarray(data["series_period"])

    def log_density(unconstrained):
        values = stan_values(model, unconstrained)
        period_a = named(values, "period_a").reshape(data["n_cells"], -1).T
        by_period = np.vstack([np.zeros(data["n_cells"]), period_a])
        by_period -= by_period.mean(axis=0)
        total = 0.0
        for u in np.unique(unit):
            members = np.flatnonzero(unit == u)
            cell = data["series_cell"][members[0]]
            rises, means = [], []
            for s in members:
                group = data["series_group"][s]
                rate = values[
                    f"participant_c.{s + 1}" if rate_deviations else f"c.{group}.{cell}"
                ]
                rise = -np.expm1(-rate * t)
                shift = by_period[period[s] - 1, cell - 1]
                asymptote = values[f"a.{group}.{cell}"] + shift
                rises.append(rise)
                means.append(asymptote * rise + values[f"b.{cell}"] * (1 - rise))
            stacked = np.concatenate(rises)
            session_block = scipy.linalg.block_diag(
                *[np.outer(rise, rise) for rise in rises]
            )
            covariance = (
                values[f"sigma.{cell}"] ** 2 * np.eye(len(stacked))
                + values[f"session_sd.{cell}"] ** 2 * session_block
                + values[f"participant_sd.{cell}"] ** 2 * np.outer(stacked, stacked)
            )
            total += scipy.stats.multivariate_normal.logpdf(
                np.concatenate(y[members]), np.concatenate(means), covariance
            )
        crossover_prior = (
            scipy.stats.norm.logpdf(named(values, "session_sd"), 0, 0.3).sum()
            + np.log(named(values, "session_sd")).sum()
            + scipy.stats.norm.logpdf(period_a, 0, 0.5).sum()
        )
        return total + prior_log_density(values, data) + crossover_prior

    size = unconstrained_size(data) + 2 * data["n_cells"]
    rng = np.random.default_rng(3)
    base = 0.3 * rng.standard_normal(size)
    changed = base + 0.2 * rng.standard_normal(len(base))
    lp_change = model.log_prob(list(changed), adjust_transform=False) - model.log_prob(
        list(base), adjust_transform=False
    )
    assert lp_change == pytest.approx(
        log_density(changed) - log_density(base), abs=1e-8
    )


def test_crossover_models_are_compared_leaving_out_observations(crossover_fit, caplog):
    """The pooled model of a crossover (one curve per cell, the same shared
    deviations and period effects) against the drug model: observations only, each
    named by its session too."""
    likelihood, drug = crossover_fit
    pooled = sample(
        build_model_input(
            crossover_cells([CROSSOVER_EFFECT]),
            CROSSOVER_STUDY,
            "pooled",
            likelihood,
            rate_deviations=False,
        ),
        SAMPLER,
    )
    assert "group" not in pooled.posterior["a"].dims
    assert pooled.posterior["participant_a"].dims[2:] == (
        "participant",
        "group",
        "muscle",
        "condition",
    )
    with caplog.at_level(logging.WARNING, logger="mimicry"):
        table = comparison_table({"pooled": pooled, "drug": drug})
    assert "leaving out one observation at a time only" in caplog.text
    assert set(table["unit"]) == {"observation"}
    assert (table["n_units"] == drug.observed_data.sizes["obs"]).all()
    assert np.isfinite(table["elpd_loo"]).all(), table
