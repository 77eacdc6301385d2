"""Decision rules on a posterior interval, for one contrast or a column of them."""


def hdi_excludes_zero(low, high):
    """The interval [low, high] lies wholly above or below 0."""
    return (low > 0) | (high < 0)


def hdi_in_rope(low, high, half_width):
    """The interval lies inside the region of practical equivalence (-hw, hw)."""
    return (-half_width < low) & (high < half_width)
