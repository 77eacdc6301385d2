"""Each participant's log-likelihood with their own parameters integrated out.

Leaving a participant out removes their series asymptotes (and rates) with their
data. PSIS-LOO from the log-likelihood given those parameters cannot approximate
that: their posterior rests on the very data left out, and every participant of the
default study gets Pareto k > 0.7. Integrated over the population distribution, a
participant's log-likelihood depends on the population parameters only, which one
participant of a hundred barely moves, and the importance weights behave
(integrated importance sampling: Vehtari, Mononen, Tolvanen, Sivula & Winther 2016,
JMLR 17(103); Merkle, Furr & Rabe-Hesketh 2019 for leaving out a cluster).

Per series (participant x muscle x condition) and draw of the population parameters,

    p(y_s) = integral of prod_j p(y_sj | a_s, c_s, b, sigma, nu)
             x normal(a_s | a, participant_sd) x normal(log c_s | log_c, rate_sd),

over a_s and (with rate deviations) log c_s; a participant's log-likelihood is the
sum over their series, which are independent given the population parameters.

- The asymptote: exactly for the normal likelihood (given b and c the series is
  normal with a rank-one covariance update; its least-squares asymptote and residual
  sum of squares are sufficient, as in the Stan program); for Student-t by adaptive
  Gauss-Hermite quadrature around its conditional posterior under a normal
  likelihood (the sampler's standardisation).
- The log rate: adaptive Gauss-Hermite quadrature around its conditional posterior
  given the normal approximation of the series' own data (`series_rate_likelihoods`,
  again the sampler's standardisation). Without rate deviations every series has
  its curve's rate.

The quadrature is tested against Simpson's rule on dense grids
(tests/test_marginal_likelihood.py).
"""

import numpy as np
import pandas as pd
import scipy.special
import scipy.stats
import xarray as xr

from mimicry.bayes.data import cell_fits, series_rate_likelihoods

# Per participant of the default study's drug model, within 5e-4 of 40 x 32 nodes
# (far below the Monte Carlo error of elpd) at a ninth of the cost.
RATE_NODES = 12
ASYMPTOTE_NODES = 10
MODE_ITERATIONS = 4
# Draws per block: bounds the (draws, series, nodes, bins) arrays to a few hundred MB.
DRAWS_PER_BLOCK = 200
SERIES_KEYS = ["participant", "muscle", "condition"]
CURVE_DIMS = ("group", "muscle", "condition")


class Series:
    """The observed data as complete series: y (series, bins), t, and per series its
    participant, group, muscle and condition (sorted by participant, muscle,
    condition)."""

    def __init__(self, observed_data):
        frame = observed_data.to_dataframe().reset_index(drop=True)
        self.t = np.sort(frame["t"].unique())
        # pivot refuses a duplicated (series, bin) rather than averaging it.
        y = frame.pivot(index=SERIES_KEYS, columns="bin", values="y").sort_index()
        if y.shape[1] != len(self.t) or y.isna().any(axis=None):
            incomplete = y.index[y.isna().any(axis=1)][0]
            raise ValueError(
                f"series {'/'.join(incomplete)} lacks bins: each series needs all "
                f"{len(self.t)} bins"
            )
        self.y = y.to_numpy()
        self.labels = y.index.to_frame(index=False).merge(
            frame[[*SERIES_KEYS, "group"]].drop_duplicates(), on=SERIES_KEYS
        )
        self.participants = np.array(sorted(self.labels["participant"].unique()))
        self.participant_index = np.searchsorted(
            self.participants, self.labels["participant"].to_numpy()
        )

    def per_series(self, array):
        """(draws, series) values of a posterior variable indexed by some of group,
        muscle and condition (or by none: the same for every series)."""
        selection = {
            dim: xr.DataArray(self.labels[dim].to_numpy(), dims="series")
            for dim in CURVE_DIMS
            if dim in array.dims
        }
        flat = array.stack(sample=("chain", "draw")).transpose("sample", ...)
        values = flat.sel(selection) if selection else flat
        return np.broadcast_to(
            np.asarray(values, dtype=float).reshape(flat.sizes["sample"], -1),
            (flat.sizes["sample"], len(self.y)),
        )

    def rate_approximation(self):
        """Mean and precision of the normal approximation of what each series' data
        say about its log rate, as the sampler's standardisation uses them."""
        cells = self.labels[["muscle", "condition"]].apply(tuple, axis=1)
        series_cell = pd.factorize(cells)[0] + 1
        fits = cell_fits(self.y.ravel(), self.t, series_cell)
        return series_rate_likelihoods(self.y.ravel(), self.t, series_cell, fits)


def participant_log_likelihood(inference_data):
    """log p(participant's data | population parameters) per draw: a DataArray
    (chain, draw, participant), participants sorted."""
    posterior = inference_data.posterior
    series = Series(inference_data.observed_data)
    names = ["a", "b", "log_c", "participant_sd", "sigma"]
    rate_deviations = "rate_sd" in posterior
    names += ["rate_sd"] * rate_deviations + ["nu"] * ("nu" in posterior)
    draws = {name: series.per_series(posterior[name]) for name in names}
    approximation = series.rate_approximation() if rate_deviations else None
    n_samples = next(iter(draws.values())).shape[0]
    per_series = np.concatenate(
        [
            series_log_likelihood(
                series,
                {
                    name: value[start : start + DRAWS_PER_BLOCK]
                    for name, value in draws.items()
                },
                approximation,
            )
            for start in range(0, n_samples, DRAWS_PER_BLOCK)
        ]
    )
    indicator = np.zeros((len(series.y), len(series.participants)))
    indicator[np.arange(len(series.y)), series.participant_index] = 1
    shape = (posterior.sizes["chain"], posterior.sizes["draw"], -1)
    return xr.DataArray(
        (per_series @ indicator).reshape(shape),
        dims=("chain", "draw", "participant"),
        coords={
            "chain": posterior["chain"].values,
            "draw": posterior["draw"].values,
            "participant": series.participants,
        },
        name="log_lik",
    )


def series_log_likelihood(series, draws, rate_approximation):
    """(draws, series) log p(y_s | population parameters) for one block of draws."""
    if rate_approximation is None:
        return log_likelihood_given_rate(series, draws, draws["log_c"])
    prior_mean, prior_sd = draws["log_c"], draws["rate_sd"]
    estimate, precision = rate_approximation
    conditional_sd = 1 / np.sqrt(1 / prior_sd**2 + precision)
    conditional_mean = conditional_sd**2 * (
        prior_mean / prior_sd**2 + precision * estimate
    )
    terms = []
    for node, log_weight in gauss_hermite(RATE_NODES):
        log_rate = conditional_mean + conditional_sd * node
        terms.append(
            log_weight
            + log_likelihood_given_rate(series, draws, log_rate)
            + scipy.stats.norm.logpdf(log_rate, prior_mean, prior_sd)
            - scipy.stats.norm.logpdf(log_rate, conditional_mean, conditional_sd)
        )
    return scipy.special.logsumexp(terms, axis=0)


def log_likelihood_given_rate(series, draws, log_rate):
    """(draws, series) log of the series' likelihood at log_rate with its asymptote
    integrated over normal(a, participant_sd)."""
    rise = -np.expm1(-np.exp(log_rate)[..., None] * series.t)
    response = series.y - draws["b"][..., None]
    if "nu" in draws:
        return student_t_log_likelihood(response, rise, draws)
    return normal_log_likelihood(response, rise, draws)


def normal_log_likelihood(response, rise, draws):
    """Exact: the least-squares asymptote is normal around a with variance
    participant_sd^2 + sigma^2 / sum(rise^2), independent of the residual sum of
    squares about it."""
    sigma, n_bins = draws["sigma"], response.shape[-1]
    rise_square = (rise**2).sum(axis=-1)
    rise_amount = (response * rise).sum(axis=-1) / rise_square
    residual = response - rise_amount[..., None] * rise
    return (
        -(n_bins - 1) / 2 * np.log(2 * np.pi)
        - (n_bins - 1) * np.log(sigma)
        - 0.5 * np.log(rise_square)
        - (residual**2).sum(axis=-1) / (2 * sigma**2)
        + scipy.stats.norm.logpdf(
            draws["b"] + rise_amount,
            draws["a"],
            np.sqrt(draws["participant_sd"] ** 2 + sigma**2 / rise_square),
        )
    )


def student_t_log_likelihood(response, rise, draws):
    """Adaptive Gauss-Hermite quadrature around the asymptote's conditional mode."""
    nu, sigma = draws["nu"], draws["sigma"]
    centre, spread = student_t_asymptote_mode(response, rise, draws)
    # Student-t log density summed over bins; the terms without y once per series
    # (scipy.stats.t.logpdf per element is ten times slower).
    normalising = response.shape[-1] * (
        scipy.special.gammaln((nu + 1) / 2)
        - scipy.special.gammaln(nu / 2)
        - 0.5 * np.log(nu * np.pi)
        - np.log(sigma)
    )
    scaled_square = (1 / (nu * sigma**2))[..., None]
    terms = []
    for node, log_weight in gauss_hermite(ASYMPTOTE_NODES):
        asymptote = centre + spread * node
        residual = response - (asymptote - draws["b"])[..., None] * rise
        tails = np.log1p(residual**2 * scaled_square).sum(axis=-1)
        terms.append(
            log_weight
            + normalising
            - (nu + 1) / 2 * tails
            + scipy.stats.norm.logpdf(asymptote, draws["a"], draws["participant_sd"])
            - scipy.stats.norm.logpdf(asymptote, centre, spread)
        )
    return scipy.special.logsumexp(terms, axis=0)


def student_t_asymptote_mode(response, rise, draws):
    """Mode and scale of each series asymptote's conditional density under the
    Student-t likelihood, by iteratively reweighted least squares (the EM algorithm
    of the t as a scale mixture of normals) from the least-squares fit.

    An outlying bin pulls the least-squares asymptote several of its sds from where
    the Student-t likelihood puts it, and quadrature nodes around the former miss
    the mass. response is y - b; the asymptote is b plus the fitted rise.
    """
    nu, sigma = draws["nu"][..., None], draws["sigma"][..., None]
    prior_precision = 1 / draws["participant_sd"] ** 2
    prior_rise = draws["a"] - draws["b"]
    rise_amount = (response * rise).sum(axis=-1) / (rise**2).sum(axis=-1)
    for _ in range(MODE_ITERATIONS):
        residual = response - rise_amount[..., None] * rise
        weight = (nu + 1) / (nu * sigma**2 + residual**2)
        precision = (weight * rise**2).sum(axis=-1) + prior_precision
        rise_amount = (
            (weight * rise * response).sum(axis=-1) + prior_rise * prior_precision
        ) / precision
    return draws["b"] + rise_amount, 1 / np.sqrt(precision)


def gauss_hermite(n_nodes):
    """Nodes and log weights for the expectation under a standard normal."""
    nodes, weights = np.polynomial.hermite.hermgauss(n_nodes)
    return zip(np.sqrt(2) * nodes, np.log(weights / np.sqrt(np.pi)))
