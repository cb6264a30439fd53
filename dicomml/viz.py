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

import itertools
from collections.abc import Sequence

import numpy as np

#: display frame: axis 0 toward Inferior, axis 1 toward Posterior, axis 2 toward the Left
DISPLAY_FRAME = "IPL"

_AXIS_OF_LETTER = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "S": (2, 1), "I": (2, -1)}
_LETTERS = ("LR", "PA", "SI")  # (positive, negative) letter per LPS world axis

#: radiological view -> (direction of increasing row, of increasing column), LPS unit vectors
_VIEW_DIRECTIONS = {
    "axial": ((0.0, 1.0, 0.0), (1.0, 0.0, 0.0)),      # rows toward P, columns toward L
    "coronal": ((0.0, 0.0, -1.0), (1.0, 0.0, 0.0)),   # rows toward I, columns toward L
    "sagittal": ((0.0, 0.0, -1.0), (0.0, 1.0, 0.0)),  # rows toward I, columns toward P
}

# plane -> axis of the display-frame array held fixed
_PLANES = {
    "axial": 0,
    "coronal": 1,
    "sagittal": 2,
}


def _require_matplotlib():
    """Import matplotlib's Figure, with an install hint when the extra is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("dicomml.viz needs matplotlib: pip install 'dicomml[viz]'") from exc
    return Figure


# --- orientation ---------------------------------------------------------------------------
def axis_directions(affine) -> list[tuple[int, int]]:
    """(world axis, sign) each array axis points to most, world axes 0, 1, 2 = x, y, z (LPS).

    Axes are assigned greedily by largest absolute direction cosine, so two array axes never
    share a world axis (the rule nibabel's ``io_orientation`` uses).

    >>> axis_directions(np.diag([-1.0, 2.0, 3.0, 1.0]))
    [(0, -1), (1, 1), (2, 1)]
    """
    rotation = np.asarray(affine, dtype=np.float64)[:3, :3]
    lengths = np.linalg.norm(rotation, axis=0)
    if not np.all(np.isfinite(rotation)) or np.any(lengths == 0):
        raise ValueError(f"affine has a zero-length or non-finite axis: {rotation.tolist()}")
    cosines = rotation / lengths
    weights = np.abs(cosines)
    result: list[tuple[int, int] | None] = [None, None, None]
    for _ in range(3):
        world, axis = np.unravel_index(np.argmax(weights), weights.shape)
        result[axis] = (int(world), 1 if cosines[world, axis] > 0 else -1)
        weights[world, :] = -1.0
        weights[:, axis] = -1.0
    return result  # type: ignore[return-value]


def orientation_letters(affine) -> str:
    """Three letters: the patient direction each array axis (slice, row, column) runs toward.

    >>> orientation_letters(np.diag([1.0, 1.0, -1.0, 1.0]))
    'LPI'
    """
    return "".join(_LETTERS[world][0 if sign > 0 else 1]
                   for world, sign in axis_directions(affine))


def reorient(array, affine, target: str = DISPLAY_FRAME) -> tuple[np.ndarray, np.ndarray]:
    """Permute and flip the last three axes of ``array`` so they run toward ``target``.

    ``array`` is (..., slices, rows, columns) with ``affine`` (4x4, LPS) mapping its last three
    indices to mm; ``target`` is three patient letters, one per output axis, e.g. ``"LPS"``,
    ``"RAS"`` (nibabel's closest canonical) or ``"IPL"`` (the display frame). Only
    permutations and flips are applied (no resampling): an oblique volume comes out in its
    nearest-axis orientation. Returns the reoriented array (a view where possible) and its
    affine, which maps the new indices to the same mm positions.

    >>> arr = np.arange(6).reshape(1, 2, 3)
    >>> out, aff = reorient(arr, np.eye(4), "IPL")      # identity: axes run L, P, S
    >>> out.shape, out[:, 0, 0].tolist(), aff[:3, 3].tolist()
    ((3, 2, 1), [2, 1, 0], [0.0, 0.0, 2.0])
    """
    target = target.upper()
    wanted = [_AXIS_OF_LETTER[letter] for letter in target]
    if len(target) != 3 or len({world for world, _ in wanted}) != 3:
        raise ValueError(f"target must name three different patient axes, got {target!r}")
    array = np.asarray(array)
    affine = np.asarray(affine, dtype=np.float64)
    current = axis_directions(affine)
    lead = array.ndim - 3
    source_axes, flips = [], []
    for world, sign in wanted:
        axis = next(a for a, (w, _) in enumerate(current) if w == world)
        source_axes.append(axis)
        flips.append(current[axis][1] != sign)
    out = np.transpose(array, list(range(lead)) + [lead + a for a in source_axes])
    new_affine = np.eye(4)
    new_affine[:3, 3] = affine[:3, 3]
    for new_axis, (axis, flip) in enumerate(zip(source_axes, flips)):
        column = affine[:3, axis]
        if flip:
            out = np.flip(out, axis=lead + new_axis)
            new_affine[:3, 3] += column * (array.shape[lead + axis] - 1)
            column = -column
        new_affine[:3, new_axis] = column
    return out, new_affine


def direction_label(vector, *, min_share: float = 0.25) -> str:
    """Letters of the patient directions a vector (LPS) points to, strongest first.

    A secondary letter is kept where its cosine is at least ``min_share`` in absolute value.

    >>> direction_label([-1, 0, 0]), direction_label([0.8, 0.6, 0])
    ('R', 'LP')
    """
    vec = np.asarray(vector, dtype=np.float64)
    vec = vec / np.linalg.norm(vec)
    order = np.argsort(-np.abs(vec), kind="stable")
    letters = [_LETTERS[w][0 if vec[w] > 0 else 1] for w in order
               if w == order[0] or abs(vec[w]) >= min_share]
    return "".join(letters)


def edge_labels(affine, plane: str | None = None) -> dict[str, str]:
    """Patient directions the four edges of a 2D view face: keys top, bottom, left, right.

    ``plane=None``: the native slice image ``array[k]`` (rows down, columns right).
    ``plane="axial"/"coronal"/"sagittal"``: a view of an array in the display frame, as drawn
    by :func:`show_volume` (``affine`` is then the reoriented affine).

    >>> axial = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [3, 0, 0, 0], [0, 0, 0, 1.0]])
    >>> edge_labels(axial)                          # an axial head-first-supine slice
    {'top': 'A', 'bottom': 'P', 'left': 'R', 'right': 'L'}
    """
    rotation = np.asarray(affine, dtype=np.float64)[:3, :3]
    down_axis, right_axis = _view_axes(plane)
    down, right = rotation[:, down_axis], rotation[:, right_axis]
    return {"top": direction_label(-down), "bottom": direction_label(down),
            "left": direction_label(-right), "right": direction_label(right)}


def _view_axes(plane: str | None) -> tuple[int, int]:
    """(axis running down the view, axis running right) of a 3D array for ``plane``."""
    if plane is None:
        return 1, 2
    try:
        fixed = _PLANES[plane]
    except KeyError:
        raise ValueError(f"plane must be one of {', '.join(_PLANES)} or None, got {plane!r}") \
            from None
    remaining = [a for a in range(3) if a != fixed]
    return remaining[0], remaining[1]


def view_slice(array, plane: str, index: int | None = None) -> np.ndarray:
    """The 2D image of ``plane`` through ``index`` (default: the centre) of a 3D array.

    >>> view_slice(np.zeros((2, 3, 4)), "coronal").shape
    (2, 4)
    """
    fixed = _PLANES[plane]
    if index is None:
        index = array.shape[fixed] // 2
    return np.take(array, index, axis=fixed)


def view_aspect(spacing, plane: str | None) -> float:
    """Height / width of one displayed pixel (matplotlib's ``aspect``) from (s, r, c) spacing, mm.

    >>> view_aspect((5.0, 0.5, 0.5), "coronal")
    10.0
    """
    down_axis, right_axis = _view_axes(plane)
    spacing = np.asarray(spacing, dtype=np.float64)
    return float(spacing[down_axis] / spacing[right_axis])


def obliquity_degrees(affine) -> float:
    """Largest angle (degrees) between an array axis and its nearest patient axis."""
    rotation = np.asarray(affine, dtype=np.float64)[:3, :3]
    cosines = np.abs(rotation / np.linalg.norm(rotation, axis=0)).max(axis=0)
    return float(np.degrees(np.arccos(np.clip(cosines.min(), -1.0, 1.0))))


# --- inputs ----------------------------------------------------------------------------------
def _volume_parts(vol, frame: int = 0):
    """(3D array, affine, metadata) from a Volume-like object or an (array, affine) pair."""
    if isinstance(vol, tuple) and len(vol) == 2:
        array, affine = vol
        metadata = {}
    else:
        array, affine = vol.array, vol.affine
        metadata = getattr(vol, "metadata", None) or {}
    array = _to_numpy(array)
    affine = np.asarray(_to_numpy(affine), dtype=np.float64)
    if array.ndim == 4:
        array = array[frame]
    if array.ndim != 3:
        raise ValueError(f"expected a 3D (slices, rows, columns) or 4D array, got {array.shape}")
    return array, affine, metadata


def _to_numpy(value):
    """numpy array from a numpy array or a (CPU or CUDA) torch tensor."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _spacing(affine) -> np.ndarray:
    return np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)


def _window(array, window):
    """(vmin, vmax) for display: an explicit (low, high), or the 1st/99th percentiles."""
    if window is not None:
        return float(window[0]), float(window[1])
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, [1, 99])
    return float(low), float(high if high > low else low + 1)


def _draw(ax, image, *, aspect, labels, vmin, vmax, cmap="gray", title=None):
    """imshow with the given pixel aspect and the four edge labels."""
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


# --- figures ---------------------------------------------------------------------------------
def world_plane(array, affine, plane: str, *, through=None, step: float | None = None,
                fill: float | None = None):
    """Sample the true axial / coronal / sagittal plane of a volume (nearest neighbour).

    The plane passes through ``through`` (LPS mm; default the volume centre) and is drawn
    radiologically (rows run toward P (axial) or I, columns toward L (axial, coronal) or P
    (sagittal)), covering the volume's extent, with square pixels of ``step`` mm (default the
    smallest spacing). Points outside the volume get ``fill`` (default the array minimum).
    Returns ``(image (rows, columns), origin_mm of pixel (0, 0), step_mm)``.

    >>> image, origin, step = world_plane(np.ones((2, 3, 4)), np.eye(4), "axial")
    >>> image.shape, origin.tolist(), step          # identity: axes run L, P, S
    ((3, 2), [0.0, 0.0, 1.5], 1.0)
    """
    array = np.asarray(array)
    affine = np.asarray(affine, dtype=np.float64)
    down, right = (np.asarray(v, dtype=np.float64) for v in _VIEW_DIRECTIONS[plane])
    shape = np.array(array.shape[-3:])
    corners = np.array(list(itertools.product(*[(0, n - 1) for n in shape])), dtype=float)
    world = corners @ affine[:3, :3].T + affine[:3, 3]
    if through is None:
        through = affine[:3, :3] @ ((shape - 1) / 2) + affine[:3, 3]
    through = np.asarray(through, dtype=np.float64)
    step = float(_spacing(affine).min()) if step is None else float(step)
    rows = _grid((world - through) @ down, step)
    cols = _grid((world - through) @ right, step)
    points = through + rows[:, None, None] * down + cols[None, :, None] * right
    index = np.linalg.solve(affine[:3, :3], (points.reshape(-1, 3) - affine[:3, 3]).T).T
    nearest = np.rint(index).astype(np.int64)
    inside = np.all((nearest >= 0) & (nearest < shape), axis=1)
    values = np.full(len(nearest), np.nanmin(array) if fill is None else fill, dtype=np.float64)
    values[inside] = array[tuple(nearest[inside].T)]
    origin = through + rows[0] * down + cols[0] * right
    return values.reshape(len(rows), len(cols)), origin, step


def _grid(offsets, step: float) -> np.ndarray:
    """Sample offsets (mm) every ``step`` mm from the smallest offset to the largest."""
    count = int(np.floor((offsets.max() - offsets.min()) / step + 1e-6)) + 1
    return offsets.min() + np.arange(count) * step


def draw_orthogonal(axes, vol, *, frame: int = 0, window=None, center=None, cmap="gray",
                    resample_oblique: bool = True):
    """Draw axial, coronal and sagittal views through ``center`` into three matplotlib axes.

    ``center`` is an index (i, j, k) in the display frame (default: the middle voxel). A volume
    more than 1 degree off the patient axes is sampled on the true planes (:func:`world_plane`)
    unless ``resample_oblique=False``, which shows its nearest-axis planes with compound labels.
    Returns the display-frame array and affine.
    """
    array, affine, _ = _volume_parts(vol, frame)
    display, display_affine = reorient(array, affine, DISPLAY_FRAME)
    spacing = _spacing(display_affine)
    vmin, vmax = _window(array, window)
    center = [n // 2 for n in display.shape] if center is None else list(center)
    sample = resample_oblique and obliquity_degrees(affine) > 1.0
    through = display_affine[:3, :3] @ np.asarray(center, float) + display_affine[:3, 3]
    for ax, plane in zip(axes, ("axial", "coronal", "sagittal")):
        if sample:
            image, _, _ = world_plane(display, display_affine, plane, through=through)
            down, right = _VIEW_DIRECTIONS[plane]
            labels = {"top": direction_label(np.negative(down)), "bottom": direction_label(down),
                      "left": direction_label(np.negative(right)),
                      "right": direction_label(right)}
            aspect = 1.0
        else:
            image = view_slice(display, plane, center[_PLANES[plane]])
            labels, aspect = edge_labels(display_affine, plane), view_aspect(spacing, plane)
        _draw(ax, image, aspect=aspect, labels=labels, vmin=vmin, vmax=vmax, cmap=cmap,
              title=plane)
        ax.resampled = sample
    return display, display_affine


def show_volume(vol, *, frame: int = 0, window=None, center=None, cmap="gray",
                title: str | None = None, resample_oblique: bool = True, figsize=(12, 4.4)):
    """Orthogonal views (axial, coronal, sagittal through the centre) of a volume.

    ``vol`` is a :class:`dicomml.Volume` (``array`` (slices, rows, columns) or 4D with
    ``frame`` picking the volume, ``affine`` LPS) or an ``(array, affine)`` pair. Views are
    radiological (patient's right on the viewer's left), with aspect from the spacing and L/R/
    A/P/S/I edge labels; ``window`` = (low, high) display range (default 1st-99th percentile).
    Oblique volumes are sampled on the true planes (nearest neighbour, square pixels of the
    smallest spacing) unless ``resample_oblique=False`` (see :func:`draw_orthogonal`).

    >>> fig = show_volume((np.zeros((4, 8, 8)), np.diag([3.0, 1.0, 1.0, 1.0])))
    >>> [ax.get_title() for ax in fig.axes]
    ['axial', 'coronal', 'sagittal']
    """
    Figure = _require_matplotlib()
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, 3)
    _, display_affine = draw_orthogonal(axes, vol, frame=frame, window=window, center=center,
                                        cmap=cmap, resample_oblique=resample_oblique)
    fig.suptitle(_volume_title(vol, display_affine, title, resample_oblique), fontsize=11)
    return fig


def _volume_title(vol, display_affine, title, resampled: bool = True):
    """Title: the given one or the series description, plus spacing and obliquity notes."""
    metadata = getattr(vol, "metadata", None) or {}
    text = title or str(metadata.get("SeriesDescription", "") or "")
    spacing = ", ".join(f"{s:.3g}" for s in _spacing(display_affine))
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
    if plane is not None:
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
    vmin, vmax = _window(array, window)
    labels = edge_labels(affine, None)
    aspect = view_aspect(_spacing(affine), None)
    step = float(np.linalg.norm(affine[:3, 0]))
    for ax, index in zip(axes, indices):
        _draw(ax, array[index], aspect=aspect, labels=labels, vmin=vmin, vmax=vmax, cmap=cmap,
              title=f"#{index}  {index * step:.1f} mm")
    for ax in axes[len(indices):]:
        fig.delaxes(ax)
    return fig


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


def _figure_and_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    Figure = _require_matplotlib()
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots()


def slice_position_table(positions, orientation) -> dict[str, np.ndarray]:
    """Sorted distances along the slice normal (mm), their steps, and flagged irregular steps.

    ``positions`` (n, 3) Image Position (Patient) in LPS mm, ``orientation`` the 6 IOP values.
    A step is flagged when it differs from the median step by more than 10 % (a gap shows as
    a step near a multiple of the median).

    >>> pos = [[0, 0, 0], [0, 0, 2], [0, 0, 4], [0, 0, 8]]
    >>> t = slice_position_table(pos, (1, 0, 0, 0, 1, 0))
    >>> t["distance"].tolist(), t["step"].tolist(), t["irregular"].tolist()
    ([0.0, 2.0, 4.0, 8.0], [2.0, 2.0, 4.0], [False, False, True])
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    iop = np.asarray(orientation, dtype=np.float64).reshape(6)
    normal = np.cross(iop[:3], iop[3:])
    normal = normal / np.linalg.norm(normal)
    distance = np.sort(positions @ normal)
    step = np.diff(distance)
    median = np.median(step) if step.size else 0.0
    irregular = np.abs(step - median) > 0.1 * max(abs(median), 1e-6)
    return {"distance": distance, "step": step, "irregular": irregular}


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


def positions_of(source, key=None):
    """Slice positions ``(n, 3)`` LPS mm and orientation ``(6,)`` from a Catalog and series
    ``key`` (one row per file), a Volume, or a ``(positions, orientation)`` pair.

    >>> pos, iop = positions_of(([[0, 0, 0], [0, 0, 2.0]], (1, 0, 0, 0, 1, 0)))
    >>> pos.shape, iop.tolist()
    ((2, 3), [1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    """
    if isinstance(source, tuple) and len(source) == 2:
        return np.asarray(source[0], float), np.asarray(source[1], float)
    if hasattr(source, "instances") and key is not None:
        return _catalog_positions(source, key)
    if hasattr(source, "affine"):
        return _volume_positions(source)
    raise TypeError("show_slice_positions needs a Catalog and key, a Volume, or "
                    "(positions, orientation)")


def _volume_positions(vol):
    array, affine, metadata = _volume_parts(vol)
    direction = np.asarray(affine, float)[:3, :3]
    iop = np.concatenate([direction[:, 2], direction[:, 1]])
    iop = np.concatenate([iop[:3] / np.linalg.norm(iop[:3]), iop[3:] / np.linalg.norm(iop[3:])])
    positions = metadata.get("positions")
    if positions is None:
        k = np.arange(array.shape[0])
        positions = affine[:3, 3] + k[:, None] * affine[:3, 0]
    return np.asarray(positions, float).reshape(-1, 3), iop


def _catalog_positions(catalog, key):
    rows = catalog.instances
    rows = rows[rows["series_key"] == key]
    if rows.empty:
        from dicomml.errors import SeriesNotFoundError
        raise SeriesNotFoundError(f"no series {key!r} in the catalog", path=str(key))
    positions = np.stack([_floats(v, 3) for v in rows["ImagePositionPatient"]])
    orientation = _floats(rows["ImageOrientationPatient"].iloc[0], 6)
    return positions, orientation


def _floats(value, count: int) -> np.ndarray:
    """A tag value stored as a list/array or a backslash-separated string -> float array."""
    if isinstance(value, str):
        value = value.replace("[", "").replace("]", "").replace(",", "\\").split("\\")
    out = np.asarray([float(v) for v in value], dtype=np.float64)
    if out.shape != (count,):
        raise ValueError(f"expected {count} numbers, got {value!r}")
    return out


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


def _batch_images(batch, channel: int, n: int, reorient_views: bool):
    """(2D middle slices, edge label dicts, aspects) of the first ``n`` samples of a batch."""
    images = _to_numpy(batch["image"])
    affines = _to_numpy(batch["affine"]) if "affine" in batch else None
    out, labels, aspects = [], [], []
    for i in range(min(n, images.shape[0])):
        volume = images[i, channel]
        affine = affines[i] if affines is not None else np.eye(4)
        plane = None
        if reorient_views:
            volume, affine = reorient(volume, affine, DISPLAY_FRAME)
            plane = "axial"
        out.append(volume[volume.shape[0] // 2])
        labels.append(edge_labels(affine, plane))
        aspects.append(view_aspect(_spacing(affine), plane))
    return out, labels, aspects


def show_batch(batch, *, compare=None, names: Sequence[str] = ("before", "after"),
               n: int = 8, channel: int = 0, reorient_views: bool = False, window=None,
               cmap="gray", figsize=None):
    """Middle slice of each sample of a collated batch; with ``compare``, a second row.

    ``batch`` is a dict with ``image`` (B, C, slices, rows, columns) and ``affine`` (B, 4, 4)
    (tensors or arrays), as :func:`dicomml.collate` returns. By default each panel is
    ``image[b, channel, slices // 2]`` exactly as the model sees it, its edges labelled from
    the sample's affine (so a tracked flip shows as swapped labels);
    ``reorient_views=True`` draws the radiological axial view instead. ``compare`` is a second
    batch of the same samples (e.g. after augmentation) drawn below, rows titled by ``names``.
    A ``series_key`` list, when present, titles each column.
    """
    Figure = _require_matplotlib()
    rows = [batch] if compare is None else [batch, compare]
    per_row = [_batch_images(b, channel, n, reorient_views) for b in rows]
    ncols = max(len(images) for images, _, _ in per_row)
    fig = Figure(figsize=figsize or (2.4 * ncols, 2.6 * len(rows)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rows), ncols, squeeze=False))
    for r, (images, labels, aspects) in enumerate(per_row):
        for c, ax in enumerate(axes[r]):
            if c >= len(images):
                fig.delaxes(ax)
                continue
            vmin, vmax = _window(images[c], window)
            _draw(ax, images[c], aspect=aspects[c], labels=labels[c], vmin=vmin, vmax=vmax,
                  cmap=cmap, title=_batch_title(rows[r], c, names[r] if compare else None))
    return fig


def _batch_title(batch, index, name):
    keys = batch.get("series_key")
    text = str(keys[index])[-12:] if keys is not None and index < len(keys) else f"#{index}"
    return f"{name}: {text}" if name else text
