import sys

sys.stderr = open(snakemake.log[0], "w")

import json

with open(snakemake.output.settings, "w") as handle:
    json.dump(snakemake.params.settings, handle, indent=1, sort_keys=True)
    handle.write("\n")
