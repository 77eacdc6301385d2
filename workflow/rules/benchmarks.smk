# Not part of `all`: timings differ between runs, and `all` must give identical bytes.
# benchmarks/end_to_end.py runs it after a timed `make run` and adds it to the report.
rule benchmark_summary:
    input:
        all_targets(),
    output:
        summary=report(
            "results/benchmarks/summary.tsv",
            caption="../report/benchmarks.rst",
            category="Performance",
        ),
    log:
        "logs/benchmark_summary.log",
    benchmark:
        "results/benchmarks/benchmark_summary.tsv"
    conda:
        "../../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../scripts/benchmark_summary.py"
