"""matplotlib primitives shared by the figures: lazy import, display window, labelled imshow.

matplotlib is imported only when a figure is built, so ``import dicomml.viz`` works without the
``viz`` extra.

>>> _window(np.arange(101.0), None)
(1.0, 99.0)
"""

from __future__ import annotations

import numpy as np

from dicomml._optional import require


def _require_matplotlib():
    """Import matplotlib's Figure, with an install hint when the extra is missing."""
    return require("matplotlib.figure", extra="viz", needed_by="dicomml.viz").Figure


def _window(array, window):
    """(vmin, vmax) for display: an explicit (low, high), or the 1st/99th percentiles."""
    if window is not None:
        return float(window[0]), float(window[1])
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, [1, 99])
    return float(low), float(high if high > low else low + 1)


def _colour_window(array, window):
    """(vmin, vmax) that map RGB samples to [0, 1]: an explicit (low, high), else the full
    range of 8-bit samples (0, 255), else the finite minimum and maximum."""
    if window is not None:
        return float(window[0]), float(window[1])
    if np.asarray(array).dtype == np.uint8:
        return 0.0, 255.0
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    return low, high if high > low else low + 1


def _rgb(image, vmin: float, vmax: float) -> np.ndarray:
    """(rows, columns, 3) samples as floats in [0, 1] (what imshow shows as colour)."""
    return np.clip((np.asarray(image, dtype=np.float64) - vmin) / (vmax - vmin), 0.0, 1.0)


def _draw(ax, image, *, aspect, labels, vmin, vmax, cmap="gray", title=None):
    """imshow with the given pixel aspect and the four edge labels; an (rows, columns, 3)
    ``image`` is drawn as RGB (scaled by ``vmin`` / ``vmax``, no colour map)."""
    if np.ndim(image) == 3:
        ax.imshow(_rgb(image, vmin, vmax), aspect=aspect, interpolation="nearest",
                  origin="upper")
    else:
        ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, aspect=aspect,
                  interpolation="nearest", origin="upper")
    style = {"color": "yellow", "fontsize": 9, "fontweight": "bold",
             "transform": ax.transAxes}
    ax.text(0.5, 0.99, labels["top"], ha="center", va="top", **style)
    ax.text(0.5, 0.01, labels["bottom"], ha="center", va="bottom", **style)
    ax.text(0.01, 0.5, labels["left"], ha="left", va="center", **style)
    ax.text(0.99, 0.5, labels["right"], ha="right", va="center", **style)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.edge_labels = dict(labels)  # kept for scripts and tests that inspect the figure
    if title:
        ax.set_title(title, fontsize=10)


def _figure_and_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    Figure = _require_matplotlib()
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots()
