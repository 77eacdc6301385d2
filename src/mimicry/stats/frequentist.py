"""Frequentist linear mixed models of the aggregated EMG cells, one per muscle.

Model, fitted by maximum likelihood (not REML) so that nested models can be compared by
likelihood ratio::

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

The fit itself (maximum likelihood by the profiled deviance, as lme4) is in
mimicry.stats.mixed_model_fit.

A random-effects structure the data cannot support gives a singular participant
covariance (an sd of its relative Cholesky factor below 1e-4, lme4's ``isSingular``):
a variance at zero or a correlation of +-1 among the unstructured effects. Every model
of that muscle is then refitted with the next simpler structure (``condition_shape``,
``condition``, ``intercept``; a singular ``intercept`` fit is kept, with a warning), and
the tables say which was used. The shared variance of the participant x condition
intercepts may be zero: the model then reduces to the response-shape weights alone,
which the data do support.

Likelihood-ratio tests each drop every fixed-effect term that contains the named
factors, which keeps the reduced model hierarchical (no interaction without the terms
it depends on):

- ``drug_x_condition``: group:condition and group:condition:bin, i.e. does any drug
  change the difference between conditions (mimicry) at any time;
- ``drug``: every term with group, i.e. does drug change the response at all;
- ``condition``: every term with condition, i.e. mimicry itself: do the conditions
  differ at any time in any group.

Crossover studies (``study.design: crossover``): each participant is recorded under
every group, one session per group, and the cells carry session, period (the
session's rank in the participant's order) and sequence. The model is::

    y ~ group * condition * bin + period
        + (0 + condition:shape | participant) + (1 | participant:condition)
        + (1 | participant:condition:bin) + (1 | participant:session:condition)
        + (0 + shape | participant:session:condition) + (1 | participant:session)

The group terms are now within participants: a participant's own response (its
shape weights, its condition intercepts) is one set of random effects shared by its
sessions, so it cancels from the drug comparisons as it does in a paired test, and
the drug contrasts (labels unchanged, ``<group> - <reference>``) and LRTs compare
sessions of the same people. The mimicry and drug contrasts average the cell means
over the periods too.

Period enters as a factor (no assumption about how later sessions differ; with three
or more periods a trend would be one) and as a main effect only: it takes up what
changes every cell of a later session alike (habituation to the lab, electrodes
placed anew), which would otherwise be a treatment effect wherever the sequences are
not balanced. Its interaction with group is not estimable within participants (in an
AB/BA design it is the sequence effect, a between-participant comparison, aliased with
carry-over; testing it first and choosing the analysis by the result is the
discredited two-stage procedure, Freeman 1989, Stat Med 8:1421), and an interaction
with condition or bin, which balanced sequences cancel from every drug contrast,
would cost (periods - 1) x conditions x bins parameters for a bias that only
unbalanced sequences and a period-dependent mimicry together produce.

The random effects add, to the parallel design's structure, what two sessions of one
person share and what they do not. Baseline shifts are per recording, so
per-condition intercepts are added per participant x session x condition (those
per participant x condition stay, for a participant's stable offsets); a session may
shift all its cells together (``(1 | participant:session)``: a participant's
arousal or skin on that day); and a participant's departure from the response
shape, bin by bin, is the same in both sessions (``(1 | participant:condition:bin)``)
rather than independent residual noise; and each session's own asymptote deviation
follows the response shape (``(0 + shape | participant:session:condition)``, one
shared variance: a person's response to a condition differs a little from day to
day). Each was chosen by the null calibration of
benchmarks/crossover_calibration_mixed.py (40 participants x 2 sessions, the default
study's cells parameters, its participants' deviations shared by their sessions, a
period effect of -0.02 and a session shift of sd 0.01; seeds 1-10 x 2 muscles): the
share of p < 0.05 and the mean p (calibrated: 0.05 and 0.5) of the drug x condition
LRT, the drug LRT and the drug contrast, with one random effect left out::

    left out                          dxc LRT      drug LRT     drug contrast
    (none)                            0.00 0.54    0.05 0.54    0.00 0.59
    participant:session               0.00 0.57    0.05 0.54    0.00 0.77
    participant:session:condition     0.00 0.54    0.00 0.59    0.10 0.39
    participant:condition:bin         0.00 0.81    0.00 0.89    0.00 0.59
    participant:condition             0.00 0.57    0.05 0.59    0.00 0.87

The participant x session intercept cancels from every condition difference, but
without it the per-session condition intercepts take up the session shift, which
then counts as noise of the drug contrast (conservative: mean p 0.77, its p-values
not uniform by a Kolmogorov-Smirnov test, p < 0.001); without the per-session
condition intercepts the baseline shifts are missed (anticonservative); without the
bin-level intercepts the agreement of a participant's two time courses counts as
independent noise and the LRTs' p-values pile up near 1. With every one in, over 25
seeds x 2 muscles (the benchmark's default 2 minutes), p < 0.05 in 0, 1 and 0 of 50
(drug x condition LRT, drug LRT, drug contrast; p < 0.10 in 1, 3 and 2; mean p
0.57, 0.56, 0.55; Kolmogorov-Smirnov p 0.20, 0.13, 0.27): slightly conservative at
0.05, if at all (a calibrated test gives 0 of 50 with probability 0.08). With the naltrexone
session's ZM asymptote to happy faces raised by 0.1 in everyone (a drug contrast of
0.062), the 95% interval covered the truth with the right sign in 5 of 5 seeds. The
simpler structures add only ``(1 | participant:session)`` to theirs.

That generator gives every session of a participant the same asymptotes. The
simulator's own crossover study (simulation.session_deviation: each session's own
deviation of every asymptote, sd 0.1) needs the per-session shape weights: over its
seeds 1-60 x 2 muscles (the benchmark's --simulator-seeds 60) p < 0.05 in 0.067,
0.067 and 0.058 of 120 with them (Kolmogorov-Smirnov p 0.93, 0.94, 0.73), and in
0.28, 0.40 and 0.083 without them (KS p < 0.001): a session's departure from the
participant's asymptote, shaped like the response, would otherwise count as a
treatment effect.

A second participant factor (``study.participant_factor``, e.g. age group, constant
within participants) enters like group: ``factor * condition * bin`` is added to the
fixed part (so it may change the whole time course of each condition, as a drug may),
without interactions with group (the drug contrasts are then the same at every factor
level; the issue asks for the factor and its interaction with condition, and a
three-way group x factor x condition x bin part would double the parameters for a
question the study did not ask). Its LRT ``<factor>_x_condition`` drops
factor:condition and factor:condition:bin; the condition LRT drops them too, being
every term with condition. The table ``factor_contrasts`` gives the time-averaged
mimicry contrast at each factor level (averaged over the groups; reference_level
empty) and each level's minus the reference level's. The other tables keep their
columns; the mimicry contrasts per group then average over the factor's levels.
"""

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from mimicry.config.study_section import contrast_label, mimicry_contrast
from mimicry.stats.mixed_model_fit import design_matrix, fit_mixed_model

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
DESIGNS = ("parallel", "crossover")
# A crossover study's cells carry these; period enters the fixed part as a factor.
CROSSOVER_COLUMNS = ("session", "period", "sequence")
PERIOD_TERM = ("period",)
RANDOM_EFFECTS = ("condition_shape", "condition", "intercept")


TABLE_NAMES = (
    "lrt",
    "fixed_effects",
    "mimicry_contrasts",
    "drug_contrasts",
    "random_effects",
    "fits",
)
# Written only when the study declares a participant factor.
FACTOR_TABLE = "factor_contrasts"


CI_LEVEL = 0.95
# The structure to fall back to when one cannot be estimated from the data.
SIMPLER_RANDOM_EFFECTS = {"condition_shape": "condition", "condition": "intercept"}


def fit_study_mixed_models(cells, study, random_effects):
    """fit_mixed_models for the config's study section (groups, reference group,
    conditions, mimicry contrast, design, participant factor): what the workflow, the
    sensitivity sweep and every multiverse universe fit."""
    return fit_mixed_models(
        cells,
        groups=study["groups"],
        reference_group=study["reference_group"],
        conditions=study["conditions"],
        random_effects=random_effects,
        mimicry_contrast=mimicry_contrast(study),
        design=study["design"],
        participant_factor=study["participant_factor"],
    )


def fit_mixed_models(
    cells,
    *,
    groups,
    reference_group,
    conditions,
    random_effects="condition_shape",
    mimicry_contrast=None,
    design="parallel",
    participant_factor=None,
    left_out=(),
):
    """Fit the full and reduced models for every muscle and tabulate the results.

    cells: the aggregated table (participant, group, muscle, condition, bin, y, ...;
        in a crossover study also session, period and sequence).
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
    design: ``"parallel"`` (each participant in one group) or ``"crossover"`` (each
        participant recorded under every group, one session each; config
        ``study.design``).
    participant_factor: None or ``{"column": ..., "levels": [...]}``, a second
        participant-level factor in the cells table (config
        ``study.participant_factor``), the first level its reference.
    left_out: names of shared-variance random effects to leave out of the
        structure (for benchmarks/crossover_calibration_mixed.py, which shows what
        each adds).

    Returns one DataFrame per name in ``TABLE_NAMES``, and ``FACTOR_TABLE`` too with a
    participant factor. Every table carries the ``converged`` status of the fits it
    derives from; a fit that does not converge is logged as a warning and kept.
    """
    contrast = list(conditions[:2] if mimicry_contrast is None else mimicry_contrast)
    if design not in DESIGNS:
        raise ValueError(f"study.design '{design}' is not one of {list(DESIGNS)}")
    crossover = design == "crossover"
    factor = None if participant_factor is None else participant_factor["column"]
    cells = _checked_cells(
        cells, groups, reference_group, conditions, random_effects, contrast, design
    )
    if factor is not None:
        _check_participant_factor(cells, factor, participant_factor["levels"])
    group_levels = [reference_group] + [g for g in groups if g != reference_group]
    levels = {
        "group": group_levels,
        "condition": list(conditions),
        "bin": sorted(cells["bin"].unique()),
    }
    if factor is not None:
        levels[factor] = list(participant_factor["levels"])
    if crossover:
        levels["period"] = sorted(cells["period"].unique())
    model = Model(
        terms=model_terms(factor, crossover),
        tests=likelihood_ratio_tests(factor),
        levels=levels,
        crossover=crossover,
        factor=factor,
        left_out=tuple(left_out),
    )
    results = {name: [] for name in TABLE_NAMES}
    if factor is not None:
        results[FACTOR_TABLE] = []
    for muscle, data in cells.groupby("muscle", sort=True):
        fitted = _fit_muscle(muscle, data, model, random_effects, contrast)
        for name, table in fitted.items():
            results[name].append(table)
    return {
        name: pd.concat(tables, ignore_index=True) for name, tables in results.items()
    }


@dataclass(frozen=True)
class Model:
    """What a study's models are made of: the full model's fixed-effect terms, the
    likelihood-ratio tests (name -> the factors a dropped term contains), every
    factor's levels (the first the treatment-coding baseline), whether the study is a
    crossover (session random effects, a period term) and the participant factor's
    column, if any."""

    terms: tuple
    tests: dict
    levels: dict
    crossover: bool = False
    factor: str = None
    left_out: tuple = ()


def model_terms(factor=None, crossover=False):
    """The full model's fixed-effect terms: group x condition x bin, then the
    participant factor x condition x bin, then the period's main effect."""
    terms = FULL_MODEL_TERMS
    if factor is not None:
        terms += tuple(
            (factor, *term)
            for size in range(3)
            for term in itertools.combinations(("condition", "bin"), size)
        )
    if crossover:
        terms += (PERIOD_TERM,)
    return terms


def likelihood_ratio_tests(factor=None):
    """LIKELIHOOD_RATIO_TESTS, and ``<factor>_x_condition`` with a participant factor."""
    if factor is None:
        return LIKELIHOOD_RATIO_TESTS
    return {**LIKELIHOOD_RATIO_TESTS, f"{factor}_x_condition": {factor, "condition"}}


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


def reduced_terms(test, terms=FULL_MODEL_TERMS, tests=LIKELIHOOD_RATIO_TESTS):
    """The full model's terms without those containing all of the test's factors."""
    dropped = tests[test]
    return tuple(term for term in terms if not dropped <= set(term))


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


def cell_mean_weights(model, by):
    """Design rows of the mean over every fixed-effect cell for each combination of
    the ``by`` factors: the cells are every combination of the model's factors'
    levels, each weighted equally (an emmeans-style marginal mean), so each row times
    the fixed effects is an average of cell means."""
    factors = list(model.levels)
    grid = pd.DataFrame(
        list(itertools.product(*(model.levels[factor] for factor in factors))),
        columns=factors,
    )
    design = design_matrix(grid, model.terms, model.levels)
    return design.groupby([grid[factor] for factor in by], sort=False).mean()


def mimicry_weights(model, contrast, by="group"):
    """Contrast rows (one per level of ``by``, a group or a participant factor's
    level): contrast's first minus its second condition, mean over bins (and over
    the levels of the model's other factors)."""
    cell_means = cell_mean_weights(model, [by, "condition"])
    first, second = contrast
    return pd.DataFrame(
        {
            level: cell_means.loc[(level, first)] - cell_means.loc[(level, second)]
            for level in model.levels[by]
        }
    ).T


def _checked_cells(
    cells, groups, reference_group, conditions, random_effects, contrast, design
):
    """The cells table sorted and validated; every problem raises a ValueError."""
    crossover = design == "crossover"
    required = REQUIRED_COLUMNS + (CROSSOVER_COLUMNS if crossover else ())
    missing = [column for column in required if column not in cells.columns]
    if missing:
        in_crossover = " (study.design: crossover)" if crossover else ""
        raise ValueError(f"cells table lacks required columns {missing}{in_crossover}")
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
    if crossover:
        _check_crossover_sessions(cells, groups)
        keys = ["muscle", "participant", "period", "condition", "bin"]
    else:
        groups_per_participant = cells.groupby("participant")["group"].nunique()
        in_several = sorted(groups_per_participant.index[groups_per_participant > 1])
        if in_several:
            raise ValueError(
                f"participants {in_several} belong to more than one group "
                "(study.design: parallel)"
            )
        keys = ["muscle", "participant", "condition", "bin"]
    duplicated = cells[cells.duplicated(keys)]
    if len(duplicated):
        raise ValueError(
            f"cells table has {len(duplicated)} duplicate rows, e.g. "
            f"{duplicated[keys].iloc[0].to_dict()}"
        )
    _check_every_cell_observed(cells)
    return cells.sort_values(keys, ignore_index=True)


def _check_crossover_sessions(cells, groups):
    """Each participant x session is one period under one group, and each group at
    most once per participant; a participant without a session under some group is
    kept, with a warning (it informs the within-participant contrasts less)."""
    sessions = cells.groupby(["participant", "session"], sort=True)
    for column in ("group", "period"):
        several = sessions[column].nunique()
        if (several > 1).any():
            participant, session = several.index[several > 1][0]
            raise ValueError(
                f"participant {participant} session {session} has more than one "
                f"{column} in the cells table"
            )
    per_session = sessions[["group", "period"]].first().reset_index()
    for column in ("group", "period"):
        repeated = per_session[per_session.duplicated(["participant", column])]
        if len(repeated):
            first = repeated.iloc[0]
            raise ValueError(
                f"participant {first['participant']} has {column} {first[column]} in "
                "more than one session: a crossover study records each participant "
                "once under each group, one session each"
            )
    n_sessions = per_session.groupby("participant").size()
    incomplete = sorted(n_sessions.index[n_sessions < len(groups)])
    if incomplete:
        log.warning(
            "participants %s lack a session under some of the groups %s: their "
            "other sessions are kept",
            incomplete,
            list(groups),
        )


def _check_participant_factor(cells, column, levels):
    """The participant factor's column is present, holds only its declared levels,
    each with rows, and is constant within each participant."""
    place = f"study.participant_factor column '{column}'"
    if column not in cells.columns:
        raise ValueError(f"{place} is not in the cells table")
    reserved = set(REQUIRED_COLUMNS) | set(CROSSOVER_COLUMNS) | {"n_trials"}
    if column in reserved:
        raise ValueError(f"{place} is one of the cells table's own columns")
    if cells[column].isna().any():
        participants = sorted(cells.loc[cells[column].isna(), "participant"].unique())
        raise ValueError(f"{place} is empty for participants {participants}")
    values = cells[column].astype(str)
    undeclared = sorted(set(values) - set(levels))
    if undeclared:
        raise ValueError(f"{place} has values {undeclared} not in its levels {levels}")
    absent = [level for level in levels if level not in set(values)]
    if absent:
        raise ValueError(f"{place}: levels {absent} have no rows in the cells table")
    per_participant = values.groupby(cells["participant"]).nunique()
    varying = sorted(per_participant.index[per_participant > 1])
    if varying:
        raise ValueError(
            f"{place} varies within participants {varying}: it must be a "
            "participant-level factor"
        )
    cells[column] = values
    _check_every_cell_observed(cells, (column, "condition", "bin"))


def _check_every_cell_observed(cells, factors=FACTORS):
    """A saturated fixed part needs data in every muscle x group x condition x bin
    (and muscle x participant factor x condition x bin)."""
    observed = cells.groupby(["muscle", *factors]).size()
    complete = pd.MultiIndex.from_product(
        [sorted(cells[column].unique()) for column in observed.index.names]
    )
    empty = complete.difference(observed.index)
    if len(empty):
        raise ValueError(
            f"{len(empty)} {' x '.join(observed.index.names)} cells have no data, "
            f"e.g. {dict(zip(observed.index.names, empty[0]))}"
        )


def _fit_muscle(muscle, data, model, random_effects, contrast):
    """All fits and tables for one muscle."""
    fits, random_effects = _fits_with_supported_random_effects(
        muscle, data, model, random_effects
    )
    full = fits["full"]
    converged = full.converged
    fixed_names = list(full.fixed_effects.index)
    beta = full.fixed_effects.to_numpy()
    beta_covariance = full.fixed_effects_covariance.to_numpy()
    groups = model.levels["group"]

    fixed = wald(beta, beta_covariance).drop(columns=["ci_low", "ci_high"])
    fixed.insert(0, "term", fixed_names)

    weights = mimicry_weights(model, contrast)[fixed_names].to_numpy()
    label = contrast_label(contrast)
    mimicry = wald(weights @ beta, weights @ beta_covariance @ weights.T)
    mimicry.insert(0, "group", groups)
    mimicry.insert(1, "contrast", label)

    # Each drug group's mimicry minus the reference group's: the focused 1-df test
    # (within participants in a crossover study).
    versus_reference = weights[1:] - weights[0]
    drug = wald(
        versus_reference @ beta, versus_reference @ beta_covariance @ versus_reference.T
    )
    drug.insert(0, "group", groups[1:])
    drug.insert(1, "reference_group", groups[0])
    drug.insert(2, "contrast", label)

    tables = {
        "lrt": _likelihood_ratio_table(fits, model).assign(
            random_effects=random_effects
        ),
        "fixed_effects": fixed,
        "mimicry_contrasts": mimicry,
        "drug_contrasts": drug,
        "random_effects": _random_effects_table(full),
        "fits": _fits_table(fits).assign(random_effects=random_effects),
    }
    if model.factor is not None:
        tables[FACTOR_TABLE] = _factor_contrasts(
            model, contrast, fixed_names, beta, beta_covariance
        )
    for name in [name for name in tables if name not in ("lrt", "fits")]:
        tables[name] = tables[name].assign(converged=converged)
    return {
        name: table.assign(muscle=muscle)[["muscle", *table.columns]]
        for name, table in tables.items()
    }


def _factor_contrasts(model, contrast, fixed_names, beta, beta_covariance):
    """The mimicry contrast at each level of the participant factor (averaged over
    the groups), then each level's minus the reference level's."""
    levels = model.levels[model.factor]
    weights = mimicry_weights(model, contrast, by=model.factor)[fixed_names]
    weights = weights.to_numpy()
    rows = np.vstack([weights, weights[1:] - weights[0]])
    table = wald(rows @ beta, rows @ beta_covariance @ rows.T)
    table.insert(0, "factor", model.factor)
    table.insert(1, "level", levels + levels[1:])
    table.insert(
        2, "reference_level", [""] * len(levels) + [levels[0]] * (len(levels) - 1)
    )
    table.insert(3, "contrast", contrast_label(contrast))
    return table


def _fits_with_supported_random_effects(muscle, data, model, random_effects):
    """The full and reduced fits, with a simpler random-effects structure if needed.

    A structure the data cannot support (e.g. no between-participant spread of a
    response) gets a singular participant covariance: a variance at zero or a
    correlation of +-1, which its random effects cannot really have. Every fit of the
    muscle then moves to the next simpler structure together, so that the
    likelihood-ratio tests compare models with the same random effects, and the
    tables say which one was used. Reduced models start from the full model's theta.
    """
    while True:
        full = _logged_fit(muscle, "full", data, model.terms, model, random_effects)
        fits = {"full": full}
        for test in model.tests:
            fits[f"without_{test}"] = _logged_fit(
                muscle,
                f"without_{test}",
                data,
                reduced_terms(test, model.terms, model.tests),
                model,
                random_effects,
                start=full.theta,
            )
        singular = [name for name, fit in fits.items() if fit.singular]
        if not singular:
            return fits, random_effects
        simpler = SIMPLER_RANDOM_EFFECTS.get(random_effects)
        if simpler is None:
            log.warning(
                "%s: the participant intercept variance is zero in the %s model(s): "
                "the participants' means vary no more than the residuals imply; "
                "kept, as the intercept is the simplest structure",
                muscle,
                ", ".join(singular),
            )
            return fits, random_effects
        log.warning(
            "%s: random effects '%s' give a singular participant covariance (a "
            "variance at zero or a correlation of +-1) in the %s model(s); refitting "
            "every %s model with '%s' (frequentist.random_effects)",
            muscle,
            random_effects,
            ", ".join(singular),
            muscle,
            simpler,
        )
        random_effects = simpler


def _logged_fit(muscle, name, data, terms, model, random_effects, start=None):
    fit = fit_mixed_model(
        data,
        terms,
        model.levels,
        random_effects,
        start=start,
        crossover=model.crossover,
        left_out=model.left_out,
    )
    if not fit.converged:
        log.warning("%s %s model: %s", muscle, name, fit.message)
    log.log(
        logging.INFO if fit.converged else logging.WARNING,
        "%s %s model: %d fixed effects, %d rows, %d participants, loglik %.3f, %s",
        muscle,
        name,
        len(fit.fixed_effects),
        fit.n_observations,
        fit.n_participants,
        fit.loglik,
        "converged" if fit.converged else "DID NOT CONVERGE",
    )
    return fit


def _likelihood_ratio_table(fits, model):
    full = fits["full"]
    rows = []
    for test, factors in model.tests.items():
        reduced = fits[f"without_{test}"]
        chi2 = 2 * (full.loglik - reduced.loglik)
        df = len(full.fixed_effects) - len(reduced.fixed_effects)
        dropped = [term for term in model.terms if factors <= set(term)]
        rows.append(
            {
                "test": test,
                "dropped_terms": " + ".join(":".join(term) for term in dropped),
                "chi2": chi2,
                "df": df,
                "p": stats.chi2.sf(chi2, df),
                "loglik_full": full.loglik,
                "loglik_reduced": reduced.loglik,
                "converged": full.converged and reduced.converged,
            }
        )
    return pd.DataFrame(rows)


def _random_effects_table(fit):
    """Variances and covariances of the participant effects, any shared variance,
    then the residual's."""
    covariance = fit.participant_covariance
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
    for name, variance in fit.shared_variances.items():
        rows.append({"component": f"var({name})", "estimate": variance})
    rows.append({"component": "var(residual)", "estimate": fit.residual_variance})
    return pd.DataFrame(rows)


def _fits_table(fits):
    return pd.DataFrame(
        [
            {
                "model": name,
                "n_fixed_effects": len(fit.fixed_effects),
                "n_observations": fit.n_observations,
                "n_participants": fit.n_participants,
                "loglik": fit.loglik,
                "aic": fit.aic,
                "bic": fit.bic,
                "converged": fit.converged,
            }
            for name, fit in fits.items()
        ]
    )
