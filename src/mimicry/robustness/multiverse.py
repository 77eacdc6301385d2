"""The multiverse: a declared grid of preprocessing pipelines ("universes").

`multiverse.axes` maps preprocess keys (dotted for nested ones, such as
rejection.rules) to the values each takes; the universes are their product, less
those matching an entry of `multiverse.exclude`. A band_hz axis of null takes values
derived from preprocess.band_hz (`derived_bands`), which is itself checked against
the recordings' sampling rates. A universe's preprocess settings
are the config's preprocess section with its axis values set. Its id is made from
its axes and their values alone, so it stays the same when values are added to an
axis or the axes reordered, and it names the choices it stands for.

Per participant, `mimicry.robustness.multiverse_preprocess.preprocess_universes` filters
the recording once per distinct filter setting and derives each universe's epochs, bins
and rejections from the shared filtered signal. This module stays light (no SciPy or
pyarrow): every Snakemake start expands the grid.
"""

import copy
import itertools
from dataclasses import dataclass

import jsonschema

from mimicry.preprocessing.checks import rate_problems, setting_problems

# The response scale the drug model's priors and ROPE are stated on: the Bayesian
# arm (mimicry.robustness.multiverse_bayes) fits only universes with it.
MODEL_SCALE = "log_ratio"
# Units dropped from an axis's last key component in its id token.
UNIT_SUFFIXES = ("_hz", "_s", "_uv")
AXIS_SEPARATOR = "__"
# A band_hz axis of null: per value, the factors of preprocess.band_hz's low and high
# edges. The default band [20, 450] Hz gives [20, 450], [20, 250] and [10, 400]: the
# edges facial-EMG studies choose between, all inside the configured band.
DERIVED_BAND_FACTORS = ((1, 1), (1, 5 / 9), (1 / 2, 8 / 9))
BAND_AXIS = "band_hz"


class MultiverseConfigError(ValueError):
    """The multiverse section does not fit the preprocess section; says which key."""


@dataclass(frozen=True)
class Universe:
    id: str
    choices: dict  # axis (dotted preprocess key) -> value
    preprocess: dict  # the whole preprocess section with the choices set


def axis_values(config):
    """multiverse.axes with a null band_hz axis given its derived values."""
    values = dict(config["multiverse"]["axes"])
    for axis in [axis for axis, choices in values.items() if choices is None]:
        if axis != BAND_AXIS:
            raise MultiverseConfigError(
                f"multiverse.axes.{axis} is null, which only {BAND_AXIS} allows "
                f"(values derived from preprocess.{BAND_AXIS}); give its values"
            )
        values[axis] = derived_bands(config["preprocess"][BAND_AXIS])
    return values


def derived_bands(band_hz):
    """The band axis a null multiverse.axes.band_hz stands for: preprocess.band_hz
    [low, high] with each edge scaled by DERIVED_BAND_FACTORS, to 0.1 Hz."""
    low, high = band_hz
    bands = [
        [float(round(low * low_factor, 1)), float(round(high * high_factor, 1))]
        for low_factor, high_factor in DERIVED_BAND_FACTORS
    ]
    for band in bands:
        if not band[0] < band[1]:
            raise MultiverseConfigError(
                f"multiverse.axes.{BAND_AXIS} is null, so its values are derived from "
                f"preprocess.{BAND_AXIS} {list(band_hz)}: {bands}, of which {band} is "
                f"not a band (low < high); give multiverse.axes.{BAND_AXIS} its values"
            )
    return bands


def universes(config):
    """Every universe of the grid, in the order of the axes' values."""
    axes = axis_values(config)
    exclusions = config["multiverse"]["exclude"]
    for exclusion in exclusions:
        unknown = sorted(set(exclusion) - set(axes))
        if unknown:
            raise MultiverseConfigError(
                f"multiverse.exclude entry {exclusion} names {unknown}, which "
                f"multiverse.axes does not have (axes: {sorted(axes)})"
            )
    grid = []
    for values in itertools.product(*axes.values()):
        choices = dict(zip(axes, values))
        if any(
            all(choices[axis] == value for axis, value in exclusion.items())
            for exclusion in exclusions
        ):
            continue
        grid.append(
            Universe(
                id=universe_id(choices),
                choices=choices,
                preprocess=with_choices(config["preprocess"], choices),
            )
        )
    if not grid:
        raise MultiverseConfigError(
            "multiverse.exclude leaves no universe of the multiverse.axes grid"
        )
    return grid


def on_model_scale(grid):
    """The universes whose response is on the drug model's scale."""
    return [
        universe for universe in grid if universe.preprocess["value"] == MODEL_SCALE
    ]


def with_choices(preprocess, choices):
    """A copy of the preprocess section with each axis key set to its value."""
    settings = copy.deepcopy(preprocess)
    for axis, value in choices.items():
        *parents, key = axis.split(".")
        section = settings
        for parent in parents:
            section = section.get(parent)
            if not isinstance(section, dict):
                break
        if not isinstance(section, dict) or key not in section:
            raise MultiverseConfigError(
                f"multiverse.axes key '{axis}' is not a key of the preprocess section"
            )
        section[key] = copy.deepcopy(value)
    return settings


def universe_id(choices):
    """'band-20to450__baseline-m1to0__rules-transient+baseline__value-log_ratio':
    the axes in alphabetical order of their keys, so the order they are declared in
    does not matter."""
    return AXIS_SEPARATOR.join(
        f"{axis_token(axis)}-{value_token(choices[axis])}" for axis in sorted(choices)
    )


def axis_token(axis):
    name = axis.split(".")[-1]
    for suffix in UNIT_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def value_token(value):
    if value is None or value == []:
        return "none"
    if isinstance(value, list):
        separator = "to" if all(_is_number(item) for item in value) else "+"
        return separator.join(value_token(item) for item in value)
    if _is_number(value):
        return f"{value:g}".replace("-", "m")
    return str(value)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def band_rate_problems(config, declared_rates):
    """Messages for the multiverse.axes.band_hz values whose upper edge is at or above
    the Nyquist frequency of a recording's declared sampling rate (see
    `mimicry.preprocessing.checks.rate_problems`)."""
    key = f"multiverse.axes.{BAND_AXIS}"
    if config["multiverse"]["axes"].get(BAND_AXIS, []) is None:
        key += f" (derived from preprocess.{BAND_AXIS})"
    bands = []
    for universe in universes(config):
        band = universe.choices.get(BAND_AXIS)
        if band is not None and band not in bands:
            bands.append(band)
    for band in bands:
        yield from rate_problems(band, declared_rates, key)


def universe_problems(config, preprocess_schema):
    """Messages, one per universe whose settings the preprocess section's schema or
    its cross-key checks reject, naming the universe and multiverse.axes."""
    simulation = (
        config["simulation"] if config["source"]["kind"] == "simulated" else None
    )
    grid = universes(config)
    if config["multiverse"]["bayesian"]["enabled"] and not on_model_scale(grid):
        yield (
            "multiverse.bayesian.enabled: no universe has the response on the drug "
            f"model's scale (preprocess.value {MODEL_SCALE})"
        )
    for universe in grid:
        where = f"multiverse.axes: universe {universe.id}"
        try:
            jsonschema.validate(universe.preprocess, preprocess_schema)
        except jsonschema.ValidationError as error:
            path = ".".join(map(str, error.absolute_path))
            yield f"{where}: preprocess.{path}: {error.message}"
            continue
        for problem in setting_problems(universe.preprocess, simulation):
            yield f"{where}: {problem}"
