"""Realistic synthetic DICOM series with ground truth, for tests and the demo.

:func:`write_series` writes one CT or MR series with pydicom — any size, orientation
(axial, coronal, sagittal, oblique or any 6 cosines; every patient position), slice spacing
(even, uneven, gaps, duplicates, gantry tilt), pixel format (signed or not, bits stored,
rescale slope/intercept, MONOCHROME1/2), single-frame or enhanced multi-frame, 3D or 4D, and
any transfer syntax an installed encoder can write — and returns a :class:`SynthSeries`:
the values and geometry a correct reader must produce, computed without any reader.

:func:`write_colour_series` writes RGB, YBR_FULL and PALETTE COLOR series (trailing axis of 3
samples in the truth). :func:`write_classic_multiframe` writes classic multi-frame objects (MR/CT, RT Dose, NM,
and US/SC/XA cine without patient geometry) with the same kind of ground truth.
:func:`write_projection` writes a projection image (mammogram, radiograph, tomosynthesis
object) whose frames are the stored values given.

Conventions: arrays are (slices, rows, columns) — (volumes, slices, rows, columns) for 4D —
in ascending order along the slice normal ``cross(row cosine, column cosine)``; ``affine``
maps (slice, row, column, 1) to LPS millimetres (docs/conventions.md).

Example
-------
>>> import tempfile
>>> from dicomml import synth
>>> truth = synth.write_series(tempfile.mkdtemp(), modality="CT", shape=(4, 16, 16))
>>> truth.array.shape, truth.meta["intercept"]
((4, 16, 16), -1024.0)
"""

from __future__ import annotations

from ._classic import write_classic_multiframe
from ._colour import write_colour_series
from ._corpus import write_corpus
from ._encode import is_lossy, supported_transfer_syntaxes
from ._geometry import ORIENTATIONS, PATIENT_POSITIONS, orientation_cosines
from ._phantom import phantom
from ._projection import projection_dataset, write_projection
from ._series import SynthSeries, write_series

__all__ = [
    "ORIENTATIONS",
    "PATIENT_POSITIONS",
    "SynthSeries",
    "is_lossy",
    "orientation_cosines",
    "phantom",
    "projection_dataset",
    "supported_transfer_syntaxes",
    "write_classic_multiframe",
    "write_colour_series",
    "write_corpus",
    "write_projection",
    "write_series",
]
