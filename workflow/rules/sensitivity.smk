# Design sensitivity by simulation (mimicry.robustness.sensitivity): drug effects of
# known size injected into replicate studies of the analysed design, one job per
# replicate.


rule sensitivity_design:
    input:
        cells=rules.aggregate.output.cells,
    output:
        design="results/sensitivity/design.json",
    log:
        "logs/sensitivity/design.log",
    benchmark:
        "results/benchmarks/sensitivity/design.tsv"
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        study=study_design(),
    script:
        "../scripts/sensitivity_design.py"


rule sensitivity_replicate:
    input:
        design=rules.sensitivity_design.output.design,
    output:
        decisions="results/sensitivity/replicates/{effect}/{replicate}.tsv",
    log:
        "logs/sensitivity/{effect}/{replicate}.log",
    benchmark:
        "results/benchmarks/sensitivity/{effect}/{replicate}.tsv"
    conda:
        "../../envs/stan.yaml"
    threads: sensitivity_threads
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        config=sensitivity_settings(),
    script:
        "../scripts/sensitivity_replicate.py"


rule sensitivity_power:
    input:
        decisions=sensitivity_replicates(),
    output:
        power=report(
            "results/sensitivity/power.tsv",
            caption="../report/sensitivity.rst",
            category="Design sensitivity",
            labels={"table": "power"},
        ),
        smallest=report(
            "results/sensitivity/smallest_detectable.tsv",
            caption="../report/sensitivity.rst",
            category="Design sensitivity",
            labels={"table": "smallest detectable effect"},
        ),
        conclusions=report(
            "results/sensitivity/conclusions.tsv",
            caption="../report/sensitivity.rst",
            category="Design sensitivity",
            labels={"table": "what the design rules out"},
        ),
    log:
        "logs/sensitivity/power.log",
    benchmark:
        "results/benchmarks/sensitivity/power.tsv"
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        config=sensitivity_settings(),
        methods=methods.caption_terms(config, "sensitivity"),
    script:
        "../scripts/sensitivity_power.py"


rule sensitivity_figure:
    input:
        power=rules.sensitivity_power.output.power,
    output:
        png=report(
            "results/figures/sensitivity.png",
            caption="../report/sensitivity_figure.rst",
            category="Design sensitivity",
            labels={"figure": "power curves"},
        ),
        pdf="results/figures/sensitivity.pdf",
    log:
        "logs/figures/sensitivity.log",
    benchmark:
        "results/benchmarks/figures/sensitivity.tsv"
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        power_target=config["sensitivity"]["power_target"],
        methods=methods.caption_terms(config, "sensitivity"),
    script:
        "../scripts/sensitivity_figure.py"
