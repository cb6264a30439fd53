"""Radiological figures of a volume: orthogonal views, montage, one-series overview.

Views are drawn in the display frame ``"IPL"`` (see :mod:`dicomml.viz`); figures are built
without pyplot.

>>> fig = show_montage((np.zeros((3, 4, 4)), np.eye(4)), n=3, ncols=3)
>>> [ax.get_title() for ax in fig.axes]
['#0  0.0 mm', '#1  1.0 mm', '#2  2.0 mm']
"""

from __future__ import annotations

import numpy as np

from dicomml._optional import require
from dicomml.geometry.affine import spacing_from_affine
from dicomml.viz.charts import show_histogram, show_slice_positions
from dicomml.viz.drawing import _colour_window, _draw, _require_matplotlib, _window
from dicomml.viz.inputs import _volume_parts, is_colour
from dicomml.viz.orientation import (
    _PLANES,
    _VIEW_DIRECTIONS,
    DISPLAY_FRAME,
    direction_label,
    edge_labels,
    obliquity_degrees,
    reorient,
    view_aspect,
    view_slice,
)
from dicomml.viz.planes import world_plane


def draw_orthogonal(axes, vol, *, frame: int = 0, window=None, center=None, cmap="gray",
                    resample_oblique: bool = True):
    """Draw axial, coronal and sagittal views through ``center`` into three matplotlib axes.

    ``center`` is an index (i, j, k) in the display frame (default: the middle voxel). A volume
    more than 1 degree off the patient axes is sampled on the true planes (:func:`world_plane`)
    unless ``resample_oblique=False``, which shows its nearest-axis planes with compound labels.
    Returns the display-frame array and affine.
    """
    array, affine, _ = _volume_parts(vol, frame)
    colour = is_colour(array)
    channels = np.moveaxis(array, -1, 0) if colour else array[None]  # (C, S, R, C)
    display, display_affine = reorient(channels, affine, DISPLAY_FRAME)
    spacing = spacing_from_affine(display_affine)
    vmin, vmax = (_colour_window if colour else _window)(array, window)
    center = [n // 2 for n in display.shape[1:]] if center is None else list(center)
    sample = resample_oblique and obliquity_degrees(affine) > 1.0
    through = display_affine[:3, :3] @ np.asarray(center, float) + display_affine[:3, 3]
    for ax, plane in zip(axes, ("axial", "coronal", "sagittal")):
        if sample:
            images = [world_plane(d, display_affine, plane, through=through)[0]
                      for d in display]
            down, right = _VIEW_DIRECTIONS[plane]
            labels = {"top": direction_label(np.negative(down)), "bottom": direction_label(down),
                      "left": direction_label(np.negative(right)),
                      "right": direction_label(right)}
            aspect = 1.0
        else:
            images = [view_slice(d, plane, center[_PLANES[plane]]) for d in display]
            labels, aspect = edge_labels(display_affine, plane), view_aspect(spacing, plane)
        image = np.stack(images, axis=-1) if colour else images[0]
        _draw(ax, image, aspect=aspect, labels=labels, vmin=vmin, vmax=vmax, cmap=cmap,
              title=plane)
        ax.resampled = sample
    return (np.moveaxis(display, 0, -1) if colour else display[0]), display_affine


def draw_label_overlay(axes, labels, *, center=None, resample_oblique: bool = True,
                       alpha: float = 0.45):
    """Overlay a label map on the axial, coronal and sagittal axes that
    :func:`draw_orthogonal` drew for a volume on the same grid, with a legend.

    ``labels``: a :class:`dicomml.Volume` from :func:`dicomml.load_labels` (label map, or
    channels: shown as their numbers 1..C) or an ``(array, affine)`` pair; 0 is transparent,
    each value one colour, named from ``metadata["labels"]`` when there. Returns the values
    drawn.
    """
    ListedColormap = require("matplotlib.colors", extra="viz",
                             needed_by="dicomml.viz").ListedColormap
    Patch = require("matplotlib.patches", extra="viz", needed_by="dicomml.viz").Patch

    array, affine = labels if isinstance(labels, tuple) else (labels.array, labels.affine)
    array, affine = np.asarray(array), np.asarray(affine, dtype=np.float64)
    if array.ndim == 4:  # channels -> their numbers (the last one wins where they overlap)
        array = np.max(array.astype(bool) * np.arange(1, len(array) + 1)[:, None, None, None], 0)
    display, display_affine = reorient(array, affine, DISPLAY_FRAME)
    values = [v for v in np.unique(display).tolist() if v]
    center = [n // 2 for n in display.shape] if center is None else list(center)
    sample = resample_oblique and obliquity_degrees(affine) > 1.0
    through = display_affine[:3, :3] @ np.asarray(center, float) + display_affine[:3, 3]
    colours = [tuple(c) for c in _label_colours(len(values))]
    for ax, plane in zip(axes, ("axial", "coronal", "sagittal")):
        image = world_plane(display, display_affine, plane, through=through, fill=0)[0] \
            if sample else view_slice(display, plane, center[_PLANES[plane]])
        index = np.where(image != 0, np.searchsorted(values, image) + 1, 0)
        ax.imshow(np.ma.masked_equal(index, 0), cmap=ListedColormap(colours or ["red"]),
                  vmin=0.5, vmax=max(len(values), 1) + 0.5, alpha=alpha, aspect=ax.get_aspect(),
                  interpolation="nearest", origin="upper")
    names = (getattr(labels, "metadata", None) or {}).get("labels", {})
    if values:
        axes[-1].legend(handles=[Patch(color=c, label=f"{v} {names.get(v, {}).get('name', '')}"
                                       .strip()) for v, c in zip(values, colours)],
                        loc="lower right", fontsize=8, framealpha=0.6)
    return values


def _label_colours(n: int) -> list:
    colormaps = require("matplotlib", extra="viz", needed_by="dicomml.viz").colormaps

    table = colormaps["tab10" if n <= 10 else "tab20"]
    return [table(i % table.N) for i in range(n)]


def show_volume(vol, *, frame: int = 0, window=None, center=None, cmap="gray",
                title: str | None = None, resample_oblique: bool = True, figsize=(12, 4.4),
                labels=None):
    """Orthogonal views (axial, coronal, sagittal through the centre) of a volume.

    ``vol`` is a :class:`dicomml.Volume` (``array`` (slices, rows, columns) or 4D with
    ``frame`` picking the volume, ``affine`` LPS) or an ``(array, affine)`` pair. A colour
    Volume (trailing axis of 3 samples, ``metadata["channels"] == "RGB"``) is shown in colour
    (8-bit samples as they are, others scaled by ``window`` or their range). Views are
    radiological (patient's right on the viewer's left), with aspect from the spacing and L/R/
    A/P/S/I edge labels; ``window`` = (low, high) display range (default 1st-99th percentile).
    Oblique volumes are sampled on the true planes (nearest neighbour, square pixels of the
    smallest spacing) unless ``resample_oblique=False`` (see :func:`draw_orthogonal`).
    ``labels``: a label Volume on the same grid (:func:`dicomml.load_labels`), overlaid in
    colour with a legend (:func:`draw_label_overlay`).

    >>> fig = show_volume((np.zeros((4, 8, 8)), np.diag([3.0, 1.0, 1.0, 1.0])))
    >>> [ax.get_title() for ax in fig.axes]
    ['axial', 'coronal', 'sagittal']
    """
    Figure = _require_matplotlib()
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, 3)
    _, display_affine = draw_orthogonal(axes, vol, frame=frame, window=window, center=center,
                                        cmap=cmap, resample_oblique=resample_oblique)
    if labels is not None:  # a label Volume on the same grid (dicomml.load_labels)
        draw_label_overlay(axes, labels, center=center, resample_oblique=resample_oblique)
    fig.suptitle(_volume_title(vol, display_affine, title, resample_oblique), fontsize=11)
    return fig


def _volume_title(vol, display_affine, title, resampled: bool = True):
    """Title: the given one or the series description, plus spacing and obliquity notes."""
    metadata = getattr(vol, "metadata", None) or {}
    text = title or str(metadata.get("SeriesDescription", "") or "")
    spacing = ", ".join(f"{s:.3g}" for s in spacing_from_affine(display_affine))
    text = f"{text}  (spacing I-S, A-P, R-L: {spacing} mm)".strip()
    angle = obliquity_degrees(display_affine)
    if angle > 1.0:
        how = "resampled on true planes" if resampled else "nearest-axis views"
        text += f"  oblique ({angle:.0f}° off axis): {how}"
    return text


def show_montage(vol, *, n: int = 16, ncols: int = 4, plane: str | None = None,
                 frame: int = 0, window=None, cmap="gray", figsize=None):
    """A grid of ``n`` evenly spaced slices.

    ``plane=None`` shows the acquired slices ``array[k]`` in acquisition order, labelled from
    the affine; ``plane="axial"`` (or coronal/sagittal) reorients to the display frame first.
    Each panel is titled with its index (and position along the slice axis in mm).

    >>> fig = show_montage((np.zeros((10, 8, 8)), np.eye(4)), n=4, ncols=2)
    >>> len(fig.axes)
    4
    """
    Figure = _require_matplotlib()
    array, affine, _ = _volume_parts(vol, frame)
    colour = is_colour(array)
    if plane is not None:
        if colour:  # the three spatial axes lead: reorient with the samples in front
            moved, affine = reorient(np.moveaxis(array, -1, 0), affine, DISPLAY_FRAME)
            array = np.moveaxis(moved, 0, -1)
        else:
            array, affine = reorient(array, affine, DISPLAY_FRAME)
        fixed = _PLANES[plane]
        array = np.moveaxis(array, fixed, 0)
        affine = affine[:, [fixed] + [a for a in range(3) if a != fixed] + [3]]
    count = max(1, min(n, array.shape[0]))
    indices = np.unique(np.linspace(0, array.shape[0] - 1, count).round().astype(int))
    nrows = int(np.ceil(len(indices) / ncols))
    ncols_used = min(ncols, len(indices))
    fig = Figure(figsize=figsize or (2.6 * ncols_used, 2.6 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols_used)).ravel()
    vmin, vmax = (_colour_window if colour else _window)(array, window)
    labels = edge_labels(affine, None)
    spacing = spacing_from_affine(affine)
    aspect, step = view_aspect(spacing, None), float(spacing[0])
    for ax, index in zip(axes, indices):
        _draw(ax, array[index], aspect=aspect, labels=labels, vmin=vmin, vmax=vmax, cmap=cmap,
              title=f"#{index}  {index * step:.1f} mm")
    for ax in axes[len(indices):]:
        fig.delaxes(ax)
    return fig


def show_series(catalog, key, *, window=None, figsize=(12, 8)):
    """One series at a glance: orthogonal views, histogram and slice-position plot.

    Loads the series with :func:`dicomml.load_series` (``catalog``, ``key``); the slice
    positions come from the catalog's per-file headers, so gaps show even where loading keeps
    only the regular grid.
    """
    from dicomml import load_series

    Figure = _require_matplotlib()
    vol = load_series(catalog, key)
    fig = Figure(figsize=figsize, layout="constrained")
    grid = fig.add_gridspec(2, 3, height_ratios=[1.3, 1])
    views = [fig.add_subplot(grid[0, i]) for i in range(3)]
    _, display_affine = draw_orthogonal(views, vol, window=window)
    show_histogram(vol, ax=fig.add_subplot(grid[1, 0:1]))
    try:
        show_slice_positions(catalog, key, ax=fig.add_subplot(grid[1, 1:]))
    except (KeyError, ValueError, TypeError):
        show_slice_positions(vol, ax=fig.axes[-1])
    fig.suptitle(_volume_title(vol, display_affine, str(key)), fontsize=11)
    return fig
