"""Siemens mosaic MR images: detection, the CSA header, un-tiling and true slice positions.

A Siemens "mosaic" stores a whole 2D-multislice volume (often one time point of an fMRI or
diffusion series) in a single image: ``n`` slices of ``tile_rows x tile_columns`` pixels are laid
row-major on a square grid of ``ceil(sqrt(n))`` tiles per side, padded with empty tiles. The
header describes the *mosaic*, not the slices, so two corrections are needed:

* **Position.** Image Position (Patient) is the first voxel of a fictitious plane of the mosaic's
  size centred on slice 0. Slice 0's true first voxel is therefore
  ``IPP + F_r * Δcol * (mosaic_columns - tile_columns) / 2 + F_c * Δrow * (mosaic_rows -
  tile_rows) / 2`` (F_r = row cosines, F_c = column cosines, PixelSpacing = (Δrow, Δcol)).
* **Slice direction.** Tile ``k`` lies at ``slice0 + k * spacing * n̂``, where ``n̂`` is the
  CSA image header's ``SliceNormalVector`` (it may point either way along ``F_r x F_c``), falling
  back to the series protocol's ``sSliceArray.asSlice[0].sNormal`` and, with no Siemens private
  header at all, to ``F_r x F_c``. ``spacing`` is Spacing Between Slices (0018,0088), else the
  distance between the protocol's first two slice centres, else Slice Thickness.

The CSA headers ((0029,1010) image, (0029,1020) series) are Siemens' binary "SV10" (CSA2) or
older CSA1 tag lists, read by :mod:`dicomml.geometry.csa` (bounded by the element length); its
``parse_csa``, ``csa_header``, ``csa_floats``, ``ascconv``, ``protocol_vector`` and ``CSA_HEADER``
are re-exported here.

All positions are LPS mm (DICOM patient coordinates); arrays are ``(slices, rows, columns)``.

Example
-------
>>> import pydicom
>>> ds = pydicom.dcmread("mosaic.dcm", stop_before_pixels=True)  # doctest: +SKIP
>>> is_mosaic(ds), mosaic_layout(ds)                             # doctest: +SKIP
(True, MosaicLayout(n_slices=25, grid=5, tile_rows=128, tile_columns=128, ...))
>>> planes = mosaic_planes(ds, "mosaic.dcm")                      # doctest: +SKIP
>>> volume = untile(ds.pixel_array, planes)                      # doctest: +SKIP
>>> volume.shape                                                 # doctest: +SKIP
(25, 128, 128)
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dicomml.errors import InvalidTagError, MissingTagError

# The CSA/ASCCONV reader lives in dicomml.geometry.csa; its public names are re-exported here
# (``mosaic.parse_csa`` etc. keep working).
from dicomml.geometry.csa import CSA_HEADER as CSA_HEADER
from dicomml.geometry.csa import ascconv as ascconv
from dicomml.geometry.csa import csa_floats as csa_floats
from dicomml.geometry.csa import csa_header as csa_header
from dicomml.geometry.csa import parse_csa as parse_csa
from dicomml.geometry.csa import protocol_vector as protocol_vector
from dicomml.geometry.planes import plane_table
from dicomml.geometry.tagvalues import tag_vector

#: private creator and element offsets of the SIEMENS MR HEADER (0019,xxNN) tags used here
MR_HEADER = "SIEMENS MR HEADER"
_MR_ELEMENTS = {"NumberOfImagesInMosaic": 0x0A, "B_value": 0x0C, "DiffusionGradientDirection": 0x0E,
                "MosaicRefAcqTimes": 0x29}
_MR_VECTORS = {"DiffusionGradientDirection", "MosaicRefAcqTimes"}
_protocol_vector = protocol_vector  # former private name, kept for existing callers


# --- detection and layout -----------------------------------------------------------------------
@dataclass(frozen=True)
class MosaicLayout:
    """How the slices of one mosaic are stored.

    ``n_slices`` tiles of ``tile_rows x tile_columns`` pixels on a ``grid x grid`` raster inside
    an image of ``mosaic_rows x mosaic_columns`` pixels.
    """

    n_slices: int
    grid: int
    tile_rows: int
    tile_columns: int
    mosaic_rows: int
    mosaic_columns: int


def is_mosaic(ds) -> bool:
    """True when ``ds`` is a Siemens mosaic: ImageType contains MOSAIC, or the Siemens private
    NumberOfImagesInMosaic (0019,xx0A) is present (any value; a single-slice "mosaic" of n=1 is
    still a mosaic).

    Example
    -------
    >>> is_mosaic(pydicom.dcmread(get_testdata_file("CT_small.dcm")))  # doctest: +SKIP
    False
    """
    image_type = ds.get("ImageType") or []
    if isinstance(image_type, str):
        image_type = image_type.split("\\")
    if any(str(value).strip().upper() == "MOSAIC" for value in image_type):
        return True
    return _mr_value(ds, "NumberOfImagesInMosaic") is not None


def number_of_slices(ds, *, path=None) -> int:
    """Number of slices in the mosaic: (0019,xx0A), else the CSA image NumberOfImagesInMosaic."""
    value = _mr_value(ds, "NumberOfImagesInMosaic")
    tag = "NumberOfImagesInMosaic (0019,xx0A)"
    if value is None:
        value = csa_floats(csa_header(ds, "image", path=path), "NumberOfImagesInMosaic")
        tag = "CSA NumberOfImagesInMosaic"
        value = None if value is None else value[0]
    if value is None:
        raise MissingTagError("mosaic without NumberOfImagesInMosaic", path=path, tag=tag)
    if value != int(value) or not 0 < int(value) <= 4096:
        raise InvalidTagError(f"implausible number of images in mosaic: {value}", path=path, tag=tag)
    return int(value)


def mosaic_layout(ds, *, path=None) -> MosaicLayout:
    """Tile grid and tile size of a mosaic (``ceil(sqrt(n))`` tiles per side)."""
    n = number_of_slices(ds, path=path)
    grid = math.ceil(math.sqrt(n))
    rows, columns = _required_int(ds, "Rows", path), _required_int(ds, "Columns", path)
    if rows % grid or columns % grid:
        raise InvalidTagError(f"a {rows}x{columns} image cannot hold a {grid}x{grid} mosaic of "
                              f"{n} slices", path=path, tag="NumberOfImagesInMosaic")
    return MosaicLayout(n, grid, rows // grid, columns // grid, rows, columns)


def untile(image: np.ndarray, planes, tile_rows: int | None = None,
           tile_columns: int | None = None) -> np.ndarray:
    """Cut a mosaic image ``(mosaic_rows, mosaic_columns)`` into ``(slices, tile_rows, tile_columns)``.

    ``planes`` is either the plane table from :func:`mosaic_planes` (slices in the order of its
    ``tile`` column; tile size from its ``rows``/``columns``) or the number of slices ``n``, with
    ``tile_rows``/``tile_columns`` given (tiles 0..n-1). Tile ``k`` is at grid row ``k // grid``,
    column ``k % grid``, ``grid = mosaic_columns // tile_columns`` (row-major). Leading axes of
    ``image`` (e.g. frames) are kept. Returns a C-ordered copy; ValueError when a tile does not
    fit.

    Example
    -------
    >>> image = np.arange(16).reshape(4, 4)
    >>> untile(image, 3, 2, 2)[2]
    array([[ 8,  9],
           [12, 13]])
    """
    if isinstance(planes, pd.DataFrame):
        tiles = planes["tile"].to_numpy(dtype=np.int64)
        tile_rows, tile_columns = int(planes["rows"].iloc[0]), int(planes["columns"].iloc[0])
    else:
        tiles = np.arange(int(planes))
    if tile_rows is None or tile_columns is None:
        raise ValueError("untile needs tile_rows and tile_columns with a slice count")
    image = np.asarray(image)
    grid_rows, grid_columns = image.shape[-2] // tile_rows, image.shape[-1] // tile_columns
    n_tiles = grid_rows * grid_columns
    if n_tiles < 1 or (len(tiles) and (tiles.min() < 0 or tiles.max() >= n_tiles)):
        raise ValueError(f"image {image.shape} cannot hold tiles {tiles.tolist()} of "
                         f"{tile_rows}x{tile_columns}")
    lead = image.shape[:-2]
    blocks = image[..., :grid_rows * tile_rows, :grid_columns * tile_columns]
    blocks = blocks.reshape(*lead, grid_rows, tile_rows, grid_columns, tile_columns)
    blocks = np.moveaxis(blocks, -3, -2).reshape(*lead, n_tiles, tile_rows, tile_columns)
    return np.ascontiguousarray(blocks[..., tiles, :, :])


# --- geometry -------------------------------------------------------------------------------------
def slice_normal(ds, *, path=None) -> np.ndarray:
    """Unit vector (LPS) along which tile 0, 1, 2, ... advance.

    CSA image SliceNormalVector, else the protocol's ``sSliceArray.asSlice[0].sNormal``, else
    ``F_r x F_c`` from Image Orientation (Patient).
    """
    normal = csa_floats(csa_header(ds, "image", path=path), "SliceNormalVector")
    if normal is None:
        protocol = ascconv(csa_header(ds, "series", path=path))
        if any(k.startswith("sSliceArray.asSlice[0].sNormal.") for k in protocol):
            normal = protocol_vector(protocol, "sSliceArray.asSlice[0].sNormal")
    if normal is None:
        row, column = _orientation(ds, path)
        normal = np.cross(row, column)
    normal = np.asarray(normal, dtype=np.float64)
    if normal.shape != (3,) or not np.isfinite(normal).all() or np.linalg.norm(normal) < 1e-6:
        raise InvalidTagError(f"unusable slice normal {normal.tolist()}", path=path,
                              tag="SliceNormalVector")
    return normal / np.linalg.norm(normal)


def slice_spacing(ds, *, path=None) -> float:
    """Distance between adjacent mosaic slices (mm).

    Spacing Between Slices, else the distance between the protocol's first two slice centres
    along the normal, else Slice Thickness.
    """
    value = _positive_float(ds.get("SpacingBetweenSlices"))
    if value is None:
        protocol = ascconv(csa_header(ds, "series", path=path))
        if any(k.startswith("sSliceArray.asSlice[1].sPosition.") for k in protocol):
            step = (protocol_vector(protocol, "sSliceArray.asSlice[1].sPosition")
                    - protocol_vector(protocol, "sSliceArray.asSlice[0].sPosition"))
            value = _positive_float(abs(float(step @ slice_normal(ds, path=path))))
    if value is None:
        value = _positive_float(ds.get("SliceThickness"))
    if value is None:
        raise MissingTagError("mosaic without a usable slice spacing", path=path,
                              tag="SpacingBetweenSlices")
    return value


def tile_positions(ds, layout: MosaicLayout | None = None, *, path=None) -> np.ndarray:
    """Corrected Image Position (Patient) of every tile, ``(n_slices, 3)`` LPS mm.

    Example
    -------
    >>> tile_positions(ds)[0]                                     # doctest: +SKIP
    array([-110.        , -109.41... ,  -30.62...])
    """
    layout = layout or mosaic_layout(ds, path=path)
    row, column = _orientation(ds, path)
    d_row, d_column = _pixel_spacing(ds, path)
    ipp = _vector(ds, "ImagePositionPatient", 3, path)
    first = (ipp + row * d_column * (layout.mosaic_columns - layout.tile_columns) / 2
             + column * d_row * (layout.mosaic_rows - layout.tile_rows) / 2)
    step = slice_normal(ds, path=path) * slice_spacing(ds, path=path)
    return first + np.arange(layout.n_slices)[:, None] * step


def diffusion(ds, *, path=None) -> tuple[float, tuple[float, float, float] | None]:
    """Siemens diffusion b-value (s/mm^2) and gradient direction (unit, LPS) of this image.

    From the CSA image header (B_value, DiffusionGradientDirection), else the private
    (0019,xx0C)/(0019,xx0E). ``(nan, None)`` for non-diffusion images; gradient None for b=0.
    """
    header = csa_header(ds, "image", path=path)
    b_value = csa_floats(header, "B_value")
    b_value = b_value[0] if b_value else _mr_value(ds, "B_value")
    gradient = csa_floats(header, "DiffusionGradientDirection")
    if gradient is None:
        gradient = _mr_value(ds, "DiffusionGradientDirection")
    if gradient is not None:
        gradient = np.asarray(gradient, dtype=np.float64).reshape(-1)
        norm = np.linalg.norm(gradient) if gradient.shape == (3,) else 0.0
        gradient = tuple(float(v) for v in gradient / norm) if norm > 1e-6 else None
    return (math.nan if b_value is None else float(b_value)), gradient


def mosaic_planes(ds, path) -> pd.DataFrame:
    """Plane table (see :mod:`dicomml.geometry.planes`) with one row per mosaic tile.

    ``tile`` = slice index (0 = first along :func:`slice_normal`), ``position`` corrected,
    ``rows``/``columns`` the tile size, ``mosaic_rows``/``mosaic_columns`` the stored image size,
    ``b_value``/``gradient`` from the Siemens diffusion header when present, ``slice_time``
    (ms, see :func:`slice_times`).

    Example
    -------
    >>> planes = mosaic_planes(ds, "0001.dcm")                    # doctest: +SKIP
    >>> len(planes), planes.loc[0, "rows"]                        # doctest: +SKIP
    (25, 128)
    """
    return plane_table(mosaic_rows(ds, path))


def mosaic_rows(ds, path) -> list[dict]:
    """The rows of :func:`mosaic_planes` as plain dicts (cheaper when a caller builds one
    table for many files: ``plane_table(rows_of_file_1 + rows_of_file_2 + ...)``)."""
    layout = mosaic_layout(ds, path=path)
    row, column = _orientation(ds, path)
    b_value, gradient = diffusion(ds, path=path)
    common = dict(
        path=str(path), frame=0, orientation=tuple(row) + tuple(column),
        pixel_spacing=_pixel_spacing(ds, path), rows=layout.tile_rows,
        columns=layout.tile_columns, slope=_float_or(ds.get("RescaleSlope"), 1.0),
        intercept=_float_or(ds.get("RescaleIntercept"), 0.0),
        temporal=_float_or(ds.get("TemporalPositionIdentifier"), math.nan),
        echo=_float_or(ds.get("EchoNumbers"), math.nan), b_value=b_value, gradient=gradient,
        acquisition=_float_or(ds.get("AcquisitionNumber"), math.nan),
        instance=_float_or(ds.get("InstanceNumber"), math.nan),
        mosaic_rows=layout.mosaic_rows, mosaic_columns=layout.mosaic_columns,
    )
    positions = tile_positions(ds, layout, path=path)
    times = slice_times(ds, layout.n_slices, path=path)
    return [dict(common, tile=k, position=tuple(float(v) for v in positions[k]),
                 slice_time=times[k]) for k in range(layout.n_slices)]


def slice_times(ds, n_slices: int, *, path=None) -> list[float]:
    """Acquisition time of each tile relative to the first excitation (ms; timing, not geometry).

    CSA image MosaicRefAcqTimes, else the private (0019,xx29); NaN for every tile when absent or
    when the count differs from ``n_slices``.
    """
    times = csa_floats(csa_header(ds, "image", path=path), "MosaicRefAcqTimes")
    if times is None:
        times = _mr_value(ds, "MosaicRefAcqTimes")
    if times is None or len(times) != n_slices:
        return [math.nan] * n_slices
    return [float(t) for t in times]


# --- small header helpers ------------------------------------------------------------------------
def _mr_value(ds, name: str):
    """A value of the SIEMENS MR HEADER private block (0019,xxNN), decoded when stored as UN."""
    offset = _MR_ELEMENTS[name]
    try:
        block = ds.private_block(0x0019, MR_HEADER)
    except KeyError:
        return None
    if offset not in block:
        return None
    element = block[offset]
    value = element.value
    if isinstance(value, bytes):  # UN (implicit VR without a private dictionary entry)
        value = _decode_un(value, name)
    if value is None or isinstance(value, str) and not value.strip():
        return None
    values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    if not values:
        return None
    return values if name in _MR_VECTORS else values[0]


def _decode_un(raw: bytes, name: str):
    if name == "NumberOfImagesInMosaic" and len(raw) == 2:
        return struct.unpack("<H", raw)[0]
    if name in _MR_VECTORS and raw and len(raw) % 8 == 0:
        return list(struct.unpack(f"<{len(raw) // 8}d", raw))
    try:
        text = raw.decode("ascii").strip("\0 ")
        return float(text) if text else None
    except (UnicodeDecodeError, ValueError):
        return None


def _required_int(ds, keyword: str, path) -> int:
    value = ds.get(keyword)
    if value is None or value == "":
        raise MissingTagError(f"{keyword} is required", path=path, tag=keyword)
    return int(value)


def _vector(ds, keyword: str, length: int, path) -> np.ndarray:
    return tag_vector(ds.get(keyword), length, keyword, path=path)


def _orientation(ds, path) -> tuple[np.ndarray, np.ndarray]:
    cosines = _vector(ds, "ImageOrientationPatient", 6, path)
    row, column = cosines[:3], cosines[3:]
    if min(np.linalg.norm(row), np.linalg.norm(column)) < 1e-6:
        raise InvalidTagError("ImageOrientationPatient has a zero vector", path=path,
                              tag="ImageOrientationPatient")
    return row, column


def _pixel_spacing(ds, path) -> tuple[float, float]:
    spacing = _vector(ds, "PixelSpacing", 2, path)
    if (spacing <= 0).any():
        raise InvalidTagError(f"PixelSpacing must be positive, got {spacing.tolist()}", path=path,
                              tag="PixelSpacing")
    return float(spacing[0]), float(spacing[1])


def _positive_float(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _float_or(value, default: float) -> float:
    try:
        number = float(value[0] if isinstance(value, list | tuple) else value)
    except (TypeError, ValueError, IndexError):
        return default
    return number if math.isfinite(number) else default
