import dataclasses
import os
import re

import pandas as pd

from snakemake.logging import logger

from mimicry import package_data, simulate
from mimicry.config import raw_files, sample_sheet, study_section, validation
from mimicry.io import bids, download, raw_content, recordings
from mimicry.reporting import manifest, methods
from mimicry.robustness import multiverse, sensitivity

validation.validate_config(config, package_data.CONFIG_SCHEMA)
if config["source"]["kind"] == "bids":
    BIDS = bids.find_dataset(config)
    participants, SAMPLE_SHEET = BIDS.sheet, BIDS.participants_tsv
else:
    SAMPLE_SHEET = config["participants"]
    participants = sample_sheet.read_sample_sheet(SAMPLE_SHEET)
sample_sheet.validate_sample_sheet(participants, SAMPLE_SHEET)
sample_sheet.check_sample_sheet(participants, config, SAMPLE_SHEET)
# One row per recording, indexed by its id (the participant_id, or with sessions
# <participant_id>_ses-<session>), which names its preprocessing jobs and results.
participants = sample_sheet.with_design_columns(participants, config)
participants = participants.set_index("recording", drop=False).sort_index()
if config["source"]["kind"] != "bids":
    participants["format"] = raw_files.raw_formats(participants, config)
validation.check_config(config, participants["participant_id"].unique())
raw_files.check_sources(config, participants)
if config["source"]["kind"] == "local":
    participants["raw_path"] = raw_files.local_raw_paths(participants, config)
RECORDINGS = participants.index.tolist()
# What each recording adds to the trials and cells tables, read by the aggregation
# and by every universe of the multiverse.
RECORDING_FIELDS = sample_sheet.recording_fields(participants, config)
SOURCE = config["source"]["kind"]
# Package data (mimicry.package_data), so that the workflow and the package sample the
# same program wherever either is deployed.
STAN_PROGRAM = str(package_data.STAN_PROGRAM)
# The artifact rules' noise limits, calibrated once per sampling rate and setting and
# shared by every preprocessing job (mimicry.preprocessing.noise_limits).
NOISE_LIMITS_CACHE = "results/preprocessed/noise_limits"
# A recording's raw content stamp, and the stat signatures of the files last found to
# match their stamps (mimicry.io.raw_content; a cache of this machine, not a result).
RAW_CONTENT_STAMP = "resources/raw_content/{recording}.sha256"
RAW_CONTENT_CACHE = ".snakemake/mimicry/raw_content.json"
MODELS = ["pooled", "drug"]
SENSITIVITY_EFFECTS = sensitivity.effects_by_id(config)
MULTIVERSE = {
    universe.id: universe
    for universe in (
        multiverse.universes(config) if config["multiverse"]["enabled"] else []
    )
}
MULTIVERSE_IDS = list(MULTIVERSE)
MULTIVERSE_BAYES_IDS = (
    [universe.id for universe in multiverse.on_model_scale(MULTIVERSE.values())]
    if config["multiverse"]["bayesian"]["enabled"]
    else []
)


wildcard_constraints:
    recording="|".join(map(re.escape, RECORDINGS)),
    extension="|".join(recordings.FORMATS),
    model="|".join(MODELS),
    effect="|".join(map(re.escape, SENSITIVITY_EFFECTS)),
    replicate=r"\d+",
    universe="|".join(map(re.escape, MULTIVERSE_IDS)),
    contrast="mimicry|drug",
    group="|".join(map(re.escape, config["study"]["groups"])),


def all_targets():
    targets = [
        # Intermediate results too: Snakemake re-creates a deleted intermediate file
        # only when it is requested, not while the files made from it look current
        # (e.g. after a killed --forcerun; snakemake/snakemake#1978).
        *expand(rules.preprocess.output, recording=recordings_with_raw_files()),
        *expand(rules.fit_model.output, model=MODELS),
        *rules.aggregate.output,
        *rules.mixed_models.output,
        *rules.prior_predictive.output,
        *expand(rules.summarize_model.output, model=MODELS),
        *rules.drug_contrasts.output,
        *rules.compare_models.output,
        *rules.figure1.output,
        *rules.figure2.output,
        *rules.figure3.output,
        *expand(rules.qc_participant.output, recording=recordings_with_raw_files()),
        *rules.qc_group.output,
        *rules.report_methods.output,
    ]
    if SOURCE == "simulated":
        targets.append(rules.simulation_truth.output.truth)
    if config["sensitivity"]["enabled"]:
        targets += [*rules.sensitivity_power.output, *rules.sensitivity_figure.output]
    if config["multiverse"]["enabled"]:
        targets += multiverse_targets()
    return targets


def multiverse_targets():
    """The multiverse's table and every universe's settings file. Requested by
    name, a new universe's settings file is found missing although everything
    downstream of a re-run multiverse_preprocess is reached only through inputs that
    are not ancient (see multiverse.smk)."""
    return [
        *rules.multiverse_contrasts.output,
        *expand(rules.multiverse_settings.output.settings, universe=MULTIVERSE_IDS),
        *multiverse_bayes_targets(),
        *(
            path
            for contrast, group in multiverse_curves()
            for path in expand(
                rules.multiverse_figure.output, contrast=contrast, group=group
            )
        ),
    ]


def multiverse_bayes_targets():
    return rules.multiverse_bayes_contrasts.output if MULTIVERSE_BAYES_IDS else []


def multiverse_curves():
    """(contrast, group) of each specification curve: the reference group's
    mimicry and every other group's drug contrast."""
    reference = config["study"]["reference_group"]
    others = [group for group in config["study"]["groups"] if group != reference]
    return [("mimicry", reference), *(("drug", group) for group in others)]


def study_design():
    """config's study for the steps that never read the mimicry contrast."""
    return study_section.study_design(config["study"])


def study_settings():
    """config's study without what only the report's front page reads."""
    return study_section.study_settings(config["study"])


def simulation_config():
    keys = ("seed", "study", "channels")
    # keep_raw decides what happens to the files, not what they hold.
    simulation = {k: v for k, v in config["simulation"].items() if k != "keep_raw"}
    return {key: config[key] for key in keys} | {
        "study": study_design(),
        "simulation": simulation,
    }


def raw_recording_path(recording):
    if SOURCE == "bids":
        return BIDS.recordings[recording]
    if SOURCE == "local":
        return participants.loc[recording, "raw_path"]
    return f"resources/raw/{recording}.{participants.loc[recording, 'format']}"


def raw_recording(wildcards):
    """The raw file, ancient unless simulated here: its content stamp decides whether
    it changed (a simulated file is re-made, with a new time, by its own rule)."""
    path = raw_recording_path(wildcards.recording)
    return path if SOURCE == "simulated" else ancient(path)


def bids_events(wildcards):
    """A BIDS recording's events.tsv: its content stamp covers it too."""
    return ancient(BIDS.events[wildcards.recording]) if SOURCE == "bids" else []


def raw_source_paths(recording):
    """Every file whose content the recording's preprocessing reads."""
    events = BIDS.events[recording] if SOURCE == "bids" else None
    return raw_content.source_files(raw_recording_path(recording), events)


def raw_source_files(wildcards):
    return raw_source_paths(wildcards.recording)


def study_archive(wildcards):
    if config["source"]["archive_url"] is None:
        return {}
    # The marker too: Snakemake checks only the outputs a consumer asks for, and an
    # archive without its marker was never verified (src/mimicry/io/download.py).
    return {
        "archive": rules.download_archive.output.archive,
        "archive_verified": rules.download_archive.output.verified,
    }


def raw_verification(wildcards):
    """A downloaded raw file's marker: without it, the file is downloaded again."""
    if SOURCE != "download":
        return []
    return f"{raw_recording_path(wildcards.recording)}.verified.json"


def recording_source(wildcards):
    """The row's url (redacted: params are written to benchmarks), sha256, member."""
    record = participants.loc[wildcards.recording]
    source = {
        key: None if pd.isna(record.get(key)) else record[key]
        for key in ("url", "sha256", "member")
    }
    return source | {"url": source["url"] and download.redact_url(source["url"])}


def recording_format(wildcards):
    return participants.loc[wildcards.recording, "format"]


def preprocess_mem_mb(wildcards, input):
    """From the recording's header and size (mimicry.io.recordings.preprocess_mem_mb)."""
    stim = config["recording"]["event_source"] == "stim_channel"
    return recordings.preprocess_mem_mb(
        input.recording,
        recording_format(wildcards),
        len(config["study"]["muscles"]) + stim,
    )


def preprocess_settings():
    keys = ("study", "channels", "recording", "preprocess")
    return {key: config[key] for key in keys} | {"study": study_design()}


def recordings_without_raw_files():
    """Recordings skipped for lack of a raw file (source.missing_raw: skip)."""
    if SOURCE == "bids":
        return BIDS.missing
    if SOURCE != "local":
        return []
    return [r for r in RECORDINGS if not os.path.exists(raw_recording_path(r))]


def raw_file_readable(recording):
    """The raw file is there and, when downloaded, verified."""
    path = raw_recording_path(recording)
    return os.path.exists(f"{path}.verified.json" if SOURCE == "download" else path)


def recordings_with_raw_files():
    missing = set(recordings_without_raw_files())
    return [r for r in RECORDINGS if r not in missing]


def sampler_settings():
    """Sampler settings with the seed resolved (stan.seed, else the global seed)."""
    stan = dict(config["stan"])
    stan["seed"] = config["seed"] if stan["seed"] is None else stan["seed"]
    return stan


def prior_sampler_settings():
    return {**sampler_settings(), "draws": config["stan"]["prior_draws"]}


def sensitivity_settings():
    """The config sections a sensitivity replicate reads: a change elsewhere (e.g.
    preprocessing or figures) does not re-run the sweep."""
    sections = ("seed", "study", "simulation", "frequentist", "models", "stan")
    return {key: config[key] for key in sections} | {
        "study": study_settings(),
        "stan": sampler_settings(),
        "sensitivity": config["sensitivity"],
    }


def sensitivity_threads(wildcards):
    """The drug model's chains, or one thread for the frequentist rules alone."""
    settings = config["sensitivity"]
    bayesian = sensitivity.fits_drug_model(config, int(wildcards.replicate))
    return settings["sampler"]["chains"] if bayesian else 1


def sensitivity_replicates():
    return expand(
        rules.sensitivity_replicate.output.decisions,
        effect=SENSITIVITY_EFFECTS,
        replicate=range(config["sensitivity"]["replicates"]),
    )


def multiverse_settings():
    return [dataclasses.asdict(universe) for universe in MULTIVERSE.values()]


def multiverse_sampler_settings():
    """The drug model's sampler per universe: stan's, with multiverse.bayesian's
    chains, warm-up and draws."""
    return sampler_settings() | config["multiverse"]["bayesian"]["sampler"]


def multiverse_models_settings():
    keys = ("likelihood", "rate_deviations", "rope", "diagnostics")
    return {key: config["models"][key] for key in keys}


def multiverse_universe_settings(wildcards):
    """Everything a universe's analysis reads besides the participants' tables: the
    universe, the study, the sample sheet's groups and recording fields, the mixed
    models' settings and what the data depend on (raw files, simulation, recording and
    channel settings)."""
    settings = {
        "universe": dataclasses.asdict(MULTIVERSE[wildcards.universe]),
        "groups": participants["group"].to_dict(),
        "fields": RECORDING_FIELDS,
        "study": study_settings(),
        "random_effects": config["frequentist"]["random_effects"],
        "data": {key: config[key] for key in ("channels", "recording", "source")},
    }
    settings["data"]["participants"] = participants.astype(str).to_dict("records")
    if SOURCE == "simulated":
        settings["data"]["simulation"] = simulation_config()
    return settings


READABLE_RAW_FILES = {
    r: raw_recording_path(r)
    for r in recordings_with_raw_files()
    if raw_file_readable(r)
}
raw_files.check_declared_rates(config, participants, READABLE_RAW_FILES)
raw_files.check_shared_recording_files(participants, READABLE_RAW_FILES)
SKIPPED = recordings_without_raw_files()
if SKIPPED:
    logger.warning(
        f"source.missing_raw: skip: {len(SKIPPED)} of {len(RECORDINGS)} "
        "recordings have no raw file and are left out (recorded in qc.tsv): "
        f"{', '.join(SKIPPED)}"
    )

# Before the DAG, in the process that plans the run (not in each cluster job's).
if workflow.is_main_process:
    RAW_CONTENT_CHANGED = raw_content.update_changed_stamps(
        {
            r: (RAW_CONTENT_STAMP.format(recording=r), raw_source_paths(r))
            for r in READABLE_RAW_FILES
        },
        RAW_CONTENT_CACHE,
    )
    if RAW_CONTENT_CHANGED:
        logger.info(
            f"raw content changed since it was preprocessed, re-running: "
            f"{', '.join(RAW_CONTENT_CHANGED)}"
        )
