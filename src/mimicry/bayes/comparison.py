"""PSIS-LOO comparison of the pooled and drug models, per observation and per
participant.

The unit left out matters. Leaving out one observation (a participant's bin mean)
asks how well a model predicts a bin of a series it has otherwise seen. The drug
groups are different people, so whether knowing a participant's drug improves
prediction is a question about new participants: leave one participant out. Their
log-likelihood given their own asymptotes (and rates) cannot serve, since those rest
on the data left out (every participant of the default study gets Pareto k > 0.7);
with them integrated over the population distribution
(`mimicry.bayes.marginal_likelihood`) it depends on the population parameters only.
The Pareto k counts in the table say whether PSIS's approximation holds (Vehtari,
Gelman & Gabry 2017; Vehtari et al. 2024).

In a crossover study (log_lik with a session coordinate) the table has the
observation unit only: a participant's sessions share their deviation, which
`mimicry.bayes.marginal_likelihood` does not integrate out (a warning says so).
"""

import logging

import arviz as az
import pandas as pd
import xarray as xr

from mimicry.bayes.inference_data import thinned
from mimicry.bayes.marginal_likelihood import participant_log_likelihood

log = logging.getLogger(__name__)

UNITS = ("observation", "participant")
# The participant log-likelihood costs about 170 likelihood evaluations per draw and
# series (quadrature); PSIS needs hundreds of draws, not thousands.
PARTICIPANT_DRAWS = 1000
# What identifies an observation in every model; the models store their
# observations in different orders (series sorted by group x cell curve).
OBSERVATION_KEYS = ["participant", "muscle", "condition", "bin"]
COLUMNS = [
    "unit",
    "model",
    "n_units",
    "elpd_loo",
    "se",
    "p_loo",
    "elpd_diff",
    "dse",
    "weight",
    "pareto_k_threshold",
    "pareto_k_good",
    "pareto_k_bad",
    "pareto_k_very_bad",
]


def unit_log_likelihood(inference_data, unit):
    """The stored pointwise log_lik per observation (indexed by participant, muscle,
    condition and bin, in one order whatever the model), or per participant with
    their own parameters integrated out (participants sorted)."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, not '{unit}'")
    if unit == "participant":
        return participant_log_likelihood(inference_data)
    log_lik = inference_data.log_likelihood["log_lik"]
    keys = OBSERVATION_KEYS + ["session"] * ("session" in log_lik.coords)
    return log_lik.set_index(obs=keys).sortby("obs")


def loo(inference_data, unit):
    """PSIS-LOO (ArviZ, pointwise) with ``unit`` left out at a time; participants on
    about PARTICIPANT_DRAWS draws, evenly spaced in every chain."""
    if unit == "participant":
        inference_data = az.InferenceData(
            posterior=thinned(inference_data.posterior, PARTICIPANT_DRAWS),
            observed_data=inference_data.observed_data,
        )
    data = az.InferenceData(
        posterior=inference_data.posterior,
        log_likelihood=xr.Dataset(
            {"log_lik": unit_log_likelihood(inference_data, unit)}
        ),
    )
    return az.loo(data, pointwise=True)


def pareto_k_counts(elpd):
    """Units per band of Pareto k: at most ArviZ's threshold min(1 - 1 / log10(S),
    0.7) for S draws (the estimate is reliable), up to 1 (unreliable), above 1
    (unusable)."""
    k, threshold = elpd.pareto_k, elpd.good_k
    return {
        "pareto_k_threshold": threshold,
        "pareto_k_good": int((k <= threshold).sum()),
        "pareto_k_bad": int(((k > threshold) & (k <= 1)).sum()),
        "pareto_k_very_bad": int((k > 1).sum()),
    }


def comparison_table(posteriors):
    """ArviZ's compare (stacking weights) of the models in ``posteriors`` (name ->
    InferenceData with log_likelihood) for each unit, with Pareto k counts.

    ``elpd_diff`` and ``dse`` are the best model's elpd_loo minus this model's and
    the standard error of that difference, 0 for the best. The models must hold the
    same observations.
    """
    rows = []
    crossover = any(
        "session" in data.log_likelihood.coords for data in posteriors.values()
    )
    if crossover:
        log.warning(
            "crossover study: the models are compared leaving out one observation at "
            "a time only; leaving out a participant would need their deviation shared "
            "by their sessions integrated out, which is not implemented"
        )
    for unit in UNITS[:1] if crossover else UNITS:
        loos = {name: loo(data, unit) for name, data in posteriors.items()}
        _check_same_units(loos, unit)
        compared = az.compare(loos)
        for name, row in compared.iterrows():
            rows.append(
                {
                    "unit": unit,
                    "model": name,
                    "n_units": loos[name].n_data_points,
                    **row[["elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight"]],
                    **pareto_k_counts(loos[name]),
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def _check_same_units(loos, unit):
    """ArviZ pairs the models' pointwise values by position: the units must agree."""
    (first, first_loo), *others = loos.items()
    dim = first_loo.loo_i.dims[0]
    for name, elpd in others:
        if not elpd.loo_i.indexes[dim].equals(first_loo.loo_i.indexes[dim]):
            raise ValueError(
                f"models '{first}' and '{name}' do not hold the same {unit}s: "
                "were they fitted to the same cells table?"
            )
