"""Replicated data and pointwise log-likelihood, computed from the draws.

The Stan program returns parameters only. y_rep and log_lik hold one value per
observation and draw (about ten times more numbers than the parameters); sent through
the sampler's output they cost PyStan's parent process as much CPU as the chains
themselves. Here they are computed with NumPy and SciPy from each draw's series
asymptotes, b, c, sigma and nu, exactly as the program's likelihood defines them.
"""

import numpy as np
import scipy.stats
import xarray as xr


def observation_means(draws, data):
    """mu(t) = a_s + (b - a_s) exp(-c t) of every observation: (chain, draw, obs).

    ``draws`` holds Stan's flat outputs: participant_a (series), b (cell) and c
    (group, cell), or participant_c (series) with rate deviations. Observations are
    series after series, bins in time order.
    """
    cell = np.asarray(data["series_cell"]) - 1
    group = np.asarray(data["series_group"]) - 1
    asymptote = draws["participant_a"].values[..., None]
    b = draws["b"].values[:, :, cell, None]
    if data["rate_deviations"]:
        c = draws["participant_c"].values[..., None]
    else:
        c = draws["c"].values[:, :, group, cell, None]
    decay = np.exp(-c * np.asarray(data["t"], dtype=float))
    means = asymptote + (b - asymptote) * decay
    return means.reshape(*means.shape[:2], -1)


def likelihood_terms(draws, data):
    """(means, scales, degrees of freedom or None) of every observation's
    likelihood in every draw."""
    cell = np.repeat(np.asarray(data["series_cell"]) - 1, data["n_bins"])
    scale = draws["sigma"].values[:, :, cell]
    df = (
        draws["nu"].values.reshape(*draws["nu"].shape[:2], 1)
        if data["student_t"]
        else None
    )
    return observation_means(draws, data), scale, df


def log_likelihood(y, terms):
    """Pointwise log density of the observations y given likelihood_terms."""
    means, scale, df = terms
    if df is None:
        return scipy.stats.norm.logpdf(y, means, scale)
    return scipy.stats.t.logpdf(y, df, means, scale)


def replicated_data(terms, rng):
    """One replicated data set per draw, from the likelihood at that draw."""
    means, scale, df = terms
    if df is None:
        noise = rng.standard_normal(means.shape)
    else:
        noise = rng.standard_t(df, size=means.shape)
    return means + scale * noise


def add_predictions(inference_data, model_input, seed):
    """Add y_rep (posterior_predictive or prior_predictive) and, for a posterior,
    log_lik (log_likelihood) to InferenceData holding Stan's flat outputs."""
    data = model_input.data
    run = "prior" if model_input.prior_only else "posterior"
    draws = inference_data[run]
    coordinates = {
        "chain": draws["chain"].values,
        "draw": draws["draw"].values,
        "obs": np.arange(data["n_obs"]),
    }
    dims = ("chain", "draw", "obs")
    terms = likelihood_terms(draws, data)
    # Its own stream: the sampler's seed also seeds Stan's chains.
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    groups = {
        f"{run}_predictive": xr.Dataset(
            {"y_rep": (dims, replicated_data(terms, rng))}, coords=coordinates
        )
    }
    if not model_input.prior_only:
        y = np.asarray(data["y"], dtype=float)
        groups["log_likelihood"] = xr.Dataset(
            {"log_lik": (dims, log_likelihood(y, terms))}, coords=coordinates
        )
    inference_data.add_groups(groups)
    return inference_data
