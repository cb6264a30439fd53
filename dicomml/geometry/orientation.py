"""Slice normals, LPS/RAS and NIfTI conversion, orientation codes (pure numpy).

The one home of these conventions: the viz, transforms and interop layers call these
functions (torch callers convert the 4x4 matrix to numpy first).

Conventions: patient coordinates are DICOM's LPS (x to the patient's Left, y Posterior,
z Superior), in mm. Image Orientation (Patient) ``iop`` = (row cosines F_r, column cosines F_c):
F_r points along a row (increasing column index), F_c down a column (increasing row index).
An affine is 4x4 and maps the index vector (slice, row, column, 1) to LPS mm. An orientation
code has one letter per array axis (slice, row, column) naming the patient direction toward
which that index *increases* (nibabel's convention): ``L``/``R`` (x), ``P``/``A`` (y),
``S``/``I`` (z). A world axis is named by its number (0, 1, 2 = x, y, z) and a sign (+1 toward
the first letter of LPS, -1 toward R, A or I).

Example
-------
>>> slice_normal((1, 0, 0, 0, 1, 0))
array([0., 0., 1.])
>>> orientation_code(np.diag([2.0, 1.0, 1.0, 1.0]))   # axes (slice, row, column) -> L, P, S
'LPS'
>>> axial = [[0, 0, 0.7, 0], [0, 0.7, 0, 0], [2.5, 0, 0, 0], [0, 0, 0, 1]]
>>> orientation_code(axial), reorientation(axial, "RAS")
('SPL', ([2, 1, 0], [True, True, False]))
"""

from __future__ import annotations

import numpy as np

#: flips x and y: LPS <-> RAS (its own inverse)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: our index axes (slice, row, column) in NIfTI's order (column, row, slice), plus the
#: homogeneous column: ``affine[:, NIFTI_ORDER]`` swaps slice and column (its own inverse)
NIFTI_ORDER = [2, 1, 0, 3]

_OPPOSITE = {"L": "R", "R": "L", "P": "A", "A": "P", "S": "I", "I": "S"}


def row_col_cosines(iop) -> tuple[np.ndarray, np.ndarray]:
    """Split a 6-value orientation into unit row cosines F_r and column cosines F_c."""
    values = np.asarray(iop, dtype=np.float64).reshape(6)
    f_r, f_c = values[:3], values[3:]
    return f_r / np.linalg.norm(f_r), f_c / np.linalg.norm(f_c)


def slice_normal(iop) -> np.ndarray:
    """Unit slice normal F_r x F_c (LPS) from Image Orientation (Patient)."""
    f_r, f_c = row_col_cosines(iop)
    normal = np.cross(f_r, f_c)
    return normal / np.linalg.norm(normal)


def lps_to_ras(affine) -> np.ndarray:
    """A 4x4 affine whose output is LPS mm as one whose output is RAS mm (float64 copy):
    ``diag(-1, -1, 1, 1) @ affine``. Its own inverse, hence :data:`ras_to_lps`.

    >>> lps_to_ras(np.eye(4)).diagonal().tolist()
    [-1.0, -1.0, 1.0, 1.0]
    """
    return LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)


ras_to_lps = lps_to_ras  # the flip is its own inverse


def lps_to_nifti_affine(affine) -> np.ndarray:
    """Our LPS affine on (slice, row, column) -> NIfTI's RAS affine on (column, row, slice).

    ``diag(-1, -1, 1, 1) @ affine[:, [2, 1, 0, 3]]`` (float64, mm): the affine of the array
    transposed to (column, row, slice), as nibabel, MONAI and TorchIO expect. Its own inverse
    (see :func:`nifti_to_lps_affine`).

    >>> a = np.array([[0, 0, 0.5, 10], [0, 0.5, 0, 20], [2.0, 0, 0, 30], [0, 0, 0, 1]])
    >>> lps_to_nifti_affine(a)[:3].tolist()
    [[-0.5, 0.0, 0.0, -10.0], [0.0, -0.5, 0.0, -20.0], [0.0, 0.0, 2.0, 30.0]]
    """
    return lps_to_ras(affine)[:, NIFTI_ORDER]


def nifti_to_lps_affine(affine) -> np.ndarray:
    """NIfTI's RAS affine on (column, row, slice) -> our LPS affine on (slice, row, column)."""
    return lps_to_nifti_affine(affine)


def axis_directions(affine) -> list[tuple[int, int]]:
    """(world axis, sign) each array axis (slice, row, column) points to most; world axes
    0, 1, 2 = x, y, z of the affine's output frame, sign +1 or -1.

    Axes are assigned greedily by the largest absolute direction cosine, so two array axes
    never share a world axis even for oblique or sheared affines (nibabel's ``aff2axcodes``
    gives the same letters for orthogonal affines). ``ValueError`` for a zero-length or
    non-finite axis.

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


def axis_codes(affine, labels: str = "LPS") -> tuple[str, ...]:
    """The patient direction each array axis (slice, row, column) points to most, as a tuple
    of letters (nibabel's ``aff2axcodes`` form).

    ``labels`` names the positive x, y, z of the affine's output frame ("LPS" for our affines,
    "RAS" for NIfTI's). See :func:`axis_directions` for the assignment rule.

    >>> axis_codes(np.diag([-1.0, 2.0, 3.0, 1.0])), axis_codes(np.eye(4), "RAS")
    (('R', 'P', 'S'), ('R', 'A', 'S'))
    """
    return tuple(labels[world] if sign > 0 else _OPPOSITE[labels[world]]
                 for world, sign in axis_directions(affine))


def orientation_code(affine, labels: str = "LPS") -> str:
    """Three-letter code of an affine's axes, e.g. ``"LPS"`` or ``"SPL"`` (see :func:`axis_codes`).

    >>> orientation_code(np.diag([1.0, 1.0, -1.0, 1.0]))
    'LPI'
    """
    return "".join(axis_codes(affine, labels))


def parse_code(code: str) -> list[tuple[int, int]]:
    """``"RAS"`` -> ``[(world axis, sign), ...]`` in LPS terms (case-insensitive);
    ``ValueError`` unless the code names each of x, y, z exactly once.

    >>> parse_code("ras")
    [(0, -1), (1, -1), (2, 1)]
    """
    code = str(code).upper()
    if len(code) != 3 or any(c not in _OPPOSITE for c in code):
        raise ValueError(f"orientation code must be 3 of L/R, P/A, S/I, got {code!r}")
    parsed = [("LPS".index(c), 1) if c in "LPS" else ("LPS".index(_OPPOSITE[c]), -1)
              for c in code]
    if sorted(world for world, _ in parsed) != [0, 1, 2]:
        raise ValueError(f"orientation code {code!r} names a world axis twice")
    return parsed


def reorientation(affine, code: str) -> tuple[list[int], list[bool]]:
    """``(perm, flips)`` turning an array with LPS ``affine`` into one with orientation
    ``code``: output axis ``i`` is input axis ``perm[i]``, reversed where ``flips[i]``.

    Only permutations and flips (no resampling): an oblique array gets its nearest-axis
    orientation. ``ValueError`` for a bad code or a degenerate affine.

    >>> reorientation(np.diag([1.0, 1.0, -1.0, 1.0]), "SPL")
    ([2, 1, 0], [True, False, False])
    """
    wanted = parse_code(code)
    current = axis_directions(affine)
    perm, flips = [], []
    for world, sign in wanted:
        axis = next(a for a, (w, _) in enumerate(current) if w == world)
        perm.append(axis)
        flips.append(current[axis][1] != sign)
    return perm, flips


def direction_letter(world: int, sign: int) -> str:
    """The LPS patient letter of world axis ``world`` (0, 1, 2 = x, y, z) in direction ``sign``.

    >>> direction_letter(0, -1), direction_letter(2, 1)
    ('R', 'S')
    """
    letter = "LPS"[world]
    return letter if sign > 0 else _OPPOSITE[letter]
