"""The drug model (`mimicry.bayes`) in each universe of the multiverse whose response
is on the model's scale, and the robustness of its contrasts over those universes.

The model's priors and the ROPE's smallest effect of interest are stated on the log
ratio, so universes with the response in uV or as a z-score are not fitted."""

import pandas as pd

from mimicry.bayes import diagnostics, summary_table
from mimicry.bayes.drug_fit import fit_drug_contrasts
from mimicry.bayes.summaries import CONTRASTS
from mimicry.robustness.multiverse_analysis import with_universe_columns
from mimicry.stats.decision_rules import hdi_excludes_zero, hdi_in_rope

BAYES_KEYS = ["parameter", "contrast", "muscle", "condition"]
BAYES_COLUMNS = [
    "universe",
    *BAYES_KEYS,
    "mean",
    "hdi_low",
    "hdi_high",
    "p_greater_than_zero",
    "p_in_rope",
    "rope_half_width",
    "bf01",
    "r_hat",
    "ess_bulk",
    "ess_tail",
    "passes_diagnostics",
    "divergences",
    "max_r_hat",
    "min_ess_bulk",
    "participant_shortfalls",
    "fit_passes_diagnostics",
]


def universe_bayes_contrasts(universe, cells, study, models, sampler, stan_file):
    """The drug model's contrasts (`mimicry.bayes.contrasts_table`) in one universe,
    each with its R-hat and bulk and tail ESS and whether it passes models.diagnostics
    (its own R-hat and ESS, the fit's divergences, tree depth and E-BFMI), and the
    fit's divergences, worst R-hat and bulk ESS over the group-level parameters, how
    many participant-level parameter checks miss a threshold and whether the fit
    passes the gate as `summarize_model` judges it (reported, not enforced)."""
    inference_data, table = fit_drug_contrasts(cells, study, models, sampler, stan_file)
    summary = summary_table(inference_data)

    def gate(rows):
        return diagnostics(
            inference_data,
            models["diagnostics"],
            sampler["max_treedepth"],
            summary=rows,
        )

    report = gate(summary)
    checks = report["checks"]
    # Each contrast's own convergence: the gate's worst group-level parameter may be
    # another cell's, which this contrast does not depend on.
    convergence = (
        summary[summary["variable"].isin(CONTRASTS)]
        .assign(parameter=lambda rows: rows["variable"].map(CONTRASTS))
        .loc[:, [*BAYES_KEYS, "r_hat", "ess_bulk", "ess_tail"]]
    )
    convergence["passes_diagnostics"] = [
        gate(summary.loc[[index]])["passed"] for index in convergence.index
    ]
    table = table.merge(convergence, on=BAYES_KEYS, how="left").assign(
        divergences=checks["divergences"]["value"],
        max_r_hat=checks["rhat"]["value"],
        min_ess_bulk=checks["ess_bulk"]["value"],
        participant_shortfalls=len(report["participant_shortfalls"]),
        fit_passes_diagnostics=report["passed"],
    )
    return with_universe_columns(table, universe, BAYES_COLUMNS)


def bayes_robustness_summary(contrasts):
    """Per drug-model contrast, over the universes it was fitted in: how many, the
    shares whose 95% HDI excludes 0 and lies inside the ROPE, the median and range
    of the posterior means, the contrast's worst R-hat and bulk and tail ESS, in how
    many universes it passes models.diagnostics, the most divergences, the fits'
    worst group-level R-hat and how many fits pass the gate; all that in a sentence."""
    summary = (
        contrasts.groupby(BAYES_KEYS, sort=False)
        .apply(
            lambda rows: pd.Series(
                {
                    "universes": len(rows),
                    "share_hdi_excludes_0": hdi_excludes_zero(
                        rows["hdi_low"], rows["hdi_high"]
                    ).mean(),
                    "share_hdi_in_rope": hdi_in_rope(
                        rows["hdi_low"], rows["hdi_high"], rows["rope_half_width"]
                    ).mean(),
                    "median_mean": rows["mean"].median(),
                    "min_mean": rows["mean"].min(),
                    "max_mean": rows["mean"].max(),
                    "max_divergences": rows["divergences"].max(),
                    "max_r_hat": rows["max_r_hat"].max(),
                    "max_contrast_r_hat": rows["r_hat"].max(),
                    "min_contrast_ess_bulk": rows["ess_bulk"].min(),
                    "min_contrast_ess_tail": rows["ess_tail"].min(),
                    "universes_passing_diagnostics": rows["passes_diagnostics"].sum(),
                    "fits_passing_diagnostics": rows["fit_passes_diagnostics"].sum(),
                }
            ),
            include_groups=False,
        )
        .reset_index()
    )
    counts = [
        "universes",
        "max_divergences",
        "universes_passing_diagnostics",
        "fits_passing_diagnostics",
    ]
    summary[counts] = summary[counts].astype(int)
    summary["statement"] = [
        f"{row.parameter}, {row.contrast}, {row.muscle}, {row.condition}: the 95% HDI "
        f"excludes 0 in {round(row.share_hdi_excludes_0 * row.universes)} of "
        f"{row.universes} universes and lies inside the ROPE in "
        f"{round(row.share_hdi_in_rope * row.universes)}; posterior means from "
        f"{row.min_mean:.3g} to {row.max_mean:.3g} (median {row.median_mean:.3g}); "
        f"the contrast's R-hat at most {row.max_contrast_r_hat:.3f}, bulk ESS at "
        f"least {row.min_contrast_ess_bulk:.0f} and tail ESS at least "
        f"{row.min_contrast_ess_tail:.0f}, passing models.diagnostics in "
        f"{row.universes_passing_diagnostics} of {row.universes}; "
        f"{row.fits_passing_diagnostics} fits pass the gate (worst R-hat of a "
        f"group-level parameter {row.max_r_hat:.3f})."
        for row in summary.itertuples(index=False)
    ]
    return summary
