rule mixed_models:
    input:
        cells=rules.aggregate.output.cells,
    output:
        lrt="results/stats/lrt.tsv",
        fixed_effects="results/stats/fixed_effects.tsv",
        mimicry_contrasts="results/stats/mimicry_contrasts.tsv",
        drug_contrasts="results/stats/drug_contrasts.tsv",
        random_effects="results/stats/random_effects.tsv",
        fits="results/stats/fits.tsv",
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
        study=config["study"],
        random_effects=config["frequentist"]["random_effects"],
    script:
        "../scripts/mixed_models.py"
