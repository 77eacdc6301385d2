"""The study's sample sheet and the checks that JSON schemas cannot express."""

from pathlib import Path

import pandas as pd

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "workflow" / "schemas"


class ConfigError(ValueError):
    """A configuration or sample-sheet problem; the message names the key or row."""


def read_sample_sheet(path):
    """Read the sample sheet with every column as text (ids like 007 stay 007)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"config key 'participants': sample sheet {path} does not exist"
        )
    sheet = pd.read_csv(path, sep="\t", dtype=str, comment="#")
    sheet.columns = sheet.columns.str.strip()
    return sheet.apply(lambda column: column.str.strip())


def check_sample_sheet(sheet, config, path):
    """Reject duplicate ids and groups that config's study.groups does not declare."""
    duplicated = sheet["participant_id"][sheet["participant_id"].duplicated()]
    if len(duplicated):
        raise ConfigError(
            f"sample sheet {path}: duplicate participant_id {sorted(set(duplicated))}"
        )
    groups = config["study"]["groups"]
    unknown = sheet[~sheet["group"].isin(groups)]
    for row, record in unknown.iterrows():
        raise ConfigError(
            f"sample sheet {path}, row {row + 1} ({record['participant_id']}): "
            f"group '{record['group']}' is not one of study.groups {groups}"
        )


def check_config(config, participant_ids):
    """Cross-key consistency of the configuration."""
    study = config["study"]
    if study["reference_group"] not in study["groups"]:
        raise ConfigError(
            f"study.reference_group '{study['reference_group']}' is not one of "
            f"study.groups {study['groups']}"
        )
    missing_channels = [m for m in study["muscles"] if m not in config["channels"]]
    if missing_channels:
        raise ConfigError(f"channels: no channel name for muscles {missing_channels}")
    unknown_channels = sorted(set(config["channels"]) - set(study["muscles"]))
    if unknown_channels:
        raise ConfigError(f"channels: {unknown_channels} are not in study.muscles")
    if config["source"]["kind"] == "simulated":
        _check_simulation(config["simulation"], study, set(participant_ids))


def _check_simulation(simulation, study, participant_ids):
    cells = simulation.get("cells", {})
    for muscle in study["muscles"]:
        for condition in study["conditions"]:
            if condition not in cells.get(muscle, {}):
                raise ConfigError(
                    f"simulation.cells.{muscle}.{condition} is missing: the simulated "
                    "study needs a, b, c for every muscle and condition"
                )
    for i, effect in enumerate(simulation["drug_effects"]):
        for key, allowed in (
            ("group", study["groups"]),
            ("muscle", study["muscles"]),
            ("condition", study["conditions"]),
        ):
            if effect[key] not in allowed:
                raise ConfigError(
                    f"simulation.drug_effects[{i}].{key}: '{effect[key]}' is not one "
                    f"of {allowed}"
                )
    for flaw, ids in simulation["flawed_participants"].items():
        unknown = sorted(set(ids) - participant_ids)
        if unknown:
            raise ConfigError(
                f"simulation.flawed_participants.{flaw}: {unknown} are not in the "
                "sample sheet"
            )
    window = 1.0 + simulation["response_s"] + 1.0
    if simulation["trial_onset_spacing_s"] < window:
        raise ConfigError(
            f"simulation.trial_onset_spacing_s must be at least {window} s (1 s "
            "baseline + response_s + 1 s jitter)"
        )


def deep_merge(base, override):
    """Snakemake's rule for --configfile: nested mappings merge, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(*paths):
    """The configuration a workflow run with these config files sees, defaults filled.

    For code outside Snakemake (tests, benchmarks); the workflow itself validates in
    workflow/rules/common.smk.
    """
    import yaml
    from snakemake.utils import validate

    config = {}
    for path in paths:
        with open(path) as handle:
            config = deep_merge(config, yaml.safe_load(handle) or {})
    validate(config, str(SCHEMA_DIR / "config.schema.yaml"))
    return config


def check_sources(config, sheet):
    """Every participant has what the configured source needs to find its raw file."""
    source = config["source"]
    if source["kind"] != "download":
        return
    archive = source["archive_url"] is not None
    needed = "member" if archive else "url"
    for _, record in sheet.iterrows():
        participant = record["participant_id"]
        if pd.isna(record.get(needed)):
            raise ConfigError(
                f"sample sheet: {participant} has no '{needed}', which source.kind "
                f"download needs{' with source.archive_url' if archive else ''}"
            )
        if record["format"] == "vhdr":
            raise ConfigError(
                f"sample sheet: {participant} is BrainVision (vhdr), three files that "
                "one url cannot carry; use source.kind local for BrainVision recordings"
            )
