rule simulate_raw:
    output:
        recording=(
            "resources/raw/{recording}.edf"
            if config["simulation"]["keep_raw"]
            else temp("resources/raw/{recording}.edf")
        ),
    log:
        "logs/simulate_raw/{recording}.log",
    benchmark:
        "results/benchmarks/simulate_raw/{recording}.tsv"
    conda:
        "../../envs/simulate.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        recording=lambda wildcards: simulate.sheet_recording(
            participants.loc[wildcards.recording]
        ),
        config=simulation_config(),
    script:
        "../scripts/simulate_raw.py"


rule simulation_truth:
    output:
        truth="resources/simulated/truth.json",
    log:
        "logs/simulation_truth.log",
    benchmark:
        "results/benchmarks/simulation_truth.tsv"
    conda:
        "../../envs/simulate.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        participants=simulate.sheet_recordings(participants),
        config=simulation_config(),
    script:
        "../scripts/simulation_truth.py"
