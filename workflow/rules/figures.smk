rule figure1:
    input:
        cells=rules.aggregate.output.cells,
    output:
        png=report(
            "results/figures/fig1.png",
            caption="../report/fig1.rst",
            category="Figures",
            labels={"figure": "1"},
        ),
        pdf="results/figures/fig1.pdf",
        table="results/figures/fig1.tsv",
    log:
        "logs/figures/fig1.log",
    benchmark:
        "results/benchmarks/figures/fig1.tsv"
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        study=study_design(),
        methods=methods.caption_terms(config, "fig1"),
    script:
        "../scripts/figure1.py"


rule figure2:
    input:
        cells=rules.aggregate.output.cells,
        prior=rules.prior_predictive.output.prior,
        pooled="results/models/pooled/posterior.nc",
    output:
        png=report(
            "results/figures/fig2.png",
            caption="../report/fig2.rst",
            category="Figures",
            labels={"figure": "2"},
        ),
        pdf="results/figures/fig2.pdf",
        table="results/figures/fig2.tsv",
    log:
        "logs/figures/fig2.log",
    benchmark:
        "results/benchmarks/figures/fig2.tsv"
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=10,
    params:
        study=study_design(),
        settings=config["figures"]["fig2"],
        methods=methods.caption_terms(config, "fig2"),
    script:
        "../scripts/figure2.py"


rule figure3:
    input:
        drug="results/models/drug/posterior.nc",
        contrasts=rules.drug_contrasts.output.contrasts,
    output:
        png=report(
            "results/figures/fig3.png",
            caption="../report/fig3.rst",
            category="Figures",
            labels={"figure": "3"},
        ),
        pdf="results/figures/fig3.pdf",
        table="results/figures/fig3.tsv",
    log:
        "logs/figures/fig3.log",
    benchmark:
        "results/benchmarks/figures/fig3.tsv"
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=10,
    params:
        study=study_design(),
        window_end_s=config["preprocess"]["response_s"][1],
        methods=methods.caption_terms(config, "fig3"),
    script:
        "../scripts/figure3.py"
