"""Geometry checks on a stack of slices, returning findings (never raising).

Each check takes numpy arrays and a :class:`Tolerances` and returns a list of
:class:`Finding`. The loader turns findings into errors or warnings by its ``policy``.

Finding kinds and the error each maps to:

==================  =========================================  ===============================
kind                meaning                                    error
==================  =========================================  ===============================
``duplicate``       two planes share one position              ``DuplicateSliceError``
``missing``         a step is a multiple (>= 2) of the usual   ``MissingSliceError``
``uneven``          steps differ beyond the tolerance          ``UnevenSpacingError``
``inconsistent``    orientation / pixel spacing / matrix vary  ``InconsistentSeriesError``
``tilt``            positions do not move along the normal     ``GantryTiltError``
==================  =========================================  ===============================

Example
-------
>>> pos = np.array([[0, 0, 0.0], [0, 0, 1.0], [0, 0, 2.0], [0, 0, 4.0]])
>>> [f.kind for f in check_spacing(pos, (1, 0, 0, 0, 1, 0))]
['missing']
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .orientation import slice_normal
from .sorting import mean_step_vector, project, slice_steps


@dataclass(frozen=True)
class Tolerances:
    """Named tolerances of the geometry checks (units in the names).

    - ``duplicate_mm``: two planes closer than this (3D distance) share a position.
    - ``spacing_atol_mm`` / ``spacing_rtol``: a step along the normal is uneven when it differs
      from the median step by more than ``max(spacing_atol_mm, spacing_rtol * |median|)``.
      0.1 mm absorbs positions written with one decimal (steps then vary by up to 0.1 mm);
      positions also may lie up to this far off the line through the end slices.
    - ``orientation_atol``: largest difference of direction cosines (unitless) between planes;
      the catalog's series splitting uses the same value (``dicomml.catalog.split``), so the
      planes of one series key never differ by more.
    - ``pixel_spacing_atol_mm``: largest difference of Pixel Spacing between planes.
    - ``tilt_deg``: angle between the slice normal and the direction from the first to the last
      position above which the series is tilted (gantry tilt) — provided the last slice has
      also drifted in-plane by more than ``spacing_atol_mm`` (so rounded positions of a short
      series do not count as tilt).
    """

    duplicate_mm: float = 1e-2
    spacing_atol_mm: float = 0.1
    spacing_rtol: float = 1e-2
    orientation_atol: float = 1e-3
    pixel_spacing_atol_mm: float = 1e-4
    tilt_deg: float = 0.05


DEFAULT_TOLERANCES = Tolerances()


@dataclass(frozen=True)
class Finding:
    """One geometry finding: ``kind`` (see module table), a message, and numbers as details."""

    kind: str
    message: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-friendly dict (for sidecars and metadata)."""
        return asdict(self)


def check_consistency(orientations, pixel_spacings, shapes,
                      tol: Tolerances = DEFAULT_TOLERANCES) -> list[Finding]:
    """Orientation (n, 6), pixel spacing (n, 2) and matrix shape (n, 2) must agree across planes."""
    findings = []
    iop = np.asarray(orientations, dtype=np.float64).reshape(-1, 6)
    spread = float(np.max(np.abs(iop - iop[0]))) if len(iop) else 0.0
    if spread > tol.orientation_atol:
        findings.append(Finding("inconsistent", "slices differ in Image Orientation (Patient)",
                                {"max_cosine_difference": spread}))
    ps = np.asarray(pixel_spacings, dtype=np.float64).reshape(-1, 2)
    spread = float(np.max(np.abs(ps - ps[0]))) if len(ps) else 0.0
    if spread > tol.pixel_spacing_atol_mm:
        findings.append(Finding("inconsistent", "slices differ in Pixel Spacing",
                                {"max_difference_mm": spread}))
    sizes = {tuple(int(v) for v in s) for s in np.asarray(shapes).reshape(-1, 2)}
    if len(sizes) > 1:
        findings.append(Finding("inconsistent", "slices differ in matrix size (Rows, Columns)",
                                {"sizes": sorted(sizes)}))
    return findings


def check_duplicates(sorted_positions, tol: Tolerances = DEFAULT_TOLERANCES) -> list[Finding]:
    """Consecutive sorted positions closer than ``tol.duplicate_mm`` are duplicates."""
    pos = np.asarray(sorted_positions, dtype=np.float64).reshape(-1, 3)
    gaps = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    dupes = np.flatnonzero(gaps < tol.duplicate_mm)
    if dupes.size == 0:
        return []
    return [Finding("duplicate", f"{dupes.size} slice(s) share a position with a neighbour",
                    {"sorted_indices": dupes.tolist()})]


def check_spacing(sorted_positions, iop, tol: Tolerances = DEFAULT_TOLERANCES) -> list[Finding]:
    """Gaps (a step ~ k >= 2 times the median step) and uneven steps along the normal."""
    steps = slice_steps(sorted_positions, iop)
    if steps.size < 2:
        return []
    usual = float(np.median(steps))
    limit = max(tol.spacing_atol_mm, tol.spacing_rtol * abs(usual))
    off = np.abs(steps - usual) > limit
    if not off.any():
        return []
    ratio = steps / usual if usual else np.full_like(steps, np.inf)
    multiples = np.round(ratio)
    is_gap = off & (multiples >= 2) & (np.abs(steps - multiples * usual) <= limit)
    details = {"median_step_mm": usual, "min_step_mm": float(steps.min()),
               "max_step_mm": float(steps.max())}
    if is_gap.any() and not (off & ~is_gap).any():
        missing = int((multiples[is_gap] - 1).sum())
        return [Finding("missing", f"{missing} slice(s) missing (gap after sorted slice(s) "
                        f"{np.flatnonzero(is_gap).tolist()})",
                        {**details, "missing": missing, "after": np.flatnonzero(is_gap).tolist()})]
    return [Finding("uneven", f"uneven slice spacing: steps {steps.min():.4g}..{steps.max():.4g} mm "
                    f"(median {usual:.4g} mm)", details)]


def tilt_angle_deg(sorted_positions, iop) -> float:
    """Angle in degrees between the slice normal and the mean step between positions."""
    step = mean_step_vector(sorted_positions)
    length = np.linalg.norm(step)
    if length == 0:
        return 0.0
    cosine = abs(float(step @ slice_normal(iop))) / length
    return float(np.degrees(np.arccos(min(1.0, cosine))))


def check_tilt(sorted_positions, iop, tol: Tolerances = DEFAULT_TOLERANCES) -> list[Finding]:
    """Gantry tilt: positions move at an angle to the normal; also checks they lie on a line."""
    pos = np.asarray(sorted_positions, dtype=np.float64).reshape(-1, 3)
    if len(pos) < 2:
        return []
    findings = []
    angle = tilt_angle_deg(pos, iop)
    span = pos[-1] - pos[0]
    drift = float(np.linalg.norm(span - (span @ slice_normal(iop)) * slice_normal(iop)))
    if angle > tol.tilt_deg and drift > tol.spacing_atol_mm:
        findings.append(Finding("tilt", f"positions move {angle:.3f} deg off the slice normal "
                                "(gantry tilt); the affine is sheared",
                                {"angle_deg": angle, "drift_mm": drift}))
    # positions must lie on one line: compare with the line through the ends
    d = project(pos, iop)
    t = (d - d[0]) / (d[-1] - d[0]) if d[-1] != d[0] else np.zeros(len(d))
    line = pos[0] + np.outer(t, pos[-1] - pos[0])
    off_line = float(np.max(np.linalg.norm(pos - line, axis=1)))
    if off_line > max(tol.duplicate_mm, tol.spacing_atol_mm):
        findings.append(Finding("inconsistent", f"slice positions are not on one line "
                                f"(up to {off_line:.3g} mm off)", {"off_line_mm": off_line}))
    return findings


def check_stack(sorted_positions, iop, tol: Tolerances = DEFAULT_TOLERANCES) -> list[Finding]:
    """All position checks of one sorted stack: duplicates, then spacing and tilt."""
    dupes = check_duplicates(sorted_positions, tol)
    if dupes:
        return dupes
    return check_spacing(sorted_positions, iop, tol) + check_tilt(sorted_positions, iop, tol)
