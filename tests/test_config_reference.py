"""The configuration reference (config/README.md) and the descriptions it is built from."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from mimicry.config.reference import (
    REFERENCE,
    allowed_text,
    key_table,
    literal,
    render,
    type_text,
)
from mimicry.config.schema import Key, keys, load_schema
from helpers.devtools import PROJECT_ROOT
from mimicry.package_data import CONFIG_SCHEMA, PARTICIPANTS_SCHEMA
from mimicry.robustness.multiverse import derived_bands

SCHEMAS = {"config": CONFIG_SCHEMA, "sample sheet": PARTICIPANTS_SCHEMA}
ANNOTATIONS = {"$schema", "$comment", "title", "description", "default", "examples"}
KEYWORDS = set(Draft202012Validator.VALIDATORS) | {"then", "else"} | ANNOTATIONS


def current_reference():
    return render(load_schema(CONFIG_SCHEMA), load_schema(PARTICIPANTS_SCHEMA))


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_schema_key_has_a_description(name):
    undescribed = [
        key.name
        for key in keys(load_schema(SCHEMAS[name]))
        if not key.schema.get("description")
    ]
    assert not undescribed, f"{name} schema keys without a description: {undescribed}"


def subschemas(schema):
    yield schema
    children = [*schema.get("properties", {}).values()]
    for keyword in ("additionalProperties", "items", "if", "then", "else", "not"):
        if isinstance(schema.get(keyword), dict):
            children.append(schema[keyword])
    for keyword in ("oneOf", "anyOf", "allOf"):
        children += schema.get(keyword, [])
    for child in children:
        yield from subschemas(child)


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_uses_only_json_schema_keywords(name):
    # An unquoted ", " in a YAML flow mapping splits a description into a stray key.
    unknown = [
        sorted(set(node) - KEYWORDS)
        for node in subschemas(load_schema(SCHEMAS[name]))
        if set(node) - KEYWORDS
    ]
    assert not unknown


def test_keys_reach_mapping_entries_array_items_and_alternatives():
    entry = {"type": "object", "properties": {"x": {}}}
    schema = {
        "type": "object",
        "required": ["a"],
        "properties": {
            "a": {
                "type": "object",
                "additionalProperties": {**entry, "title": "muscle"},
            },
            "b": {"type": "array", "items": {"properties": {"y": {}}}},
            "c": {"oneOf": [{"properties": {"z": {}}}, {"type": "string"}]},
            "d": {"additionalProperties": entry},
        },
    }
    found = list(keys(schema))
    assert [key.name for key in found] == [
        "a",
        "a.<muscle>.x",
        "b",
        "b[].y",
        "c",
        "c.z",
        "d",
        "d.<name>.x",
    ]
    assert [key.name for key in found if key.required] == ["a"]


def test_committed_reference_is_what_the_generator_writes_now():
    assert (
        PROJECT_ROOT / REFERENCE
    ).read_text() == current_reference(), (
        "config/README.md is out of date: run `make config-reference`"
    )


def test_command_line_writes_the_reference(tmp_path):
    output = tmp_path / "README.md"
    subprocess.run(
        [sys.executable, "-m", "mimicry.config.reference", str(output)], check=True
    )
    assert output.read_text() == current_reference()


def test_reference_has_a_row_per_key_with_its_default_and_description():
    lines = current_reference().splitlines()
    for key in keys(load_schema(CONFIG_SCHEMA)):
        if len(key.path) == 1 and "properties" in key.schema:
            continue  # a section: a heading, not a row
        rows = [line for line in lines if line.startswith(f"| `{key.name}` |")]
        assert len(rows) == 1, key.name
        row = rows[0]
        # Table cells hold one line, with "|" escaped.
        description = " ".join(key.schema.get("description", "").split())
        assert description.replace("|", "\\|") in row, key.name
        if "default" in key.schema and "properties" not in key.schema:
            assert f"`{literal(key.schema['default'])}`" in row, key.name


def test_reference_has_a_section_per_top_level_mapping():
    text = current_reference()
    schema = load_schema(CONFIG_SCHEMA)
    for name, section in schema["properties"].items():
        if "properties" in section:
            assert f"\n## `{name}`\n" in text


@pytest.mark.parametrize(
    "schema, expected",
    [
        ({"type": ["null", "number"]}, "number or null"),
        ({"type": "array", "items": {"type": "integer"}}, "array of integer"),
        (
            {"type": "object", "additionalProperties": {"type": "string"}},
            "mapping of string",
        ),
        ({"enum": ["fail", "warn"]}, "string"),
        ({"oneOf": [{"type": "integer"}, {"type": "string"}]}, "integer or string"),
    ],
)
def test_type_in_words(schema, expected):
    assert type_text(schema) == expected


def test_allowed_values_in_words():
    text = allowed_text(
        {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "enum": [0.5, 1]}
    )
    assert text.split("; ") == ["`0.5`, `1`", "> 0", "<= 1"]
    pair = allowed_text({"type": "array", "minItems": 2, "maxItems": 2})
    assert pair == "exactly 2 items"


def test_a_pipe_in_a_description_does_not_split_the_row():
    key = Key(("x",), {"type": "string", "description": "auto | manual"}, False)
    row = key_table([key]).splitlines()[-1]
    cells = [cell for cell in row.replace("\\|", "").split("|")][1:-1]
    assert len(cells) == 5
    assert cells[-1].strip() == "auto  manual"


def test_workflow_catalog_settings_point_to_the_reference():
    # The catalog lists a workflow as standardized only with config/README.md.
    settings = yaml.safe_load(
        (PROJECT_ROOT / ".snakemake-workflow-catalog.yml").read_text()
    )
    usage = settings["usage"]
    assert set(usage["mandatory-flags"]) == {"desc", "flags"}
    assert usage["software-stack-deployment"]["conda"] is True
    assert usage["report"] is True
    assert "config/README.md" in usage["mandatory-flags"]["desc"]
    assert REFERENCE == Path("config") / "README.md"


CONFIG_KEYS = list(keys(load_schema(CONFIG_SCHEMA)))


def schema_default(name):
    (key,) = [key for key in CONFIG_KEYS if key.name == name]
    return key.schema["default"]


def interval(name):
    low, high = schema_default(name)
    return f"{low:g}..{high:g}"


def sampler_size(name):
    chains, warmup, draws = (
        schema_default(f"{name}.{part}") for part in ("chains", "warmup", "draws")
    )
    return f"{chains} x ({warmup} + {draws})"


REJECTION = "preprocess.rejection"
FMOV_BAND = yaml.safe_load(
    (PROJECT_ROOT / "config" / "examples" / "fmov" / "config.yaml").read_text()
)["preprocess"]["band_hz"]


def derived_bands_text(band_hz):
    """ "[20, 450], [20, 250] or [10, 400]": the bands a null band axis derives."""
    bands = [f"[{low:g}, {high:g}]" for low, high in derived_bands(band_hz)]
    return f"{', '.join(bands[:-1])} or {bands[-1]}"


# Phrases of the docs pages (docs/<page>) that state a default, each written from the
# schema's default, so that no page states a default the schema does not have.
DOCS_DEFAULTS = {
    "simulated-study.md": {
        "simulation.sampling_rate_hz": lambda: (
            f"unit uV, {schema_default('simulation.sampling_rate_hz')} Hz by default"
        ),
        "simulation.level_fluctuation": lambda: (
            " and ".join(
                f"sd {component['sd']:g} with time constant "
                f"{component['time_constant_s']:g} s"
                for component in schema_default(
                    "simulation.level_fluctuation.components"
                )
            )
            + ", times a log-normal factor per participant and muscle of log sd "
            + f"{schema_default('simulation.level_fluctuation.participant_log_sd'):g}"
        ),
        "simulation.spontaneous_bursts": lambda: (
            "a Poisson process of "
            f"{schema_default('simulation.spontaneous_bursts.rate_per_s'):g} bursts per s, "
            "the median over participants and muscles, whose log rate varies with sd "
            f"{schema_default('simulation.spontaneous_bursts.participant_rate_log_sd'):g};"
            " each burst lasts "
            "{:g}-{:g} s".format(
                *schema_default("simulation.spontaneous_bursts.duration_s")
            )
            + " and lifts the amplitude over a Hann window to 1 + an excess of median "
            f"{schema_default('simulation.spontaneous_bursts.excess_median'):g} and log sd "
            f"{schema_default('simulation.spontaneous_bursts.excess_log_sd'):g} times its "
            "level"
        ),
        "simulation.artifact_amplitude_factor": lambda: (
            f"{schema_default('simulation.artifact_amplitude_factor'):g} times the resting "
            "amplitude at the time"
        ),
    },
    "own-recordings.md": {
        "source.bids.group_column": lambda: (
            "`source.bids.group_column` "
            f"(default `{schema_default('source.bids.group_column')}`)"
        ),
    },
    "study-designs.md": {
        "study.design": lambda: (
            f"| Parallel groups (default) | one row per participant | "
            f"`design: {schema_default('study.design')}` |"
        ),
        "recording.without_events": lambda: (
            "under the default `recording.without_events: "
            f"{schema_default('recording.without_events')}`"
        ),
    },
    "preprocessing.md": {
        "preprocess band-pass": lambda: (
            "band-passes it ({:g}-{:g} Hz, ".format(
                *schema_default("preprocess.band_hz")
            )
            + f"{schema_default('preprocess.band_order')}th-order Butterworth"
        ),
        "preprocess.mains_hz": lambda: (
            f"below Nyquist ({schema_default('preprocess.mains_hz'):g} Hz by default;"
        ),
        "preprocess epochs and bins": lambda: (
            f"cuts epochs (baseline {interval('preprocess.baseline_s')} s, response "
            f"{interval('preprocess.response_s')} s), averages "
            f"{schema_default('preprocess.bin_s'):g} s bins"
        ),
        "preprocess.min_kept_share": lambda: (
            "`preprocess.min_kept_share` "
            f"(default {schema_default('preprocess.min_kept_share'):.0%})"
        ),
        "preprocess.min_kept_trials": lambda: (
            "`preprocess.min_kept_trials` "
            f"(default {schema_default('preprocess.min_kept_trials')})"
        ),
        "preprocess.rejection ratios": lambda: (
            f"(`transient_ratio` {schema_default(f'{REJECTION}.transient_ratio'):g}, "
            f"`baseline_ratio` {schema_default(f'{REJECTION}.baseline_ratio'):g})"
        ),
        "preprocess.rejection.false_alarm_rate": lambda: (
            f"`false_alarm_rate` ({schema_default(f'{REJECTION}.false_alarm_rate'):.0%})"
        ),
        "preprocess.rejection.calibration_trials": lambda: (
            f"`calibration_trials` ({schema_default(f'{REJECTION}.calibration_trials')})"
        ),
        "preprocess.rejection.warn_rejected_share": lambda: (
            "`warn_rejected_share` "
            f"({schema_default(f'{REJECTION}.warn_rejected_share'):.0%})"
        ),
        "preprocess.warn_excluded_share": lambda: (
            "`preprocess.warn_excluded_share` "
            f"({schema_default('preprocess.warn_excluded_share'):.0%})"
        ),
    },
    "figures-and-report.md": {
        "figures.fig2.prior_curves": lambda: (
            "the prior predictive curves of panel B, default "
            f"{schema_default('figures.fig2.prior_curves')})"
        ),
    },
    "null.md": {
        "multiverse.axes.band_hz": lambda: (
            "band edges derived from `preprocess.band_hz` (`band_hz: "
            f"{literal(schema_default('multiverse.axes')['band_hz'])}`; "
            f"{derived_bands_text(schema_default('preprocess.band_hz'))} Hz at its "
            f"default, {derived_bands_text(FMOV_BAND)} Hz for the 100 Hz "
            "`config/examples/fmov`)"
        ),
        "multiverse.bayesian.enabled": lambda: (
            "`multiverse.bayesian.enabled` "
            f"({'on' if schema_default('multiverse.bayesian.enabled') else 'off'} "
            "by default)"
        ),
        "multiverse.bayesian.sampler": lambda: (
            "`multiverse.bayesian.sampler` "
            f"({sampler_size('multiverse.bayesian.sampler')} by default)"
        ),
    },
}


@pytest.mark.parametrize(
    "page, setting",
    [(page, setting) for page, phrases in DOCS_DEFAULTS.items() for setting in phrases],
)
def test_docs_page_states_the_schema_default(page, setting):
    text = " ".join((PROJECT_ROOT / "docs" / page).read_text().split())
    phrase = DOCS_DEFAULTS[page][setting]()
    assert phrase in text, f"docs/{page} should say {phrase!r}"
