"""Diffusion encoding: vendor gradient frames to the LPS patient frame, and FSL ``.bval``/``.bvec``.

Conventions
-----------
- A gradient is a unit 3-vector in DICOM's **LPS patient frame** (x to the patient's Left,
  y Posterior, z Superior), or None for a b=0 volume (or where no direction is known).
  b-values are in s/mm^2.
- FSL's ``.bvec`` holds one column per volume (3 rows: x, y, z) in the *voxel* frame of the
  NIfTI image it belongs to: ``v = R.T @ g_ras`` with ``R`` the unit columns of the image's
  (i, j, k) -> RAS affine and ``g_ras = (-g_x, -g_y, g_z)``; when ``det(R) > 0`` (a
  "neurological" storage order) FSL expects the x component negated. This is what dcm2niix
  writes; tools read it back with ``g_ras = R @ (flip_x(v) if det > 0 else v)``.

Where each vendor keeps the encoding (:func:`vendor_diffusion`; frames as dcm2niix reads them,
each checked against dcm2niix's ``.bvec`` on the shared data sets):

- **Standard**: b-value (0018,9087), direction (0018,9089) Diffusion Gradient Orientation
  (patient frame, LPS), also inside an MR Diffusion Sequence (0018,9117); the enhanced per-frame
  sequence is read by :mod:`dicomml.geometry.enhanced`.
- **Siemens**: the CSA image header's ``B_value`` / ``DiffusionGradientDirection`` (patient
  frame; :func:`dicomml.geometry.mosaic.diffusion`).
- **Philips**: (2001,1003) Diffusion B-Factor and (2005,10B0/10B1/10B2) Diffusion Direction
  RL/AP/FH (patient frame, the same numbers as (0018,9089) where both exist); (2001,1004) =
  ``I`` marks an isotropic (trace) image when b > 0.
- **GE**: b-value = the first value of (0043,1039) (modulo 10^9: some versions add 10^9), the
  direction (0019,10BB/10BC/10BD) in GE's *logical* frame (:func:`logical_to_patient`).
- **Canon/Toshiba**: Image Comments (0020,4000) ``b=1500(0.445,0.000,0.895)`` (absent on b=0),
  the direction in the logical frame with its first two components swapped, then as GE.

GE and Canon logical directions are turned into patient coordinates exactly as dcm2niix does
(its ``geCorrectBvecs``, from Xiangrui Li's dicm2nii; validated upstream on axial data):
with In-plane Phase Encoding Direction (0018,1312) ROW or COL (whatever the patient position:
the installed dcm2niix corrects every position), ``v = (x, y, z)``; negate the components
flagged for the slice orientation (the axis the slice normal ``n = F_r x F_c`` is closest to:
sagittal x and y, coronal y and z, axial z); ROW: ``(x, y) <- (y, -x)``; negate y; the result
is along F_r, ``-F_c`` and ``n``
(dcm2niix's voxel frame for slices stored along +n). Without a usable phase-encoding
direction dcm2niix leaves the values as they are and so does this (the vector is then read
directly along F_r, ``-F_c``, ``n``). Each rule is checked against dcm2niix on the shared GE
and Canon series and on 72 synthetic ones (GE and Canon x ROW, COL, none x HFS, FFS, HFP x
axial, coronal, sagittal, oblique: 72 of 72 match; ``tests/test_vendor_4d.py`` runs a subset).

Directions are compared up to sign (a diffusion gradient and its opposite encode the same
thing), so a frame known up to a global sign is enough.

Example
-------
>>> import numpy as np
>>> iop = (1, 0, 0, 0, 1, 0)                        # axial, rows along x, columns along y
>>> logical_to_patient((0.0, 0.0, 1.0), iop)        # GE's slice axis: the slice normal, LPS
(0.0, 0.0, 1.0)
>>> ras_affine = np.diag([-2.0, 2.0, 3.0, 1.0])     # (i, j, k) -> RAS, det < 0
>>> fsl_bvecs([None, (1.0, 0.0, 0.0)], ras_affine).tolist()
[[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["unit_or_none", "logical_to_patient", "vendor_diffusion", "Encoding", "fsl_bvecs",
           "bvecs_to_ras", "format_fsl", "DIFFUSION_TAGS"]


def unit_or_none(vector) -> tuple[float, float, float] | None:
    """``vector`` scaled to unit length as a 3-tuple of floats; None when it is absent, not 3
    finite numbers, or shorter than 1e-6 (a b=0 or isotropic "direction" of (0, 0, 0))."""
    if vector is None:
        return None
    try:
        v = np.asarray([float(x) for x in vector], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if v.shape != (3,) or not np.isfinite(v).all():
        return None
    norm = float(np.linalg.norm(v))
    if norm < 1e-6:
        return None
    return tuple(float(x) for x in v / norm)


def fsl_bvecs(gradients: Sequence, ras_affine: np.ndarray) -> np.ndarray:
    """FSL ``.bvec`` columns ``(3, volumes)`` for LPS unit gradients (None -> 0, 0, 0) of a
    NIfTI image whose (i, j, k) -> RAS affine is ``ras_affine`` (see the module docstring)."""
    linear = np.asarray(ras_affine, dtype=np.float64)[:3, :3]
    unit = linear / np.linalg.norm(linear, axis=0)
    flip_x = np.linalg.det(unit) > 0
    out = np.zeros((3, len(gradients)))
    for index, gradient in enumerate(gradients):
        g = unit_or_none(gradient)
        if g is None:
            continue
        ras = np.array([-g[0], -g[1], g[2]])
        v = np.linalg.solve(unit, ras)  # = unit.T @ ras for an orthonormal affine
        if flip_x:
            v[0] = -v[0]
        out[:, index] = v / np.linalg.norm(v)
    return out + 0.0  # no negative zeros in the text


def bvecs_to_ras(bvecs: np.ndarray, ras_affine: np.ndarray) -> np.ndarray:
    """The inverse of :func:`fsl_bvecs`: ``(3, volumes)`` FSL columns to RAS unit vectors
    (zero columns stay zero)."""
    linear = np.asarray(ras_affine, dtype=np.float64)[:3, :3]
    unit = linear / np.linalg.norm(linear, axis=0)
    v = np.array(bvecs, dtype=np.float64).reshape(3, -1)
    if np.linalg.det(unit) > 0:
        v[0] = -v[0]
    ras = unit @ v
    norms = np.linalg.norm(ras, axis=0)
    return np.where(norms > 1e-6, ras / np.where(norms > 1e-6, norms, 1.0), 0.0)


def format_fsl(rows: np.ndarray, *, integers: bool = False) -> str:
    """Text of an FSL ``.bval`` (one row, ``integers=True``) or ``.bvec`` (three rows) file:
    space-separated values, one line per row."""
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    lines = []
    for row in rows:
        if integers:
            lines.append(" ".join(str(int(round(v))) if math.isfinite(v) else "0" for v in row))
        else:
            lines.append(" ".join(f"{0.0 if abs(v) < 5e-7 else v:.6g}" for v in row))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ vendors
#: (group, element) of every element :func:`vendor_diffusion` reads (private creators at
#: (gggg,0010) included), for ``pydicom.dcmread(..., specific_tags=DIFFUSION_TAGS)``
DIFFUSION_TAGS = (
    (0x0008, 0x0070), (0x0018, 0x9087), (0x0018, 0x9089), (0x0018, 0x9075), (0x0018, 0x9117),
    (0x0020, 0x0037), (0x0020, 0x4000), (0x0019, 0x0010), (0x0019, 0x10BB), (0x0019, 0x10BC),
    (0x0019, 0x10BD), (0x0043, 0x0010), (0x0043, 0x1039), (0x2001, 0x0010), (0x2001, 0x1003),
    (0x2001, 0x1004), (0x2005, 0x0010), (0x2005, 0x10B0), (0x2005, 0x10B1), (0x2005, 0x10B2),
    (0x0029, 0x0010), (0x0029, 0x1010), (0x0029, 0x0011), (0x0029, 0x1110),
    (0x0018, 0x1312),
)
_GE_ACQU, _GE_PARM = "GEMS_ACQU_01", "GEMS_PARM_01"
_PHILIPS = ("Philips Imaging DD 001", "Philips MR Imaging DD 001")
_CANON_COMMENT = re.compile(r"b\s*=\s*([-+0-9.eE]+)\s*\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)"
                            r"\s*,\s*([-+0-9.eE]+)\s*\)")


class Encoding(NamedTuple):
    """One image's diffusion encoding: ``b_value`` (s/mm^2, NaN when unknown), ``gradient``
    (unit LPS vector or None), ``isotropic`` (a derived trace / isotropic image: b > 0 with
    no direction, flagged by the vendor or by (0018,9075) = ISOTROPIC) and ``source`` (the
    tags it came from)."""

    b_value: float
    gradient: tuple | None
    isotropic: bool
    source: str


def vendor_diffusion(ds, orientation=None) -> Encoding:
    """The diffusion encoding of one classic (single-frame) image header ``ds`` (a pydicom
    Dataset), from the standard tags first, then the vendor's (module docstring).
    ``orientation``: Image Orientation (Patient), needed for GE and Canon (default: ds's).

    >>> from pydicom import Dataset
    >>> ds = Dataset(); ds.DiffusionBValue = 1000.0
    >>> ds.DiffusionGradientOrientation = [0.0, 0.0, 2.0]
    >>> vendor_diffusion(ds)
    Encoding(b_value=1000.0, gradient=(0.0, 0.0, 1.0), isotropic=False, source='(0018,9087)/(0018,9089)')
    """
    if orientation is None:
        orientation = _numbers(_element(ds, 0x0020, 0x0037))
    found = _standard(ds)
    if found is None or (found[0] > 0 and found[1] is None and not found[2]):
        # no standard direction for a diffusion-weighted image: the vendor's, where present
        vendor = (_philips(ds) or _ge(ds, orientation) or _canon(ds, orientation)
                  or _siemens(ds))
        found = vendor or found
    if found is None:
        return Encoding(math.nan, None, False, "")
    b_value, gradient, flagged, source = found
    isotropic = bool(b_value > 0 and gradient is None and flagged)
    return Encoding(float(b_value), gradient, isotropic, source)


def _element(ds, group: int, element: int, creators=None):
    """The value of (group, element), or None; with ``creators``, only when the private
    creator of its block (group, 0x00XX) is one of them."""
    if creators is not None:
        creator = ds.get((group, element >> 8))
        text = None if creator is None else str(creator.value).strip()
        if text not in creators:
            return None
    found = ds.get((group, element))
    return None if found is None else found.value


def _numbers(value) -> list[float] | None:
    """A value (number, list, backslash text, bytes of text) as floats, or None."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace").strip("\0 ")
    if isinstance(value, str):
        value = [v for v in value.split("\\") if v.strip()]
    if not isinstance(value, (list, tuple)) and not hasattr(value, "__iter__"):
        value = [value]
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError):
        return None


def _directionality(ds) -> str:
    found = ds.get((0x0018, 0x9075))
    return "" if found is None else str(found.value).strip().upper()


def _standard(ds):
    b_value = _numbers(_element(ds, 0x0018, 0x9087))
    direction = _numbers(_element(ds, 0x0018, 0x9089))
    if b_value is None:
        sequence = ds.get((0x0018, 0x9117))
        item = sequence.value[0] if sequence is not None and len(sequence.value) else None
        if item is not None:
            return _standard(item)
        return None
    iso = _directionality(ds) == "ISOTROPIC" or str(
        _element(ds, 0x2001, 0x1004, _PHILIPS) or "").strip().upper() == "I"
    return b_value[0], unit_or_none(direction), iso, "(0018,9087)/(0018,9089)"


def _philips(ds):
    b_value = _numbers(_element(ds, 0x2001, 0x1003, _PHILIPS))
    if b_value is None:
        return None
    direction = [_numbers(_element(ds, 0x2005, e, _PHILIPS)) for e in (0x10B0, 0x10B1, 0x10B2)]
    vector = None if any(d is None for d in direction) else [d[0] for d in direction]
    flag = str(_element(ds, 0x2001, 0x1004, _PHILIPS) or "").strip().upper()
    return b_value[0], unit_or_none(vector), flag == "I", "Philips (2001,1003)/(2005,10B0-10B2)"


def _text(ds, group: int, element: int) -> str:
    found = _element(ds, group, element)
    return "" if found is None else str(found).strip().upper()


def logical_to_patient(vector, orientation, *,
                       phase_encoding: str = "COL") -> tuple[float, float, float] | None:
    """A GE logical-frame direction (0019,10BB-10BD) as a unit LPS vector, as dcm2niix converts
    it (module docstring); ``orientation`` is Image Orientation (Patient).

    >>> logical_to_patient((0.0, 0.0, 1.0), (1, 0, 0, 0, 1, 0))   # axial: the slice normal
    (0.0, 0.0, 1.0)
    """
    v = unit_or_none(vector)
    cosines = np.asarray(orientation, dtype=np.float64)
    if v is None or cosines.shape != (6,):
        return None
    x, y, z = v
    row, column = cosines[:3], cosines[3:]
    normal = np.cross(row, column)
    phase = str(phase_encoding).strip().upper()[:1]
    if phase in ("R", "C"):
        flags = {0: (1, 1, 0), 1: (0, 1, 1), 2: (0, 0, 1)}[int(np.argmax(np.abs(normal)))]
        x, y, z = (-c if f else c for c, f in zip((x, y, z), flags))
        if phase == "R":  # rows: swizzled
            x, y = y, -x
        y = -y
        x, y, z = -x, -y, -z  # dcm2niix's polarity (immaterial: directions are axes)
    return unit_or_none(x * row - y * column + z * normal)


def _ge(ds, orientation):
    b_value = _numbers(_element(ds, 0x0043, 0x1039, (_GE_PARM,)))
    if b_value is None:
        return None
    b = b_value[0] % 1_000_000_000
    vector = [_numbers(_element(ds, 0x0019, e, (_GE_ACQU,))) for e in (0x10BB, 0x10BC, 0x10BD)]
    gradient = None
    if orientation is not None and len(orientation) == 6 and not any(v is None for v in vector):
        gradient = logical_to_patient(
            [v[0] for v in vector], orientation, phase_encoding=_text(ds, 0x0018, 0x1312))
    return b, gradient, b > 0 and gradient is None, "GE (0043,1039)/(0019,10BB-10BD)"


def _canon(ds, orientation):
    comment = ds.get((0x0020, 0x4000))
    match = _CANON_COMMENT.search(str(comment.value)) if comment is not None else None
    if match is None:
        return None
    b, x, y, z = (float(v) for v in match.groups())
    gradient = None
    if orientation is not None and len(orientation) == 6:
        gradient = logical_to_patient(
            (y, x, z), orientation, phase_encoding=_text(ds, 0x0018, 0x1312))
    return b, gradient, False, "Canon Image Comments (0020,4000)"


def _siemens(ds):
    from dicomml.geometry.mosaic import diffusion as siemens_diffusion

    try:
        b_value, gradient = siemens_diffusion(ds)
    except Exception:  # noqa: BLE001 - an unreadable CSA header: no encoding from it
        return None
    if b_value != b_value:
        return None
    return b_value, gradient, False, "Siemens CSA B_value/DiffusionGradientDirection"
