# A recording's raw content stamp (mimicry.io.raw_content): preprocessing re-runs when
# it changes, whatever the raw files' modification times. Local: a few reads per
# recording are not worth a cluster job.
localrules:
    raw_content,


rule raw_content:
    input:
        recording=raw_recording,
        verified=raw_verification,
        events=bids_events,
    output:
        stamp=RAW_CONTENT_STAMP,
    log:
        "logs/raw_content/{recording}.log",
    benchmark:
        "results/benchmarks/raw_content/{recording}.tsv"
    # Before the next simulations: a temporary raw file is deleted once read.
    priority: 1
    conda:
        "../../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=200,
        runtime=5,
    params:
        files=raw_source_files,
    script:
        "../scripts/raw_content.py"
