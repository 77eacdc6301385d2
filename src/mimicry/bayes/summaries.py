"""Posterior summaries, sampler diagnostics with a pass/fail gate, drug contrasts.

Diagnostic thresholds are a plain dict (all keys required, config
``models.diagnostics``):

- ``mode``: "fail" (raise :class:`DiagnosticsError`) or "warn" (log a warning);
- ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``: over every named parameter;
- ``max_divergences``, ``max_treedepth_hits``: counts over all post-warmup draws;
- ``min_bfmi``: E-BFMI of every chain;
- ``participant_level``: "warn" or "gate", for the participant-level parameters
  (variables with a participant dimension: one participant's asymptote or rate in
  one cell). The gate judges the sampler's own checks and the group-level
  parameters, which the conclusions rest on (a, b, c, the spreads, the drug
  contrasts); participant-level parameters that miss R-hat or ESS are listed as
  warnings ("warn") or judged like the rest ("gate").
"""

import logging

import arviz as az
import pandas as pd
import xarray as xr

from mimicry.bayes.bayes_factors import prior_density_at_zero, savage_dickey

log = logging.getLogger(__name__)

# Every named model parameter, in reporting order (absent ones are skipped).
PARAMETERS = (
    "a",
    "b",
    "c",
    "log_c",
    "participant_sd",
    "sigma",
    "rate_sd",
    "session_sd",
    "nu",
    "contrast_a",
    "contrast_c",
    "period_a",
    "participant_a",
    "participant_c",
    "participant_deviation",
)
# The parameters only a crossover study's model has (size 0 in a parallel-group one).
CROSSOVER_PARAMETERS = ("session_sd", "period_a", "participant_deviation")
CONTRASTS = {"contrast_a": "a", "contrast_c": "c"}
HDI_PROB = 0.95
# R-hat and ESS checks: summary column, limit kind, threshold key.
CONVERGENCE = {
    "rhat": ("r_hat", "max", "max_rhat"),
    "ess_bulk": ("ess_bulk", "min", "min_ess_bulk"),
    "ess_tail": ("ess_tail", "min", "min_ess_tail"),
}
PARTICIPANT_LEVEL = ("warn", "gate")
# Parameters a log message names per failed check; diagnostics.json lists them all.
SHOWN_SHORTFALLS = 10
DIMENSION_ORDER = ("contrast", "period", "group", "participant", "muscle", "condition")
SUGGESTIONS = {
    "divergences": "raise stan.adapt_delta (e.g. 0.95) or look for a badly "
    "identified parameter (e.g. a rate c with no visible change in the data)",
    "treedepth_hits": "raise stan.max_treedepth or look for strongly correlated "
    "parameters",
    "bfmi": "the sampler explores the energy poorly: check priors and scales",
    "rhat": "chains disagree: run more warmup and draws, or check for multimodality",
    "ess_bulk": "run more draws (stan.draws) or more chains",
    "ess_tail": "run more draws (stan.draws) or more chains",
}


class DiagnosticsError(RuntimeError):
    """Sampler diagnostics failed their thresholds; the message says what to try."""


def _named_parameters(inference_data, group="posterior"):
    dataset = inference_data[group]
    return dataset[[name for name in PARAMETERS if name in dataset.data_vars]]


def summary_table(inference_data, group="posterior"):
    """One row per scalar parameter: mean, sd, 95% HDI, MCSE, ESS, R-hat.

    Rows carry a readable label (e.g. ``a[naltrexone, ZM, AngryToHappy]``), the
    variable name and one column per dimension. Participant x cell combinations
    without data (NaN) are left out.
    """
    parameters = _named_parameters(inference_data, group)
    hdi = az.hdi(parameters, hdi_prob=HDI_PROB)
    statistics = {
        "mean": parameters.mean(("chain", "draw")),
        "sd": parameters.std(("chain", "draw"), ddof=1),
        "hdi_low": hdi.sel(hdi="lower", drop=True),
        "hdi_high": hdi.sel(hdi="higher", drop=True),
        "mcse_mean": az.mcse(parameters, method="mean"),
        "mcse_sd": az.mcse(parameters, method="sd"),
        "ess_bulk": az.ess(parameters, method="bulk"),
        "ess_tail": az.ess(parameters, method="tail"),
        "r_hat": az.rhat(parameters),
    }
    table = pd.concat(
        [
            _table(name, {key: value[name] for key, value in statistics.items()})
            for name in parameters.data_vars
        ],
        ignore_index=True,
    )
    dims = [dim for dim in DIMENSION_ORDER if dim in table.columns]
    return table[["parameter", "variable", *dims, *statistics]].dropna(subset=["mean"])


def _table(name, statistics):
    """Rows of one variable: label, variable, its dimensions, then the statistics."""
    dataset = xr.Dataset(statistics)
    table = (
        dataset.to_dataframe().reset_index()
        if dataset.dims
        else pd.DataFrame([{key: float(value) for key, value in statistics.items()}])
    )
    dims = [dim for dim in DIMENSION_ORDER if dim in table.columns]
    labels = table[dims].astype(str).agg(", ".join, axis=1) if dims else None
    table.insert(0, "variable", name)
    table.insert(0, "parameter", name if labels is None else name + "[" + labels + "]")
    return table


def participant_level_variables(dataset):
    """The variables with a participant dimension (participant_a, participant_c,
    and in a crossover participant_deviation): one participant's parameter in each
    cell."""
    return [
        name for name, array in dataset.data_vars.items() if "participant" in array.dims
    ]


def diagnostics(
    inference_data, thresholds, max_treedepth, group="posterior", summary=None
):
    """Sampler diagnostics, each check with its value, threshold and verdict.

    ``checks``: the sampler's own (divergences, tree depth hits, E-BFMI) and R-hat and
    bulk and tail ESS over the group-level parameters, each naming the parameter
    where it is worst, and ``shortfalls``, every group-level parameter that misses a
    threshold. ``participant_checks`` and ``participant_shortfalls``: the same over the
    participant-level parameters (`participant_level_variables`), which the gate
    judges only under ``participant_level: gate``. summary: the group's
    summary_table, if already computed.
    """
    participant_level = thresholds["participant_level"]
    if participant_level not in PARTICIPANT_LEVEL:
        raise ValueError(
            f"models.diagnostics.participant_level must be one of {PARTICIPANT_LEVEL}, "
            f"not '{participant_level}'"
        )
    stats_group = "sample_stats" if group == "posterior" else "sample_stats_prior"
    sample_stats = inference_data[stats_group]
    if summary is None:
        summary = summary_table(inference_data, group)
    individual = summary["variable"].isin(
        participant_level_variables(inference_data[group])
    )
    bfmi = az.bfmi(sample_stats).tolist()
    checks = {
        "divergences": _check(
            int(sample_stats["diverging"].sum()), "max", thresholds["max_divergences"]
        ),
        "treedepth_hits": _check(
            int((sample_stats["tree_depth"] >= max_treedepth).sum()),
            "max",
            thresholds["max_treedepth_hits"],
        ),
        "bfmi": _check(min(bfmi), "min", thresholds["min_bfmi"]),
    }
    convergence, shortfalls = convergence_checks(summary[~individual], thresholds)
    participant_checks, participant_shortfalls = convergence_checks(
        summary[individual], thresholds
    )
    gated = [*checks.values(), *convergence.values()]
    if participant_level == "gate":
        gated += participant_checks.values()
    return {
        "passed": all(check["passed"] for check in gated),
        "checks": checks | convergence,
        "shortfalls": shortfalls,
        "participant_level": participant_level,
        "participant_checks": participant_checks,
        "participant_shortfalls": participant_shortfalls,
        "bfmi_per_chain": bfmi,
        "chains": sample_stats.sizes["chain"],
        "draws_per_chain": sample_stats.sizes["draw"],
    }


def _check(value, limit, threshold, **where):
    passed = value <= threshold if limit == "max" else value >= threshold
    return {
        "value": value,
        "limit": limit,
        "threshold": threshold,
        "passed": bool(passed),
        **where,
    }


def convergence_checks(summary, thresholds):
    """R-hat and bulk and tail ESS over the rows of a summary_table: each check's
    worst value and the parameter where it is (value None and passed when there are
    no rows), and every row that misses a threshold, worst first within a check,
    with its participant, group, muscle and condition."""
    checks, shortfalls = {}, []
    for name, (column, limit, key) in CONVERGENCE.items():
        values = summary[column].dropna()
        threshold = thresholds[key]
        if values.empty:
            checks[name] = {
                "value": None,
                "limit": limit,
                "threshold": threshold,
                "passed": True,
            }
            continue
        worst = values.idxmax() if limit == "max" else values.idxmin()
        checks[name] = _check(
            float(values[worst]),
            limit,
            threshold,
            parameter=summary.loc[worst, "parameter"],
        )
        missed = values[values > threshold if limit == "max" else values < threshold]
        for index in missed.sort_values(ascending=limit == "min").index:
            row = summary.loc[index]
            shortfalls.append(
                {
                    "parameter": row["parameter"],
                    "check": name,
                    "value": float(row[column]),
                    **{
                        dim: row[dim]
                        for dim in DIMENSION_ORDER
                        if dim in row and not pd.isna(row[dim])
                    },
                }
            )
    return checks, shortfalls


def check_diagnostics(report, mode):
    """Raise (mode "fail") or log a warning (mode "warn") naming each failed check of
    the gate; log a warning naming the participant-level parameters that miss a
    threshold when the gate does not judge them (participant_level "warn")."""
    if mode not in ("fail", "warn"):
        raise ValueError(f"diagnostics mode must be 'fail' or 'warn', not '{mode}'")
    gated = report["participant_level"] == "gate"
    participant_failed = [
        (name, check)
        for name, check in report["participant_checks"].items()
        if not check["passed"]
    ]
    if participant_failed and not gated:
        log.warning(
            "participant-level parameters miss models.diagnostics (reported, not "
            "gated: models.diagnostics.participant_level is warn): %s",
            _shortfall_listing(report["participant_shortfalls"], participant_failed),
        )
    failed = [
        (name, check) for name, check in report["checks"].items() if not check["passed"]
    ]
    if gated:
        failed += participant_failed
    if not failed:
        log.info("the diagnostics gate passed")
        return report
    shortfalls = report["shortfalls"] + (
        report["participant_shortfalls"] if gated else []
    )
    message = "sampler diagnostics failed: " + "; ".join(
        f"{name} = {check['value']:.4g}"
        f"{' at ' + check['parameter'] if 'parameter' in check else ''}"
        f" (must be {'<=' if check['limit'] == 'max' else '>='}"
        f" {check['threshold']}{_others_missing(shortfalls, name)}): "
        f"{SUGGESTIONS[name]}"
        for name, check in failed
    )
    if mode == "fail":
        raise DiagnosticsError(message)
    log.warning(message)
    return report


def _missing(shortfalls, name):
    return [shortfall for shortfall in shortfalls if shortfall["check"] == name]


def _others_missing(shortfalls, name):
    """ "; 17 parameters miss it, all in diagnostics.json" where more than the worst
    one does."""
    missing = len(_missing(shortfalls, name))
    return (
        f"; {missing} parameters miss it, all in diagnostics.json"
        if missing > 1
        else ""
    )


def _shortfall_listing(shortfalls, failed):
    return "; ".join(
        f"{name} {'above' if check['limit'] == 'max' else 'below'} "
        f"{check['threshold']} in {len(_missing(shortfalls, name))}: "
        f"{_names(_missing(shortfalls, name))}"
        for name, check in failed
    )


def _names(shortfalls):
    """The first SHOWN_SHORTFALLS parameters with their values, then how many more
    diagnostics.json lists."""
    shown = [
        f"{shortfall['parameter']} ({shortfall['value']:.4g})"
        for shortfall in shortfalls[:SHOWN_SHORTFALLS]
    ]
    more = len(shortfalls) - SHOWN_SHORTFALLS
    return ", ".join(shown) + (
        f" and {more} more (all in diagnostics.json)" if more > 0 else ""
    )


def rope_half_widths(posterior, rope, reference_group, mimicry_conditions):
    """Draws of each contrasted parameter's ROPE half-width (config ``models.rope``).

    a: ``a_share_of_mimicry`` times the reference group's mimicry on the muscle,
    |a[first condition] - a[second condition]|; c: ``c_share`` times the reference
    group's rate in the cell. Shares of the reference's own draws, so the region
    carries the uncertainty of what it is a share of.
    """
    first, second = mimicry_conditions
    reference = posterior["a"].sel(group=reference_group, drop=True)
    mimicry = abs(
        reference.sel(condition=first, drop=True)
        - reference.sel(condition=second, drop=True)
    )
    return {
        "a": rope["a_share_of_mimicry"] * mimicry,
        "c": rope["c_share"] * posterior["c"].sel(group=reference_group, drop=True),
    }


def contrasts_table(inference_data, rope, reference_group, mimicry_conditions):
    """Drug contrasts: mean, 95% HDI, P(> 0), P(|contrast| < ROPE) and the
    Savage-Dickey Bayes factor of no difference per cell.

    ``rope`` is config ``models.rope`` (see ``rope_half_widths``); P(in ROPE) compares
    each draw of a contrast with the same draw's half-width, and ``rope_half_width``
    is the half-width's posterior mean. ``bf01``, ``bf01_mcse`` and
    ``bf01_is_upper_bound``: see ``mimicry.bayes.bayes_factors.savage_dickey``.
    """
    posterior = inference_data["posterior"]
    half_widths = rope_half_widths(posterior, rope, reference_group, mimicry_conditions)
    tables = []
    for name, parameter in CONTRASTS.items():
        draws = posterior[name]
        half_width = half_widths[parameter]
        hdi = az.hdi(draws, hdi_prob=HDI_PROB)[name]
        statistics = xr.Dataset(
            {
                "mean": draws.mean(("chain", "draw")),
                "hdi_low": hdi.sel(hdi="lower", drop=True),
                "hdi_high": hdi.sel(hdi="higher", drop=True),
                "p_greater_than_zero": (draws > 0).mean(("chain", "draw")),
                "p_in_rope": (abs(draws) < half_width).mean(("chain", "draw")),
                "rope_half_width": half_width.mean(("chain", "draw")),
            }
        ).merge(savage_dickey(draws, prior_density_at_zero(parameter)))
        table = statistics.to_dataframe(
            dim_order=["contrast", "muscle", "condition"]
        ).reset_index()
        table.insert(0, "parameter", parameter)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)
