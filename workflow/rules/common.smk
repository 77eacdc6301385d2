import re

from snakemake.utils import validate

from mimicry import study

validate(config, "../schemas/config.schema.yaml")
participants = study.read_sample_sheet(config["participants"])
validate(participants, "../schemas/participants.schema.yaml")
study.check_sample_sheet(participants, config, config["participants"])
participants = participants.set_index("participant_id", drop=False).sort_index()
study.check_config(config, participants.index)
PARTICIPANTS = participants.index.tolist()


wildcard_constraints:
    participant="|".join(map(re.escape, PARTICIPANTS)),


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
