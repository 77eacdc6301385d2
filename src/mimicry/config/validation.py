"""The configuration: validated against its schema with the defaults filled in, and the
cross-key checks that JSON schemas cannot express."""

from mimicry.package_data import CONFIG_SCHEMA
from mimicry.preprocessing import checks
from mimicry.simulate import export_rate_problem, simulation_problem


class ConfigError(ValueError):
    """A configuration or sample-sheet problem; the message names the key or row."""


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
    if len(study["conditions"]) < 2:
        raise ConfigError(
            f"study.conditions {study['conditions']}: the mimicry contrast needs at "
            "least two conditions"
        )
    contrast = study.get("mimicry_contrast")
    if contrast is not None:
        unknown = [c for c in contrast if c not in study["conditions"]]
        if unknown:
            raise ConfigError(
                f"study.mimicry_contrast: {unknown} not in study.conditions "
                f"{study['conditions']}"
            )
        if contrast[0] == contrast[1]:
            raise ConfigError(
                f"study.mimicry_contrast {contrast} names one condition twice"
            )
    _check_recording(config["recording"], study["conditions"])
    simulated = config["source"]["kind"] == "simulated"
    for problem in checks.setting_problems(
        config["preprocess"], config["simulation"] if simulated else None
    ):
        raise ConfigError(problem)
    if simulated:
        _check_simulation(config["simulation"], study, set(participant_ids))
    if config["multiverse"]["enabled"]:
        _check_multiverse(config)


def _check_multiverse(config):
    from mimicry.config import schema as config_schema
    from mimicry.robustness import multiverse

    schema = config_schema.load_schema(CONFIG_SCHEMA)
    preprocess_schema = schema["properties"]["preprocess"]
    try:
        problems = list(multiverse.universe_problems(config, preprocess_schema))
    except multiverse.MultiverseConfigError as error:
        raise ConfigError(str(error)) from None
    if problems:
        raise ConfigError("\n".join(problems))


def _check_recording(recording, conditions):
    """Recording settings that contradict each other or the study's conditions."""
    for label, condition in recording["event_labels"].items():
        if condition not in conditions:
            raise ConfigError(
                f"recording.event_labels.{label}: '{condition}' is not one of "
                f"study.conditions {conditions}"
            )
    for name, meaning in recording["triggers"].items():
        mapping = {"": meaning} if isinstance(meaning, str) else meaning
        for level, condition in mapping.items():
            key = f"recording.triggers.{name}" + (f".{level}" if level else "")
            if condition not in conditions:
                raise ConfigError(
                    f"{key}: '{condition}' is not one of study.conditions {conditions}"
                )
            try:
                float(level or 0)
            except ValueError:
                raise ConfigError(
                    f"{key}: the pulse level '{level}' is not a number"
                ) from None
    source = recording["event_source"]
    if recording["triggers"] and source in ("annotations", "stim_channel"):
        raise ConfigError(
            f"recording.triggers is set but recording.event_source is {source}, which "
            "would ignore it; remove one"
        )
    if source == "triggers" and not recording["triggers"]:
        raise ConfigError(
            "recording.event_source is triggers but recording.triggers is empty"
        )
    text = recording["text"]
    if text["header"] and text["column_names"] is not None:
        raise ConfigError(
            "recording.text.column_names names the columns of a headerless file; set "
            "recording.text.header: false, or remove column_names to use the header"
        )


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
    shares = simulation["response_type_shares"]
    if shares["none"] + shares["reverse"] > 1:
        raise ConfigError(
            "simulation.response_type_shares: none + reverse is "
            f"{shares['none'] + shares['reverse']:g}, more than all participants"
        )
    problem = export_rate_problem(simulation) or simulation_problem(simulation, study)
    if problem:
        raise ConfigError(problem)
    if simulation["period_effects"] and study["design"] != "crossover":
        raise ConfigError(
            "simulation.period_effects need study.design: crossover (a period is a "
            "session's place in a participant's order of treatments)"
        )
    window = 1.0 + simulation["response_s"] + 1.0
    if simulation["trial_onset_spacing_s"] < window:
        raise ConfigError(
            f"simulation.trial_onset_spacing_s must be at least {window} s (1 s "
            "baseline + response_s + 1 s jitter)"
        )


def validate_config(config, schema_path):
    """Validate config against the schema in place and fill in its defaults.

    Text spelling a number, boolean or null where the schema wants one becomes that
    value (Snakemake's --config gives nested values as text); unknown keys are named with the closest known
    key; anything else wrong gets snakemake.utils.validate's message.
    """
    from snakemake.utils import validate

    from mimicry.config import schema as config_schema

    schema = config_schema.load_schema(schema_path)
    config_schema.coerce_scalars(config, schema)
    unknown = config_schema.unknown_key_messages(config, schema)
    if unknown:
        raise ConfigError("\n".join(unknown))
    validate(config, str(schema_path))


def load_config(*paths, allow_yte=False):
    """The configuration a workflow run with these config files sees, defaults filled.

    For code outside Snakemake (tests, benchmarks); the workflow itself validates in
    workflow/rules/common.smk. A YTE template among paths is refused (YteRefused)
    unless allow_yte.
    """
    from snakemake.utils import update_config

    from mimicry.config.files import read_config_file

    config = {}
    for path in paths:
        update_config(config, read_config_file(path, allow_yte))
    validate_config(config, CONFIG_SCHEMA)
    return config
