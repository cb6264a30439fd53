"""The plane table: the one internal contract between header readers and the volume builder.

Every source of 2D image planes — a single-frame file, one frame of an enhanced multi-frame
object (``dicomml.geometry.enhanced``), one tile of a Siemens mosaic (``dicomml.geometry.mosaic``)
— is described by one row of a :class:`pandas.DataFrame` with the columns below. The loader
(``dicomml.loader``) then does everything else in one path: group planes into volumes (4D by the
dimension columns), sort each volume by the projection of ``position`` on the slice normal, run
the geometry checks, build the affine, and read the pixels.

Columns (one row per plane; units are mm, indices 0-based)
-----------------------------------------------------------
===================  ==========  ============================================================
column               type        meaning
===================  ==========  ============================================================
``path``             str         file holding the pixels
``frame``            int         frame index in that file (0 for a single-frame file; for a
                                 mosaic: the frame holding the mosaic, normally 0)
``tile``             int         mosaic tile index, row-major over the tile grid; -1 otherwise
``position``         tuple(3)    Image Position (Patient) of the plane's first voxel, LPS mm
                                 (for a mosaic tile: the *corrected* position of that slice)
``orientation``      tuple(6)    Image Orientation (Patient): row cosines, then column cosines
``pixel_spacing``    tuple(2)    Pixel Spacing (between rows, between columns), mm
``rows``             int         rows of the plane (a mosaic tile's rows, not the mosaic's)
``columns``          int         columns of the plane
``slope``            float       Rescale Slope for this plane (1.0 when absent)
``intercept``        float       Rescale Intercept for this plane (0.0 when absent)
``temporal``         float       temporal position (Temporal Position Index / Identifier, or
                                 trigger/acquisition time); NaN when absent
``echo``             float       echo number (or echo time, ms) ; NaN when absent
``b_value``          float       diffusion b-value, s/mm^2; NaN when absent
``gradient``         object      diffusion gradient direction (3-tuple, LPS) or None
``acquisition``      float       Acquisition Number; NaN when absent
``instance``         float       Instance Number (information only, never used to sort)
``stack``            object      Stack ID (enhanced) or None
===================  ==========  ============================================================

Optional columns the loader uses when present (the catalog supplies them for single-frame
files): ``transfer_syntax`` (UID str), ``pixel_data_offset`` / ``pixel_data_length`` (bytes, of
the whole Pixel Data value), ``number_of_frames``, ``bits_allocated``, ``bits_stored``,
``pixel_representation``, ``photometric``, ``samples_per_pixel``, ``mosaic_rows`` /
``mosaic_columns`` (the stored image size of a mosaic).

The header readers in :mod:`dicomml.geometry` that the loader calls (each returns a plane table):

- ``dicomml.geometry.enhanced.frame_planes(ds, path) -> DataFrame``: one row per frame of an
  enhanced multi-frame object; ``ds`` is the pydicom header (read with ``stop_before_pixels``).
- ``dicomml.geometry.mosaic.is_mosaic(ds) -> bool`` and
  ``dicomml.geometry.mosaic.mosaic_planes(ds, path) -> DataFrame``: one row per tile (``tile`` =
  slice index in the acquisition, corrected ``position``); and
  ``dicomml.geometry.mosaic.untile(image, planes) -> ndarray`` turning one decoded mosaic image
  (mosaic_rows, mosaic_columns) into ``(len(planes), rows, columns)`` in the order of
  ``planes.tile``.

Example
-------
>>> t = plane_table([dict(path="a.dcm", position=(0, 0, 0), orientation=(1, 0, 0, 0, 1, 0),
...                       pixel_spacing=(0.5, 0.5), rows=4, columns=4)])
>>> int(t.loc[0, "frame"]), int(t.loc[0, "tile"]), float(t.loc[0, "slope"])
(0, -1, 1.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

#: required columns (no default)
REQUIRED = ("path", "position", "orientation", "pixel_spacing", "rows", "columns")
#: optional columns with their defaults
DEFAULTS: dict[str, object] = {
    "frame": 0, "tile": -1, "slope": 1.0, "intercept": 0.0, "temporal": np.nan,
    "echo": np.nan, "b_value": np.nan, "gradient": None, "acquisition": np.nan,
    "instance": np.nan, "stack": None,
}
#: columns that can distinguish the volumes of a 4D series, in the order used to sort volumes
DIMENSIONS = ("stack", "temporal", "echo", "b_value", "gradient", "acquisition")
COLUMNS = REQUIRED + tuple(DEFAULTS)
#: what ``astype(str)`` gives in this pandas (object, or pandas 3's "str"): paths already of
#: this dtype need no conversion
_STR_DTYPE = pd.Series(["a"]).astype(str).dtype


def plane_table(rows: Iterable[Mapping]) -> pd.DataFrame:
    """Build a plane table from dict-like rows, filling defaults and normalising types.

    Raises ``KeyError`` naming a missing required column.
    """
    df = pd.DataFrame(list(rows))
    return normalise(df)


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with every column of the contract present and typed (a copy)."""
    for name in REQUIRED:
        if name not in df.columns:
            raise KeyError(f"plane table lacks required column {name!r}")
    missing = {name: [default] * len(df) for name, default in DEFAULTS.items()
               if name not in df.columns}
    df = df.assign(**missing) if missing else df.copy()  # a copy either way
    for name in ("position", "orientation", "pixel_spacing"):
        values = df[name].tolist()
        if not all(type(v) is tuple and all(type(x) is float for x in v) for v in values):
            df[name] = [tuple(float(v) for v in value) for value in values]
    for name in ("rows", "columns", "frame", "tile"):
        if df[name].dtype != np.int64:
            df[name] = df[name].astype(np.int64)
    for name in ("slope", "intercept", "temporal", "echo", "b_value", "acquisition", "instance"):
        if df[name].dtype != np.float64:
            df[name] = pd.to_numeric(df[name], errors="coerce").astype(np.float64)
    if df["slope"].isna().any():
        df["slope"] = df["slope"].fillna(1.0)
    if df["intercept"].isna().any():
        df["intercept"] = df["intercept"].fillna(0.0)
    if df["path"].dtype != object and df["path"].dtype != _STR_DTYPE:
        df["path"] = df["path"].astype(str)
    if isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1 \
            and df.index.name is None:
        return df
    return df.reset_index(drop=True)


def positions(table: pd.DataFrame) -> np.ndarray:
    """Image positions as an ``(n, 3)`` float64 array (LPS mm)."""
    return np.asarray(np.stack(table["position"].to_numpy()), dtype=np.float64).reshape(-1, 3)


def orientations(table: pd.DataFrame) -> np.ndarray:
    """Orientations as an ``(n, 6)`` float64 array (row cosines, column cosines)."""
    return np.asarray(np.stack(table["orientation"].to_numpy()), dtype=np.float64).reshape(-1, 6)


def pixel_spacings(table: pd.DataFrame) -> np.ndarray:
    """Pixel spacings as an ``(n, 2)`` float64 array (between rows, between columns; mm)."""
    return np.asarray(np.stack(table["pixel_spacing"].to_numpy()), dtype=np.float64).reshape(-1, 2)
