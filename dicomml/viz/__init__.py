"""Plotting helpers for notebooks and scripts (matplotlib is the optional ``viz`` extra).

Conventions: arrays are (slices, rows, columns); an affine maps (slice, row, column, 1) to
patient millimetres in DICOM's LPS frame (x to the patient's Left, y Posterior, z Superior).

Views are drawn in the radiological convention whatever the acquisition orientation: the
volume is first reoriented to the display frame ``"IPL"`` (axis 0 runs toward Inferior, axis 1
toward Posterior, axis 2 toward the patient's Left) with :func:`reorient`, so that

- axial ``D[k]`` has anterior at the top and the patient's right on the viewer's left,
- coronal ``D[:, j]`` has superior at the top and the patient's right on the viewer's left,
- sagittal ``D[:, :, i]`` has superior at the top and anterior on the viewer's left.

Every image edge is labelled with the patient direction it faces (:func:`edge_labels`). An
oblique acquisition (more than 1 degree off the patient axes) is sampled on the true planes
(:func:`world_plane`); with ``resample_oblique=False`` its nearest-axis planes are shown
instead, the labels then carrying the secondary directions (e.g. ``"PIR"``). Pixel aspect
comes from the spacing, never from the pixel count.

Every ``show_*`` function returns a :class:`matplotlib.figure.Figure` built without pyplot,
so nothing is opened on screen or kept in pyplot's global state; in Jupyter, run
``%matplotlib inline`` once and leave the figure as a cell's last expression.

Modules: :mod:`~dicomml.viz.orientation` (axis letters, reorientation, edge labels; numpy
only), :mod:`~dicomml.viz.planes` (true-plane sampling), :mod:`~dicomml.viz.positions` (slice
positions), :mod:`~dicomml.viz.figures`, :mod:`~dicomml.viz.charts` and
:mod:`~dicomml.viz.batch` (the figures; matplotlib is imported only when one is built).

Example
-------
>>> import numpy as np
>>> arr = np.arange(24.0).reshape(2, 3, 4)
>>> affine = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [2, 0, 0, 0], [0, 0, 0, 1.0]])
>>> orientation_letters(affine)                        # axial, head first supine
'SPL'
>>> out, out_affine = reorient(arr, affine, "IPL")
>>> out.shape, orientation_letters(out_affine), bool((out == arr[::-1]).all())
((2, 3, 4), 'IPL', True)
"""

from __future__ import annotations

from dicomml.viz.batch import show_batch
from dicomml.viz.charts import show_histogram, show_slice_positions
from dicomml.viz.figures import draw_orthogonal, show_montage, show_series, show_volume
from dicomml.viz.orientation import (
    _PLANES,  # noqa: F401  (kept importable as dicomml.viz._PLANES)
    _VIEW_DIRECTIONS,  # noqa: F401  (kept importable as dicomml.viz._VIEW_DIRECTIONS)
    DISPLAY_FRAME,
    axis_directions,
    direction_label,
    edge_labels,
    obliquity_degrees,
    orientation_letters,
    reorient,
    view_aspect,
    view_slice,
)
from dicomml.viz.planes import world_plane
from dicomml.viz.positions import positions_of, slice_position_table

__all__ = [
    "DISPLAY_FRAME",
    "axis_directions",
    "direction_label",
    "draw_orthogonal",
    "edge_labels",
    "obliquity_degrees",
    "orientation_letters",
    "positions_of",
    "reorient",
    "show_batch",
    "show_histogram",
    "show_montage",
    "show_series",
    "show_slice_positions",
    "show_volume",
    "slice_position_table",
    "view_aspect",
    "view_slice",
    "world_plane",
]
