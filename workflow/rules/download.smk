rule download_archive:
    output:
        archive="resources/download/study.zip",
        # Written only once the archive is verified: without it, it is fetched again.
        verified="resources/download/study.zip.verified.json",
    log:
        "logs/download_archive.log",
    benchmark:
        "results/benchmarks/download_archive.tsv"
    conda:
        "../../envs/download.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=120,
    params:
        # Params are written to benchmarks and .snakemake/metadata: the script reads
        # the url itself from the config.
        url=download.redact_url(config["source"]["archive_url"] or ""),
        sha256=config["source"]["archive_sha256"],
        settings=config["download"],
    script:
        "../scripts/download_archive.py"


rule download_raw:
    input:
        unpack(study_archive),
    output:
        recording="resources/raw/{recording}.{extension}",
        verified="resources/raw/{recording}.{extension}.verified.json",
    log:
        "logs/download_raw/{recording}.{extension}.log",
    benchmark:
        "results/benchmarks/download_raw/{recording}.{extension}.tsv"
    conda:
        "../../envs/download.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=60,
    params:
        # The url redacted (see download_archive); the script reads it from the sheet.
        source=recording_source,
        sheet=SAMPLE_SHEET,
        settings=config["download"],
    script:
        "../scripts/download_raw.py"
