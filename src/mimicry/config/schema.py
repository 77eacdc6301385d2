"""The config schema as data: its keys, hints for unknown keys, numbers given as text.

A key's path names a mapping's entries by the `title` of their schema (`<muscle>`, or
`<name>` without one) and array items by `[]`: `simulation.cells.<muscle>.<condition>.a`,
`simulation.drug_effects[].group`.
"""

import difflib
import re
from dataclasses import dataclass

import jsonschema
import yaml

INTEGER = re.compile(r"[-+]?\d+")
NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
BOOLEANS = {"true": True, "false": False}
NULLS = ("null", "Null", "NULL", "~")


@dataclass(frozen=True)
class Key:
    """One key the schema names: its path, its schema and whether its parent needs it."""

    path: tuple
    schema: dict
    required: bool

    @property
    def name(self):
        text = ""
        for segment in self.path:
            text += segment if segment == "[]" or not text else f".{segment}"
        return text


def load_schema(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def keys(schema, path=()):
    """Every key the schema names at any depth, depth first in schema order.

    Descends into properties, mapping entries (additionalProperties schemas), array
    items and the branches of oneOf/anyOf/allOf.
    """
    for branch in _branches(schema):
        required = set(branch.get("required", ()))
        for name, child in branch.get("properties", {}).items():
            yield Key(path + (name,), child, name in required)
            yield from keys(child, path + (name,))
        entry = branch.get("additionalProperties")
        if isinstance(entry, dict):
            yield from keys(entry, path + (f"<{entry.get('title', 'name')}>",))
        items = branch.get("items")
        if isinstance(items, dict):
            yield from keys(items, path + ("[]",))


def _branches(schema):
    """The schema and, recursively, its oneOf/anyOf/allOf alternatives."""
    yield schema
    for keyword in ("oneOf", "anyOf", "allOf"):
        for branch in schema.get(keyword, ()):
            yield from _branches(branch)


def _types(schema):
    types = set()
    for branch in _branches(schema):
        declared = branch.get("type", ())
        types.update([declared] if isinstance(declared, str) else declared)
    return types


def _instance_path(path):
    text = ""
    for segment in path:
        if isinstance(segment, int):
            text += f"[{segment}]"
        else:
            text += segment if not text else f".{segment}"
    return text


def unknown_key_messages(config, schema):
    """One message per key the schema does not allow, with the closest known key."""
    messages = []
    validator = jsonschema.Draft202012Validator(schema)
    for error in validator.iter_errors(config):
        if error.validator != "additionalProperties" or error.validator_value:
            continue
        known = list(error.schema.get("properties", {}))
        for key in sorted(set(error.instance) - set(known)):
            path = _instance_path([*error.absolute_path, key])
            match = difflib.get_close_matches(key, known, n=1)
            if match:
                hint = (
                    f"did you mean '{_instance_path([*error.absolute_path, *match])}'?"
                )
            else:
                hint = f"known keys here: {', '.join(known)}"
            messages.append(f"config key '{path}' is not known; {hint}")
    return sorted(messages)


def coerce_scalars(value, schema):
    """Text that spells a number, a boolean or null where the schema wants one, as
    that value (YAML spellings: true/false in any case, null or ~).

    Snakemake's --config reads nested values as text (`stan={chains: 2}` gives '2',
    `simulation={keep_raw: true}` gives 'true'). Mappings and lists are converted in
    place; the converted value is returned.
    """
    if isinstance(value, str):
        return _scalar(value, _types(schema))
    if isinstance(value, dict):
        for key, item in value.items():
            child = _child_schema(schema, key)
            if child is not None:
                value[key] = coerce_scalars(item, child)
    elif isinstance(value, list):
        items = next(
            (b["items"] for b in _branches(schema) if isinstance(b.get("items"), dict)),
            None,
        )
        if items is not None:
            value[:] = [coerce_scalars(item, items) for item in value]
    return value


def _scalar(text, types):
    # Text the schema also accepts stays text.
    if "string" in types:
        return text
    if types & {"integer", "number"} and INTEGER.fullmatch(text):
        return int(text)
    if "number" in types and NUMBER.fullmatch(text):
        return float(text)
    if "boolean" in types and text.lower() in BOOLEANS:
        return BOOLEANS[text.lower()]
    if "null" in types and text in NULLS:
        return None
    return text


def _child_schema(schema, key):
    for branch in _branches(schema):
        if key in branch.get("properties", {}):
            return branch["properties"][key]
    for branch in _branches(schema):
        if isinstance(branch.get("additionalProperties"), dict):
            return branch["additionalProperties"]
    return None
