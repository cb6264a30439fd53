"""Build the plane table (contract: :mod:`dicomml.geometry.planes`) of a series' catalog rows,
and refuse header values that cannot describe an image.

Single-frame files are described column-wise from the catalog; enhanced multi-frame objects
(``dicomml.geometry.enhanced.frame_planes``) and Siemens mosaics
(``dicomml.geometry.mosaic.mosaic_planes``, one row per tile) from their headers.

Every header value used as a size or cast to an integer is checked here, before any pixel is
read or any array allocated: Rows / Columns (1..65535, the range of their US VR), Bits
Allocated (1..64), Bits Stored (1..Bits Allocated), Pixel Representation (0 or 1), Pixel
Spacing (finite, > 0 mm), Rescale Slope / Intercept (finite), Image Orientation (Patient) (two
non-zero, non-parallel vectors). A missing required tag raises
:class:`~dicomml.errors.MissingTagError`, an unusable one
:class:`~dicomml.errors.InvalidTagError`, both naming the file and the tag.

Example
-------
>>> import tempfile, dicomml
>>> folder = tempfile.mkdtemp()
>>> _ = dicomml.synth.write_series(folder, shape=(3, 8, 6))
>>> from dicomml.loader.sources import resolve_source
>>> planes = build_planes(resolve_source(folder)[0])
>>> planes[["rows", "columns"]].values.tolist()
[[8, 6], [8, 6], [8, 6]]
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from dicomml import syntaxes as ts
from dicomml._columns import absent
from dicomml.errors import (
    DicommlError,
    InvalidDicomError,
    InvalidTagError,
    MissingTagError,
    TruncatedFileError,
)
from dicomml.geometry.planes import DEFAULTS, normalise, plane_table

from ._util import column, value

#: the largest Rows / Columns a US (unsigned short) element can hold
MAX_MATRIX = 65535

_FILE_COLUMNS = {  # plane-table column <- catalog column
    "transfer_syntax": "TransferSyntaxUID", "pixel_data_offset": "pixel_data_offset",
    "pixel_data_length": "pixel_data_length", "number_of_frames": "NumberOfFrames",
    "bits_allocated": "BitsAllocated", "bits_stored": "BitsStored",
    "pixel_representation": "PixelRepresentation", "photometric": "PhotometricInterpretation",
    "samples_per_pixel": "SamplesPerPixel", "planar_configuration": "PlanarConfiguration",
    "float_pixel_data": "float_pixel_data",
}
#: plane-table column -> the DICOM keyword to blame for it
TAGS = {"rows": "Rows", "columns": "Columns", "bits_allocated": "BitsAllocated",
        "bits_stored": "BitsStored", "pixel_representation": "PixelRepresentation",
        "pixel_spacing": "PixelSpacing", "slope": "RescaleSlope",
        "intercept": "RescaleIntercept"}


def build_planes(instances: pd.DataFrame) -> pd.DataFrame:
    """The checked plane table of a series' catalog rows (one row per 2D plane)."""
    check_colour(instances)
    special = _special_kinds(instances)
    parts = []
    plain = (special == "").to_numpy()
    single = instances if plain.all() else instances[plain]
    if len(single):
        parts.append(_single_frame_planes(single))
    for index in instances.index[~plain]:
        row = instances.loc[index].to_dict()
        check_frames_fit(row)
        parts.append(_header_planes(row, special[index]))
    planes = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    planes = normalise(planes)
    check_planes(planes)
    return planes


#: Photometric Interpretations of three-sample (colour) images that load as RGB
COLOUR_PHOTOMETRICS = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT")


def colour_kind(samples, photometric) -> str:
    """``"rgb"`` (3 samples per pixel), ``"palette"`` (PALETTE COLOR) or ``""`` (grey) of one
    file's Samples per Pixel and Photometric Interpretation (unchecked)."""
    text = "" if absent(photometric) else str(photometric).strip().upper()
    if text == "PALETTE COLOR":
        return "palette"
    return "rgb" if not absent(samples) and float(samples) == 3 else ""


def check_colour(instances: pd.DataFrame) -> None:
    """Refuse what cannot form a colour volume, naming the file and tag: Samples per Pixel
    other than 1 or 3, three samples with a grey or palette Photometric Interpretation, one
    sample with a colour one, and colour files beside grey ones (the catalog splits those
    into sub-series by its ``colour`` rule, :mod:`dicomml.catalog.split`)."""
    paths = column(instances, "path").tolist()
    samples = column(instances, "SamplesPerPixel").tolist()
    photometric = column(instances, "PhotometricInterpretation").tolist()
    kinds = set()
    for path, count, text in zip(paths, samples, photometric):
        count = 1 if absent(count) else count
        text = "" if absent(text) else str(text).strip().upper()
        if count not in (1, 3):
            raise InvalidTagError(f"SamplesPerPixel must be 1 or 3 for a volume, got {count!r}",
                                  path=path, tag="SamplesPerPixel")
        if (count == 3) != (text in COLOUR_PHOTOMETRICS):
            raise InvalidTagError(f"SamplesPerPixel {count} does not fit Photometric "
                                  f"Interpretation {text!r}", path=path,
                                  tag="PhotometricInterpretation")
        kinds.add(colour_kind(count, text))
        if len(kinds) > 1:
            raise InvalidTagError("colour and greyscale files cannot form one volume (the "
                                  "catalog splits them by its 'colour' rule)", path=path,
                                  tag="PhotometricInterpretation")


def _special_kinds(instances: pd.DataFrame) -> pd.Series:
    """Per row: "mosaic", "enhanced" or "" (a plain single-frame image)."""
    image_type = [("" if absent(v) else str(v)).upper()
                  for v in column(instances, "ImageType", "").tolist()]
    no_count = pd.isna(column(instances, "NumberOfImagesInMosaic"))
    frames = column(instances, "NumberOfFrames")
    if frames.dtype.kind not in "fiu":
        frames = pd.to_numeric(frames, errors="coerce")
    frames = np.asarray(frames, dtype=np.float64)
    frames = np.where(np.isnan(frames), 1.0, frames)
    kinds = ["mosaic" if not absent or "MOSAIC" in kind else "enhanced" if count > 1 else ""
             for absent, kind, count in zip(no_count.tolist(), image_type, frames.tolist())]
    kinds = _classic_kinds(instances, kinds)
    return pd.Series(kinds, index=instances.index, dtype=object)


def _classic_kinds(instances: pd.DataFrame, kinds: list[str]) -> list[str]:
    """Single-frame RT Dose (Dose Grid Scaling is read from the header), and single-frame
    images of a series where no file has patient geometry: "classic"
    (:mod:`dicomml.geometry.classic`). A file that lost its position among placed ones still
    raises MissingTagError."""
    modality = [str(v).upper() for v in column(instances, "Modality", "").tolist()]
    unplaced = (pd.isna(column(instances, "ImagePositionPatient"))
                & pd.isna(column(instances, "ImageOrientationPatient")))
    bare = bool(unplaced.all())
    return ["classic" if kind == "" and (m == "RTDOSE" or bare) else kind
            for kind, m in zip(kinds, modality)]


def _file_columns(row) -> dict:
    return {ours: value(row, theirs) for ours, theirs in _FILE_COLUMNS.items()}


def _vectors(rows: pd.DataFrame, name: str, size: int) -> list[tuple]:
    """A list-valued column as tuples of ``size`` finite floats; typed error naming the file."""
    values = column(rows, name).tolist()
    try:  # the usual case at once: every row holds ``size`` finite numbers
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is not None and array.shape == (len(values), size) and np.isfinite(array).all():
        return [tuple(v) for v in array.tolist()]
    return _vectors_by_row(column(rows, "path").tolist(), values, name, size)


def _vectors_by_row(paths: list[str], values: list, name: str, size: int) -> list[tuple]:
    """:func:`_vectors` one row at a time: the typed error names the first bad file."""
    out = []
    for path, found in zip(paths, values):
        if found is None or (isinstance(found, float) and np.isnan(found)):
            raise MissingTagError(f"{name} is required to place the slice", path=path, tag=name)
        try:
            values = tuple(float(v) for v in found)
        except (TypeError, ValueError):
            values = ()
        if len(values) != size or not all(map(math.isfinite, values)):
            raise InvalidTagError(f"{name} must hold {size} finite numbers, got {found!r}",
                                  path=path, tag=name)
        out.append(values)
    return out


def _numbers(rows: pd.DataFrame, *names: str, default=np.nan) -> np.ndarray:
    """First present value of ``names`` per row, as float64 (``default`` when none)."""
    result = np.full(len(rows), np.nan)
    for name in names:
        found = column(rows, name)
        if found.dtype.kind not in "fiu":
            found = pd.to_numeric(found, errors="coerce")
        values = np.asarray(found, dtype=np.float64)
        result = np.where(np.isnan(result), values, result)
    return np.where(np.isnan(result), default, result)


def _sizes(rows: pd.DataFrame, name: str) -> np.ndarray:
    """Rows or Columns of every file as int64, after :func:`check_count` on each value."""
    values = _numbers(rows, name)
    for path, number in zip(column(rows, "path").tolist(), values.tolist()):
        check_count(number, path=path, tag=name, high=MAX_MATRIX)
    return values.astype(np.int64)


def _single_frame_planes(rows: pd.DataFrame) -> pd.DataFrame:
    """Plane table of single-frame images, built column-wise from the catalog rows."""
    table = {
        "path": column(rows, "path").tolist(), "frame": 0, "tile": -1,
        "position": _vectors(rows, "ImagePositionPatient", 3),
        "orientation": _vectors(rows, "ImageOrientationPatient", 6),
        "pixel_spacing": _vectors(rows, "PixelSpacing", 2),
        "rows": _sizes(rows, "Rows"),
        "columns": _sizes(rows, "Columns"),
        "slope": _numbers(rows, "RescaleSlope", default=1.0),
        "intercept": _numbers(rows, "RescaleIntercept", default=0.0),
        "temporal": _numbers(rows, "TemporalPositionIdentifier"),
        "echo": _numbers(rows, "EchoNumbers", "EchoTime"),
        "b_value": _numbers(rows, "DiffusionBValue"),
        "acquisition": _numbers(rows, "AcquisitionNumber"),
        "instance": _numbers(rows, "InstanceNumber"),
    }
    for ours, theirs in _FILE_COLUMNS.items():
        table[ours] = column(rows, theirs).tolist()
    for name in ("gradient", "stack"):  # the contract's defaults, as normalise adds them
        table[name] = [DEFAULTS[name]] * len(rows)
    return pd.DataFrame(table)


def _header_planes(row, kind: str) -> pd.DataFrame:
    """Planes of a mosaic or enhanced file, from :mod:`dicomml.geometry`'s header readers."""
    import pydicom

    path = row["path"]
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as exc:  # noqa: BLE001 - any parser failure becomes a typed error
        raise InvalidDicomError(f"header unreadable: {exc}", path=path) from exc
    for name in ("Rows", "Columns"):  # the header readers cast these without checking
        check_count(_header_number(ds, name, path), path=path, tag=name, high=MAX_MATRIX)
    try:
        planes = _read_planes(ds, path, kind)
    except DicommlError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom converts elements when they are read
        raise _unreadable(exc, path) from exc
    for name, found in _file_columns(row).items():
        planes[name] = [found] * len(planes)
    for name, tag in (("acquisition", "AcquisitionNumber"), ("instance", "InstanceNumber")):
        if planes[name].isna().all():
            planes[name] = value(row, tag, np.nan)
    return planes


def _read_planes(ds, path: str, kind: str) -> pd.DataFrame:
    """The plane table of a mosaic, classic multi-frame or enhanced header (pydicom)."""
    if kind == "mosaic":
        from dicomml.geometry import mosaic

        return mosaic.mosaic_planes(ds, path)
    if kind == "classic" or not _enhanced(ds):  # classic multi-frame: no functional groups
        from dicomml.geometry import classic

        return plane_table(classic.classic_rows(ds, path))
    from dicomml.geometry import enhanced

    return enhanced.frame_planes(ds, path)


def _unreadable(exc: Exception, path: str) -> InvalidDicomError | InvalidTagError:
    """The typed error of a header element that pydicom cannot convert when a geometry
    reader reads it (a wrong VR or value length: BytesLengthException, ValueError, ...):
    InvalidTagError naming the element when pydicom's message does, else InvalidDicomError."""
    found = re.search(r"\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)", str(exc))
    text = f"header element unreadable: {type(exc).__name__}: {exc}"
    if found is None:
        return InvalidDicomError(text, path=path)
    from pydicom.datadict import keyword_for_tag

    tag = int(found.group(1) + found.group(2), 16)
    return InvalidTagError(text, path=path, tag=keyword_for_tag(tag) or
                           f"({found.group(1)},{found.group(2)})")


def _enhanced(ds) -> bool:
    from dicomml.geometry.enhanced import is_enhanced

    return is_enhanced(ds)


def _header_number(ds, name: str, path: str) -> float:
    """A numeric element of a pydicom header as float (NaN when absent or empty)."""
    try:
        found = ds.get(name)
        return float("nan") if found is None or found == "" else float(found)
    except Exception as exc:  # noqa: BLE001 - a damaged element of any kind
        raise InvalidTagError(f"{name} is unreadable: {exc}", path=path, tag=name) from exc


# ------------------------------------------------------------------------------ checks
def check_frames_fit(row: dict) -> None:
    """Refuse a NumberOfFrames that the file cannot hold, from its catalog row, before a plane
    (and a pydicom item walk) per declared frame is made: native data need
    ``ceil(frames x Rows x Columns x SamplesPerPixel x BitsAllocated / 8)`` bytes of Pixel
    Data; encapsulated data at least one 8-byte item header per frame before the end of the
    file. TruncatedFileError names PixelData and both sizes. Values that are absent or not
    numbers, and Pixel Data the catalog did not locate (offset -1), are left to the later
    checks (:func:`check_count`, the decoders).

    >>> check_frames_fit({"path": "a.dcm", "NumberOfFrames": 3, "Rows": 4, "Columns": 4,
    ...     "BitsAllocated": 16, "TransferSyntaxUID": "1.2.840.10008.1.2.1",
    ...     "pixel_data_offset": 600, "pixel_data_length": 64})
    Traceback (most recent call last):
    dicomml.errors.TruncatedFileError: a.dcm: NumberOfFrames 3 x Rows x Columns x bytes need 96 \
bytes of pixel data, the file holds 64 [tag PixelData]
    """
    numbers = {}
    for name in ("NumberOfFrames", "Rows", "Columns", "BitsAllocated", "SamplesPerPixel",
                 "pixel_data_length", "pixel_data_offset", "file_size"):
        found = value(row, name)
        try:
            numbers[name] = float(found)
        except (TypeError, ValueError):
            numbers[name] = math.nan
    frames, syntax = numbers["NumberOfFrames"], str(value(row, "TransferSyntaxUID", ""))
    if not math.isfinite(frames) or frames <= 1:
        return
    if syntax in ts.NATIVE and syntax != ts.DEFLATED_EXPLICIT_VR_LE:
        bits = numbers["Rows"] * numbers["Columns"] * numbers["BitsAllocated"] * \
            (1 if math.isnan(numbers["SamplesPerPixel"]) else numbers["SamplesPerPixel"])
        held = numbers["pixel_data_length"]  # meaningful only where the catalog located it
        if numbers["pixel_data_offset"] >= 0 and math.isfinite(bits) and bits > 0 \
                and math.isfinite(held) and held >= 0 \
                and math.ceil(frames * bits / 8) > held:
            raise TruncatedFileError(
                f"NumberOfFrames {int(frames)} x Rows x Columns x bytes need "
                f"{math.ceil(frames * bits / 8)} bytes of pixel data, the file holds "
                f"{int(held)}", path=row.get("path"), tag="PixelData")
    elif syntax in ts.ENCAPSULATED:
        room = numbers["file_size"] - numbers["pixel_data_offset"]
        if math.isfinite(room) and frames * 8 > room:
            raise TruncatedFileError(
                f"NumberOfFrames {int(frames)} needs at least {int(frames) * 8} bytes of "
                f"fragment items, the file holds {int(max(room, 0))} after the Pixel Data "
                f"offset", path=row.get("path"), tag="PixelData")


def check_count(number, *, path: str, tag: str, low: int = 1, high: int) -> int:
    """``number`` as an int in ``[low, high]``; MissingTagError when NaN/None, InvalidTagError
    when not a whole number or out of range."""
    if number is None or (isinstance(number, float) and math.isnan(number)):
        raise MissingTagError(f"{tag} is required to read the pixels", path=path, tag=tag)
    try:
        whole = float(number)
    except (TypeError, ValueError):
        whole = float("nan")
    if not math.isfinite(whole) or whole != int(whole) or not low <= whole <= high:
        raise InvalidTagError(f"{tag} must be a whole number in [{low}, {high}], got {number!r}",
                              path=path, tag=tag)
    return int(whole)


def check_planes(planes: pd.DataFrame) -> None:
    """Typed errors for header values no image can have (see the module docstring)."""
    if not _plainly_valid(planes):  # vectorised; otherwise the record checks find the error
        check_records(planes)


def check_records(planes: pd.DataFrame) -> None:
    """:func:`check_planes` record by record (each distinct combination once), raising the
    typed error of the first bad value."""
    for record in _distinct(planes, ["path", "rows", "columns", "bits_allocated", "bits_stored",
                                     "pixel_representation", "samples_per_pixel"]):
        _check_format(record)
    for record in _distinct(planes, ["path", "pixel_spacing", "slope", "intercept"]):
        _check_scale(record)
    if "orientation" in planes.columns:
        for record in _distinct(planes, ["path", "orientation"]):
            if not _orientations_valid([record["orientation"]]):
                raise InvalidTagError(
                    "ImageOrientationPatient must hold two non-zero, non-parallel direction "
                    f"vectors, got {record['orientation']!r}", path=record["path"],
                    tag="ImageOrientationPatient")


def _orientations_valid(orientations: list) -> bool:
    """True when every 6-value orientation has finite row and column vectors of non-zero
    length whose angle's sine is at least 1e-3 (not parallel): a degenerate one makes the
    slice normal, and so the affine, NaN."""
    try:
        values = np.asarray(orientations, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if values.ndim != 2 or values.shape[1] != 6 or not np.isfinite(values).all():
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        row, col = values[:, :3], values[:, 3:]
        lengths = np.linalg.norm(row, axis=1) * np.linalg.norm(col, axis=1)
        sine = np.linalg.norm(np.cross(row, col), axis=1) / lengths
    return bool((np.isfinite(lengths) & (lengths > 1e-12) & (sine >= 1e-3)).all())


def _plainly_valid(planes: pd.DataFrame) -> bool:
    """True when every value :func:`check_planes` checks is numeric and clearly valid
    (a sufficient condition: False only means "check record by record")."""
    def numbers(name):
        found = column(planes, name) if name in planes.columns else None
        return None if found is None or found.dtype.kind not in "fiu" else \
            found.astype(np.float64)

    def whole(v, low, high, optional=False):
        ok = np.isfinite(v) & (v == np.floor(v)) & (v >= low) & (v <= high)
        return bool((ok | np.isnan(v)).all() if optional else ok.all())

    rows, columns, allocated = numbers("rows"), numbers("columns"), numbers("bits_allocated")
    if rows is None or columns is None or allocated is None:
        return False
    if not (whole(rows, 1, MAX_MATRIX) and whole(columns, 1, MAX_MATRIX)
            and whole(allocated, 1, 64)):
        return False
    # colour (3 samples) takes the record checks
    for name, low, high in (("bits_stored", 1, allocated), ("samples_per_pixel", 1, 1),
                            ("pixel_representation", 0, 1)):
        found = numbers(name)
        if name in planes.columns and (found is None or not whole(found, low, high, True)):
            return False
    scale = [numbers("slope"), numbers("intercept")]
    if any(v is None or not np.isfinite(v).all() for v in scale):
        return False
    try:
        spacing = np.asarray(column(planes, "pixel_spacing").tolist(), dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if not (spacing.ndim == 2 and bool((np.isfinite(spacing) & (spacing > 0)).all())):
        return False
    return "orientation" not in planes.columns or \
        _orientations_valid(column(planes, "orientation").tolist())


def _distinct(planes: pd.DataFrame, names: list[str]) -> list[dict]:
    """The rows of ``planes[names]`` as dicts, first occurrence of each distinct
    combination only, in table order (plain lists: no per-row pandas work)."""
    present = [n for n in names if n in planes.columns]
    seen, records = set(), []
    for values in zip(*(column(planes, n).tolist() for n in present)):
        signature = tuple(map(str, values))
        if signature not in seen:
            seen.add(signature)
            records.append(dict(zip(present, values)))
    return records


def _check_format(record: dict) -> None:
    path = record["path"]
    for name in ("rows", "columns"):
        check_count(record[name], path=path, tag=TAGS[name], high=MAX_MATRIX)
    allocated = check_count(value(record, "bits_allocated"), path=path, tag="BitsAllocated",
                            high=64)
    if value(record, "bits_stored") is not None:
        check_count(record["bits_stored"], path=path, tag="BitsStored", high=allocated)
    if value(record, "samples_per_pixel") is not None:  # 1 or 3 (check_colour says why)
        if check_count(record["samples_per_pixel"], path=path, tag="SamplesPerPixel",
                       high=3) == 2:
            raise InvalidTagError("SamplesPerPixel must be 1 or 3, got 2", path=path,
                                  tag="SamplesPerPixel")
    if value(record, "pixel_representation") is not None:
        check_count(record["pixel_representation"], path=path, tag="PixelRepresentation",
                    low=0, high=1)


def _check_scale(record: dict) -> None:
    path = record["path"]
    spacing = record["pixel_spacing"]
    if not all(math.isfinite(v) and v > 0 for v in spacing):
        raise InvalidTagError(f"PixelSpacing must be positive (mm), got {spacing!r}",
                              path=path, tag="PixelSpacing")
    for name in ("slope", "intercept"):
        if not math.isfinite(float(record[name])):
            raise InvalidTagError(f"{TAGS[name]} must be finite, got {record[name]!r}",
                                  path=path, tag=TAGS[name])
