"""The drug model fitted to a cells table, with its drug contrasts: what the
sensitivity replicates and the multiverse's universes each decide on."""

from mimicry.bayes.backend import DEFAULT_STAN_FILE, sample
from mimicry.bayes.data import build_model_input
from mimicry.bayes.summaries import contrasts_table
from mimicry.config.study_section import mimicry_contrast


def fit_drug_contrasts(cells, study, models, sampler, stan_file=DEFAULT_STAN_FILE):
    """(inference_data, contrasts) of the drug model on ``cells``, with the config
    models section's likelihood, rate deviations and ROPE."""
    model_input = build_model_input(
        cells,
        study,
        "drug",
        models["likelihood"],
        rate_deviations=models["rate_deviations"],
    )
    inference_data = sample(model_input, sampler, stan_file)
    contrasts = contrasts_table(
        inference_data,
        models["rope"],
        study["reference_group"],
        mimicry_contrast(study),
    )
    return inference_data, contrasts
