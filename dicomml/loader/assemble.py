"""Assemble the Volume's parts: the affine of a one-slice series, optional resampling onto a
regular orthogonal grid, and the series metadata.

Conventions (:mod:`dicomml.volume`): array ``(slices, rows, columns)`` (4D: ``(volumes, slices,
rows, columns)``); affine maps the index ``(slice, row, column, 1)`` to LPS mm.

Example
-------
>>> import numpy as np, pandas as pd
>>> single_slice_affine(np.eye(4), pd.DataFrame({"SliceThickness": [2.5]}))[:3, 0].tolist()
[2.5, 0.0, 0.0]
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dicomml._columns import column_array, plain
from dicomml.geometry.affine import series_affine
from dicomml.geometry.resample import deshear, regularise_spacing
from dicomml.geometry.stack import Stack, volume_order

from ._util import value
from .policy import RESAMPLED


def single_slice_affine(affine: np.ndarray, instances: pd.DataFrame) -> np.ndarray:
    """One slice has no position-derived spacing: use Spacing Between Slices, else Slice
    Thickness (finite, > 0 mm), else 1 mm, along the normal (the only use of those tags)."""
    thickness = 1.0
    for tag in ("SpacingBetweenSlices", "SliceThickness"):
        found = value(instances.iloc[0], tag)
        try:
            found = None if found is None else float(found)
        except (TypeError, ValueError):
            found = None
        if found is not None and math.isfinite(found) and found > 0:
            thickness = found
            break
    affine = affine.copy()
    affine[:3, 0] = affine[:3, 0] / np.linalg.norm(affine[:3, 0]) * thickness
    return affine


def resample(data: np.ndarray, stack: Stack) -> tuple[np.ndarray, np.ndarray]:
    """(V, S, R, C) float32 data and affine on a regular grid: gaps and uneven spacing are
    interpolated along the slice normal, gantry-tilt shear removed (linear interpolation)."""
    kinds = stack.kinds()
    positions, iop = stack.positions, stack.orientation
    volumes = list(data.astype(np.float32, copy=False))
    if kinds & {"missing", "uneven"}:
        pairs = [regularise_spacing(v, positions, iop) for v in volumes]
        volumes, positions = [p[0] for p in pairs], pairs[0][1]
    affine = series_affine(positions, iop, stack.pixel_spacing, sheared="tilt" in kinds)
    if "tilt" in kinds:
        pairs = [deshear(v, affine) for v in volumes]
        volumes, affine = [p[0] for p in pairs], pairs[0][1]
    return np.stack(volumes), affine


# ------------------------------------------------------------------------------ metadata
_PER_FILE = {"path", "SOPInstanceUID", "InstanceNumber", "ImagePositionPatient",
             "pixel_data_offset", "pixel_data_length", "file_size", "mtime", "size"}


def _all_equal(values: list) -> bool:
    first = values[0]
    if isinstance(first, float) and np.isnan(first):
        return all(isinstance(v, float) and np.isnan(v) for v in values)
    try:  # hashable values (text, None, numbers): one pass in C
        return len(set(values)) == 1
    except TypeError:  # lists, arrays
        pass
    try:
        return all(bool(v == first) for v in values)
    except (TypeError, ValueError):  # arrays and other odd values
        return all(repr(v) == repr(first) for v in values)


def series_metadata(instances: pd.DataFrame, key: str, stack: Stack, planes: pd.DataFrame,
                    dtype, resampled: bool) -> dict:
    """Series-level tags (values shared by every file) plus geometry facts and findings."""
    meta: dict = {"series_key": key}
    for name in instances.columns:
        if name in _PER_FILE:
            continue
        found = column_array(instances, name)
        if isinstance(found, np.ndarray) and found.dtype.kind in "fiu":  # one comparison
            numbers = found
            first = numbers[0]
            same = np.isnan(numbers).all() if first != first else (numbers == first).all()
            if same:
                meta[name] = plain(first.item())
            continue
        values = found.tolist()
        if _all_equal(values):
            meta[name] = plain(values[0])
    meta["findings"] = [f.to_dict() for f in stack.findings]
    meta["n_files"] = int(len(instances))
    meta["n_planes"] = int(stack.order.size)
    meta["resampled"] = bool(resampled and stack.kinds() & set(RESAMPLED))
    used = stack.order.ravel()
    meta["inverted_monochrome1"] = any(
        str(v).strip().upper() == "MONOCHROME1"
        for v in planes["photometric"].to_numpy()[used].tolist()) \
        if "photometric" in planes else False
    if dtype is None:
        meta["rescale"] = {"slope": planes["slope"].to_numpy()[used].tolist(),
                           "intercept": planes["intercept"].to_numpy()[used].tolist()}
    if stack.is_4d:
        meta["volumes"] = [{k: plain(v) for k, v in values.items()}
                           for values in stack.volume_values]
        ordered_by, told_apart = volume_rule(planes, stack)
        for values in meta["volumes"]:
            values["ordered_by"] = ordered_by
            values["told_apart_by"] = told_apart
            if "gradient" in told_apart or "b_value" in told_apart:
                values.setdefault("b_value", None)
                values.setdefault("gradient", None)
    return meta


#: plane-table column -> the DICOM attribute it comes from (for provenance and metadata)
ATTRIBUTES = {
    "stack": "StackID", "temporal": "TemporalPositionIdentifier", "echo": "EchoNumbers",
    "complex_component": "ComplexImageComponent", "acquisition": "AcquisitionNumber",
    "instance": "InstanceNumber", "b_value": "DiffusionBValue",
    "gradient": "DiffusionGradientOrientation", "volume_key": "DimensionIndexValues",
}


def volume_rule(planes: pd.DataFrame, stack: Stack) -> tuple[str, list[str]]:
    """(the attribute that ordered the volumes of a 4D stack, the plane-table columns whose
    values differ between its volumes). Volumes are sorted by
    :func:`dicomml.geometry.stack.volume_order`; the first of those columns that varies
    between volumes is what ordered them (``volume_key`` set by :mod:`.volumes` means
    Instance Number, dcm2niix's rule for volumes no standard tag tells apart)."""
    first = planes.loc[stack.order[:, 0]]
    varying = [name for name in volume_order(planes)
               if len({repr(v) for v in first[name].tolist()}) > 1]
    told_apart = [n for n in varying if n != "instance"]
    if not varying:
        return "file path", []
    name = varying[0]
    if name == "volume_key" and "frame" in planes and (planes["frame"] == 0).all():
        return "InstanceNumber", told_apart
    return ATTRIBUTES.get(name, name), told_apart


def provenance(planes: pd.DataFrame, stack: Stack, built: dict, chosen: dict,
               resampled: bool) -> dict:
    """How the volume was built: ``files`` (per volume, the files in slice order; a list of
    lists for 4D, with ``frames`` beside them for multi-frame files and mosaics: the frame
    index, or a mosaic's tile index), the 4D
    ``volume_rule``, ``policies`` (each geometry finding and what it did), ``left_out``
    (derived images kept out of a 4D DWI), ``diffusion`` (the tags the encoding came from),
    ``transfer_syntaxes`` with ``decoders`` (the decoder tried first for each) and the
    ``dicomml_version``. Scaling (Rescale Slope/Intercept, MONOCHROME1) is in the metadata
    beside it (``rescale``, ``inverted_monochrome1``)."""
    import dicomml

    paths = planes["path"].to_numpy(dtype=object)
    files = [paths[row].tolist() for row in stack.order]
    record: dict = {"dicomml_version": getattr(dicomml, "__version__", None),
                    "files": files if stack.is_4d else files[0]}
    if (planes["frame"] > 0).any() or (planes["tile"] >= 0).any():
        index = (planes["frame"].to_numpy() if (planes["tile"] < 0).all()
                 else planes["tile"].to_numpy())
        frames = [index[row].tolist() for row in stack.order]
        record["frames"] = frames if stack.is_4d else frames[0]
    if stack.is_4d:
        record["volume_rule"] = volume_rule(planes, stack)[0]
    record["policies"] = [
        {"kind": f.kind, "action": "resampled" if resampled and f.kind in RESAMPLED
         else chosen.get(f.kind, "raise"), "message": f.message}
        for f in stack.findings]
    if stack.order.shape[1] == 1:
        record["policies"].append({"kind": "spacing", "action": "assumed",
                                   "message": "one slice: the slice step is Spacing Between "
                                              "Slices, else Slice Thickness, else 1 mm"})
    if "dropped_volumes" in built:
        record["policies"].append({"kind": "missing", "action": "dropped volumes",
                                   "message": str(built["dropped_volumes"])})
    if "derived" in built:
        record["left_out"] = built["derived"]
    if "diffusion" in built:
        record["diffusion"] = built["diffusion"]
    if "diffusion_rule" in built:
        record["diffusion_rule"] = built["diffusion_rule"]
    if "transfer_syntax" in planes:
        syntaxes = sorted({str(v) for v in planes["transfer_syntax"] if v is not None and v == v})
        record["transfer_syntaxes"] = syntaxes
        record["decoders"] = {uid: _first_decoder(uid) for uid in syntaxes}
    return record


def _first_decoder(uid: str) -> str | None:
    """The decoder tried first for transfer syntax ``uid`` (a fallback to the next one is
    reported by a :class:`~dicomml.errors.DecoderWarning`); None when none is installed."""
    from dicomml.decode.registry import decoders_for

    try:
        return decoders_for(uid)[0].name
    except Exception:  # noqa: BLE001 - no decoder: the pixel read reports it
        return None
