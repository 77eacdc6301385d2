"""How strong is the null: the design sensitivity sweep, the multiverse of preprocessing
and model choices (its grid, preprocessing and analysis), and the simulated study like a
user's own that tells what their design could detect.
"""
