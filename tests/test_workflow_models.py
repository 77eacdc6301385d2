"""Real Snakemake runs of the Stan stage: outputs, the compile cache, drug-effect recovery."""

import json

import arviz as az
import pandas as pd
import pytest
import yaml

from helpers.devtools import job_counts, run_snakemake
from mimicry.reporting.report import write_report

pytestmark = pytest.mark.workflow

QUICK = ("--configfile", "config/quick.yaml")
BENCHMARK_SUMMARY = "results/benchmarks/summary.tsv"
MODEL_OUTPUTS = [
    "results/models/prior/prior.nc",
    "results/models/pooled/summary.tsv",
    "results/models/drug/summary.tsv",
    "results/models/drug/contrasts.tsv",
]


def test_quick_study_runs_whole_with_report_and_a_refit_does_not_recompile(
    deployed_quick_study, quick_config
):
    """The whole quick study (the run shared with test_deployment.py, through the
    workflow deployed as a module)."""
    deployment, args = deployed_quick_study.workdir, deployed_quick_study.args
    ran = job_counts(deployed_quick_study.output)
    run_snakemake(deployment, "--cores", "1", BENCHMARK_SUMMARY, *args)
    summary = pd.read_csv(deployment / BENCHMARK_SUMMARY, sep="\t")
    assert dict(zip(summary["rule"], summary["jobs"])) == {
        rule: count for rule, count in ran.items() if rule != "all"
    }
    assert (summary["max_s"] <= summary["total_s"]).all()
    assert (summary["max_rss_mb"] > 0).any()

    write_report(
        "results/report.html", ("all", BENCHMARK_SUMMARY, *args), cwd=deployment
    )
    report = (deployment / "results" / "report.html").read_text()
    assert "starttime" not in report and '"runtime":' not in report
    for shown in (
        "fig1.png",
        "fig2.png",
        "fig3.png",
        "qc.tsv",
        "warnings.tsv",
        "contrasts.tsv",
        "comparison.tsv",
        "lrt.tsv",
        "summary.tsv",
    ):
        assert shown in report, shown
    # The diagnostics caption follows models.diagnostics.participant_level.
    participant_level = quick_config["models"]["diagnostics"]["participant_level"]
    assert f"models.diagnostics.participant_level: {participant_level}" in report

    # The participant simulated with artifacts in most trials is warned about, and
    # the flawed participants' share of the study (2 of 12) is a study-wide warning.
    warnings = pd.read_csv(
        deployment / "results" / "aggregate" / "warnings.tsv", sep="\t", dtype=str
    )
    flaws = quick_config["simulation"]["flawed_participants"]
    study_wide = warnings[warnings["participant"].isna()]
    assert set(warnings["participant"].dropna()) == set(flaws["too_few_trials"])
    n_flawed = sum(len(participants) for participants in flaws.values())
    n_participants = len(
        pd.read_csv(deployment / quick_config["participants"], sep="\t")
    )
    assert n_flawed > quick_config["preprocess"]["warn_excluded_share"] * n_participants
    assert len(study_wide) == 1
    assert (
        study_wide["reason"]
        .iloc[0]
        .startswith(f"{n_flawed} of {n_participants} participants excluded")
    )

    no_op = run_snakemake(deployment, "-n", *args)
    assert "Nothing to be done" in no_op.stdout + no_op.stderr
    changed = deployment / "fewer_prior_curves.yaml"
    changed.write_text(yaml.safe_dump({"figures": {"fig2": {"prior_curves": 10}}}))
    dry_run = run_snakemake(deployment, "-n", *args, str(changed))
    assert job_counts(dry_run.stdout + dry_run.stderr) == {"all": 1, "figure2": 1}
    models = deployment / "results" / "models"
    prior = az.from_netcdf(models / "prior" / "prior.nc")
    assert {"prior", "prior_predictive"} <= set(prior.groups())
    # The simulated raw files are temporary: gone once read.
    assert not list((deployment / "resources" / "raw").glob("*.edf"))
    chains, draws = quick_config["stan"]["chains"], quick_config["stan"]["draws"]
    kept = quick_config["models"]["predictive_draws"]
    for model in ("pooled", "drug"):
        posterior = az.from_netcdf(models / model / "posterior.nc")
        assert {
            "posterior",
            "posterior_predictive",
            "log_likelihood",
            "sample_stats",
            "observed_data",
        } <= set(posterior.groups())
        # Stored compactly: float32, y_rep thinned, log_lik whole for LOO.
        assert posterior.posterior["a"].dtype == "float32"
        assert posterior.log_likelihood["log_lik"].sizes["draw"] == draws
        y_rep = posterior.posterior_predictive["y_rep"]
        assert y_rep.sizes["chain"] * y_rep.sizes["draw"] <= kept < chains * draws
        assert posterior.observed_data["y"].dtype == "float64"
        report = json.loads((models / model / "diagnostics.json").read_text())
        assert report["passed"], report
        summary = pd.read_csv(models / model / "summary.tsv", sep="\t")
        assert {
            "mean",
            "sd",
            "hdi_low",
            "hdi_high",
            "r_hat",
            "ess_bulk",
            "ess_tail",
        } <= set(summary.columns)
    contrasts = pd.read_csv(models / "drug" / "contrasts.tsv", sep="\t")
    # (groups - 1) contrasts x {a, c} x muscles x conditions
    assert len(contrasts) == 2 * 2 * 2 * 2
    assert contrasts[["p_greater_than_zero", "p_in_rope"]].stack().between(0, 1).all()
    assert (contrasts["bf01"] > 0).all() and contrasts["bf01"].notna().all()
    comparison = pd.read_csv(models / "comparison.tsv", sep="\t")
    fitted = az.from_netcdf(models / "drug" / "posterior.nc").observed_data
    n_units = {
        "observation": fitted.sizes["obs"],
        "participant": len(set(fitted["participant"].values)),
    }
    assert dict(zip(comparison["unit"], comparison["n_units"])) == n_units
    assert sorted(comparison["model"]) == ["drug", "drug", "pooled", "pooled"]

    run_snakemake(
        deployment, "--cores", "2", "--forcerun", "fit_model", *MODEL_OUTPUTS, *args
    )
    fit_log = (deployment / "logs" / "models" / "drug" / "fit.log").read_text()
    assert "reused the compiled program" in fit_log


def test_an_injected_drug_effect_is_recovered_through_the_whole_workflow(workflow_copy):
    """36 participants of the clean simulated study (config/clean.yaml; seed from
    config/config.yaml), naltrexone raising the ZM asymptote to AngryToHappy by 0.15:
    that contrast's 95% HDI excludes 0 and covers 0.15. (Recovery under the default
    study's realistic spread, at its full size: tests/test_bayes_sampling.py.)"""
    groups = ["placebo", "naltrexone", "amisulpride"]
    sheet = "participant_id\tgroup\n" + "".join(
        f"sub-{i:03d}\t{groups[i % 3]}\n" for i in range(1, 37)
    )
    (workflow_copy / "recovery.tsv").write_text(sheet)
    effect = {
        "group": "naltrexone",
        "muscle": "ZM",
        "condition": "AngryToHappy",
        "parameter": "a",
        "value": 0.15,
    }
    overrides = {
        "participants": "recovery.tsv",
        "simulation": {
            "drug_effects": [effect],
            "flawed_participants": {"flat_channel": [], "too_few_trials": []},
        },
    }
    (workflow_copy / "recovery.yaml").write_text(yaml.safe_dump(overrides))
    run_snakemake(
        workflow_copy,
        "--cores",
        "2",
        "results/models/drug/contrasts.tsv",
        *QUICK,
        "config/clean.yaml",
        "recovery.yaml",
    )
    contrasts = pd.read_csv(
        workflow_copy / "results/models/drug/contrasts.tsv", sep="\t"
    ).set_index(["parameter", "contrast", "muscle", "condition"])
    injected = contrasts.loc[("a", "naltrexone - placebo", "ZM", "AngryToHappy")]
    print(injected)
    assert injected["hdi_low"] > 0
    assert injected["hdi_low"] <= effect["value"] <= injected["hdi_high"]
