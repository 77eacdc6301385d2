"""The report's methods text and caption terms, written from the run's configuration.

Snakemake renders the report's rst files with Jinja2: the workflow description sees
only the config, a result's caption also its rule's params. Sentences that depend on
several settings (which notches ran, which random effects, which likelihood) are
written here, so that the rst files only place them:

- ``workflow_description(config)``: the report's front page, written to
  results/report/workflow.rst by the ``report_methods`` rule;
- ``caption_terms(config, caption)``: the phrases one caption uses, passed as its
  rule's ``methods`` param (only those, so that a setting a result does not depend on
  never re-runs its rule).

Imported while Snakemake builds the DAG, so it imports nothing heavy.
"""

import unicodedata

from mimicry.config.study_section import contrast_label, mimicry_contrast
from mimicry.robustness.sensitivity import effect_target

RESPONSE_UNITS = {
    "log_ratio": "log ratio to baseline",
    "difference": "difference to baseline (uV)",
    "zscore": "z-scored log ratio to baseline",
}
# The priors of mimicry/bayes/stan/asymptotic_regression.stan (fixed there, not config);
# tests/test_report.py checks that the program states each of them.
PRIORS = (
    "a ~ normal(0, 0.5)",
    "b ~ normal(0, 0.2)",
    "log_c ~ normal(log(0.5), 1)",
    "participant_sd ~ normal(0, 0.3)",
    "sigma ~ normal(0, 0.3)",
)
STUDENT_T_PRIOR = "nu ~ gamma(2, 0.1)"
RATE_DEVIATION_PRIOR = "rate_sd ~ normal(0, 0.5)"
CROSSOVER_PRIORS = ("session_sd ~ normal(0, 0.3)", "period_a ~ normal(0, 0.5)")
RANDOM_EFFECTS = {
    "condition_shape": (
        "per participant a random weight of the response shape 1 - exp(-t / 2 s) for "
        "each condition (unstructured covariance) and a random intercept per "
        "participant and condition (one shared variance)"
    ),
    "condition": "a random intercept per participant and condition",
    "intercept": "one random intercept per participant",
}
# What a crossover study's structures add
# (mimicry.stats.mixed_model_fit.random_effects_design).
CROSSOVER_RANDOM_EFFECTS = {
    "condition_shape": (
        "random intercepts per participant and session, per participant, session and "
        "condition, and per participant, condition and bin, and a random weight of the "
        "response shape per participant, session and condition (one shared variance "
        "each)"
    ),
    "condition": "a random intercept per participant and session",
    "intercept": "a random intercept per participant and session",
}
LIKELIHOODS = {
    "student_t": f"a Student-t likelihood with one estimated nu ({STUDENT_T_PRIOR})",
    "normal": "a normal likelihood",
}
# caption -> the terms its rst file uses
CAPTIONS = {
    "fig1": (
        "conditions",
        "groups",
        "muscles",
        "response",
        "contrast",
        "first",
        "second",
    ),
    "fig2": ("response", "likelihood"),
    "fig3": ("reference_group", "rope", "likelihood", "window_end"),
    "stats": ("frequentist",),
    "sensitivity": ("sensitivity",),
    "model_summary": ("bayesian",),
    "contrasts": ("reference_group", "rope", "curve_priors"),
    "qc_warnings": ("warn_excluded_share", "warn_rejected_share"),
}


def words(items):
    """ "A", "A and B", "A, B and C"."""
    items = [str(item) for item in items]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def ordinal(number):
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{'th' if 10 <= number % 100 <= 20 else suffix}"


def notch_frequencies(preprocess):
    """The notch centre frequencies the config asks for, before the per-recording
    Nyquist check; empty when there is no notch."""
    harmonics = preprocess["notch_harmonics"]
    if preprocess["mains_hz"] is None:
        return []
    multiples = range(1, harmonics + 1) if isinstance(harmonics, int) else harmonics
    return [preprocess["mains_hz"] * multiple for multiple in multiples]


def filters(preprocess):
    """The band-pass and notch filters, as applied (e.g. "no notch" without mains)."""
    low, high = preprocess["band_hz"]
    band = (
        f"band-passed {low:g}-{high:g} Hz ({ordinal(preprocess['band_order'])}-order "
        "Butterworth, applied forwards and backwards)"
    )
    notches = notch_frequencies(preprocess)
    if not notches:
        setting = (
            "preprocess.mains_hz: null"
            if preprocess["mains_hz"] is None
            else f"preprocess.notch_harmonics: {preprocess['notch_harmonics']}"
        )
        return f"{band}, with no notch filter ({setting})"
    return (
        f"{band} and notched at {words(f'{f:g}' for f in notches)} Hz (mains "
        f"{preprocess['mains_hz']:g} Hz and harmonics; Butterworth band-stops of order "
        f"{preprocess['notch_order']}, {preprocess['notch_width_hz']:g} Hz wide; a notch "
        "reaching a recording's Nyquist frequency is skipped and listed in that "
        "participant's results/qc/ file)"
    )


def response(preprocess):
    """What one value of the cells table is."""
    baseline = "{:g} to {:g} s".format(*preprocess["baseline_s"])
    window = "{:g} to {:g} s".format(*preprocess["response_s"])
    kind = preprocess["value"]
    measure = {
        "log_ratio": "the log ratio of its mean rectified amplitude to the baseline mean",
        "difference": "its mean rectified amplitude minus the baseline mean (uV)",
        "zscore": (
            "the log ratio of its mean rectified amplitude to the baseline mean, "
            "z-scored per participant and muscle over the kept trials"
        ),
    }[kind]
    return (
        f"rectified, cut into epochs (baseline {baseline}, response {window} after "
        f"stimulus onset) and averaged in {preprocess['bin_s']:g} s bins; each bin is "
        f"{measure}"
    )


def rejection(preprocess):
    """The artifact-rejection rules that ran and the exclusion rules."""
    settings = preprocess["rejection"]
    rule_text = {
        "transient": (
            f"transient: a {settings['transient_window_s']:g} s window's mean "
            f"rectified amplitude more than {settings['transient_ratio']:g} times, or "
            f"less than 1/{settings['transient_ratio']:g} of, the median of the windows "
            f"within {settings['transient_context_s']:g} s around it, or beyond the "
            "noise limit where that is wider"
        ),
        "baseline": (
            f"baseline: a baseline mean more than {settings['baseline_ratio']:g} times, "
            f"or less than 1/{settings['baseline_ratio']:g} of, the muscle's median "
            "baseline, or beyond the noise limit where that is wider"
        ),
        "condition_outlier": (
            "condition_outlier: a bin with a robust z (median/MAD) above "
            f"{settings['condition_z']:g} among the kept trials of its muscle and "
            f"condition, in cells with at least {settings['condition_min_trials']} "
            "kept trials"
        ),
    }
    # The rules always run in this order, whatever the order of the list.
    rules = [rule for rule in rule_text if rule in settings["rules"]]
    if rules:
        applied = (
            "A trial was rejected for a muscle by the first of these rules it met "
            f"(preprocess.rejection): {'; '.join(rule_text[rule] for rule in rules)}. "
            "A noise limit is the departure that stationary Gaussian noise, filtered "
            "like the recording at its sampling rate, reaches in at most "
            f"{settings['false_alarm_rate']:.0%} of trials (calibrated on "
            f"{settings['calibration_trials']} simulated trials; each participant's "
            "limits are in its QC file)"
        )
    else:
        applied = (
            "No artifact rejection rule ran (preprocess.rejection.rules is empty); "
            "only trials outside the recording were rejected"
        )
    return (
        f"{applied}. A participant was excluded when a muscle x condition cell kept "
        f"less than {preprocess['min_kept_share']:.0%} or fewer than "
        f"{preprocess['min_kept_trials']} of its trials, or a channel was flat (mean "
        f"rectified amplitude below {preprocess['flat_amplitude_uv']:g} uV) or "
        f"saturated (more than {preprocess['saturation_share']:.2%} of samples at its "
        "extremes)"
    )


def frequentist(config):
    study = config["study"]
    structure = config["frequentist"]["random_effects"]
    crossover = study.get("design") == "crossover"
    factor = study.get("participant_factor")
    fixed = "drug x condition x time bin"
    tests = "with drug x condition, with drug, or with condition"
    if factor is not None:
        fixed += f" + {factor['column']} x condition x time bin"
        tests = (
            f"with drug x condition, with {factor['column']} x condition, with drug, "
            "or with condition"
        )
    if crossover:
        fixed += " + period"
    random_effects = RANDOM_EFFECTS[structure]
    if crossover:
        random_effects += (
            ", shared by the participant's sessions, plus "
            + CROSSOVER_RANDOM_EFFECTS[structure]
        )
    text = (
        "Frequentist linear mixed models per muscle, fitted by maximum likelihood "
        f"(lme4's profiled deviance): y ~ {fixed} (bins as a factor; "
        f"treatment coding against {study['reference_group']}, "
        f"{study['conditions'][0]} and the first bin) with {random_effects} "
        f"(frequentist.random_effects: {structure}). Likelihood-ratio tests drop every "
        f"term {tests}. The mimicry "
        f"contrast {contrast_label(mimicry_contrast(study))} (study.mimicry_contrast) "
        "is averaged over bins per drug group, and each drug's contrast is compared "
        f"with {study['reference_group']}'s (Wald tests, 95% intervals)"
    )
    if crossover:
        text += (
            "; in this crossover study (study.design) drug varies within "
            "participants, one session per drug"
        )
    if factor is not None:
        text += (
            f"; the mimicry contrast is also given per {factor['column']} level and "
            f"against {factor['levels'][0]} (study.participant_factor)"
        )
    return text


def bayesian(config):
    stan, models = config["stan"], config["models"]
    seed = config["seed"] if stan["seed"] is None else stan["seed"]
    priors = list(PRIORS)
    if models["likelihood"] == "student_t":
        priors.append(STUDENT_T_PRIOR)
    deviations = "asymptote around its cell's a"
    if models["rate_deviations"]:
        priors.append(RATE_DEVIATION_PRIOR)
        deviations = (
            "asymptote around its cell's a and log rate around its cell's log c "
            "(models.rate_deviations)"
        )
    series = "participant"
    if config["study"].get("design") == "crossover":
        priors += CROSSOVER_PRIORS
        series = "participant x session"
        deviations += (
            ", the asymptote's deviation being the participant's own, shared by its "
            "sessions, plus the session's (session_sd), and a period effect per cell "
            "(period_a): in this crossover study (study.design) the drug contrasts "
            "are within participants"
        )
    return (
        "Bayesian asymptotic regression mu(t) = a + (b - a) exp(-c t) in Stan, one "
        f"curve per {series} x muscle x condition with a participant-level "
        f"{deviations}, a residual scale per cell and "
        f"{LIKELIHOODS[models['likelihood']]} (models.likelihood: "
        f"{models['likelihood']}); the pooled model ignores drug, the drug model has a "
        "and c per drug group. Priors (mimicry/bayes/stan/asymptotic_regression.stan): "
        f"{'; '.join(priors)}. Sampler ({stan['backend']} backend): {stan['chains']} "
        f"chains of {stan['warmup']} warm-up and {stan['draws']} kept draws, "
        f"adapt_delta {stan['adapt_delta']:g}, maximum tree depth "
        f"{stan['max_treedepth']}, seed {seed}; the prior predictive check keeps "
        f"{stan['prior_draws']} draws per chain"
    )


def rope(config):
    shares = config["models"]["rope"]
    first, second = mimicry_contrast(config["study"])
    reference = config["study"]["reference_group"]
    return (
        f"+/- {shares['a_share_of_mimicry']:.0%} of the {reference} group's mimicry on "
        f"the muscle (its {first} - {second} asymptote difference) for a, and +/- "
        f"{shares['c_share']:.0%} of the {reference} group's rate in the cell for c "
        "(models.rope)"
    )


def curve_priors():
    """The priors of each drug group's a and log c, which the contrasts' Bayes
    factors compare with."""
    stated = [prior for prior in PRIORS if prior.startswith(("a ", "log_c "))]
    return f"{words(stated)}, independently for every group"


def sensitivity(config):
    settings = config["sensitivity"]
    group, muscle, condition = effect_target(config)
    seed = config["seed"] if settings["seed"] is None else settings["seed"]
    sampler = settings["sampler"]
    effects = "; ".join(
        f"{parameter} {words([f'{value:g}' for value in values])}"
        for parameter, values in settings["effects"].items()
        if values
    )
    return (
        f"drug effects on {group}'s {muscle} {condition} cell (a shifted, or c "
        f"multiplied by exp(value): {effects}; sensitivity.effects) in "
        f"{settings['replicates']} replicate studies per effect of the analysed "
        "design (its groups and their sizes, the simulated participants of the "
        "simulation section, Gaussian bin noise with the analysed cells' residual "
        f"sd; seed {seed}), analysed with the mixed models' drug x condition LRT and "
        f"1-df mimicry contrast (alpha {settings['alpha']:g}) and, in the first "
        f"{settings['bayesian_replicates']}, the drug model's 95% HDI of the contrast "
        f"({sampler['chains']} chains of {sampler['warmup']} warm-up and "
        f"{sampler['draws']} draws); power target {settings['power_target']:.0%}"
    )


def terms(config):
    """Every phrase a caption can use."""
    study = config["study"]
    first, second = mimicry_contrast(study)
    return {
        "conditions": words(study["conditions"]),
        "groups": words(study["groups"]),
        "reference_group": study["reference_group"],
        "muscles": words(study["muscles"]),
        "response": RESPONSE_UNITS[config["preprocess"]["value"]],
        "contrast": contrast_label([first, second]),
        "first": first,
        "second": second,
        "likelihood": LIKELIHOODS[config["models"]["likelihood"]],
        "window_end": f"{config['preprocess']['response_s'][1]:g} s",
        "rope": rope(config),
        "curve_priors": curve_priors(),
        "frequentist": frequentist(config),
        "bayesian": bayesian(config),
        "sensitivity": sensitivity(config),
        "warn_excluded_share": f"{config['preprocess']['warn_excluded_share']:.0%}",
        "warn_rejected_share": (
            f"{config['preprocess']['rejection']['warn_rejected_share']:.0%}"
        ),
    }


def caption_terms(config, caption):
    """The phrases the caption (a name in ``CAPTIONS``) uses."""
    available = terms(config)
    return {name: available[name] for name in CAPTIONS[caption]}


def heading(title):
    """A reStructuredText section title: the text over an underline as wide."""
    width = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in title)
    return f"{title}\n{'=' * width}"


def workflow_description(config):
    """The report's front page (reStructuredText): its title (study.title), the
    study's reference (study.reference), data, design and methods."""
    study = config["study"]
    first, second = mimicry_contrast(study)
    others = [g for g in study["groups"] if g != study["reference_group"]]
    preprocess = config["preprocess"]
    source = config["source"]
    sheet = (
        f"{source['bids']['root']}/participants.tsv"
        if source["kind"] == "bids"
        else config["participants"]
    )
    data = f"{sheet} (source: {source['kind']})"
    paragraphs = [
        heading(study["title"]),
        (
            f"Study: {study['reference']}. Data: {data}."
            if study["reference"]
            else f"Data: {data}."
        ),
        f"Design: drug groups {words(others)} against the reference group "
        f"{study['reference_group']}; stimulus conditions {words(study['conditions'])}; "
        f"muscles {words(study['muscles'])}. The mimicry contrast is "
        f"{contrast_label([first, second])}: the {first} minus the {second} response.",
        f"Raw facial EMG was {filters(preprocess)}, then {response(preprocess)}. "
        f"{rejection(preprocess)}; see the QC table.",
        f"{frequentist(config)}.",
        f"{bayesian(config)}. Drug contrasts (each drug minus "
        f"{study['reference_group']}) of a and c have regions of practical equivalence "
        f"{rope(config)} and Savage-Dickey Bayes factors of no difference. The pooled "
        "and drug models are compared by PSIS-LOO, leaving out one observation or one "
        "participant at a time.",
    ]
    return "\n\n".join(paragraphs) + "\n"
