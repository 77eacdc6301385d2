rule mixed_models:
    input:
        cells=rules.aggregate.output.cells,
    output:
        # written only when the study declares a participant factor
        **(
            {
                "factor_contrasts": report(
                    "results/stats/factor_contrasts.tsv",
                    caption="../report/stats.rst",
                    category="Frequentist mixed models",
                    labels={"table": "factor_contrasts"},
                )
            }
            if config["study"]["participant_factor"] is not None
            else {}
        ),
        lrt=report(
            "results/stats/lrt.tsv",
            caption="../report/stats.rst",
            category="Frequentist mixed models",
            labels={"table": "lrt"},
        ),
        fixed_effects=report(
            "results/stats/fixed_effects.tsv",
            caption="../report/stats.rst",
            category="Frequentist mixed models",
            labels={"table": "fixed_effects"},
        ),
        mimicry_contrasts=report(
            "results/stats/mimicry_contrasts.tsv",
            caption="../report/stats.rst",
            category="Frequentist mixed models",
            labels={"table": "mimicry_contrasts"},
        ),
        drug_contrasts=report(
            "results/stats/drug_contrasts.tsv",
            caption="../report/stats.rst",
            category="Frequentist mixed models",
            labels={"table": "drug_contrasts"},
        ),
        random_effects=report(
            "results/stats/random_effects.tsv",
            caption="../report/stats.rst",
            category="Frequentist mixed models",
            labels={"table": "random_effects"},
        ),
        fits=report(
            "results/stats/fits.tsv",
            caption="../report/stats.rst",
            category="Frequentist mixed models",
            labels={"table": "fits"},
        ),
    log:
        "logs/mixed_models.log",
    benchmark:
        "results/benchmarks/mixed_models.tsv"
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        study=study_settings(),
        random_effects=config["frequentist"]["random_effects"],
        methods=methods.caption_terms(config, "stats"),
    script:
        "../scripts/mixed_models.py"
