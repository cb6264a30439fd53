"""Histogram and slice-position figures (matplotlib, built without pyplot).

>>> fig = show_histogram((np.zeros((2, 4, 4)), np.eye(4)), log=False)
>>> int(sum(p.get_height() for p in fig.axes[0].patches))
32
"""

from __future__ import annotations

import numpy as np

from dicomml.viz.drawing import _figure_and_axes
from dicomml.viz.inputs import _volume_parts
from dicomml.viz.positions import positions_of, slice_position_table


def show_histogram(vol, *, bins: int = 200, value_range=None, frame: int = 0,
                   log: bool = True, ax=None, figsize=(6, 3.5)):
    """Intensity histogram; CT values are Hounsfield units (as the loader rescales them).

    Marks air (-1000), water (0) and bone (~700 HU) for CT. ``value_range`` = (low, high).

    >>> fig = show_histogram((np.full((2, 4, 4), 40.0), np.eye(4)))
    >>> fig.axes[0].get_xlabel()
    'intensity'
    """
    array, _, metadata = _volume_parts(vol, frame)
    fig, ax = _figure_and_axes(ax, figsize)
    values = array[np.isfinite(array)].ravel()
    ax.hist(values, bins=bins, range=value_range, log=log, color="steelblue")
    is_ct = str(metadata.get("Modality", "")).upper() == "CT"
    ax.set_xlabel("HU" if is_ct else "intensity")
    ax.set_ylabel("voxels (log)" if log else "voxels")
    if is_ct:
        for value, name in ((-1000, "air"), (0, "water"), (700, "bone")):
            ax.axvline(value, color="gray", linestyle=":", linewidth=1)
            ax.annotate(name, (value, 1), xycoords=("data", "axes fraction"),
                        fontsize=8, va="top")
    return fig


def show_slice_positions(source, key=None, *, ax=None, figsize=(7, 3.5)):
    """Plot the slice positions along the normal and the step between neighbours.

    ``source``: a Catalog with ``key`` (per-file ImagePositionPatient and
    ImageOrientationPatient), a Volume (its regular grid from the affine, or
    ``metadata["positions"]`` where the loader keeps the acquired positions), or a
    ``(positions, orientation)`` pair. Irregular steps (gaps, uneven spacing, duplicates) are
    drawn in red.

    >>> fig = show_slice_positions(([[0, 0, 0], [0, 0, 2], [0, 0, 6]], (1, 0, 0, 0, 1, 0)))
    >>> fig.axes[0].get_ylabel()
    'step (mm)'
    """
    positions, orientation = positions_of(source, key)
    table = slice_position_table(positions, orientation)
    fig, ax = _figure_and_axes(ax, figsize)
    if table["step"].size == 0:
        ax.text(0.5, 0.5, "single slice", ha="center", transform=ax.transAxes)
        return fig
    centres = (table["distance"][1:] + table["distance"][:-1]) / 2
    colors = np.where(table["irregular"], "red", "steelblue")
    ax.scatter(centres, table["step"], c=colors, s=14)
    ax.plot(centres, table["step"], color="lightgray", linewidth=1, zorder=0)
    ax.set_xlabel("position along slice normal (mm)")
    ax.set_ylabel("step (mm)")
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_ylim(0, max(float(table["step"].max()), 1e-3) * 1.3)
    bad = int(table["irregular"].sum())
    ax.set_title(f"{len(table['distance'])} slices, median step "
                 f"{np.median(table['step']):.3g} mm, {bad} irregular step(s)", fontsize=10)
    ax.rug_positions = table["distance"]  # for tests and scripts
    return fig
