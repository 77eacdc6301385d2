"""Savage-Dickey Bayes factors on draws whose answer is known exactly.

The prior densities are tied to the Stan program by its own prior draws in
tests/test_bayes_sampling.py.
"""

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import xarray as xr
from mimicry.bayes.bayes_factors import (
    curve_prior,
    posterior_density_at_zero,
    prior_density_at_zero,
    savage_dickey,
)

CHAINS = 4
# Conjugate normal model: delta ~ normal(0, PRIOR_SD), n observations ~ normal(delta,
# NOISE_SD) with mean OBSERVED_MEAN.
PRIOR_SD, NOISE_SD, N_OBSERVATIONS, OBSERVED_MEAN = 1.0, 1.0, 20, 0.3


def conjugate_posterior():
    """Posterior of delta: a normal distribution."""
    precision = 1 / PRIOR_SD**2 + N_OBSERVATIONS / NOISE_SD**2
    mean = OBSERVED_MEAN * N_OBSERVATIONS / NOISE_SD**2 / precision
    return scipy.stats.norm(mean, precision**-0.5)


def conjugate_bf01():
    """BF01 from the two marginal likelihoods of the observed mean, without
    Savage-Dickey: normal(0, se) under H0, normal(0, sqrt(prior^2 + se^2)) under H1."""
    standard_error = NOISE_SD / np.sqrt(N_OBSERVATIONS)
    under_null = scipy.stats.norm.pdf(OBSERVED_MEAN, 0, standard_error)
    under_effect = scipy.stats.norm.pdf(
        OBSERVED_MEAN, 0, np.hypot(PRIOR_SD, standard_error)
    )
    return under_null / under_effect


def bf01(draws):
    """savage_dickey's result for one contrast of (chain, draw) draws."""
    prior_density = scipy.stats.norm.pdf(0, 0, PRIOR_SD)
    result = savage_dickey(xr.DataArray(draws, dims=["chain", "draw"]), prior_density)
    return {name: result[name].item() for name in result.data_vars}


@pytest.mark.parametrize("parameter", ["a", "c"])
def test_prior_density_at_zero_is_the_integral_of_the_curve_prior_squared(parameter):
    """A difference of two iid variables has density int f(x)^2 dx at 0."""
    prior = curve_prior(parameter)
    integral, error = scipy.integrate.quad(
        lambda x: prior.pdf(x) ** 2, *prior.support()
    )
    assert prior_density_at_zero(parameter) == pytest.approx(integral, abs=10 * error)


def test_savage_dickey_recovers_the_conjugate_bayes_factor():
    """Exact posterior draws (100,000): BF01 within 4 MCSEs of the marginal
    likelihoods' ratio. With 0 about 1 posterior sd from the mean the kernel's
    smoothing bias is a small fraction of an MCSE."""
    posterior = conjugate_posterior()
    draws = posterior.rvs((CHAINS, 25_000), random_state=np.random.default_rng(1))
    assert 0.5 < abs(posterior.mean()) / posterior.std() < 2
    result = bf01(draws)
    assert not result["bf01_is_upper_bound"]
    expected = conjugate_bf01()
    assert abs(result["bf01"] - expected) < 4 * result["bf01_mcse"], (result, expected)
    assert result["bf01_mcse"] < 0.05 * expected


def test_mcse_is_the_spread_of_the_estimate_over_autocorrelated_chains():
    """200 replicates of 4 AR(1) chains (autocorrelation 0.9, ESS about 5% of the
    draws) whose stationary distribution is the conjugate posterior: the estimates'
    sd matches the reported MCSE (within 25%; its sampling error is about 5%), and
    is far above the MCSE that independent draws would have."""
    posterior = conjugate_posterior()
    rng = np.random.default_rng(2)
    rho, n_draws = 0.9, 1000
    estimates, mcses, independent_mcses = [], [], []
    for _ in range(200):
        innovations = rng.standard_normal((CHAINS, n_draws)) * np.sqrt(1 - rho**2)
        chains = np.empty((CHAINS, n_draws))
        chains[:, 0] = rng.standard_normal(CHAINS)
        for step in range(1, n_draws):
            chains[:, step] = rho * chains[:, step - 1] + innovations[:, step]
        draws = posterior.mean() + posterior.std() * chains
        density, mcse, _ = posterior_density_at_zero(draws)
        estimates.append(density)
        mcses.append(mcse)
        bandwidth = np.sqrt(scipy.stats.gaussian_kde(draws.ravel()).covariance.item())
        kernel = scipy.stats.norm.pdf(0, draws, bandwidth)
        independent_mcses.append(kernel.std(ddof=1) / np.sqrt(kernel.size))
    spread = np.std(estimates, ddof=1)
    assert 0.8 < spread / np.mean(mcses) < 1.25, spread / np.mean(mcses)
    assert spread > 2 * np.mean(independent_mcses)


def test_zero_far_in_the_tail_gives_a_finite_upper_bound():
    """0 at 10 posterior sds: the draws cannot resolve the density there. BF01 is
    reported as a bound: finite, above the true BF01 and below the true BF01 at 3
    sds, where the draws still resolve the density."""
    posterior = scipy.stats.norm(10.0, 1.0)
    draws = posterior.rvs((CHAINS, 1000), random_state=np.random.default_rng(3))
    result = bf01(draws)
    prior_density = scipy.stats.norm.pdf(0, 0, PRIOR_SD)
    assert result["bf01_is_upper_bound"] and np.isnan(result["bf01_mcse"])
    truth = posterior.pdf(0) / prior_density
    at_three_sds = scipy.stats.norm.pdf(3) / prior_density
    assert truth < result["bf01"] < at_three_sds


def test_savage_dickey_keeps_the_contrasts_dimensions():
    rng = np.random.default_rng(4)
    draws = xr.DataArray(
        rng.standard_normal((CHAINS, 500, 2, 3)),
        dims=["chain", "draw", "contrast", "muscle"],
        coords={"contrast": ["x - r", "y - r"], "muscle": ["ZM", "CS", "OO"]},
    )
    result = savage_dickey(draws, prior_density=1.0)
    assert result["bf01"].dims == ("contrast", "muscle")
    assert result["bf01_is_upper_bound"].dtype == bool
    single = posterior_density_at_zero(draws.sel(contrast="y - r", muscle="CS"))
    assert result["bf01"].sel(contrast="y - r", muscle="CS") == pytest.approx(single[0])
