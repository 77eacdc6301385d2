"""Per-participant preprocessing: filter, rectify, epoch and bin each recording, reject
artifacts against noise limits computed for its rate and band, and the spectra and
setting checks that go with it. The multiverse's variant lives in
mimicry.robustness.multiverse_preprocess.
"""
