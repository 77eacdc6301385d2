# The report's front page: data, design and methods of this run, from its config.
rule report_methods:
    output:
        description="results/report/workflow.rst",
    log:
        "logs/report_methods.log",
    benchmark:
        "results/benchmarks/report_methods.tsv"
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        text=methods.workflow_description(config),
    script:
        "../scripts/report_methods.py"
