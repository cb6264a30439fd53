"""Vendor-style 4D diffusion series (``write_series(..., fourth_dim="ge_dwi" | "canon_dti")``).

Both styles write single-frame MR files whose volumes no standard tag tells apart (no
Temporal Position Identifier, one Acquisition Number, Echo Number 1): volume 0 is b=0, the
others b=1000 s/mm^2 along the directions of :data:`IMAGE_DIRECTIONS`. Instance Number runs
slice-fastest within each volume, volume after volume (the acquisition order a reader must
follow). The encoding is written where each vendor puts it:

- ``"ge_dwi"``: Manufacturer ``GE MEDICAL SYSTEMS``, In-plane Phase Encoding Direction COL;
  b-value as the first value of (0043,1039) (private creator ``GEMS_PARM_01``,
  ``[b, 8, 0, 0]``), the direction in (0019,10BB/10BC/10BD) (``GEMS_ACQU_01``) in GE's
  logical frame; (0018,9087) only on the b > 0 files, as the scanner does.
- ``"philips_dwi"``: Manufacturer ``Philips Medical Systems``; only the private (2001,1003)
  b-value, (2001,1004) label and (2005,10B0-10B2) direction (patient frame, LPS); the last
  volume is a derived isotropic (trace) image (b > 0, direction 0, label ``I``), which a
  reader leaves out of the DWI (``meta["derived_volumes"]``).
- ``"canon_dti"``: Manufacturer ``CANON_MEC``, phase encoding ROW; (0018,9087) on every file and
  the direction only as text in Image Comments (0020,4000), ``b=1000(0.600,0.800,0.000)``.

``InPlanePhaseEncodingDirection=...`` (an extra tag of ``write_series``) overrides the phase
encoding. The ground truth (``meta["b_values"]``, ``meta["gradients"]``: unit LPS vectors, None
for b=0) is computed here, as matrices, from the written values, the orientation and the phase
encoding with the rule dcm2niix applies (:func:`dicomml.geometry.diffusion.logical_to_patient`
states it; both are checked against dcm2niix itself in ``tests/test_vendor_4d.py``).

Example
-------
>>> import numpy as np
>>> lps = truth_gradients("ge_dwi", np.array([1.0, 0, 0, 0, 1, 0]), 3)
>>> lps[0], [abs(round(v, 3)) for v in lps[1]]
(None, [1.0, 0.0, 0.0])
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from ._geometry import ds_strings

#: vendor styles accepted as ``fourth_dim``
STYLES = ("ge_dwi", "canon_dti", "philips_dwi")
#: image-frame directions of volumes 1, 2, ... (exact with 3 decimals), cycled
IMAGE_DIRECTIONS = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.6, 0.8, 0.0),
                    (0.0, 0.6, 0.8), (0.8, 0.0, 0.6), (0.6, 0.0, -0.8))
B_VALUE = 1000.0
#: the phase-encoding direction each style writes by default (as the shared scanners did)
PHASE_ENCODING = {"ge_dwi": "COL", "canon_dti": "ROW", "philips_dwi": "COL"}
_PHILIPS = ("Philips Imaging DD 001", "Philips MR Imaging DD 001")


def b_values(n_volumes: int) -> list[float]:
    """b-value of each volume (s/mm^2): 0, then :data:`B_VALUE`."""
    return [0.0] + [B_VALUE] * (n_volumes - 1)


def image_direction(volume: int) -> tuple[float, float, float] | None:
    """The direction written for ``volume`` (vendor image frame), None for volume 0."""
    return None if volume == 0 else IMAGE_DIRECTIONS[(volume - 1) % len(IMAGE_DIRECTIONS)]


def derived_volumes(style: str, n_volumes: int) -> list[int]:
    """Volumes written as derived isotropic (trace) images: the last one of a Philips-style
    series (of 3 or more volumes)."""
    return [n_volumes - 1] if style == "philips_dwi" and n_volumes >= 3 else []


def truth_gradients(style: str, iop: np.ndarray, n_volumes: int,
                    phase_encoding: str | None = None) -> list:
    """Unit LPS gradient of each volume (None for b=0) from the written logical directions
    (module docstring; ``phase_encoding`` ROW, COL, or "" for none). Philips-style: the
    directions are written in the patient frame (LPS) and derived volumes are left out."""
    if style == "philips_dwi":
        kept = n_volumes - len(derived_volumes(style, n_volumes))
        return [None if (d := image_direction(v)) is None
                else tuple(float(x) for x in np.asarray(d) / np.linalg.norm(d))
                for v in range(kept)]
    row, column = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    normal = np.cross(row, column)
    phase = PHASE_ENCODING[style] if phase_encoding is None else phase_encoding
    matrix = np.eye(3)
    if style == "canon_dti":  # Canon's first two components are swapped first
        matrix = np.array([[0.0, 1, 0], [1, 0, 0], [0, 0, 1]])
    if phase in ("ROW", "COL"):
        flips = {0: (-1, -1, 1), 1: (1, -1, -1), 2: (1, 1, -1)}[int(np.argmax(np.abs(normal)))]
        matrix = np.diag(flips) @ matrix
        if phase == "ROW":
            matrix = np.array([[0.0, 1, 0], [-1, 0, 0], [0, 0, 1]]) @ matrix
        matrix = np.diag([1.0, -1, 1]) @ matrix
    frame = np.stack([row, -column, normal], axis=1)  # dcm2niix's voxel axes, LPS
    out = []
    for volume in range(n_volumes):
        direction = image_direction(volume)
        if direction is None:
            out.append(None)
            continue
        lps = frame @ matrix @ np.asarray(direction)
        out.append(tuple(float(v) for v in lps / np.linalg.norm(lps)))
    return out


def add_vendor_diffusion(ds: Dataset, style: str, volume: int, n_volumes: int) -> None:
    """Write the diffusion encoding of ``volume`` in the vendor's tags (module docstring)."""
    b_value = b_values(volume + 1)[volume]
    direction = image_direction(volume) or (0.0, 0.0, 0.0)
    ds.InPlanePhaseEncodingDirection = PHASE_ENCODING[style]
    if style == "philips_dwi":
        _philips(ds, b_value, direction, volume in derived_volumes(style, n_volumes))
        return
    if style == "ge_dwi":
        ds.Manufacturer = "GE MEDICAL SYSTEMS"
        acq = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
        for offset, value in zip((0xBB, 0xBC, 0xBD), direction):
            acq.add_new(offset, "DS", ds_strings([value])[0])
        parm = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
        parm.add_new(0x39, "IS", [int(b_value), 8, 0, 0])
        if b_value > 0:
            ds.DiffusionBValue = b_value
    elif style == "canon_dti":
        ds.Manufacturer = "CANON_MEC"
        ds.DiffusionBValue = b_value
        if b_value > 0:
            x, y, z = direction
            ds.ImageComments = f"b={int(b_value)}({x:.3f},{y:.3f},{z:.3f})"
    else:  # pragma: no cover - checked by make_plan
        raise ValueError(f"unknown vendor style {style!r}")


def _philips(ds: Dataset, b_value: float, direction, derived: bool) -> None:
    """Philips private encoding only (no (0018,9087)/(0018,9089), as older software wrote):
    (2001,1003) b-value, (2001,1004) direction label (``I`` for b=0 and for the derived
    isotropic image), (2005,10B0-10B2) the direction in the patient frame (LPS)."""
    ds.Manufacturer = "Philips Medical Systems"
    if derived:
        direction = (0.0, 0.0, 0.0)
    imaging = ds.private_block(0x2001, _PHILIPS[0], create=True)
    imaging.add_new(0x03, "FL", float(b_value))
    imaging.add_new(0x04, "CS", "I" if derived or b_value == 0 else "O")
    mr = ds.private_block(0x2005, _PHILIPS[1], create=True)
    for offset, value in zip((0xB0, 0xB1, 0xB2), direction):
        mr.add_new(offset, "FL", float(value))
