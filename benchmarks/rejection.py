"""Recall and precision of the artifact rejection on the simulated default study.

Simulates every participant of the study (config/config.yaml unless --config, each
--config file merged on the previous), preprocesses each with the configured
`preprocess` settings and compares the rejected trial x muscle pairs with the injected
artifacts in the truth (`tests/helpers/rejection_truth.py`). Scratch files go to a temporary
folder, or to --raw-dir, which a later run with the same configs reuses.

    .venv/bin/python benchmarks/rejection.py --cores 2
"""

import argparse
import json
import tempfile
from collections import Counter
from functools import partial
from multiprocessing import Pool
from pathlib import Path

import helpers_path  # noqa: F401 (tests/ on sys.path)
from helpers.devtools import PROJECT_ROOT
from mimicry.preprocessing.preprocess import preprocess_participant
from helpers.rejection_truth import rejection_accuracy
from mimicry.config.sample_sheet import read_sample_sheet
from mimicry.config.validation import load_config
from mimicry.simulate import simulate_participant, study_truth


def simulate_and_preprocess(config, raw_dir, row):
    participant, group = row
    path = raw_dir / f"{participant}.edf"
    if not path.exists():
        simulate_participant(config, participant, group, path)
    settings = {
        key: config[key] for key in ("study", "channels", "recording", "preprocess")
    }
    _, qc = preprocess_participant(path, participant, settings)
    return participant, qc


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", action="append", help="config file (repeatable); default study"
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--raw-dir", type=Path, help="keep the raw files here")
    args = parser.parse_args()
    config = load_config(*(args.config or [PROJECT_ROOT / "config" / "config.yaml"]))
    sheet = read_sample_sheet(PROJECT_ROOT / config["participants"])
    rows = list(zip(sheet["participant_id"], sheet["group"]))
    truth = study_truth(config, rows)["participants"]
    with tempfile.TemporaryDirectory() as scratch:
        raw_dir = args.raw_dir or Path(scratch)
        raw_dir.mkdir(parents=True, exist_ok=True)
        with Pool(args.cores) as pool:
            qcs = dict(
                pool.map(partial(simulate_and_preprocess, config, raw_dir), rows)
            )
    accuracy = rejection_accuracy(truth, qcs, config["study"]["muscles"])
    reasons = Counter(
        entry["reason"] for qc in qcs.values() for entry in qc["rejected_trials"]
    )
    print(f"rejection settings: {json.dumps(config['preprocess']['rejection'])}")
    print(
        f"{len(rows)} participants, {accuracy['pairs']} trial x muscle pairs judged, "
        f"{accuracy['injected']} with an injected artifact; rejected "
        f"{accuracy['rejected']}, of which {accuracy['true_rejections']} injected"
    )
    print(
        f"recall {accuracy['recall']:.4f}  precision {accuracy['precision']:.4f}; "
        f"rejections by reason: {dict(sorted(reasons.items()))}"
    )
    print(
        f"flawed {accuracy['flawed']}; excluded {accuracy['excluded']}; flawed but "
        f"kept {accuracy['flawed_kept']}; excluded without a flaw "
        f"{accuracy['clean_excluded']}"
    )


if __name__ == "__main__":
    main()
