"""The workflow deployed the standard ways: found by the Snakemake catalog's indexer,
and used as a Snakemake module from another directory, as `snakedeploy
deploy-workflow` sets it up."""

import json

import pandas as pd
import pytest
import yaml

from helpers.devtools import PROJECT_ROOT, copy_workflow, job_counts, run_snakemake
from mimicry.reporting.key_numbers import differences
from mimicry.reporting.report import write_report

CELLS = "results/aggregate/cells.parquet"
EXPECTED_NUMBERS = PROJECT_ROOT / "config" / "expected" / "quick.tsv"


def test_catalog_indexer_finds_the_workflow_and_its_configuration():
    """The checks of snakemake-workflow-catalog's scripts/generate-catalog.py: with a
    workflow/ folder it reads workflow/Snakefile and .smk files in workflow/rules;
    config/README.md and .snakemake-workflow-catalog.yml make it "standardized";
    snakedeploy copies config/ (config.yaml is what the Snakefile loads)."""
    assert (PROJECT_ROOT / "workflow").is_dir()
    assert (PROJECT_ROOT / "workflow" / "Snakefile").is_file()
    assert not (
        PROJECT_ROOT / "Snakefile"
    ).exists(), "the catalog would index ./Snakefile"
    assert list((PROJECT_ROOT / "workflow" / "rules").glob("*.smk"))
    assert (PROJECT_ROOT / "config" / "README.md").is_file()
    assert (PROJECT_ROOT / "config" / "config.yaml").is_file()
    settings = yaml.safe_load(
        (PROJECT_ROOT / ".snakemake-workflow-catalog.yml").read_text()
    )
    assert "usage" in settings
    # The catalog's search: "snakemake workflow in:readme".
    readme = (PROJECT_ROOT / "README.md").read_text().lower()
    assert "snakemake" in readme and "workflow" in readme


@pytest.mark.workflow
def test_quick_study_runs_through_the_workflow_deployed_as_a_module(
    deployed_quick_study, tmp_path
):
    deployment, args = deployed_quick_study.workdir, deployed_quick_study.args
    output = deployed_quick_study.output
    assert f"Snakefile: {deployment / 'workflow' / 'Snakefile'}" in output
    ran = job_counts(output)
    assert ran["preprocess"] == 12 and ran["fit_model"] == 2 and ran["figure3"] == 1
    # Everything the run wrote is in the deployment; the checkout holds only sources.
    assert sorted(p.name for p in (deployment / "workflow").iterdir()) == ["Snakefile"]
    for figure in ("fig1", "fig2", "fig3"):
        png = deployment / "results" / "figures" / f"{figure}.png"
        assert png.read_bytes().startswith(b"\x89PNG"), figure
    lrt = pd.read_csv(deployment / "results" / "stats" / "lrt.tsv", sep="\t")
    assert len(lrt) > 0 and lrt["p"].between(0, 1).all()
    contrasts = pd.read_csv(
        deployment / "results" / "models" / "drug" / "contrasts.tsv", sep="\t"
    )
    assert len(contrasts) > 0

    # The same cells as a run from a copy of the checkout.
    checkout = copy_workflow(tmp_path / "checkout")
    run_snakemake(checkout, "--cores", "2", CELLS, *args)
    pd.testing.assert_frame_equal(
        pd.read_parquet(deployment / CELLS), pd.read_parquet(checkout / CELLS)
    )

    # Snakemake's report shows the run's front page and the module's captions.
    write_report("results/report.html", args, cwd=deployment)
    report = (deployment / "results" / "report.html").read_text()
    decoder = json.JSONDecoder()
    start = report.index("var workflow_desc = ") + len("var workflow_desc = ")
    description, _ = decoder.raw_decode(report, start)
    assert "config/participants-quick.tsv (source: simulated)" in description
    figure = report.index('"filename": "fig1.png"')
    start = report.index('"caption": ', figure) + len('"caption": ')
    caption, _ = decoder.raw_decode(report, start)
    # The caption template's first sentence up to its first placeholder.
    template = (PROJECT_ROOT / "workflow" / "report" / "fig1.rst").read_text()
    assert template.splitlines()[1].split(":")[0] in caption


@pytest.mark.workflow
def test_quick_study_reproduces_the_committed_key_numbers(deployed_quick_study):
    """config/expected/quick.tsv (make expected-numbers) is current: the quick study's
    key numbers are within its tolerances, as `make reproduce-check` checks."""
    results = deployed_quick_study.workdir / "results"
    assert differences(results, EXPECTED_NUMBERS) == []
