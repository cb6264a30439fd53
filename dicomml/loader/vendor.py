"""Plane-table adjustments that depend on where the planes came from, and what they tell the
Volume's metadata: classic multi-frame / unlocated placement
(:mod:`dicomml.geometry.classic`) and vendor value scaling (Philips MR private scale slope,
:mod:`dicomml.loader.philips`).

Example
-------
>>> import tempfile, dicomml
>>> folder = tempfile.mkdtemp()
>>> _ = dicomml.synth.write_series(folder, shape=(2, 4, 4))
>>> from dicomml.loader.planes import build_planes
>>> from dicomml.loader.sources import resolve_source
>>> rows = resolve_source(folder)[0]
>>> planes, scaling = adjust_planes(build_planes(rows), rows)
>>> scaling["applied"]
'modality_lut'
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dicomml.geometry import classic

from . import philips

#: accepted ``scaling=`` of :func:`dicomml.load_series`
VALUES = philips.VALUES


def adjust_planes(planes: pd.DataFrame, instances: pd.DataFrame, values: str = "default",
                  dtype="float32") -> tuple[pd.DataFrame, dict]:
    """The plane table with unlocated files stacked and vendor scaling in ``slope`` /
    ``intercept``, and the scaling record for ``metadata["scaling"]``."""
    planes = classic.place_unlocated(planes)
    return philips.apply(planes, instances, values, dtype)


def plane_notes(planes: pd.DataFrame, order: np.ndarray) -> dict:
    """Metadata from the planes used: ``geometry`` ("patient", or "none" for the placeholder
    of :mod:`dicomml.geometry.classic`) and ``geometry_warnings`` (classic multi-frame
    placement: spacing assumed, nonstandard offsets)."""
    return classic.notes(planes, order)
