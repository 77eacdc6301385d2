"""The multiverse's preprocessing: one participant's recording through every universe
of the grid (mimicry.robustness.multiverse), filtered once per distinct filter setting,
and the universes' trial tables and QC combined into one table each.
"""

import numpy as np
import pyarrow as pa

from mimicry.preprocessing.filters import FILTER_KEYS
from mimicry.preprocessing.preprocess import Rectified, arrow_array, epoch_and_screen


def preprocess_universes(recording, conditions, grid, limits_cache=None):
    """{universe id: (table, qc)} as `preprocess_recording` gives them, for each
    universe of grid, filtering once per distinct filter setting."""
    # Imported here: the single pipeline's jobs need not import the multiverse.
    from mimicry.robustness.multiverse import BAND_AXIS

    results = {}
    for members in _by_filter(grid).values():
        band_key = (
            f"multiverse.axes.{BAND_AXIS}"
            if BAND_AXIS in members[0].choices
            else "preprocess.band_hz"
        )
        rectified = Rectified(recording, members[0].preprocess, band_key)
        for universe in members:
            results[universe.id] = epoch_and_screen(
                recording, conditions, universe.preprocess, rectified, limits_cache
            )
    return {universe.id: results[universe.id] for universe in grid}


# What aggregation reads of a universe's QC (the rest repeats per universe).
UNIVERSE_QC_KEYS = (
    "participant",
    "excluded",
    "exclusion_reasons",
    "trials_per_condition",
    "dropped_trigger_pulses",
)


def combined_universe_outputs(results):
    """`preprocess_universes`' results as one table, its first column the universe
    id, and {universe id: the QC that aggregation reads}."""
    tables, qcs = [], {}
    for universe_id, (table, qc) in results.items():
        ids = arrow_array(np.full(table.num_rows, universe_id), pa.string())
        tables.append(table.add_column(0, "universe", ids))
        qcs[universe_id] = {key: qc[key] for key in UNIVERSE_QC_KEYS}
    return pa.concat_tables(tables), qcs


def _by_filter(grid):
    """Universes grouped by their filter settings (FILTER_KEYS)."""
    groups = {}
    for universe in grid:
        key = repr([universe.preprocess[name] for name in FILTER_KEYS])
        groups.setdefault(key, []).append(universe)
    return groups
