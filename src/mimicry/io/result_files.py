"""Reading the workflow's own results, with a message that says how to remake a bad one.

A result that cannot be read (truncated by a full disk, a crash or a copy, or edited by
hand) would otherwise stop its consumer with a bare HDF5, Arrow or JSON error. Every
consumer reads results through these functions, so the error names the file and the
command that remakes it and everything made from it; Snakemake's --forcerun takes the
file itself, so no table of producing rules is needed.

Imported by the QC figures' jobs, so it imports nothing heavier than pandas at the top.
"""

import json

import pandas as pd


class DamagedResultError(RuntimeError):
    """A result file cannot be read; the message names it and its remake command."""


def remake_command(path):
    return f"snakemake --cores all --forcerun {path}"


def read_result(path, reader, *args, **kwargs):
    """reader(path, ...) or a DamagedResultError naming path and how to remake it."""
    try:
        return reader(path, *args, **kwargs)
    except FileNotFoundError:
        raise  # missing, not damaged: its own message says so
    except Exception as error:
        raise DamagedResultError(
            f"{path} cannot be read ({type(error).__name__}: {error}); it is damaged "
            f"(e.g. truncated or edited). Remake it and everything made from it with: "
            f"{remake_command(path)} (add the --configfile options of your run)"
        ) from error


def read_parquet(path, **kwargs):
    return read_result(path, pd.read_parquet, **kwargs)


def read_json(path):
    def load(file_path):
        with open(file_path) as handle:
            return json.load(handle)

    return read_result(path, load)


def read_netcdf(path):
    """A posterior or prior file (ArviZ InferenceData), loaded whole."""
    import arviz as az

    def load(file_path):
        # Lazily loaded groups would fail later, in the middle of the consumer's work.
        with az.rc_context({"data.load": "eager"}):
            return az.from_netcdf(file_path)

    return read_result(path, load)


def read_tsv(path, **kwargs):
    return read_result(path, pd.read_csv, sep="\t", **kwargs)
