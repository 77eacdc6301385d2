rule preprocess:
    input:
        recording=raw_recording,
        verified=raw_verification,
        events=bids_events,
        content=RAW_CONTENT_STAMP,
    output:
        table="results/preprocessed/{recording}.parquet",
        qc="results/qc/{recording}.json",
        spectra="results/qc/{recording}.spectra.parquet",
    log:
        "logs/preprocess/{recording}.log",
    benchmark:
        "results/benchmarks/preprocess/{recording}.tsv"
    # Before the next simulations: a temporary raw file is deleted once read.
    priority: 1
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=preprocess_mem_mb,
        runtime=10,
    params:
        settings=preprocess_settings(),
        file_format=recording_format,
        limits_cache=NOISE_LIMITS_CACHE,
    script:
        "../scripts/preprocess.py"


rule aggregate:
    input:
        tables=expand(
            rules.preprocess.output.table, recording=recordings_with_raw_files()
        ),
        qc=expand(rules.preprocess.output.qc, recording=recordings_with_raw_files()),
    output:
        cells="results/aggregate/cells.parquet",
        trials="results/aggregate/trials.parquet",
        qc=report(
            "results/aggregate/qc.tsv",
            caption="../report/qc.rst",
            category="Quality control",
        ),
        warnings=report(
            "results/aggregate/warnings.tsv",
            caption="../report/qc_warnings.rst",
            category="Quality control",
            subcategory="Alerts",
        ),
    log:
        "logs/aggregate.log",
    benchmark:
        "results/benchmarks/aggregate.tsv"
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        groups=participants["group"].to_dict(),
        fields=RECORDING_FIELDS,
        missing=recordings_without_raw_files(),
        warn_excluded_share=config["preprocess"]["warn_excluded_share"],
        methods=methods.caption_terms(config, "qc_warnings"),
    script:
        "../scripts/aggregate.py"
