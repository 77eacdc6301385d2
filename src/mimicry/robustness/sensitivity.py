"""Design sensitivity by simulation: which drug effects could this design detect?

A null result says little unless the design could have found an effect of a size that
matters. Here effects of known size (config ``sensitivity``) are injected into
replicate studies of the analysed design, and each replicate is analysed with the
workflow's own decision rules:

- ``lrt_drug_x_condition``: the mixed models' drug x condition likelihood-ratio test
  on the effect's muscle, p < alpha (every drug group at once, all bins);
- ``contrast_1df``: the effect's drug group's mimicry contrast minus the reference
  group's on that muscle (the mixed models' 1-df Wald test, averaged over bins),
  p < alpha;
- ``bayes_hdi_excludes_0``: the drug model's contrast of the injected parameter (a or
  c, that group minus the reference group, in the effect's cell) has a 95% HDI that
  excludes 0;
- ``bayes_hdi_in_rope``: that HDI lies inside the ROPE (models.rope, its posterior
  mean half-width): the data declare the effect negligible. At effect 0 its rate is
  the power to confirm a null; at a real effect it should fall.

The detection rate over replicates is the power, with a Clopper-Pearson 95% interval.

Replicates are synthetic cells tables (``mimicry.bayes.synthetic.synthetic_cells``)
rather than raw recordings put through preprocessing: the analysis input itself, at a
fraction of the cost. They follow the simulation section's participants (response
types, heavy-tailed deviations, outliers, trials) with the analysed table's groups and
group sizes. A crossover study's replicates (study.design crossover) are crossover
studies: the analysed table's participants, each with its sessions, periods and
sequence; a participant's own deviations are shared by its sessions, each session
adds its own (simulation.session_deviation) and its period's effects
(simulation.period_effects), and the injected effect applies in the sessions under
the effect's group, so it is within participants; the decision rules are the mixed
models and the drug model of that design. A participant factor's column
(study.participant_factor) is carried into the replicates from the analysed table; the bin noise is Gaussian with the residual sd of the analysed cells about
each series' least-squares curve (``bin_noise_sd``), which for the default study also
covers the small per-series shift that trial baselines add. Replicate r uses the same
seed for every effect size, so the power curves are paired.
"""

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mimicry.stats.decision_rules import hdi_excludes_zero, hdi_in_rope

# Snakemake imports this module to build the DAG (the effect grid), so the modelling
# packages (ArviZ through mimicry.bayes, SciPy) are imported by the functions that
# need them.

METHODS = (
    "lrt_drug_x_condition",
    "contrast_1df",
    "bayes_hdi_excludes_0",
    "bayes_hdi_in_rope",
)
FREQUENTIST_METHODS = METHODS[:2]
PARAMETERS = ("a", "c")
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Effect:
    """An injected drug effect: a simulation.drug_effects entry (0: the null)."""

    parameter: str
    value: float
    group: str
    muscle: str
    condition: str

    @property
    def id(self):
        """Stable, readable file name part: "zero", "a_0.05", "c_0.7" ("null" and
        "none" would read back as missing values from a table)."""
        return "zero" if self.value == 0 else f"{self.parameter}_{self.value:g}"

    def drug_effects(self):
        if self.value == 0:
            return []
        return [
            {
                "group": self.group,
                "muscle": self.muscle,
                "condition": self.condition,
                "parameter": self.parameter,
                "value": self.value,
            }
        ]


class SensitivityConfigError(ValueError):
    """A sensitivity setting that does not fit the study; names the config key."""


def effect_target(config):
    """(group, muscle, condition) that get the effect, defaults resolved and checked."""
    settings, study = config["sensitivity"], config["study"]
    others = [g for g in study["groups"] if g != study["reference_group"]]
    chosen = {
        "group": settings["group"] or others[0],
        "muscle": settings["muscle"] or study["muscles"][0],
        "condition": settings["condition"] or study["conditions"][0],
    }
    if settings["bayesian_replicates"] > settings["replicates"]:
        raise SensitivityConfigError(
            f"sensitivity.bayesian_replicates ({settings['bayesian_replicates']}) is "
            f"more than sensitivity.replicates ({settings['replicates']})"
        )
    for key, allowed in (
        ("group", others),
        ("muscle", study["muscles"]),
        ("condition", study["conditions"]),
    ):
        if chosen[key] not in allowed:
            raise SensitivityConfigError(
                f"sensitivity.{key}: '{chosen[key]}' is not one of {allowed}"
            )
    return chosen["group"], chosen["muscle"], chosen["condition"]


def effect_grid(config):
    """Every distinct effect of the sweep, the null first (shared by a and c)."""
    target = effect_target(config)
    null = Effect("a", 0.0, *target)
    effects = {null.id: null}
    for parameter in PARAMETERS:
        for value in config["sensitivity"]["effects"][parameter]:
            effect = Effect(parameter, float(value), *target)
            effects.setdefault(effect.id, effect)
    return list(effects.values())


def effects_by_id(config):
    return {effect.id: effect for effect in effect_grid(config)}


def fits_drug_model(config, replicate):
    """Whether the Bayesian rules are applied to this replicate too."""
    return replicate < config["sensitivity"]["bayesian_replicates"]


def replicate_seed(config, replicate):
    """A replicate's seed, derived from the sweep's and the replicate number (below
    2^31: Stan's samplers take 32-bit seeds)."""
    seed = config["sensitivity"]["seed"]
    seed = config["seed"] if seed is None else seed
    state = np.random.SeedSequence([seed, replicate]).generate_state(1)[0]
    return int(state >> 1)


def bin_noise_sd(cells, study):
    """Residual sd of the bins about each series' least-squares curve at its cell's
    best rate, root mean square over cells (a series is a recording's: in a study
    with sessions, a participant's session's)."""
    from mimicry.bayes.data import build_model_input, cell_fits

    if "session" in cells:
        recordings = cells["participant"] + "_ses-" + cells["session"].astype(str)
        cells = cells.assign(participant=recordings)
    model_input = build_model_input(cells, study, "pooled", rate_deviations=False)
    data = model_input.data
    fits = cell_fits(data["y"], data["t"], np.asarray(data["series_cell"]) - 1)
    return float(np.sqrt(np.mean([fit.sigma**2 for fit in fits.values()])))


def analysed_design(cells, design="parallel"):
    """The analysed table's participants and their groups, as (id, group) pairs;
    in a crossover study (``design``) its recordings, as (id, group, session,
    period), by participant and period."""
    crossover = design == "crossover"
    keys = ["participant", "group", *(["session", "period"] if crossover else [])]
    order = ["participant", "period"] if crossover else ["participant"]
    rows = cells[keys].drop_duplicates().sort_values(order)
    return [tuple(_plain(value) for value in row) for row in rows.to_numpy(object)]


def _plain(value):
    """A table value as a JSON-writable Python object."""
    return value.item() if isinstance(value, np.generic) else value


def participant_columns(cells, study):
    """The participant factor's column (study.participant_factor) of the analysed
    table, as {column: {participant: level}}; empty without a factor."""
    factor = study.get("participant_factor")
    if factor is None:
        return {}
    levels = cells[["participant", factor["column"]]].drop_duplicates()
    return {factor["column"]: dict(levels.itertuples(index=False, name=None))}


def replicate_cells(config, design, effect, replicate):
    """One replicate study's cells table with ``effect`` injected.

    ``design``: {"participants": analysed_design's, "bin_noise_sd": float, and
    optionally "participant_columns": participant_columns'}.
    """
    from mimicry.bayes.synthetic import synthetic_cells

    replicate_config = copy.deepcopy(config)
    seed = replicate_seed(config, replicate)
    replicate_config["seed"] = seed
    replicate_config["simulation"]["drug_effects"] = effect.drug_effects()
    cells = synthetic_cells(
        replicate_config,
        [tuple(recording) for recording in design["participants"]],
        noise_sd=design["bin_noise_sd"],
        n_trials=config["simulation"]["trials_per_condition"],
        noise_seed=seed,
    )
    for column, levels in design.get("participant_columns", {}).items():
        cells[column] = cells["participant"].map(levels)
    return cells


def frequentist_decisions(tables, effect, config):
    """Rows of the two frequentist rules from fit_mixed_models' tables."""
    alpha = config["sensitivity"]["alpha"]
    lrt = (
        tables["lrt"]
        .set_index(["muscle", "test"])
        .loc[(effect.muscle, "drug_x_condition")]
    )
    contrasts = tables["drug_contrasts"].set_index(["muscle", "group"])
    contrast = contrasts.loc[(effect.muscle, effect.group)]
    return [
        {
            "method": "lrt_drug_x_condition",
            "detected": bool(lrt["p"] < alpha),
            "statistic": lrt["chi2"],
            "p": lrt["p"],
            "converged": bool(lrt["converged"]),
        },
        {
            "method": "contrast_1df",
            "detected": bool(contrast["p"] < alpha),
            "estimate": contrast["estimate"],
            "low": contrast["ci_low"],
            "high": contrast["ci_high"],
            "p": contrast["p"],
            "converged": bool(contrast["converged"]),
        },
    ]


def bayesian_decisions(contrasts, effect, reference_group, sample_stats):
    """Rows of the two Bayesian rules from the drug model's contrasts table."""
    row = (
        contrasts.set_index(["parameter", "contrast", "muscle", "condition"])
        .loc[
            (
                effect.parameter,
                f"{effect.group} - {reference_group}",
                effect.muscle,
                effect.condition,
            )
        ]
        .to_dict()
    )
    low, high, half_width = row["hdi_low"], row["hdi_high"], row["rope_half_width"]
    shared = {
        "estimate": row["mean"],
        "low": low,
        "high": high,
        "rope_half_width": half_width,
        "divergences": int(sample_stats["diverging"].sum()),
    }
    return [
        {
            "method": "bayes_hdi_excludes_0",
            "detected": bool(hdi_excludes_zero(low, high)),
        }
        | shared,
        {
            "method": "bayes_hdi_in_rope",
            "detected": bool(hdi_in_rope(low, high, half_width)),
        }
        | shared,
    ]


def analyse_replicate(cells, config, effect, sampler=None):
    """Every decision rule's outcome on one replicate: one row per method.

    sampler: the drug model's sampler settings, or None for the frequentist rules
    alone.
    """
    from mimicry.stats.frequentist import fit_study_mixed_models

    study = config["study"]
    tables = fit_study_mixed_models(
        cells, study, config["frequentist"]["random_effects"]
    )
    rows = frequentist_decisions(tables, effect, config)
    if sampler is not None:
        from mimicry.bayes.drug_fit import fit_drug_contrasts

        inference_data, contrasts = fit_drug_contrasts(
            cells, study, config["models"], sampler
        )
        rows += bayesian_decisions(
            contrasts,
            effect,
            study["reference_group"],
            inference_data.sample_stats,
        )
    return pd.DataFrame(rows)


def sweep_sampler(config, seed):
    """The drug model's sampler for the sweep: stan's, with sensitivity.sampler's
    chains, warm-up and draws."""
    return {**config["stan"], **config["sensitivity"]["sampler"], "seed": seed}


def power_table(replicates, effects):
    """Power per effect and method from the replicate rows.

    replicates: the rows of every replicate (analyse_replicate's, with ``effect`` and
    ``replicate`` columns). The null's rows count for every parameter with effects.
    """
    from scipy import stats

    swept = sorted({effect.parameter for effect in effects if effect.value != 0})
    rows = []
    for effect in effects:
        parameters = swept if effect.value == 0 else (effect.parameter,)
        outcomes = replicates[replicates["effect"] == effect.id]
        for parameter in parameters:
            for method, decisions in outcomes.groupby("method", sort=False):
                n, k = len(decisions), int(decisions["detected"].sum())
                interval = stats.binomtest(k, n).proportion_ci(CONFIDENCE, "exact")
                rows.append(
                    {
                        "parameter": parameter,
                        "effect": effect.value,
                        "group": effect.group,
                        "muscle": effect.muscle,
                        "condition": effect.condition,
                        "method": method,
                        "replicates": n,
                        "detections": k,
                        "power": k / n,
                        "power_low": interval.low,
                        "power_high": interval.high,
                    }
                )
    return pd.DataFrame(rows).sort_values(
        ["parameter", "method", "effect"], key=_method_order, ignore_index=True
    )


def _method_order(column):
    if column.name == "method":
        return column.map(METHODS.index)
    return column


def smallest_detectable(power, target):
    """Per parameter and detection method, the smallest injected effect whose power
    reaches ``target`` (NaN: none in the grid did), and the fewest replicates any of
    its effects had (the Bayesian rules run on fewer)."""
    detecting = power[(power["effect"] != 0) & (power["method"] != "bayes_hdi_in_rope")]
    rows = []
    for (parameter, method), table in detecting.groupby(
        ["parameter", "method"], sort=False
    ):
        reached = table.loc[table["power"] >= target, "effect"].abs()
        rows.append(
            {
                "parameter": parameter,
                "method": method,
                "power_target": target,
                "smallest_effect": reached.min() if len(reached) else np.nan,
                "largest_effect_tried": table["effect"].abs().max(),
                "replicates": table["replicates"].min(),
            }
        )
    return pd.DataFrame(rows)


PARAMETER_WORDS = {
    "a": "a shift of the asymptote a by {value:g} (log ratio)",
    "c": "a rate c {factor:.2g} times as fast",
}
METHOD_WORDS = {
    "lrt_drug_x_condition": "the drug x condition likelihood-ratio test",
    "contrast_1df": "the 1-df mimicry contrast against the reference group",
    "bayes_hdi_excludes_0": "the drug model's 95% HDI",
}


def effect_words(parameter, value):
    return PARAMETER_WORDS[parameter].format(value=value, factor=np.exp(value))


def conclusions(smallest, config):
    """One sentence per parameter and method: what effect sizes the design rules out."""
    group, muscle, condition = effect_target(config)
    reference = config["study"]["reference_group"]
    rows = []
    for row in smallest.itertuples(index=False):
        where = (
            f"{group} vs {reference}, {muscle} in {condition}; "
            f"{METHOD_WORDS[row.method]}"
        )
        if np.isnan(row.smallest_effect):
            statement = (
                f"{where}: no effect up to "
                f"{effect_words(row.parameter, row.largest_effect_tried)} was detected "
                f"in {row.power_target:.0%} of {row.replicates} replicates, so the design "
                "cannot rule such effects out."
            )
        else:
            statement = (
                f"{where}: {effect_words(row.parameter, row.smallest_effect)} or more "
                f"is detected in at least {row.power_target:.0%} of {row.replicates} "
                "replicates, so a null result here speaks against effects of that size."
            )
        rows.append(
            {"parameter": row.parameter, "method": row.method, "statement": statement}
        )
    return pd.DataFrame(rows)
