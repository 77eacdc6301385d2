"""Frequentist linear mixed models of the aggregated EMG cells, one per muscle.

Model, fitted by maximum likelihood (statsmodels ``MixedLM``, ``reml=False``) so that
nested models can be compared by likelihood ratio::

    y ~ group * condition * bin  +  participant random effects

Fixed effects use treatment coding: the reference group, the first listed condition
and the first time bin are the baselines.

Time enters as a categorical factor (one level per bin), not as a continuous covariate.
The response follows a saturating curve (section 2 of the design), which a linear or
low-order polynomial time term would misdescribe, so its residual misfit would leak
into the drug and condition tests. With bins as a factor the fixed part is saturated:
it makes no assumption about the shape of the time course (the Bayesian asymptotic
model is the parametric counterpart) and, on a balanced design, its cell estimates are
the raw cell means. The price is many parameters (groups x conditions x bins), hence
many-df omnibus tests; the time-averaged contrasts below are the focused tests.

Random effects (lme4 notation). Drug and mimicry effects are differences between
conditions compared across participants, so their standard errors must include how
much a participant's own response to each condition varies, and how it varies over
time. In the simulated study, as in the asymptotic model, a participant's own
deviation is one of its asymptote: it follows the response shape 1 - exp(-t / 2 s),
near zero in the first bin and full at the end of the window.

- ``"condition_shape"`` (default): per participant, a random weight of the response
  shape for each condition with an unstructured covariance, plus a random intercept
  per participant and condition with one shared variance (baseline shifts):
  ``(0 + condition:shape | participant) + (1 | participant:condition)``.
- ``"condition"``: one random intercept per participant and condition,
  ``(0 + condition | participant)``. It spreads the growing asymptote deviation evenly
  over the bins and leaves the rest as correlated residuals, which the bin-level
  interaction terms take for drug effects: on the default 130-participant simulated
  study with no drug effect, the CS drug x condition test gave p = 3e-7 (p = 0.46 with
  the default).
- ``"intercept"``: ``(1 | participant)``. It cancels out of every condition
  difference, so drug tests treat between-participant variation as bin noise.

With no drug effect, the default gave drug x condition p > 0.05 in 9 of 10 muscle x
seed tests through the whole pipeline (default study, seeds 1-4 and 20230721; 7 of 10
with ``condition``) and in 15 of 16 on synthetic cells of the same size (seeds 1-8,
tests/test_frequentist.py).

ML fits use BFGS with a tight gradient tolerance and fall back to Powell from where
BFGS stopped, which copes with a variance whose maximum is at zero.

Likelihood-ratio tests each drop every fixed-effect term that contains the named
factors, which keeps the reduced model hierarchical (no interaction without the terms
it depends on):

- ``drug_x_condition``: group:condition and group:condition:bin, i.e. does any drug
  change the difference between conditions (mimicry) at any time;
- ``drug``: every term with group, i.e. does drug change the response at all;
- ``condition``: every term with condition, i.e. mimicry itself: do the conditions
  differ at any time in any group.
"""

import itertools
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.regression.mixed_linear_model import VCSpec

from mimicry.study import contrast_label

log = logging.getLogger(__name__)

FACTORS = ("group", "condition", "bin")
REQUIRED_COLUMNS = ("participant", "group", "muscle", "condition", "bin", "t", "y")
FULL_MODEL_TERMS = tuple(
    term
    for size in range(1, len(FACTORS) + 1)
    for term in itertools.combinations(FACTORS, size)
)
# test name -> the factors a term must all contain to be dropped from the full model
LIKELIHOOD_RATIO_TESTS = {
    "drug_x_condition": {"group", "condition"},
    "drug": {"group"},
    "condition": {"condition"},
}
RANDOM_EFFECTS = ("condition_shape", "condition", "intercept")
CONDITION_INTERCEPT = "participant:condition intercept"
# Time constant of the response shape 1 - exp(-t / tau) that a participant's own
# asymptote deviation follows: the prior median rate of the asymptotic model (0.5/s).
SHAPE_TIME_CONSTANT_S = 2.0
TABLE_NAMES = (
    "lrt",
    "fixed_effects",
    "mimicry_contrasts",
    "drug_contrasts",
    "random_effects",
    "fits",
)
# Optimiser tolerances tighter than statsmodels' defaults: with those, BFGS stopped
# 1e-5 below the maximum log-likelihood in the tests, and Powell's relative 1e-4
# allows about 0.2 at the log-likelihoods of these data (about 2000).
BFGS_GTOL = 1e-9
POWELL_FTOL = 1e-10
CI_LEVEL = 0.95
# statsmodels flags any variance below 0.01 in absolute units as "on the boundary";
# log-EMG variances are all far below that, so the message carries no information.
UNINFORMATIVE_WARNINGS = ("The MLE may be on the boundary of the parameter space",)
POWELL_REFIT = "BFGS did not converge; refitted with Powell from where it stopped"
# The structure to fall back to when one cannot be estimated from the data.
SIMPLER_RANDOM_EFFECTS = {"condition_shape": "condition", "condition": "intercept"}
POWELL_FAILED = (
    "Powell's line search failed ({error}); kept the BFGS fit, which did not converge: "
    "a random-effect variance is at zero, try frequentist.random_effects: condition "
    "or intercept"
)


def fit_mixed_models(
    cells,
    *,
    groups,
    reference_group,
    conditions,
    random_effects="condition_shape",
    mimicry_contrast=None,
):
    """Fit the full and reduced models for every muscle and tabulate the results.

    cells: the aggregated table (participant, group, muscle, condition, bin, y, ...).
    groups: every drug group the study declares (config ``study.groups``).
    reference_group: the treatment-coding baseline, e.g. placebo.
    conditions: every condition, in order (the first is the treatment-coding baseline).
    mimicry_contrast: the [first, second] conditions of the mimicry contrast, first
        minus second averaged over time bins (config ``study.mimicry_contrast``); None
        means the first two conditions.
    random_effects: ``"condition"`` (one random intercept per participant and
        condition), ``"condition_shape"`` (also a random weight of the response shape
        per participant and condition) or ``"intercept"`` (one per participant); see
        the module docstring.

    Returns one DataFrame per name in ``TABLE_NAMES``. Every table carries the
    ``converged`` status of the fits it derives from; a fit that does not converge is
    logged as a warning and kept.
    """
    contrast = list(conditions[:2] if mimicry_contrast is None else mimicry_contrast)
    cells = _checked_cells(
        cells, groups, reference_group, conditions, random_effects, contrast
    )
    group_levels = [reference_group] + [g for g in groups if g != reference_group]
    levels = {
        "group": group_levels,
        "condition": list(conditions),
        "bin": sorted(cells["bin"].unique()),
    }
    results = {name: [] for name in TABLE_NAMES}
    for muscle, data in cells.groupby("muscle", sort=True):
        fitted = _fit_muscle(muscle, data, levels, random_effects, contrast)
        for name, table in fitted.items():
            results[name].append(table)
    return {
        name: pd.concat(tables, ignore_index=True) for name, tables in results.items()
    }


def write_tables(tables, directory):
    """Write each table as ``<directory>/<name>.tsv``; return the paths in name order."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in sorted(tables):
        path = directory / f"{name}.tsv"
        tables[name].to_csv(path, sep="\t", index=False)
        paths.append(path)
    return paths


def design_matrix(frame, terms, levels):
    """Treatment-coded fixed-effect columns, named like ``group[x]:condition[y]``.

    Each term is a tuple of factors; its columns are the products of the factors'
    indicator columns for every level but the first.
    """
    columns = {"Intercept": np.ones(len(frame))}
    for term in terms:
        term_columns = {"": np.ones(len(frame))}
        for factor in term:
            values = frame[factor].to_numpy()
            term_columns = {
                _join_labels(name, f"{factor}[{level}]"): column
                * (values == level).astype(float)
                for name, column in term_columns.items()
                for level in levels[factor][1:]
            }
        columns.update(term_columns)
    return pd.DataFrame(columns, index=frame.index)


def _join_labels(term_label, factor_label):
    return f"{term_label}:{factor_label}" if term_label else factor_label


def reduced_terms(test):
    """The full model's terms without those containing all of the test's factors."""
    dropped = LIKELIHOOD_RATIO_TESTS[test]
    return tuple(term for term in FULL_MODEL_TERMS if not dropped <= set(term))


def fit_mixed_model(data, terms, levels, random_effects="condition_shape"):
    """ML fit of one muscle's model with the given fixed-effect terms.

    data must be sorted by participant. Returns the statsmodels result and the
    warnings it raised (uninformative ones removed), so the caller can log them
    against the model's name.
    """
    exog_re, exog_vc = random_effects_design(data, levels, random_effects)
    model = sm.MixedLM(
        data["y"].to_numpy(float),
        design_matrix(data, terms, levels),
        groups=data["participant"].to_numpy(),
        exog_re=exog_re,
        exog_vc=exog_vc,
    )
    result, messages = _fit_recording_warnings(model, method="bfgs", gtol=BFGS_GTOL)
    if not result.converged:
        # BFGS stalls when a variance's maximum is at zero, as the participant x
        # condition intercepts' is in data without baseline shifts; Powell needs no
        # gradient. BFGS' own complaints are then superseded by Powell's outcome.
        try:
            result, messages = _fit_recording_warnings(
                model,
                method="powell",
                start_params=result.params_object,
                ftol=POWELL_FTOL,
            )
        except np.linalg.LinAlgError as error:
            # A singular random-effects covariance (e.g. no between-participant
            # spread of a response) can break Powell's line search outright.
            return result, [*messages, POWELL_FAILED.format(error=error)]
        messages = [POWELL_REFIT, *messages]
    return result, messages


def _fit_recording_warnings(model, **options):
    """Fit by ML; return the result and its informative warnings, sorted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit(reml=False, **options)
    messages = sorted(
        {
            str(warning.message)
            for warning in caught
            if not str(warning.message).startswith(UNINFORMATIVE_WARNINGS)
        }
    )
    return result, messages


def random_effects_design(data, levels, random_effects):
    """Per-participant random-effect columns of one muscle's model.

    Returns the columns whose effects have an unstructured covariance (``exog_re``)
    and, for ``condition_shape``, the participant x condition intercepts as one
    variance component (``exog_vc``; None otherwise).
    """
    if random_effects == "intercept":
        return pd.DataFrame({"Intercept": np.ones(len(data))}, index=data.index), None
    indicators = {
        f"condition[{level}]": (data["condition"] == level).to_numpy(float)
        for level in levels["condition"]
    }
    if random_effects == "condition":
        return pd.DataFrame(indicators, index=data.index), None
    shape = 1.0 - np.exp(-data["t"].to_numpy(float) / SHAPE_TIME_CONSTANT_S)
    shape_weights = pd.DataFrame(
        {f"{name}:shape": column * shape for name, column in indicators.items()},
        index=data.index,
    )
    intercepts = np.column_stack(list(indicators.values()))
    rows = data.groupby("participant", sort=True).indices
    vc = VCSpec(
        [CONDITION_INTERCEPT],
        [[list(indicators)] * len(rows)],
        [[intercepts[index] for index in rows.values()]],
    )
    return shape_weights, vc


def wald(estimates, covariance):
    """Estimate, SE, z, two-sided p and confidence interval for linear combinations."""
    estimates = np.asarray(estimates, dtype=float)
    se = np.sqrt(np.diag(np.atleast_2d(covariance)))
    z = estimates / se
    half_width = stats.norm.ppf(0.5 + CI_LEVEL / 2) * se
    return pd.DataFrame(
        {
            "estimate": estimates,
            "se": se,
            "z": z,
            "p": 2 * stats.norm.sf(np.abs(z)),
            "ci_low": estimates - half_width,
            "ci_high": estimates + half_width,
        }
    )


def mimicry_weights(levels, contrast):
    """Contrast rows (one per group): contrast's first minus its second condition,
    mean over bins.

    Built from the design rows of every group x condition x bin cell, so each row of
    the result times the fixed effects is a difference of averaged cell means.
    """
    grid = pd.DataFrame(
        list(itertools.product(*(levels[factor] for factor in FACTORS))),
        columns=list(FACTORS),
    )
    design = design_matrix(grid, FULL_MODEL_TERMS, levels)
    first, second = contrast
    cell_means = design.groupby([grid["group"], grid["condition"]], sort=False).mean()
    return pd.DataFrame(
        {
            group: cell_means.loc[(group, first)] - cell_means.loc[(group, second)]
            for group in levels["group"]
        }
    ).T


def _checked_cells(
    cells, groups, reference_group, conditions, random_effects, contrast
):
    """The cells table sorted and validated; every problem raises a ValueError."""
    missing = [column for column in REQUIRED_COLUMNS if column not in cells.columns]
    if missing:
        raise ValueError(f"cells table lacks required columns {missing}")
    if random_effects not in RANDOM_EFFECTS:
        raise ValueError(
            f"random_effects '{random_effects}' is not one of {list(RANDOM_EFFECTS)}"
        )
    if reference_group not in groups:
        raise ValueError(
            f"reference group '{reference_group}' is not one of the groups {list(groups)}"
        )
    if len(conditions) < 2:
        raise ValueError(
            f"conditions {list(conditions)}: the mimicry contrast needs at least two"
        )
    unknown = [condition for condition in contrast if condition not in conditions]
    if len(contrast) != 2 or unknown or contrast[0] == contrast[1]:
        raise ValueError(
            f"mimicry contrast {contrast} must name two different conditions of "
            f"{list(conditions)}"
        )
    for column, declared in (("group", groups), ("condition", conditions)):
        present = set(cells[column].unique())
        absent = [level for level in declared if level not in present]
        if absent:
            role = (
                " (the reference group)"
                if column == "group" and reference_group in absent
                else ""
            )
            raise ValueError(f"{column} {absent}{role} has no rows in the cells table")
        undeclared = sorted(present - set(declared))
        if undeclared:
            raise ValueError(
                f"{column} {undeclared} in the cells table is not declared"
            )
    if not np.isfinite(cells["y"].to_numpy(float)).all():
        raise ValueError("cells table: y has missing or infinite values")
    groups_per_participant = cells.groupby("participant")["group"].nunique()
    in_several = sorted(groups_per_participant.index[groups_per_participant > 1])
    if in_several:
        raise ValueError(f"participants {in_several} belong to more than one group")
    keys = ["muscle", "participant", "condition", "bin"]
    duplicated = cells[cells.duplicated(keys)]
    if len(duplicated):
        raise ValueError(
            f"cells table has {len(duplicated)} duplicate rows, e.g. "
            f"{duplicated[keys].iloc[0].to_dict()}"
        )
    _check_every_cell_observed(cells)
    return cells.sort_values(keys, ignore_index=True)


def _check_every_cell_observed(cells):
    """A saturated fixed part needs data in every muscle x group x condition x bin."""
    observed = cells.groupby(["muscle", *FACTORS]).size()
    complete = pd.MultiIndex.from_product(
        [sorted(cells[column].unique()) for column in observed.index.names]
    )
    empty = complete.difference(observed.index)
    if len(empty):
        raise ValueError(
            f"{len(empty)} muscle x group x condition x bin cells have no data, e.g. "
            f"{dict(zip(observed.index.names, empty[0]))}"
        )


def _fit_muscle(muscle, data, levels, random_effects, contrast):
    """All fits and tables for one muscle."""
    fits, random_effects = _fits_with_finite_likelihood(
        muscle, data, levels, random_effects
    )
    full = fits["full"]
    converged = bool(full.converged)
    fixed_names = list(full.model.exog_names)
    beta = full.fe_params.to_numpy()
    beta_covariance = full.cov_params().to_numpy()[: len(beta), : len(beta)]

    fixed = wald(beta, beta_covariance).drop(columns=["ci_low", "ci_high"])
    fixed.insert(0, "term", fixed_names)

    weights = mimicry_weights(levels, contrast)[fixed_names].to_numpy()
    label = contrast_label(contrast)
    mimicry = wald(weights @ beta, weights @ beta_covariance @ weights.T)
    mimicry.insert(0, "group", levels["group"])
    mimicry.insert(1, "contrast", label)

    # Each drug group's mimicry minus the reference group's: the focused 1-df test.
    versus_reference = weights[1:] - weights[0]
    drug = wald(
        versus_reference @ beta, versus_reference @ beta_covariance @ versus_reference.T
    )
    drug.insert(0, "group", levels["group"][1:])
    drug.insert(1, "reference_group", levels["group"][0])
    drug.insert(2, "contrast", label)

    tables = {
        "lrt": _likelihood_ratio_table(fits).assign(random_effects=random_effects),
        "fixed_effects": fixed,
        "mimicry_contrasts": mimicry,
        "drug_contrasts": drug,
        "random_effects": _random_effects_table(full),
        "fits": _fits_table(fits).assign(random_effects=random_effects),
    }
    for name in (
        "fixed_effects",
        "mimicry_contrasts",
        "drug_contrasts",
        "random_effects",
    ):
        tables[name] = tables[name].assign(converged=converged)
    return {
        name: table.assign(muscle=muscle)[["muscle", *table.columns]]
        for name, table in tables.items()
    }


def _fits_with_finite_likelihood(muscle, data, levels, random_effects):
    """The full and reduced fits, with a simpler random-effects structure if needed.

    A structure the data cannot support (e.g. no between-participant spread of a
    response) leaves a singular covariance whose log-likelihood is infinite; the
    likelihood-ratio tests would then be meaningless, so every fit of the muscle moves
    to the next simpler structure together, and the tables say which one was used.
    """
    while True:
        fits = {
            "full": _logged_fit(
                muscle, "full", data, FULL_MODEL_TERMS, levels, random_effects
            )
        }
        for test in LIKELIHOOD_RATIO_TESTS:
            fits[f"without_{test}"] = _logged_fit(
                muscle,
                f"without_{test}",
                data,
                reduced_terms(test),
                levels,
                random_effects,
            )
        degenerate = [name for name, fit in fits.items() if not np.isfinite(fit.llf)]
        if not degenerate:
            return fits, random_effects
        simpler = SIMPLER_RANDOM_EFFECTS.get(random_effects)
        if simpler is None:
            raise ValueError(
                f"{muscle}: the {', '.join(degenerate)} model(s) have a non-finite "
                "log-likelihood even with one random intercept per participant; "
                "check the cells table for participants without variation"
            )
        log.warning(
            "%s: random effects '%s' give a singular covariance (non-finite "
            "log-likelihood in the %s model(s)); refitting every %s model with "
            "'%s' (frequentist.random_effects)",
            muscle,
            random_effects,
            ", ".join(degenerate),
            muscle,
            simpler,
        )
        random_effects = simpler


def _logged_fit(muscle, name, data, terms, levels, random_effects):
    result, messages = fit_mixed_model(data, terms, levels, random_effects)
    for message in messages:
        repaired = result.converged and message == POWELL_REFIT
        level = logging.INFO if repaired else logging.WARNING
        log.log(level, "%s %s model: statsmodels: %s", muscle, name, message)
    status = "converged" if result.converged else "DID NOT CONVERGE"
    log.log(
        logging.INFO if result.converged else logging.WARNING,
        "%s %s model: %d fixed effects, %d rows, %d participants, loglik %.3f, %s",
        muscle,
        name,
        len(result.fe_params),
        int(result.nobs),
        len(result.model.group_labels),
        result.llf,
        status,
    )
    return result


def _likelihood_ratio_table(fits):
    full = fits["full"]
    rows = []
    for test, factors in LIKELIHOOD_RATIO_TESTS.items():
        reduced = fits[f"without_{test}"]
        chi2 = 2 * (full.llf - reduced.llf)
        df = len(full.fe_params) - len(reduced.fe_params)
        dropped = [term for term in FULL_MODEL_TERMS if factors <= set(term)]
        rows.append(
            {
                "test": test,
                "dropped_terms": " + ".join(":".join(term) for term in dropped),
                "chi2": chi2,
                "df": df,
                "p": stats.chi2.sf(chi2, df),
                "loglik_full": full.llf,
                "loglik_reduced": reduced.llf,
                "converged": bool(full.converged and reduced.converged),
            }
        )
    return pd.DataFrame(rows)


def _random_effects_table(result):
    """Variances and covariances of the participant effects, any variance
    components, then the residual's."""
    covariance = result.cov_re
    names = list(covariance.index)
    rows = []
    for i, j in itertools.combinations_with_replacement(range(len(names)), 2):
        pair = names[i] if i == j else f"{names[i]}, {names[j]}"
        kind = "var" if i == j else "cov"
        rows.append(
            {
                "component": f"{kind}(participant {pair})",
                "estimate": covariance.iloc[i, j],
            }
        )
    for name, variance in zip(result.model.exog_vc.names, result.vcomp):
        rows.append({"component": f"var({name})", "estimate": variance})
    rows.append({"component": "var(residual)", "estimate": result.scale})
    return pd.DataFrame(rows)


def _fits_table(fits):
    return pd.DataFrame(
        [
            {
                "model": name,
                "n_fixed_effects": len(result.fe_params),
                "n_observations": int(result.nobs),
                "n_participants": len(result.model.group_labels),
                "loglik": result.llf,
                "aic": result.aic,
                "bic": result.bic,
                "converged": bool(result.converged),
            }
            for name, result in fits.items()
        ]
    )
