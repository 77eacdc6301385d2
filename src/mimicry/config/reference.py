"""config/README.md, the configuration reference, generated from the JSON schemas.

python -m mimicry.config.reference [output]    # default: config/README.md

Run from the repository's root (as `make config-reference` does): the default output
is relative to the working directory.
"""

import argparse
import json
from pathlib import Path

from mimicry.config.schema import keys, load_schema
from mimicry.package_data import CONFIG_SCHEMA, PARTICIPANTS_SCHEMA

REFERENCE = Path("config") / "README.md"
BOUNDS = (
    ("minimum", ">="),
    ("exclusiveMinimum", ">"),
    ("maximum", "<="),
    ("exclusiveMaximum", "<"),
)

INTRO = """\
# Configuration reference

Generated from `src/mimicry/config/schemas/config.schema.yaml` and
`src/mimicry/config/schemas/participants.schema.yaml` by `make config-reference`
(`python -m mimicry.config.reference`); edit the schemas, not this file.
`tests/test_config_reference.py` fails when this file is out of date.

The Snakefile loads `config/config.yaml`; every `--configfile FILE` is merged on top
(nested mappings merge key by key, any other value replaces), then `--config`. The result
is validated before any job starts: keys left out take the defaults below, and an unknown
key stops the run naming the closest known one (`config key 'stan.chainz' is not known;
did you mean 'stan.chains'?`).

On the command line, Snakemake reads a top-level `--config key=value` as an integer, a
float, `True`/`False` or else YAML in which every scalar is text, and a key must be a
plain name (`stan.chains=2` is rejected). A nested mapping merges with the config
file's, and its values arrive as text; validation turns text that spells a number into
that number wherever the schema below wants an integer or a number (and not also text),
so these work:

```bash
.venv/bin/snakemake --cores 2 --config seed=7 'stan={chains: 2, adapt_delta: 0.95}'
.venv/bin/snakemake --cores 2 --config 'preprocess={band_hz: [20, 100]}'
```

A nested `null`, `true` or `false` stays text on the command line and fails validation:
put such values in a file and pass it with `--configfile`.

Key paths name mapping entries in angle brackets (`simulation.cells.<muscle>`) and
array items with `[]` (`simulation.drug_effects[].group`). A key with no default that is
not required is absent unless set.
"""


def type_text(schema):
    """The JSON type of a schema in words: "array of number", "mapping of string"."""
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives:
        return " or ".join(type_text(branch) for branch in alternatives)
    declared = schema.get("type")
    if declared is None and "enum" in schema:
        declared = sorted({_json_type(value) for value in schema["enum"]})
    if declared is None:
        return "any"
    names = [declared] if isinstance(declared, str) else declared
    # null last: "number or null" reads as an optional number.
    names = sorted(names, key=lambda name: name == "null")
    return " or ".join(_type_name(name, schema) for name in names)


def _type_name(name, schema):
    items = schema.get("items")
    entry = schema.get("additionalProperties")
    if name == "array" and isinstance(items, dict):
        return f"array of {type_text(items)}"
    if name == "object" and isinstance(entry, dict) and "properties" not in schema:
        return f"mapping of {type_text(entry)}"
    return name


def _json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def literal(value):
    """A value as it is written in a config file."""
    return value if isinstance(value, str) else json.dumps(value)


def allowed_text(schema):
    """The values a schema allows beyond its type, in words ("" if any of its type)."""
    parts = []
    if "enum" in schema:
        parts.append(", ".join(f"`{literal(value)}`" for value in schema["enum"]))
    parts += [f"{sign} {schema[bound]}" for bound, sign in BOUNDS if bound in schema]
    if "pattern" in schema:
        parts.append(f"pattern `{schema['pattern']}`")
    if "minLength" in schema:
        parts.append(_at_least(schema["minLength"], "characters"))
    if "minItems" in schema and schema["minItems"] == schema.get("maxItems"):
        parts.append(f"exactly {schema['minItems']} items")
    else:
        if "minItems" in schema:
            parts.append(_at_least(schema["minItems"], "items"))
        if "maxItems" in schema:
            parts.append(f"at most {schema['maxItems']} items")
    if schema.get("uniqueItems"):
        parts.append("no repeats")
    if isinstance(schema.get("items"), dict) and allowed_text(schema["items"]):
        parts.append(f"items {allowed_text(schema['items'])}")
    entry = schema.get("additionalProperties")
    if isinstance(entry, dict) and "properties" not in schema and allowed_text(entry):
        parts.append(f"values {allowed_text(entry)}")
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []):
        if allowed_text(branch):
            parts.append(f"{type_text(branch)}: {allowed_text(branch)}")
    return "; ".join(parts)


def _at_least(count, things):
    return "non-empty" if count == 1 else f"at least {count} {things}"


def default_text(key):
    if key.required:
        return "required"
    if "default" not in key.schema:
        return ""
    # A section's default {} only means that its own keys' defaults apply.
    if "properties" in key.schema:
        return ""
    return f"`{literal(key.schema['default'])}`"


def _cell(text):
    return " ".join(str(text).split()).replace("|", "\\|")


def key_table(section_keys, heading="key"):
    lines = [
        f"| {heading} | type | default | allowed values | description |",
        "|---|---|---|---|---|",
    ]
    for key in section_keys:
        cells = (
            f"`{key.name}`",
            type_text(key.schema),
            default_text(key),
            allowed_text(key.schema),
            key.schema.get("description", ""),
        )
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines)


def render(config_schema, sheet_schema):
    """The whole reference: top-level keys, one section per mapping, the sample sheet."""
    all_keys = list(keys(config_schema))
    top = [key for key in all_keys if len(key.path) == 1]
    sections = [key for key in top if "properties" in key.schema]
    plain_names = {key.path[0] for key in top if key not in sections}
    parts = [
        INTRO,
        "## Top level\n",
        _cell(config_schema.get("description", "")) + "\n",
        key_table([key for key in all_keys if key.path[0] in plain_names]) + "\n",
    ]
    for section in sections:
        parts.append(f"## `{section.name}`\n")
        required = "Required. " if section.required else ""
        parts.append(required + _cell(section.schema.get("description", "")) + "\n")
        below = [
            key
            for key in all_keys
            if key.path[0] == section.path[0] and len(key.path) > 1
        ]
        parts.append(key_table(below) + "\n")
    parts += [
        "## Sample sheet\n",
        "Columns of the file named by `participants`. "
        + _cell(sheet_schema["description"])
        + "\n",
        key_table(list(keys(sheet_schema)), heading="column") + "\n",
    ]
    return "\n".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=REFERENCE)
    args = parser.parse_args(argv)
    text = render(load_schema(CONFIG_SCHEMA), load_schema(PARTICIPANTS_SCHEMA))
    args.output.write_text(text)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
