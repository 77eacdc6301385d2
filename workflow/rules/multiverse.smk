# The multiverse (mimicry.robustness.multiverse): every universe of the declared
# preprocessing grid, one preprocessing job per recording for all of them, then one
# analysis job per universe (and, with multiverse.bayesian, one drug-model fit per
# universe on the model's scale).


rule multiverse_preprocess:
    input:
        recording=raw_recording,
        verified=raw_verification,
        events=bids_events,
        content=RAW_CONTENT_STAMP,
    output:
        table="results/multiverse/preprocessed/{recording}.parquet",
        qc="results/multiverse/qc/{recording}.json",
    log:
        "logs/multiverse/preprocess/{recording}.log",
    benchmark:
        "results/benchmarks/multiverse/preprocess/{recording}.tsv"
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=preprocess_settings(),
        universes=multiverse_settings(),
        file_format=recording_format,
        limits_cache=NOISE_LIMITS_CACHE,
    script:
        "../scripts/multiverse_preprocess.py"


# Every recording's tables and QC of all universes, ancient (see below).
MULTIVERSE_TABLES = ancient(
    expand(
        rules.multiverse_preprocess.output.table,
        recording=recordings_with_raw_files(),
    )
)
MULTIVERSE_QC = ancient(
    expand(
        rules.multiverse_preprocess.output.qc,
        recording=recordings_with_raw_files(),
    )
)


# What a universe's analysis depends on besides the participants' tables: its own
# settings and those of the data (multiverse_universe_settings). A change re-writes the file
# and re-runs the analysis; the tables themselves are ancient inputs, so a
# multiverse_preprocess job re-run for new universes leaves the others alone. (An
# ancient input alone would hide a new universe from Snakemake: jobs downstream of a
# re-run job are only reached through inputs that are not ancient.)
rule multiverse_settings:
    output:
        settings="results/multiverse/settings/{universe}.json",
    log:
        "logs/multiverse/settings/{universe}.log",
    benchmark:
        "results/benchmarks/multiverse/settings/{universe}.tsv"
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=200,
        runtime=2,
    params:
        settings=multiverse_universe_settings,
    script:
        "../scripts/multiverse_settings.py"


rule multiverse_universe:
    input:
        settings=rules.multiverse_settings.output.settings,
        tables=MULTIVERSE_TABLES,
        qc=MULTIVERSE_QC,
    output:
        contrasts="results/multiverse/universes/{universe}.tsv",
    log:
        "logs/multiverse/universes/{universe}.log",
    benchmark:
        "results/benchmarks/multiverse/universes/{universe}.tsv"
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/multiverse_universe.py"


rule multiverse_bayes:
    input:
        settings=rules.multiverse_settings.output.settings,
        program=STAN_PROGRAM,
        tables=MULTIVERSE_TABLES,
        qc=MULTIVERSE_QC,
    output:
        contrasts="results/multiverse/bayes/{universe}.tsv",
    log:
        "logs/multiverse/bayes/{universe}.log",
    benchmark:
        "results/benchmarks/multiverse/bayes/{universe}.tsv"
    conda:
        "../../envs/stan.yaml"
    threads: config["multiverse"]["bayesian"]["sampler"]["chains"]
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        models=multiverse_models_settings(),
        sampler=multiverse_sampler_settings(),
    script:
        "../scripts/multiverse_bayes.py"


rule multiverse_contrasts:
    input:
        universes=expand(
            rules.multiverse_universe.output.contrasts, universe=MULTIVERSE_IDS
        ),
    output:
        contrasts=report(
            "results/multiverse/contrasts.tsv",
            caption="../report/multiverse.rst",
            category="Multiverse",
            labels={"table": "contrasts per universe"},
        ),
        summary=report(
            "results/multiverse/summary.tsv",
            caption="../report/multiverse.rst",
            category="Multiverse",
            labels={"table": "robustness per contrast"},
        ),
        variance=report(
            "results/multiverse/variance_by_axis.tsv",
            caption="../report/multiverse.rst",
            category="Multiverse",
            labels={"table": "variance of the estimates per axis"},
        ),
    log:
        "logs/multiverse/contrasts.log",
    benchmark:
        "results/benchmarks/multiverse/contrasts.tsv"
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        axes=list(config["multiverse"]["axes"]),
        alpha=config["multiverse"]["alpha"],
    script:
        "../scripts/multiverse_contrasts.py"


rule multiverse_bayes_contrasts:
    input:
        universes=expand(
            rules.multiverse_bayes.output.contrasts, universe=MULTIVERSE_BAYES_IDS
        ),
    output:
        contrasts=report(
            "results/multiverse/bayes_contrasts.tsv",
            caption="../report/multiverse_bayes.rst",
            category="Multiverse",
            labels={"table": "drug-model contrasts per universe"},
        ),
        summary=report(
            "results/multiverse/bayes_summary.tsv",
            caption="../report/multiverse_bayes.rst",
            category="Multiverse",
            labels={"table": "drug-model robustness per contrast"},
        ),
    log:
        "logs/multiverse/bayes_contrasts.log",
    benchmark:
        "results/benchmarks/multiverse/bayes_contrasts.tsv"
    conda:
        "../../envs/stan.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    script:
        "../scripts/multiverse_bayes_contrasts.py"


rule multiverse_figure:
    input:
        contrasts=rules.multiverse_contrasts.output.contrasts,
    output:
        png=report(
            "results/figures/multiverse/{contrast}-{group}.png",
            caption="../report/multiverse_figure.rst",
            category="Multiverse",
            labels={
                "figure": "specification curve",
                "contrast": "{contrast}, {group}",
            },
        ),
        pdf="results/figures/multiverse/{contrast}-{group}.pdf",
    log:
        "logs/figures/multiverse/{contrast}-{group}.log",
    benchmark:
        "results/benchmarks/figures/multiverse/{contrast}-{group}.tsv"
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        axes=list(config["multiverse"]["axes"]),
        alpha=config["multiverse"]["alpha"],
    script:
        "../scripts/multiverse_figure.py"
