"""The participant log-likelihood with the participant's own parameters integrated
out (mimicry.bayes.marginal_likelihood), against Simpson's rule on dense grids.

Small hand-made studies: 3 participants x 2 cells, 12 bins, series drawn from the
model with bin noise of sd 0.03 and one outlier bin, and a few draws of the
population parameters around the truth.
"""

import arviz as az
import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
import xarray as xr

from mimicry.bayes.marginal_likelihood import participant_log_likelihood

T = np.arange(0.25, 6, 0.5)
PARTICIPANTS = ["sub-01", "sub-02", "sub-03"]
GROUPS = {"sub-01": "placebo", "sub-02": "placebo", "sub-03": "naltrexone"}
MUSCLES = ["ZM"]
CONDITIONS = ["AngryToHappy", "HappyToAngry"]
DRAWS = 2
# Per participant; the Monte Carlo error of an elpd is about 0.1 or more. The
# normal likelihood's asymptote integral is exact, so without rate deviations the
# quadrature must match to rounding.
ACCURACY = {"exact": 1e-7, "quadrature": 1e-3}


def observed_data(rng):
    rows = []
    for participant in PARTICIPANTS:
        for condition in CONDITIONS:
            asymptote = rng.normal(0.1, 0.08)
            rate = np.exp(rng.normal(np.log(0.6), 0.3))
            y = asymptote * -np.expm1(-rate * T) + rng.normal(0, 0.03, len(T))
            rows += [
                (participant, GROUPS[participant], "ZM", condition, j, T[j], y[j])
                for j in range(len(T))
            ]
    columns = list(zip(*rows))
    # An outlier bin: where Student-t and normal likelihoods part.
    y = np.array(columns[6])
    y[5] += 0.4
    names = ["participant", "group", "muscle", "condition", "bin", "t"]
    coordinates = {
        name: ("obs", np.array(values)) for name, values in zip(names, columns)
    }
    return xr.Dataset({"y": ("obs", y)}, coords=coordinates)


def posterior(rng, model, likelihood, rate_deviations):
    """DRAWS draws of the population parameters in one chain."""
    curve_dims = ("group", "muscle", "condition") if model == "drug" else ()
    curve_dims = curve_dims or ("muscle", "condition")
    groups = ["placebo", "naltrexone"]
    coordinates = {"group": groups, "muscle": MUSCLES, "condition": CONDITIONS}
    shapes = {dim: len(coordinates[dim]) for dim in coordinates}

    def variable(dims, mean, sd):
        shape = (1, DRAWS, *(shapes[dim] for dim in dims))
        return (("chain", "draw", *dims), rng.normal(mean, sd, shape))

    cell = ("muscle", "condition")
    variables = {
        "a": variable(curve_dims, 0.1, 0.02),
        "log_c": variable(curve_dims, np.log(0.6), 0.1),
        "b": variable(cell, 0.0, 0.01),
        "participant_sd": variable(cell, 0.08, 0.01),
        "sigma": variable(cell, 0.03, 0.003),
    }
    if rate_deviations:
        variables["rate_sd"] = variable(cell, 0.3, 0.05)
    if likelihood == "student_t":
        variables["nu"] = (("chain", "draw"), rng.uniform(3, 8, (1, DRAWS)))
    used = {dim for dims, _ in variables.values() for dim in dims}
    return xr.Dataset(
        variables, coords={dim: coordinates[dim] for dim in coordinates if dim in used}
    )


def reference_log_likelihood(y, draw, likelihood, rate_deviations):
    """log of the integral by Simpson's rule on dense grids: asymptotes over 9 prior
    sds either side (about 20 points per sd of the series' own fit) and log rates
    likewise."""
    a, b, log_c = draw["a"], draw["b"], draw["log_c"]
    participant_sd, sigma = draw["participant_sd"], draw["sigma"]
    asymptotes = np.linspace(a - 9 * participant_sd, a + 9 * participant_sd, 2001)
    if rate_deviations:
        rate_sd = draw["rate_sd"]
        log_rates = np.linspace(log_c - 9 * rate_sd, log_c + 9 * rate_sd, 1001)
    else:
        log_rates = np.array([log_c])
    asymptote, log_rate = asymptotes[None, :, None], log_rates[:, None, None]
    mean = asymptote + (b - asymptote) * np.exp(-np.exp(log_rate) * T)
    if likelihood == "normal":
        bins = scipy.stats.norm.logpdf(y, mean, sigma)
    else:
        bins = scipy.stats.t.logpdf(y, draw["nu"], mean, sigma)
    log_density = bins.sum(axis=-1) + scipy.stats.norm.logpdf(
        asymptotes, a, participant_sd
    )
    offset = log_density.max()
    over_asymptote = scipy.integrate.simpson(np.exp(log_density - offset), x=asymptotes)
    if not rate_deviations:
        return offset + np.log(over_asymptote[0])
    prior = scipy.stats.norm.pdf(log_rates, log_c, rate_sd)
    return offset + np.log(scipy.integrate.simpson(over_asymptote * prior, x=log_rates))


@pytest.mark.parametrize(
    "model, likelihood, rate_deviations",
    [
        ("drug", "normal", False),
        ("drug", "student_t", False),
        # Dense integration over every participant's rate takes 15-35 s.
        pytest.param("drug", "normal", True, marks=pytest.mark.workflow),
        pytest.param("pooled", "student_t", True, marks=pytest.mark.workflow),
    ],
)
def test_quadrature_matches_dense_integration(model, likelihood, rate_deviations):
    rng = np.random.default_rng(7)
    observed = observed_data(rng)
    draws = posterior(rng, model, likelihood, rate_deviations)
    inference_data = az.InferenceData(posterior=draws, observed_data=observed)
    computed = participant_log_likelihood(inference_data)
    assert computed.dims == ("chain", "draw", "participant")
    assert list(computed["participant"].values) == PARTICIPANTS

    frame = observed.to_dataframe()
    for participant in PARTICIPANTS:
        for draw in range(DRAWS):
            total = 0.0
            for condition in CONDITIONS:
                rows = frame[
                    (frame["participant"] == participant)
                    & (frame["condition"] == condition)
                ].sort_values("bin")
                selection = {"muscle": "ZM", "condition": condition}
                if model == "drug":
                    selection["group"] = GROUPS[participant]
                values = {
                    name: float(
                        draws[name]
                        .isel(chain=0, draw=draw)
                        .sel(
                            {
                                k: v
                                for k, v in selection.items()
                                if k in draws[name].dims
                            }
                        )
                    )
                    for name in draws.data_vars
                }
                total += reference_log_likelihood(
                    rows["y"].to_numpy(), values, likelihood, rate_deviations
                )
            value = float(
                computed.sel(participant=participant).isel(chain=0, draw=draw)
            )
            exact = likelihood == "normal" and not rate_deviations
            accuracy = ACCURACY["exact" if exact else "quadrature"]
            assert value == pytest.approx(total, abs=accuracy), (participant, draw)


def test_incomplete_series_are_named():
    rng = np.random.default_rng(7)
    observed = observed_data(rng)
    observed = observed.isel(obs=np.arange(observed.sizes["obs"]) != 3)
    draws = posterior(rng, "drug", "normal", False)
    with pytest.raises(ValueError, match="sub-01/ZM/AngryToHappy lacks bins"):
        participant_log_likelihood(
            az.InferenceData(posterior=draws, observed_data=observed)
        )
