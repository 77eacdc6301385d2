"""Readable, backend-independent InferenceData for the asymptotic regression models.

Stan's outputs are flat: a "cell" index for muscle x condition, a "series" index for
participant x cell. Here they get the study's own names:

- a, log_c, c: (group, muscle, condition) in the drug model, (muscle, condition) in
  the pooled model; b, participant_sd, sigma: (muscle, condition); nu: scalar;
- contrast_a, contrast_c: (contrast, muscle, condition), drug model only, contrast
  labels like "naltrexone - placebo";
- rate_sd: (muscle, condition), with rate deviations only;
- participant_a (and participant_c, with rate deviations): (participant, muscle,
  condition), NaN where a participant has no data for a cell; in prior runs drawn
  from the hierarchical prior;
- y_rep, log_lik and the observed y: (obs), with participant, group, muscle,
  condition, bin and t as coordinates along obs.

In a crossover study participant_a and participant_c are (participant, group, muscle,
condition), group being the session's treatment; session and period are also
coordinates along obs; and there are session_sd (muscle, condition), period_a
(period, muscle, condition; periods labelled "2 - 1") and participant_deviation
(participant, muscle, condition), each participant's deviation shared by their
sessions.
"""

import numpy as np
import pandas as pd
import xarray as xr

# Sampled stand-ins for a, participant_a and participant_c, and the spreads' logs
# (see the Stan program); deterministic given the reported parameters, so left out.
SAMPLER_ONLY_VARIABLES = (
    "a_shift",
    "participant_a_raw",
    "participant_log_c_raw",
    "log_participant_sd",
    "log_sigma",
    "log_rate_sd",
    "log_session_sd",
)
OBSERVATION_COORDINATES = ("participant", "group", "muscle", "condition", "bin", "t")
CROSSOVER_COORDINATES = ("session", "period")
TIMESTAMP_ATTRIBUTE = "created_at"
PREDICTIVE_GROUPS = ("posterior_predictive", "prior_predictive")


def tidy_inference_data(inference_data, model_input):
    """Name every dimension after the study and add the observed data."""
    cell_index = pd.MultiIndex.from_product(
        [model_input.muscles, model_input.conditions], names=["muscle", "condition"]
    )
    series_index = pd.MultiIndex.from_frame(model_input.series[model_input.series_keys])
    unstacked = {"cell": cell_index, "series": series_index}
    if model_input.crossover:
        unstacked["unit"] = pd.MultiIndex.from_frame(model_input.units)
    order = {
        "participant": list(model_input.participants),
        "group": list(model_input.study_groups),
        "muscle": list(model_input.muscles),
        "condition": list(model_input.conditions),
    }
    observations = model_input.observations
    observation_coordinates = {
        name: ("obs", observations[name].to_numpy())
        for name in OBSERVATION_COORDINATES
        + CROSSOVER_COORDINATES * model_input.crossover
    }

    def tidy(dataset):
        arrays = {}
        for name, array in dataset.data_vars.items():
            if name in SAMPLER_ONLY_VARIABLES or array.size == 0:
                continue
            if "nu_dim_0" in array.dims:
                array = array.squeeze("nu_dim_0", drop=True)
            if model_input.model == "pooled" and "group" in array.dims:
                array = array.squeeze("group", drop=True)
            for dim, index in unstacked.items():
                array = _unstack(array, dim, index, order)
            arrays[name] = array
        tidied = xr.Dataset(arrays, attrs=dataset.attrs)
        if "obs" in tidied.dims:
            tidied = tidied.assign_coords(observation_coordinates)
        return tidied

    tidied = inference_data.map(tidy)
    tidied.add_groups(
        observed_data=xr.Dataset(
            {"y": ("obs", observations["y"].to_numpy())},
            coords={"obs": np.arange(len(observations)), **observation_coordinates},
        )
    )
    return tidied


def _unstack(array, dim, index, order):
    """Replace ``dim`` by the levels of ``index``, in the study's order."""
    if dim not in array.dims:
        return array
    coordinates = xr.Coordinates.from_pandas_multiindex(index, dim)
    unstacked = array.drop_vars(dim).assign_coords(coordinates).unstack(dim)
    return unstacked.reindex({name: order[name] for name in index.names})


def write_netcdf(inference_data, path, predictive_draws=None):
    """Write InferenceData compactly and without creation timestamps (same draws,
    same bytes).

    Draws are stored as float32: seven significant digits are far below Monte Carlo
    error, and log_lik for LOO is half the size. y_rep (posterior or prior
    predictive) keeps about predictive_draws draws, evenly spaced in every chain
    (None keeps all): predictive checks need hundreds, not thousands. The observed
    data stay float64.

    Groups are written as InferenceData.to_netcdf writes them (one netCDF group
    each, readable by arviz.from_netcdf), but with HDF5's byte shuffle before zlib,
    which ArviZ has no option for: it makes float32 draws a seventh smaller (log_lik
    of the default drug model: 73 MB instead of 84).
    """
    mode = "w"
    for group in inference_data.groups():
        dataset = inference_data[group]
        dataset.attrs.pop(TIMESTAMP_ATTRIBUTE, None)
        if group in PREDICTIVE_GROUPS and predictive_draws is not None:
            dataset = thinned(dataset, predictive_draws)
        if group != "observed_data":
            dataset = dataset.map(_as_float32, keep_attrs=True)
        encoding = {
            name: {"zlib": True, "shuffle": True}
            for name, variable in dataset.variables.items()
            if np.issubdtype(variable.dtype, np.number)
        }
        dataset.to_netcdf(
            path, mode=mode, group=group, engine="h5netcdf", encoding=encoding
        )
        mode = "a"
    return path


def thinned(dataset, total_draws):
    """About total_draws draws, evenly spaced in every chain."""
    per_chain = -(-total_draws // dataset.sizes["chain"])
    step = max(1, dataset.sizes["draw"] // per_chain)
    return dataset.isel(draw=slice(None, None, step))


def _as_float32(array):
    return array.astype(np.float32) if array.dtype == np.float64 else array
