"""The multiverse's band axis against the recordings' sampling rates, on the real
100 Hz FMOV study (../shared/realdata/fmov, read from disk): a value the rate cannot
carry is refused before any job naming multiverse.axes.band_hz, the default axis
(null: derived from preprocess.band_hz) fits the rate, and where the rate is only
known once a recording is read the job's error names the axis too."""

import copy

import pytest
import yaml

from mimicry.robustness import multiverse
from helpers.devtools import job_counts, run_snakemake
from mimicry.io.recording_types import RecordingError
from mimicry.package_data import CONFIG_SCHEMA
from mimicry.preprocessing.preprocess import read_participant_recording
from mimicry.robustness.multiverse_preprocess import preprocess_universes

FMOV = "config/examples/fmov/config.yaml"
TOO_HIGH = [20.0, 450.0]
FITS = [20.0, 40.0]


def fmov_multiverse(workflow_copy, fmov_config, axes=None):
    """Snakemake arguments for the FMOV study read from disk (fmov_config's source)
    with the multiverse on, over the given axes or the default ones."""
    settings = {
        "source": fmov_config["source"],
        "multiverse": {"enabled": True} | ({"axes": axes} if axes else {}),
    }
    (workflow_copy / "fmov-multiverse.yaml").write_text(yaml.safe_dump(settings))
    return ("--configfile", FMOV, "fmov-multiverse.yaml")


@pytest.mark.workflow
def test_a_band_above_nyquist_is_refused_at_start_naming_the_axis(
    workflow_copy, fmov_config
):
    arguments = fmov_multiverse(
        workflow_copy,
        fmov_config,
        {"band_hz": [TOO_HIGH, FITS], "value": ["log_ratio"]},
    )
    dry = run_snakemake(workflow_copy, "-n", *arguments, check=False)
    output = dry.stdout + dry.stderr
    assert dry.returncode != 0
    assert f"multiverse.axes.band_hz {TOO_HIGH}: the upper edge 450 Hz" in output
    assert "37 participants (100 Hz, recording.text.sampling_rate_hz)" in output
    assert "set multiverse.axes.band_hz below half the lowest rate" in output
    assert str(FITS) not in output and "preprocess.band_hz" not in output


@pytest.mark.workflow
def test_the_default_band_axis_fits_a_100_hz_study(workflow_copy, fmov_config):
    config = fmov_config | {"multiverse": fmov_config["multiverse"] | {"enabled": True}}
    grid = multiverse.universes(config)
    bands = multiverse.derived_bands(fmov_config["preprocess"]["band_hz"])
    assert fmov_config["multiverse"]["axes"]["band_hz"] is None
    assert {str(universe.choices["band_hz"]) for universe in grid} == set(
        map(str, bands)
    )
    assert all(high < 100 / 2 for _, high in bands)

    dry = run_snakemake(
        workflow_copy, "-n", *fmov_multiverse(workflow_copy, fmov_config)
    )
    counts = job_counts(dry.stdout)
    assert counts["multiverse_universe"] == len(grid)
    assert counts["multiverse_preprocess"] == counts["preprocess"] == 37
    assert "band-20to45__" in dry.stdout and "band-10to40__" in dry.stdout


def test_the_default_grid_at_1000_hz_is_unchanged(default_config):
    """108 universes, the band axis [20, 450], [20, 250], [10, 400] Hz as it was
    declared before it was derived; the schema's description states both bands."""
    grid = multiverse.universes(default_config)
    assert len(grid) == 108
    assert multiverse.axis_values(default_config)["band_hz"] == [
        [20.0, 450.0],
        [20.0, 250.0],
        [10.0, 400.0],
    ]
    schema = yaml.safe_load(CONFIG_SCHEMA.read_text())
    axes = schema["properties"]["multiverse"]["properties"]["axes"]
    described = " ".join(axes["description"].split())
    for band, rate in (
        ([20.0, 450.0], "the default 20-450 Hz"),
        ([20, 45], "a 100 Hz study's 20-45 Hz"),
    ):
        listed = [
            f"[{low:g}, {high:g}]" for low, high in multiverse.derived_bands(band)
        ]
        assert f"{', '.join(listed[:-1])} and {listed[-1]} Hz" in described, band
        assert rate in described


def test_a_null_axis_other_than_the_band_is_refused(default_config):
    config = copy.deepcopy(default_config)
    config["multiverse"]["axes"]["bin_s"] = None
    with pytest.raises(multiverse.MultiverseConfigError, match="multiverse.axes.bin_s"):
        multiverse.universes(config)


def test_a_job_reading_a_rate_too_low_for_the_axis_names_it(fmov_study, fmov_config):
    """Where the rate is only known once the recording is read (a downloaded EDF), the
    multiverse job's error names multiverse.axes.band_hz, not preprocess.band_hz."""
    config = fmov_config | {
        "multiverse": fmov_config["multiverse"]
        | {"enabled": True, "axes": {"band_hz": [FITS, TOO_HIGH]}}
    }
    participant = "09"
    recording = read_participant_recording(
        fmov_study / "FMOV" / f"{participant}_FMOV_preprocessed.txt",
        participant,
        config,
        file_format="txt",
    )
    with pytest.raises(RecordingError) as error:
        preprocess_universes(
            recording, config["study"]["conditions"], multiverse.universes(config)
        )
    assert "upper edge 450 Hz" in str(error.value)
    assert "(set multiverse.axes.band_hz)" in str(error.value)
