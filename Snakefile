from snakemake.utils import min_version

min_version("9.0")


# Written by rule report_methods from the run's config (workflow/rules/report.smk).
report: "results/report/workflow.rst"


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"


if SOURCE == "simulated":

    include: "workflow/rules/simulate.smk"

elif SOURCE == "download":

    include: "workflow/rules/download.smk"


include: "workflow/rules/raw_content.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/qc.smk"
include: "workflow/rules/sensitivity.smk"
include: "workflow/rules/multiverse.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/benchmarks.smk"


# The results as this run left them, for `make verify` (mimicry.reporting.manifest). Not
# a rule: the manifest describes the finished run, and no job reads it.
onsuccess:
    manifest.write()


rule all:
    default_target: True
    input:
        all_targets(),
