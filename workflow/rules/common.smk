import re

import pandas as pd

from snakemake.utils import validate

from mimicry import study

validate(config, "../schemas/config.schema.yaml")
participants = study.read_sample_sheet(config["participants"])
validate(participants, "../schemas/participants.schema.yaml")
study.check_sample_sheet(participants, config, config["participants"])
participants = participants.set_index("participant_id", drop=False).sort_index()
study.check_config(config, participants.index)
study.check_sources(config, participants)
PARTICIPANTS = participants.index.tolist()
SOURCE = config["source"]["kind"]


wildcard_constraints:
    participant="|".join(map(re.escape, PARTICIPANTS)),
    extension="edf|bdf|vhdr|csv|tsv",


def all_targets():
    return expand(rules.simulate_raw.output.recording, participant=PARTICIPANTS) + [
        rules.simulation_truth.output.truth
    ]


def participant_group(wildcards):
    return participants.loc[wildcards.participant, "group"]


def simulation_config():
    keys = ("seed", "study", "channels", "simulation")
    return {key: config[key] for key in keys}


def participant_groups():
    return list(participants["group"].items())


def raw_recording_path(participant):
    folder = config["source"]["local_dir"] if SOURCE == "local" else "resources/raw"
    return f"{folder}/{participant}.{participants.loc[participant, 'format']}"


def raw_recording(wildcards):
    return raw_recording_path(wildcards.participant)


def study_archive(wildcards):
    if config["source"]["archive_url"] is None:
        return {}
    return {"archive": rules.download_archive.output.archive}


def participant_source(wildcards):
    record = participants.loc[wildcards.participant]
    return {
        key: None if pd.isna(record.get(key)) else record[key]
        for key in ("url", "sha256", "member")
    }
