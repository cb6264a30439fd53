"""Patient orientation of voxel arrays: axis letters, reorientation, edge labels, view geometry.

Pure numpy (no matplotlib). Arrays are (slices, rows, columns); an affine (4x4) maps
(slice, row, column, 1) to patient millimetres in DICOM's LPS frame (x to the patient's Left,
y Posterior, z Superior). Axis letters, directions and the reorientation rule come from
:mod:`dicomml.geometry.orientation` (``axis_directions`` is re-exported from there).

>>> orientation_letters(np.diag([-1.0, 1.0, 1.0, 1.0]))
'RPS'
"""

from __future__ import annotations

import numpy as np

from dicomml.geometry.affine import direction_from_affine
from dicomml.geometry.orientation import axis_directions as axis_directions
from dicomml.geometry.orientation import direction_letter, orientation_code, reorientation

#: display frame: axis 0 toward Inferior, axis 1 toward Posterior, axis 2 toward the Left
DISPLAY_FRAME = "IPL"

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


#: three letters: the patient direction each array axis (slice, row, column) runs toward
orientation_letters = orientation_code


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
    array = np.asarray(array)
    affine = np.asarray(affine, dtype=np.float64)
    source_axes, flips = reorientation(affine, target)
    lead = array.ndim - 3
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
    letters = [direction_letter(w, 1 if vec[w] > 0 else -1) for w in order
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
    cosines = np.abs(direction_from_affine(affine)).max(axis=0)
    return float(np.degrees(np.arccos(np.clip(cosines.min(), -1.0, 1.0))))
