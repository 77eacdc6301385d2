rule qc_participant:
    input:
        spectra=rules.preprocess.output.spectra,
        table=rules.preprocess.output.table,
        qc=rules.preprocess.output.qc,
    output:
        png=report(
            "results/qc/{recording}.png",
            caption="../report/qc_participant.rst",
            category="Quality control",
            subcategory="Participants",
            labels={"recording": "{recording}"},
        ),
    log:
        "logs/qc/{recording}.log",
    benchmark:
        "results/benchmarks/qc/{recording}.tsv"
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        settings=preprocess_settings(),
    script:
        "../scripts/qc_participant.py"


rule qc_group:
    input:
        qc_table=rules.aggregate.output.qc,
        qc=expand(rules.preprocess.output.qc, recording=recordings_with_raw_files()),
    output:
        png=report(
            "results/qc/group.png",
            caption="../report/qc_group.rst",
            category="Quality control",
            subcategory="Group",
            labels={"figure": "group QC"},
        ),
    log:
        "logs/qc/group.log",
    benchmark:
        "results/benchmarks/qc/group.tsv"
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=preprocess_settings(),
    script:
        "../scripts/qc_group.py"
