"""Bayesian asymptotic regression of facial-EMG time courses (Stan).

Typical use from a rule script::

    model_input = build_model_input(cells, config["study"], "drug", likelihood,
                                    rate_deviations=config["models"]["rate_deviations"])
    inference_data = sample(model_input, config["stan"], stan_file)
    write_netcdf(inference_data, output.posterior)
    summary_table(inference_data).to_csv(output.summary, sep="\\t", index=False)
    report = diagnostics(inference_data, thresholds, config["stan"]["max_treedepth"])
    check_diagnostics(report, thresholds["mode"])
    contrasts_table(inference_data, config["models"]["rope"], reference_group,
                    mimicry_conditions)  # drug model
    comparison_table({"pooled": pooled, "drug": drug})  # PSIS-LOO of both fits

For the prior predictive check build the input with ``prior_only=True``: the result
holds the groups prior, prior_predictive and sample_stats_prior instead.
"""

from mimicry.bayes.backend import (
    DEFAULT_STAN_FILE,
    BackendError,
    cmdstan_available,
    resolve_backend,
    sample,
)
from mimicry.bayes.comparison import comparison_table
from mimicry.bayes.data import CellsTableError, ModelInput, build_model_input
from mimicry.bayes.inference_data import write_netcdf
from mimicry.bayes.summaries import (
    DiagnosticsError,
    check_diagnostics,
    contrasts_table,
    diagnostics,
    summary_table,
)

__all__ = [
    "DEFAULT_STAN_FILE",
    "BackendError",
    "CellsTableError",
    "DiagnosticsError",
    "ModelInput",
    "build_model_input",
    "check_diagnostics",
    "cmdstan_available",
    "comparison_table",
    "contrasts_table",
    "diagnostics",
    "resolve_backend",
    "sample",
    "summary_table",
    "write_netcdf",
]
