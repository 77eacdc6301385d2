rule prior_predictive:
    input:
        cells=rules.aggregate.output.cells,
        program=STAN_PROGRAM,
    output:
        prior="results/models/prior/prior.nc",
    log:
        "logs/models/prior_predictive.log",
    benchmark:
        "results/benchmarks/models/prior_predictive.tsv"
    conda:
        "../../envs/stan.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        study=study_design(),
        model="pooled",
        prior_only=True,
        likelihood=config["models"]["likelihood"],
        rate_deviations=config["models"]["rate_deviations"],
        sampler=prior_sampler_settings(),
        predictive_draws=config["models"]["predictive_draws"],
    script:
        "../scripts/sample_model.py"


rule fit_model:
    input:
        cells=rules.aggregate.output.cells,
        program=STAN_PROGRAM,
    output:
        posterior="results/models/{model}/posterior.nc",
    log:
        "logs/models/{model}/fit.log",
    benchmark:
        "results/benchmarks/models/{model}/fit.tsv"
    conda:
        "../../envs/stan.yaml"
    threads: config["stan"]["chains"]
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        study=study_design(),
        model="{model}",
        prior_only=False,
        likelihood=config["models"]["likelihood"],
        rate_deviations=config["models"]["rate_deviations"],
        sampler=sampler_settings(),
        predictive_draws=config["models"]["predictive_draws"],
    script:
        "../scripts/sample_model.py"


rule summarize_model:
    input:
        posterior=rules.fit_model.output.posterior,
    output:
        summary=report(
            "results/models/{model}/summary.tsv",
            caption="../report/model_summary.rst",
            category="Bayesian models",
            labels={"model": "{model}", "table": "summary"},
        ),
        diagnostics=report(
            "results/models/{model}/diagnostics.json",
            caption="../report/model_diagnostics.rst",
            category="Bayesian models",
            labels={"model": "{model}", "table": "diagnostics"},
        ),
    log:
        "logs/models/{model}/summarize.log",
    benchmark:
        "results/benchmarks/models/{model}/summarize.tsv"
    conda:
        "../../envs/stan.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        thresholds=config["models"]["diagnostics"],
        max_treedepth=config["stan"]["max_treedepth"],
        methods=methods.caption_terms(config, "model_summary"),
    script:
        "../scripts/summarize_model.py"


rule drug_contrasts:
    input:
        posterior="results/models/drug/posterior.nc",
        diagnostics="results/models/drug/diagnostics.json",
    output:
        contrasts=report(
            "results/models/drug/contrasts.tsv",
            caption="../report/contrasts.rst",
            category="Bayesian models",
            labels={"model": "drug", "table": "contrasts"},
        ),
    log:
        "logs/models/drug/contrasts.log",
    benchmark:
        "results/benchmarks/models/drug/contrasts.tsv"
    conda:
        "../../envs/stan.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        rope=config["models"]["rope"],
        reference_group=config["study"]["reference_group"],
        mimicry_conditions=study_section.mimicry_contrast(config["study"]),
        methods=methods.caption_terms(config, "contrasts"),
    script:
        "../scripts/drug_contrasts.py"


rule compare_models:
    input:
        posteriors=expand(rules.fit_model.output.posterior, model=MODELS),
        # Only fits that passed the diagnostics gate are compared.
        diagnostics=expand(rules.summarize_model.output.diagnostics, model=MODELS),
    output:
        comparison=report(
            "results/models/comparison.tsv",
            caption="../report/model_comparison.rst",
            category="Bayesian models",
            labels={"model": "pooled vs drug", "table": "LOO comparison"},
        ),
    log:
        "logs/models/compare.log",
    benchmark:
        "results/benchmarks/models/compare.tsv"
    conda:
        "../../envs/stan.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        models=MODELS,
    script:
        "../scripts/compare_models.py"
