import os
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
# Relative to the working directory, so that no absolute path reaches the report.
STAN_PROGRAM = "workflow/stan/asymptotic_regression.stan"
MODELS = ["pooled", "drug"]


wildcard_constraints:
    participant="|".join(map(re.escape, PARTICIPANTS)),
    extension="edf|bdf|vhdr|csv|tsv",
    model="|".join(MODELS),


def all_targets():
    targets = [
        *rules.aggregate.output,
        *rules.mixed_models.output,
        *rules.prior_predictive.output,
        *expand(rules.summarize_model.output, model=MODELS),
        *rules.drug_contrasts.output,
        *rules.figure1.output,
        *rules.figure2.output,
        *rules.figure3.output,
    ]
    if SOURCE == "simulated":
        targets.append(rules.simulation_truth.output.truth)
    return targets


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


def participant_format(wildcards):
    return participants.loc[wildcards.participant, "format"]


def preprocess_settings():
    keys = ("study", "channels", "recording", "preprocess")
    return {key: config[key] for key in keys}


def participants_without_raw_files():
    """Participants skipped for lack of a raw file (source.missing_raw: skip)."""
    if SOURCE != "local" or config["source"]["missing_raw"] == "error":
        return []
    return [p for p in PARTICIPANTS if not os.path.exists(raw_recording_path(p))]


def participants_with_raw_files():
    missing = set(participants_without_raw_files())
    return [p for p in PARTICIPANTS if p not in missing]


def sampler_settings():
    """Sampler settings with the seed resolved (stan.seed, else the global seed)."""
    stan = dict(config["stan"])
    stan["seed"] = config["seed"] if stan["seed"] is None else stan["seed"]
    return stan


def prior_sampler_settings():
    return {**sampler_settings(), "draws": config["stan"]["prior_draws"]}
