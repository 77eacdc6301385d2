"""Savage-Dickey Bayes factors of the drug contrasts against no difference.

For a contrast delta of the drug model, BF01 = p(delta = 0 | y) / p(delta = 0): its
posterior density at 0 over its prior density there (Dickey 1971; Wagenmakers et al.
2010). BF01 > 1 favours no difference, < 1 a difference. The null model it stands
for is the drug model with that contrast fixed at 0 and the other parameters' prior
conditioned on it, and like every Bayes factor it depends on the prior's width: a
wider prior on a or log c would favour the null more.

The prior density at 0 follows in closed form from the program's priors on each
curve's a and log c (``CURVE_PRIORS``; tests/test_bayes_sampling.py checks them
against the program's own prior draws). The posterior density at 0 is a Gaussian
kernel density estimate of the draws (SciPy, Scott's bandwidth). That estimate is the
posterior mean of a normal kernel centred on 0, so its Monte Carlo standard error is
that of a mean: ArviZ's, from the effective sample size of the kernel values, so the
draws' autocorrelation counts. It leaves out the kernel's smoothing bias (of order
bandwidth^2, about 0.2 posterior sd with 4000 draws).
"""

import arviz as az
import numpy as np
import scipy.stats
import xarray as xr

# Priors of mimicry/bayes/stan/asymptotic_regression.stan, iid over the group x cell
# curves: a ~ normal(0, 0.5) and log_c ~ normal(log(0.5), 1), so c is lognormal.
CURVE_PRIORS = {
    "a": {"mean": 0.0, "sd": 0.5},
    "log_c": {"mean": np.log(0.5), "sd": 1.0},
}
# With no effective draw near 0, the posterior mass there is below 3 / ESS at 95%
# (the rule of three): the smallest density the draws resolve.
UNRESOLVED_DRAWS = 3


def curve_prior(parameter):
    """The prior of one curve's a or c as a SciPy distribution."""
    if parameter == "a":
        return scipy.stats.norm(CURVE_PRIORS["a"]["mean"], CURVE_PRIORS["a"]["sd"])
    log_c = CURVE_PRIORS["log_c"]
    return scipy.stats.lognorm(s=log_c["sd"], scale=np.exp(log_c["mean"]))


def prior_density_at_zero(parameter):
    """Prior density at 0 of a contrast of a or c: a group's curve minus the
    reference group's, two independent draws of ``curve_prior(parameter)``.

    The density of a difference of two iid variables at 0 is the integral of their
    density squared: 1 / (2 sd sqrt(pi)) for a normal, exp(-mu + s^2 / 4) /
    (2 s sqrt(pi)) for a lognormal(mu, s).
    """
    if parameter == "a":
        return 1 / (2 * CURVE_PRIORS["a"]["sd"] * np.sqrt(np.pi))
    mean, sd = CURVE_PRIORS["log_c"]["mean"], CURVE_PRIORS["log_c"]["sd"]
    return np.exp(-mean + sd**2 / 4) / (2 * sd * np.sqrt(np.pi))


def posterior_density_at_zero(draws):
    """Kernel density estimate at 0 of draws (chain, draw), its Monte Carlo standard
    error, and the smallest density the draws resolve at 0.

    The resolution is ``UNRESOLVED_DRAWS`` effective draws' share of the mass spread
    over the kernel's width (two bandwidths); an estimate below it says only that the
    density at 0 is smaller.
    """
    values = np.asarray(draws, dtype=float)
    bandwidth = np.sqrt(scipy.stats.gaussian_kde(values.ravel()).covariance.item())
    # The KDE at 0 is the mean over draws of this kernel: an MCSE of a mean applies.
    kernel = scipy.stats.norm.pdf(0.0, loc=values, scale=bandwidth)
    resolution = UNRESOLVED_DRAWS / (az.ess(values) * 2 * bandwidth)
    return kernel.mean(), az.mcse(kernel, method="mean"), resolution


def _savage_dickey(draws, prior_density):
    density, mcse, resolution = posterior_density_at_zero(draws)
    if density < resolution:
        return resolution / prior_density, np.nan, True
    return density / prior_density, mcse / prior_density, False


def savage_dickey(draws, prior_density):
    """BF01 of every contrast in draws (a DataArray with chain and draw dimensions).

    Returns a Dataset over the other dimensions: ``bf01``, ``bf01_mcse`` and
    ``bf01_is_upper_bound``. Where 0 lies so far out in the posterior's tail that
    the draws do not resolve the density there, ``bf01`` is the upper bound from
    the resolution of ``posterior_density_at_zero`` and ``bf01_mcse`` is NaN: the
    bound is finite, never a division by zero.
    """
    bf01, mcse, is_upper_bound = xr.apply_ufunc(
        _savage_dickey,
        draws.astype(float),
        kwargs={"prior_density": prior_density},
        input_core_dims=[["chain", "draw"]],
        output_core_dims=[[], [], []],
        vectorize=True,
    )
    return xr.Dataset(
        {
            "bf01": bf01,
            "bf01_mcse": mcse,
            "bf01_is_upper_bound": is_upper_bound.astype(bool),
        }
    )
