"""Posterior summaries, sampler diagnostics with a pass/fail gate, drug contrasts.

Diagnostic thresholds are a plain dict (all keys required):

- ``mode``: "fail" (raise :class:`DiagnosticsError`) or "warn" (log a warning);
- ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``: over every named parameter;
- ``max_divergences``, ``max_treedepth_hits``: counts over all post-warmup draws;
- ``min_bfmi``: E-BFMI of every chain.
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
    "nu",
    "contrast_a",
    "contrast_c",
    "participant_a",
    "participant_c",
)
CONTRASTS = {"contrast_a": "a", "contrast_c": "c"}
HDI_PROB = 0.95
DIMENSION_ORDER = ("contrast", "group", "participant", "muscle", "condition")
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


def diagnostics(
    inference_data, thresholds, max_treedepth, group="posterior", summary=None
):
    """Sampler diagnostics, each check with its value, threshold and verdict.

    summary: the group's summary_table, if already computed; R-hat and ESS checks
    name the parameter where they are worst.
    """
    stats_group = "sample_stats" if group == "posterior" else "sample_stats_prior"
    sample_stats = inference_data[stats_group]
    if summary is None:
        summary = summary_table(inference_data, group)
    bfmi = az.bfmi(inference_data[stats_group]).tolist()
    values = {
        "divergences": int(sample_stats["diverging"].sum()),
        "treedepth_hits": int((sample_stats["tree_depth"] >= max_treedepth).sum()),
        "bfmi": min(bfmi),
        "rhat": float(summary["r_hat"].max()),
        "ess_bulk": float(summary["ess_bulk"].min()),
        "ess_tail": float(summary["ess_tail"].min()),
    }
    worst = {
        "rhat": summary.loc[summary["r_hat"].idxmax(), "parameter"],
        "ess_bulk": summary.loc[summary["ess_bulk"].idxmin(), "parameter"],
        "ess_tail": summary.loc[summary["ess_tail"].idxmin(), "parameter"],
    }
    limits = {
        "divergences": ("max", thresholds["max_divergences"]),
        "treedepth_hits": ("max", thresholds["max_treedepth_hits"]),
        "bfmi": ("min", thresholds["min_bfmi"]),
        "rhat": ("max", thresholds["max_rhat"]),
        "ess_bulk": ("min", thresholds["min_ess_bulk"]),
        "ess_tail": ("min", thresholds["min_ess_tail"]),
    }
    checks = {
        name: {
            "value": values[name],
            "limit": kind,
            "threshold": threshold,
            "passed": bool(
                values[name] <= threshold
                if kind == "max"
                else values[name] >= threshold
            ),
            **({"parameter": worst[name]} if name in worst else {}),
        }
        for name, (kind, threshold) in limits.items()
    }
    return {
        "passed": all(check["passed"] for check in checks.values()),
        "checks": checks,
        "bfmi_per_chain": bfmi,
        "chains": sample_stats.sizes["chain"],
        "draws_per_chain": sample_stats.sizes["draw"],
    }


def check_diagnostics(report, mode):
    """Raise (mode "fail") or log a warning (mode "warn") for each failed check."""
    if mode not in ("fail", "warn"):
        raise ValueError(f"diagnostics mode must be 'fail' or 'warn', not '{mode}'")
    failed = {
        name: check for name, check in report["checks"].items() if not check["passed"]
    }
    if not failed:
        log.info("all sampler diagnostics passed")
        return report
    message = "sampler diagnostics failed: " + "; ".join(
        f"{name} = {check['value']:.4g}"
        f"{' at ' + check['parameter'] if 'parameter' in check else ''}"
        f" (must be {'<=' if check['limit'] == 'max' else '>='}"
        f" {check['threshold']}): {SUGGESTIONS[name]}"
        for name, check in failed.items()
    )
    if mode == "fail":
        raise DiagnosticsError(message)
    log.warning(message)
    return report


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
