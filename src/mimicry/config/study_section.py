"""The config's study section as the steps read it: the mimicry contrast and its label,
and the parts of the section each step depends on (so that renaming the report or
changing the contrast re-runs only the steps that read them)."""


def mimicry_contrast(study):
    """The mimicry contrast's [first, second] conditions: study.mimicry_contrast, else
    the first two of study.conditions."""
    contrast = study.get("mimicry_contrast")
    return list(contrast) if contrast is not None else list(study["conditions"][:2])


def contrast_label(contrast):
    """ "Happy - Angry" for the contrast [Happy, Angry]."""
    first, second = contrast
    return f"{first} - {second}"


# Keys of the study section that only the report's front page reads.
DESCRIPTION_KEYS = ("title", "reference")


def study_settings(study):
    """study without its title and reference, for every step but the report's front
    page: renaming the report must not re-run an analysis."""
    return {key: value for key, value in study.items() if key not in DESCRIPTION_KEYS}


def study_design(study):
    """study_settings without mimicry_contrast, for the steps that never read it:
    changing the contrast must not re-run preprocessing or sampling."""
    return {
        key: value
        for key, value in study_settings(study).items()
        if key != "mimicry_contrast"
    }
