"""Stored pixel values -> output values of a volume: the stage of ``load_series(values=...)``
(:mod:`dicomml.decode.stages` owns the transforms), MONOCHROME1 inversion (DICOM PS3.3
C.7.6.3), the padding mask.

- ``values="modality"`` (float ``dtype``) and ``"stored"`` (``dtype=None``) take the fast path
  below (rescale per plane, MONOCHROME1 mirrored); a Modality LUT Sequence or
  ``values="presentation"`` go through :func:`dicomml.decode.stages.apply` with each plane's
  :class:`~dicomml.decode.stages.ValueParams` (:func:`with_value_params`).
- Pixel Padding Value / Range Limit give ``padding`` (stored values) per plane; the mask is
  written beside the values (:func:`store`'s ``mask``).

- The stored values come from :func:`dicomml.decode.stored.fill` with the Bits Stored corrections
  already applied (only the ``BitsStored`` low bits count: unsigned values masked, signed values
  sign-extended from bit ``BitsStored - 1``, PS3.5 8.1.1; :func:`dicomml.decode.pipeline.correct_bits`).
- ``dtype`` float: ``value = stored * slope + intercept`` per plane; ``dtype=None`` keeps the
  stored integers.
- MONOCHROME1 is mirrored over the stored range ``[s_min, s_max]`` allowed by Bits Stored and
  Pixel Representation (after rescale: ``(slope*s_min + b) + (slope*s_max + b) - value``), so
  that higher values are brighter everywhere, independently of the image content.

Example
-------
>>> import numpy as np
>>> slot = np.empty((1, 2), np.float32)
>>> store(np.array([[0, 4095]], np.uint16), {"bits_allocated": 16, "bits_stored": 12,
...       "slope": 2.0, "intercept": -1.0, "photometric": "MONOCHROME2"}, slot, "float32")
>>> slot.tolist()
[[-1.0, 8189.0]]
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import pandas as pd

from dicomml.decode import stages
from dicomml.decode.info import FrameInfo
from dicomml.errors import InvalidTagError

from ._util import value


def stored_range(bits_stored: int, signed: bool) -> tuple[int, int]:
    """Smallest and largest stored integer that ``bits_stored`` bits can hold."""
    if signed:
        return -(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1
    return 0, (1 << bits_stored) - 1


def plane_format(plane) -> tuple[int, int, bool]:
    """(Bits Allocated, Bits Stored, signed) of a plane record (checked by
    :func:`dicomml.loader.planes.check_planes`)."""
    allocated = int(value(plane, "bits_allocated", 16))
    stored = int(value(plane, "bits_stored", allocated))
    signed = int(value(plane, "pixel_representation", 0)) == 1
    return allocated, stored, signed


def output_dtype(infos: list[FrameInfo], dtype) -> np.dtype:
    """The volume's dtype: ``dtype``, or (None) the stored integer type shared by all files
    (``infos``, in plane order; int32 / uint32 when their Bits Allocated, Bits Stored or sign
    differ); for float pixel data the stored float type (float64 when mixed with others)."""
    if dtype is not None:
        return np.dtype(dtype)
    floats = [info.dtype for info in infos if info.float_data]  # float pixel data: as stored
    if floats:
        return np.result_type(*floats) if len(floats) == len(infos) else np.dtype(np.float64)
    formats = {}  # stored format -> the first file's description
    for info in infos:
        formats.setdefault((info.bits_allocated, info.bits_stored, info.pixel_representation),
                           info)
    for (allocated, _, _), info in formats.items():
        if allocated not in (8, 16, 32):
            raise InvalidTagError(f"dtype=None keeps stored integers of 8, 16 or 32 bits only, "
                                  f"not {allocated}; use a float dtype", path=info.path,
                                  tag="BitsAllocated")
    if len(formats) == 1:
        return next(iter(formats.values())).dtype
    return np.dtype(np.int32) if any(f[2] for f in formats) else np.dtype(np.uint32)


class StoreValues(NamedTuple):
    """What :func:`store` reads from a plane record, worked out once per format
    (:func:`store_values`): Bits Stored, signed, MONOCHROME1, Rescale Slope / Intercept
    (None when not rescaling); ``padding`` (low, high stored values) or None; ``params``
    and ``stage`` / ``window`` / ``normalize`` when :func:`dicomml.decode.stages.apply`
    computes the values (presentation, Modality LUT Sequence), else None."""

    bits_stored: int
    signed: bool
    mono1: bool
    slope: float | None
    intercept: float | None
    padding: tuple | None = None
    params: object = None
    stage: str = "modality"
    window: object = None
    normalize: bool = True


#: the plane-table column holding each plane's :class:`~dicomml.decode.stages.ValueParams`
PARAMS = "value_params"


def store_values(plane, rescale: bool = True, stage: str | None = None, window=None,
                 normalize: bool = True) -> StoreValues:
    """The :class:`StoreValues` of a plane record (slope / intercept only when
    ``rescale``: ``dtype=None`` never reads them; ``stage``: None = ``"modality"`` when
    rescaling, else ``"stored"``)."""
    _, bits_stored, signed = plane_format(plane)
    mono1 = str(value(plane, "photometric", "")).strip().upper() == "MONOCHROME1"
    stage = stage or ("modality" if rescale else "stored")
    params = plane.get(PARAMS) if hasattr(plane, "get") else None
    params = params if isinstance(params, stages.ValueParams) else None
    padding = params.padding if params is not None else None
    computed = params if params is not None and (
        stage == "presentation" or (stage == "modality" and params.modality_lut is not None)) \
        else None
    if not rescale:
        return StoreValues(bits_stored, signed, mono1, None, None, padding)
    return StoreValues(bits_stored, signed, mono1, float(plane["slope"]),
                       float(plane["intercept"]), padding, computed, stage, window, normalize)


def store(image: np.ndarray, plane, slot: np.ndarray, dtype,
          values: StoreValues | None = None, mask: np.ndarray | None = None) -> None:
    """Rescale (unless dtype is None), invert MONOCHROME1, write into ``slot`` (``image``:
    stored values, bits corrected, and ``slot``: (rows, columns)); ``values``: the plane's
    :func:`store_values`, when the caller has them already; ``mask`` (rows, columns) bool:
    set True on padding when the plane has a Pixel Padding Value."""
    known = values if values is not None else store_values(plane, dtype is not None)
    if mask is not None and known.padding is not None:
        low, high = known.padding
        if low == high:
            np.equal(image, low, out=mask)
        else:
            np.logical_and(image >= low, image <= high, out=mask)
    if known.params is not None:
        stages.apply(image, known.params, known.stage, known.window, known.normalize,
                     out=slot)
        if known.stage == "modality" and known.mono1:  # as the rescale path below
            low, high = known.params.modality_range
            np.subtract(slot.dtype.type(low + high), slot, out=slot)
        return
    mono1 = known.mono1
    s_min, s_max = stored_range(known.bits_stored, known.signed)
    if dtype is None:
        if mono1:
            np.subtract(s_min + s_max, image, out=slot, casting="unsafe")
        elif image is not slot:
            slot[...] = image
        return
    slope, intercept = known.slope, known.intercept
    kind = slot.dtype.type
    if slope == 1.0 and intercept == 0.0:  # identity Modality LUT: one casting copy
        np.copyto(slot, image, casting="unsafe")
    elif slope == 1.0:  # one pass: stored + intercept, computed in the output dtype
        np.add(image, kind(intercept), out=slot, casting="unsafe")
    else:
        np.multiply(image, kind(slope), out=slot, casting="unsafe")
        slot += kind(intercept)
    if mono1:
        mirror = slope * (s_min + s_max) + 2 * intercept
        np.subtract(slot.dtype.type(mirror), slot, out=slot)


def with_value_params(planes: pd.DataFrame, instances: pd.DataFrame, stage: str,
                      window=None) -> pd.DataFrame:
    """The planes with a :data:`PARAMS` column (each plane's
    :class:`~dicomml.decode.stages.ValueParams`, Rescale Slope / Intercept taken from the
    plane) when ``stage`` is ``"presentation"`` or a file has a Modality LUT Sequence or a
    Pixel Padding Value; the planes unchanged otherwise. Catalog columns describe most files;
    those :func:`~dicomml.decode.stages.needs_header` names have their header read (once
    per file)."""
    names = [c for c in stages.ROW_COLUMNS if c in instances.columns]
    rows = {str(r["path"]): r for r in instances[names].to_dict("records")} \
        if "path" in instances.columns else {}
    wanted = stage == "presentation" or any(
        stages._given(r.get(name)) for r in rows.values()
        for name in ("ModalityLUTSequence", "PixelPaddingValue"))
    if not wanted or not rows:
        return planes
    by_file: dict = {}
    found = []
    for path, frame, slope, intercept in zip(planes["path"].tolist(), planes["frame"].tolist(),
                                             planes["slope"].tolist(),
                                             planes["intercept"].tolist()):
        row = rows.get(str(path), {})
        if path not in by_file:
            by_file[path] = _file_params(row, str(path), stage, window)
        per_frame = by_file[path]
        params = per_frame[min(int(frame), len(per_frame) - 1)]
        if params.modality_lut is None and (params.slope, params.intercept) != (slope, intercept):
            params = dataclasses.replace(params, slope=float(slope), intercept=float(intercept))
        found.append(params)
    planes = planes.copy()
    planes[PARAMS] = found
    return planes


def _file_params(row, path: str, stage: str, window) -> list:
    if stages.needs_header(row, stage, window):
        from dicomml.decode.reader import read_header

        return stages.params_from_dataset(read_header(path), path)
    return [stages.params_from_row(row, path)]


def values_record(planes: pd.DataFrame, order: np.ndarray, stage: str, window=None,
                  normalize: bool = True, mono1_mirrored: bool = False) -> dict:
    """``metadata["values"]``: :func:`dicomml.decode.stages.describe` of the first plane
    used (``distinct``: how many different records the planes have; ``per_plane`` when
    several)."""
    used = order.ravel().tolist()
    if PARAMS not in planes.columns:
        first = planes.iloc[used[0]]
        _, bits_stored, signed = plane_format(first)
        params = stages.ValueParams(bits_stored=bits_stored, signed=signed,
                                    slope=float(first["slope"]),
                                    intercept=float(first["intercept"]),
                                    photometric=str(first.get("photometric") or
                                                    "MONOCHROME2").strip().upper())
        records = [_record(params, stage, window, normalize)]
    else:
        column = planes[PARAMS].tolist()
        distinct = list(dict.fromkeys(column[i] for i in used))
        records = [_record(p, stage, window, normalize) for p in distinct]
    record = dict(records[0])
    unique = [r for i, r in enumerate(records) if r not in records[:i]]
    record["distinct"] = len(unique)
    if len(unique) > 1:
        record["per_plane"] = unique[:16]
    if mono1_mirrored and stage != "presentation":
        record["inverted"] = True
        record["rules"] = record["rules"] + [
            "MONOCHROME1 mirrored over the stored range so that higher is brighter "
            "(dicomml volumes, every stage)"]
    return record


def _record(params, stage: str, window, normalize: bool) -> dict:
    voi, rules = stages.choose_voi(params, window) if stage == "presentation" else (None, [])
    return stages.describe(params, stage, voi, rules, normalize)
