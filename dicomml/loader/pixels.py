"""Read the pixels of a sorted plane table into one preallocated array.

Each file's frames get their stored values from :func:`dicomml.decode.stored.fill`, the one path
from bytes to stored values (uncompressed data at the catalog's Pixel Data offset read with
``preadv`` straight into place, compressed data at that offset read and decoded, anything else
decoded through the file's header; Bits Stored corrections applied there). This module keeps
what belongs to the volume: the order of the planes, the output slots, cutting a Siemens mosaic
frame into its tiles (:func:`dicomml.geometry.mosaic.untile`), and the output values
(:mod:`.values`: rescale, MONOCHROME1). Files are described by the same
:class:`~dicomml.decode.located.Location` that :func:`~dicomml.decode.located.locations_from_frame`
builds from catalog rows, here from the plane table's file columns. Float / Double Float Pixel
Data, which the catalog marks (``float_pixel_data``; a catalog written before the marker
existed does not), are read through the file's header: a float output takes them through the
file's own linear map (Rescale Slope / Intercept, else its one Real World Value Mapping);
``dtype=None`` returns the stored floats (float32 / float64) where the catalog marks them,
and refuses unmarked float files found while reading.

Before the output is allocated, every file must be able to hold what its header claims:
uncompressed frames must lie inside the file (and inside the Pixel Data value), and the decoded
size of compressed frames may be at most :data:`MAX_EXPANSION` times the file size. Header
sizes therefore never drive an allocation beyond what the files can justify.

Example
-------
>>> import tempfile, dicomml
>>> from dicomml.loader.planes import build_planes
>>> from dicomml.loader.sources import resolve_source
>>> folder = tempfile.mkdtemp()
>>> _ = dicomml.synth.write_series(folder, shape=(2, 4, 3))
>>> planes = build_planes(resolve_source(folder)[0])
>>> read_stack(planes, np.array([[0, 1]])).shape    # (volumes, slices, rows, columns)
(1, 2, 4, 3)
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from dicomml._columns import absent, column_list
from dicomml.decode.frames import EncodedPixels
from dicomml.decode.located import Location, direct_layout, locations_from_columns
from dicomml.decode.palette import apply_palette, palette_lut
from dicomml.decode.stored import Request, fill
from dicomml.decode.threads import DECODE_POOL_PREFIX
from dicomml.errors import (
    DecodeError,
    InvalidDicomError,
    InvalidTagError,
    TruncatedFileError,
)

from .planes import _FILE_COLUMNS, colour_kind
from .values import PARAMS, StoreValues, output_dtype, store, store_values

#: largest accepted ratio of decoded pixel bytes to file size for compressed data (lossless
#: codecs reach a few hundred on blank images; a damaged Rows/Columns/NumberOfFrames far more)
MAX_EXPANSION = 4096
_GEOMETRY_COLUMNS = ("position", "orientation", "pixel_spacing")
#: below this output size (bytes) one thread reads everything (a thread pool costs more than
#: it saves on small series)
THREADED_BYTES = 8 << 20
#: runs of consecutive files handed to each reader thread (load balance vs. task overhead)
RUNS_PER_THREAD = 4
#: largest per-thread buffer (bytes) kept for stored values on their way to the output
SCRATCH_MAX = 16 << 20


def read_stack(planes: pd.DataFrame, order: np.ndarray, *, dtype="float32",
               threads: int | None = None, allocate=None, stage: str | None = None,
               window=None, normalize: bool = True, masks: dict | None = None) -> np.ndarray:
    """Pixels of the planes ``order`` (volumes, slices) into one (V, S, R, C) array.

    ``allocate(shape, dtype) -> ndarray``, when given, supplies that array (for example a view
    of shared memory, so that a DataLoader worker decodes straight into it): it must return a
    writable, C-contiguous array of exactly that shape and dtype (ValueError otherwise); it is
    called once, after every header and file size check has passed.

    ``stage`` / ``window`` / ``normalize``: the values (:mod:`dicomml.decode.stages`; None:
    ``"modality"`` for a float ``dtype``, else stored); planes with a ``value_params`` column
    (:func:`.values.with_value_params`) use them. ``masks``: a dict that receives
    ``"padding"``, the (V, S, R, C) bool padding mask, when a plane has a Pixel Padding Value.
    """
    records = _records(planes, order.ravel().tolist())
    tasks = _tasks_by_file(records)
    where = file_locations(tasks)
    for path, items in tasks.items():
        check_file_holds(path, [plane for _, plane in items], where[path])
    first = next(iter(tasks.values()))[0][1]
    colour = colour_kind(first.get("samples_per_pixel"), first.get("photometric"))
    luts = _palettes(where) if colour == "palette" else {}
    out_dtype = output_dtype(_infos(tasks, where), dtype) if not luts else \
        np.dtype(dtype) if dtype is not None else np.result_type(*(t for t, _ in luts.values()))
    out = _allocated(allocate, order.shape + (int(first["rows"]), int(first["columns"]))
                     + ((3,) if colour else ()), out_dtype)
    flat = out.reshape(-1, *out.shape[2:])
    if colour:  # few and small: one thread, one file at a time
        for path, items in tasks.items():
            _read_colour_file(where[path], items, flat, luts.get(path))
        if stage == "presentation" and normalize and out.dtype.kind == "f":
            out /= _colour_top(first, luts)  # samples over their range (decode.stages)
        return out
    workers = threads or min(8, os.cpu_count() or 1)
    values = _Values(rescale=dtype is not None, stage=stage, window=window,
                     normalize=normalize)
    padded = [p.padding is not None for p in planes[PARAMS].tolist()] \
        if masks is not None and PARAMS in planes.columns else []
    if any(padded):  # every plane with padding writes its slot: zeros only for the others
        values.mask = (np.empty if all(padded) else np.zeros)(flat.shape, bool)
        masks["padding"] = values.mask.reshape(out.shape)
    jobs = [(where[path], items) for path, items in tasks.items()]
    if workers <= 1 or len(jobs) < 4 or out.nbytes < THREADED_BYTES:
        _read_files(jobs, flat, dtype, values)
    else:  # contiguous runs of files per task: each thread fills its own output pages
        size = max(1, math.ceil(len(jobs) / (workers * RUNS_PER_THREAD)))
        runs = [jobs[start:start + size] for start in range(0, len(jobs), size)]
        with ThreadPoolExecutor(workers, thread_name_prefix=DECODE_POOL_PREFIX) as pool:
            list(pool.map(lambda run: _read_files(run, flat, dtype, values), runs))
    return out


def _colour_top(first: dict, luts: dict) -> float:
    """The largest colour sample value: 2**BitsStored - 1, or a palette's largest entry
    value (8 or 16-bit entries)."""
    if luts:
        return float(max(np.iinfo(table.dtype).max for table, _ in luts.values()))
    return float((1 << int(first.get("bits_stored") or 8)) - 1)


def _palettes(where: dict[str, Location]) -> dict[str, tuple]:
    """{path: :func:`palette_lut` of the file's header} of palette colour files."""
    import pydicom

    luts = {}
    for path in where:
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as exc:  # noqa: BLE001 - any parse failure names the file
            raise InvalidDicomError(f"cannot read the palette header: {exc}", path=path) from exc
        luts[path] = palette_lut(header, path)
    return luts


def _read_colour_file(where: Location, items, flat: np.ndarray, lut) -> None:
    """Read the colour planes ``items`` [(output slot, plane record)] of one file into
    ``flat[slot]`` (rows, columns, 3): RGB as decoded (YBR converted, planar configuration
    undone by the decoder), palette indices looked up in ``lut``; no rescale."""
    info = where.info
    frames = sorted({int(plane["frame"]) for _, plane in items})
    buffer = np.empty((len(frames), *info.frame_shape), info.dtype)
    found = fill([Request(where, buffer, None if info.number_of_frames == 1 else frames)])
    images, _ = _as_read(found[0], dict(zip(frames, buffer)), flat.dtype, None, None)
    for slot, plane in items:
        image = images[int(plane["frame"])]
        if lut is not None:
            image = apply_palette(image, lut)
        np.copyto(flat[slot], image, casting="unsafe")


def _allocated(allocate, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """``np.empty(shape, dtype)``, or the caller's ``allocate(shape, dtype)`` after checking
    that it can be written as the output."""
    if allocate is None:
        return np.empty(shape, dtype=dtype)
    out = allocate(shape, dtype)
    if not (isinstance(out, np.ndarray) and out.shape == shape and out.dtype == dtype
            and out.flags.c_contiguous and out.flags.writeable):
        found = (getattr(out, "shape", None), getattr(out, "dtype", None))
        raise ValueError(f"allocate({shape}, {dtype}) must return a writable C-contiguous "
                         f"numpy array of that shape and dtype, got shape/dtype {found}")
    return out


def _records(planes: pd.DataFrame, rows: list[int]) -> list[dict]:
    """The plane table rows at positions ``rows`` (in that order) as plain dicts, geometry
    columns left out (no pandas per plane, no row-subset DataFrame)."""
    names = [c for c in planes.columns if c not in _GEOMETRY_COLUMNS]
    table = list(zip(*(column_list(planes, c) for c in names)))
    return [dict(zip(names, table[row])) for row in rows]


def _tasks_by_file(records: list[dict]) -> dict[str, list]:
    """{path: [(output slot, plane record)]}: slot i is ``records[i]``."""
    tasks: dict[str, list] = {}
    for slot, record in enumerate(records):
        tasks.setdefault(record["path"], []).append((slot, record))
    return tasks


def file_locations(tasks: dict[str, list]) -> dict[str, Location]:
    """{path: :class:`~dicomml.decode.located.Location`} of each file, from the file columns
    of its first plane record (offset -1 where the catalog recorded none): the plane table's
    names mapped back to the catalog's, a mosaic's stored frame size as Rows / Columns."""
    firsts = [items[0][1] for items in tasks.values()]
    columns = {theirs: [plane.get(ours) for plane in firsts]
               for ours, theirs in _FILE_COLUMNS.items()}
    for ours, theirs in (("rows", "Rows"), ("columns", "Columns")):
        columns[theirs] = [_mosaic_or(plane, ours) for plane in firsts]
    columns["path"] = list(tasks)
    return dict(zip(tasks, locations_from_columns(columns, len(firsts), unlocated=True)))


def _infos(tasks: dict[str, list], where: dict[str, Location]) -> list:
    """Each file's FrameInfo as the catalog describes it, float pixel data included (the
    ``float_pixel_data`` marker): what the output dtype is chosen from. The Locations keep
    the integer description, so that reading finds the float data through the header and
    takes the file's own linear map with it (:func:`_as_read`)."""
    return [where[path].info.replace(float_data=True)
            if not absent(items[0][1].get("float_pixel_data")) else where[path].info
            for path, items in tasks.items()]


def _mosaic_or(plane: dict, name: str):
    """The stored frame's ``name`` (rows / columns): the whole mosaic for a mosaic tile."""
    found = plane.get(f"mosaic_{name}")
    return plane[name] if absent(found) else found


def check_file_holds(path: str, planes: list[dict], where: Location) -> None:
    """Refuse a file too small for the frames its header describes (see module docstring)."""
    info = where.info
    frame_bytes = info.frame_nbytes
    size = os.stat(path).st_size
    if where.offset >= 0 and direct_layout(info):
        needed = (max(int(p["frame"]) for p in planes) + 1) * frame_bytes
        length = -1 if where.length is None else where.length
        if where.offset + needed > size or 0 <= length < needed:
            held = min(size - where.offset, length if length >= 0 else size)
            raise TruncatedFileError(
                f"Rows x Columns x frames x bytes need {needed} bytes of pixel data, the file "
                f"holds {max(held, 0)}", path=path, tag="PixelData")
        return
    frames = len({int(p["frame"]) for p in planes})
    if frames * frame_bytes > MAX_EXPANSION * max(size, 1):
        raise InvalidTagError(
            f"Rows x Columns x frames x bytes ({frames * frame_bytes} bytes) is more than "
            f"{MAX_EXPANSION} times the file size ({size} bytes)", path=path, tag="Rows")


class _Values(dict):
    """{plane values: :class:`~dicomml.loader.values.StoreValues`} for one :func:`read_stack`
    call: worked out once per distinct Bits Stored, sign, photometric and rescale."""

    _NAMES = ("bits_allocated", "bits_stored", "pixel_representation", "photometric", "slope",
              "intercept", PARAMS)

    def __init__(self, rescale: bool, stage: str | None = None, window=None,
                 normalize: bool = True):
        super().__init__()
        self.rescale = rescale
        self.options = {"stage": stage, "window": window, "normalize": normalize}
        self.mask: np.ndarray | None = None  # (planes, rows, columns) padding, when wanted

    def of(self, plane: dict) -> StoreValues:
        try:
            key = tuple(map(plane.get, self._NAMES))
            return self[key]
        except KeyError:
            return self.setdefault(key, store_values(plane, self.rescale, **self.options))
        except TypeError:  # an unhashable value: no caching
            return store_values(plane, self.rescale, **self.options)

    def mask_of(self, slot: int) -> np.ndarray | None:
        return None if self.mask is None else self.mask[slot]


def _read_files(jobs: list, flat: np.ndarray, dtype, values: _Values) -> None:
    for where, items in jobs:
        _read_file(where, items, flat, dtype, values)


def _read_file(where: Location, items, flat: np.ndarray, dtype, values: _Values) -> None:
    """Read the planes ``items`` [(output slot, plane record)] stored in one file."""
    info = where.info
    if len(items) == 1 and items[0][1]["tile"] < 0:  # one plane: the usual case
        slot, plane = items[0]
        frame = int(plane["frame"])
        target = flat[slot] if dtype is None and flat.dtype == info.dtype else \
            _scratch(info.frame_shape, info.dtype)  # straight into the output, or a buffer
        found = fill((Request(where, target[None], None if info.number_of_frames == 1
                                                     else [frame]),))
        images, values = _as_read(found[0], {frame: target}, flat.dtype, dtype, values)
        store(images[frame], plane, flat[slot], dtype, values.of(plane), values.mask_of(slot))
        return
    tiles = [int(plane["tile"]) for _, plane in items]
    frames = sorted({int(plane["frame"]) for _, plane in items})
    buffer = _scratch((len(frames), *info.frame_shape), info.dtype)
    found = fill([Request(where, buffer, None if info.number_of_frames == 1 else frames)],
                 threads=None)
    images, values = _as_read(found[0], dict(zip(frames, buffer)), flat.dtype, dtype, values)
    if max(tiles) >= 0:  # a mosaic: cut every frame into its tiles once
        from dicomml.geometry.mosaic import untile

        first = items[0][1]
        images = {f: untile(image, max(tiles) + 1, int(first["rows"]), int(first["columns"]))
                  for f, image in images.items()}
    for (slot, plane), tile in zip(items, tiles):
        image = images[int(plane["frame"])]
        store(image if tile < 0 else image[tile], plane, flat[slot], dtype, values.of(plane),
              values.mask_of(slot))


def _as_read(found, images: dict, out_dtype: np.dtype, dtype, values):
    """``(images, values)`` once :func:`~dicomml.decode.stored.fill` returned ``found``:
    as filled, or, for a file whose header differs from the catalog's account, decoded from
    it (with the values of float pixel data where it holds them)."""
    if not isinstance(found, EncodedPixels):
        return images, values
    frames = sorted(images)
    images = _decoded(found, frames, next(iter(images.values())).shape)
    if found.info.float_data:
        values = _float_values(found.info, out_dtype, dtype)
    return images, values


class _FloatValues:
    """The output values of float pixel data (PS3.3 C.7.6.24): the file's own linear mapping
    (Rescale Slope / Intercept, else its one Real World Value Mapping), no bits, no sign."""

    def __init__(self, info, rescale: bool):
        self.known = StoreValues(info.bits_allocated, True, False,
                                 info.rescale_slope if rescale else None,
                                 info.rescale_intercept if rescale else None)

    def of(self, plane: dict) -> StoreValues:
        return self.known

    def mask_of(self, slot: int) -> None:
        return None


def _float_values(info, out_dtype: np.dtype, dtype) -> _FloatValues:
    """:class:`_FloatValues` of a file found to hold float pixel data; DecodeError when the
    output is not a float array (``dtype=None``: the catalog records no float pixel data, so
    the stored integer type it implies cannot hold them)."""
    if out_dtype.kind != "f":
        raise DecodeError("the file holds float pixel data, which a volume of stored integers "
                          "(dtype=None) cannot hold; load it with dtype='float32' or 'float64'",
                          path=info.path, tag="DoubleFloatPixelData" if info.bits_allocated == 64
                          else "FloatPixelData")
    return _FloatValues(info, dtype is not None)


def _decoded(encoded: EncodedPixels, frames: list[int], shape: tuple) -> dict:
    """{frame: stored values} of a file whose header differs from the catalog's account;
    DecodeError when the decoded size is not what the planes need."""
    from dicomml.decode import read_frames

    pixels = read_frames(encoded, frames)
    if pixels.shape[1:] != shape or pixels.size != len(frames) * math.prod(shape):
        raise DecodeError(f"decoded {pixels.shape} pixels, but {len(frames)} frame(s) of "
                          f"Rows x Columns {shape[0]} x {shape[1]} were expected",
                          path=encoded.info.path)
    return dict(zip(frames, pixels))


_LOCAL = threading.local()


def _scratch(shape: tuple, dtype: np.dtype) -> np.ndarray:
    """A per-thread reusable buffer (no allocation, no page faults per slice); a new array
    beyond :data:`SCRATCH_MAX` bytes."""
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > SCRATCH_MAX:
        return np.empty(shape, dtype)
    buffer = getattr(_LOCAL, "buffer", None)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = _LOCAL.buffer = np.empty(nbytes, dtype=np.uint8)
    return buffer[:nbytes].view(dtype).reshape(shape)
