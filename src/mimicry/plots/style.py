"""How every figure is drawn and saved, so that the same inputs give the same bytes.

A figure module describes its look as rcParams (its STYLE, with the PNG resolution as
savefig.dpi); its drawing functions are decorated with `styled(STYLE)` and it saves with
`save_figure(figure, STYLE, ...)`. Both apply the style over matplotlib's defaults, so
neither a matplotlibrc nor a figure drawn before in the same process changes a figure,
and the files carry fixed metadata (no software version, no creation date). Only
matplotlib is imported here: the QC figures, drawn once per participant job, stay cheap.
"""

import functools
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.style  # noqa: E402

# Fixed metadata so that the same inputs give the same bytes.
PNG_METADATA = {"Software": None}
PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None}


def styled(style):
    """Decorator: draw inside `style` (rcParams over matplotlib's defaults)."""

    def decorate(draw):
        @functools.wraps(draw)
        def drawn(*args, **kwargs):
            with matplotlib.style.context(["default", style]):
                return draw(*args, **kwargs)

        return drawn

    return decorate


def save_figure(figure, style, png_path, pdf_path=None):
    """Write the figure as a PNG at the style's savefig.dpi and, given a path, as a
    vector PDF, byte-identical on re-runs; a pyplot figure is then closed, freeing its
    memory."""
    with matplotlib.style.context(["default", style]):
        figure.savefig(png_path, metadata=PNG_METADATA)
        if pdf_path is not None:
            # raster parts (if any) at the figure's own dpi, not the PNG's
            figure.savefig(pdf_path, dpi="figure", metadata=PDF_METADATA)
    # A figure made through pyplot stays registered there until closed; one made as a
    # bare Figure (QC figures, which do not import pyplot) is not.
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(figure)
