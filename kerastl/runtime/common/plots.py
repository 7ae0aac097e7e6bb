"""Figures drawn with matplotlib on an Agg canvas, written as PNG bytes.

matplotlib is optional and imported only to draw: without it every figure is
skipped, and the first skip of the process says so in one line (a run draws
several pictures; one line is enough). That line is this module's only state.
"""

import io
from typing import Any, Literal

MISSING = "matplotlib is not installed: skipping {path}"

_missing_told = False  # whether this process printed MISSING already


def agg_figure(
    path: Any,
    size: tuple[float, float],
    layout: Literal["constrained", "tight"] | None = "constrained",
) -> Any:
    """A matplotlib `Figure` of `size` inches on an Agg canvas, for `path`,
    laid out by `layout` (None: by the caller).

    Returns:
        The figure, or None without matplotlib (said once per process).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        _tell_missing(path)
        return None
    figure = Figure(figsize=size, dpi=100, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Any, title: str) -> bytes:
    """`figure` as a PNG file at 100 dpi, titled `title` in its metadata."""
    picture = io.BytesIO()
    figure.savefig(picture, format="png", dpi=100, metadata={"Title": title})
    return picture.getvalue()


def _tell_missing(path: Any) -> None:
    global _missing_told
    if not _missing_told:
        print(MISSING.format(path=path), flush=True)
        _missing_told = True
