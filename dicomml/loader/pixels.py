"""Read the pixels of a sorted plane table into one preallocated array.

Uncompressed little/big-endian data whose Pixel Data offset the catalog recorded is read with
``preadv`` at that offset — no header parsing; compressed data at a recorded offset is read
from there and decoded (:func:`dicomml.decode.load_located`, no header parsing either);
everything else (deflated files, bare data sets without an offset) is decoded by
:func:`dicomml.decode.read_pixels`. A Siemens mosaic
frame is decoded once and cut into its tiles (:func:`dicomml.geometry.mosaic.untile`).

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
from typing import NamedTuple

import numpy as np
import pandas as pd

from dicomml._columns import column_list
from dicomml.decode.located import pread_into
from dicomml.errors import DecodeError, InvalidTagError, TruncatedFileError

from ._util import value
from .values import StoreValues, output_dtype, plane_format, store, store_values, stored_dtype

IMPLICIT_LITTLE = "1.2.840.10008.1.2"
NATIVE_LITTLE = {IMPLICIT_LITTLE, "1.2.840.10008.1.2.1"}
NATIVE_BIG = "1.2.840.10008.1.2.2"
#: largest accepted ratio of decoded pixel bytes to file size for compressed data (lossless
#: codecs reach a few hundred on blank images; a damaged Rows/Columns/NumberOfFrames far more)
MAX_EXPANSION = 4096
_GEOMETRY_COLUMNS = ("position", "orientation", "pixel_spacing")
#: below this output size (bytes) one thread reads everything (a thread pool costs more than
#: it saves on small series)
THREADED_BYTES = 8 << 20
#: runs of consecutive files handed to each reader thread (load balance vs. task overhead)
RUNS_PER_THREAD = 4


def read_stack(planes: pd.DataFrame, order: np.ndarray, *, dtype="float32",
               threads: int | None = None, allocate=None) -> np.ndarray:
    """Pixels of the planes ``order`` (volumes, slices) into one (V, S, R, C) array.

    ``allocate(shape, dtype) -> ndarray``, when given, supplies that array (for example a view
    of shared memory, so that a DataLoader worker decodes straight into it): it must return a
    writable, C-contiguous array of exactly that shape and dtype (ValueError otherwise); it is
    called once, after every header and file size check has passed.
    """
    records = _records(planes, order.ravel().tolist())
    tasks = _tasks_by_file(records)
    formats = Formats(rescale=dtype is not None)
    for path, items in tasks.items():
        check_file_holds(path, [plane for _, plane in items], formats)
    first = next(iter(tasks.values()))[0][1]
    out = _allocated(allocate, order.shape + (int(first["rows"]), int(first["columns"])),
                     output_dtype(records, dtype))
    flat = out.reshape(-1, *out.shape[2:])
    workers = threads or min(8, os.cpu_count() or 1)
    jobs = list(tasks.items())
    if workers <= 1 or len(jobs) < 4 or out.nbytes < THREADED_BYTES:
        _read_files(jobs, flat, dtype, formats)
    else:  # contiguous runs of files per task: each thread fills its own output pages
        size = max(1, math.ceil(len(jobs) / (workers * RUNS_PER_THREAD)))
        runs = [jobs[start:start + size] for start in range(0, len(jobs), size)]
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda run: _read_files(run, flat, dtype, formats), runs))
    return out


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


def _read_files(jobs: list, flat: np.ndarray, dtype, formats: Formats) -> None:
    for path, items in jobs:
        _read_file(path, items, flat, dtype, formats)


class NativeFormat(NamedTuple):
    """Facts about a plane that depend only on its format fields (:data:`FORMAT_FIELDS`):
    bytes of one stored frame, read directly or not, the stored dtype, what
    :func:`~dicomml.loader.values.store` needs, and for compressed data at a known offset
    the :class:`~dicomml.decode.FrameInfo` that lets it be decoded without parsing the
    header again (None otherwise)."""

    frame_bytes: int
    native: bool
    stored: np.dtype | None
    values: StoreValues
    info: object = None


#: the plane-record fields that :class:`NativeFormat` depends on (with whether the Pixel Data
#: offset and length are known)
FORMAT_FIELDS = ("transfer_syntax", "bits_allocated", "bits_stored", "pixel_representation",
                 "photometric", "samples_per_pixel", "slope", "intercept", "rows", "columns",
                 "mosaic_rows", "mosaic_columns")


class Formats(dict):
    """{format key: :class:`NativeFormat`} for one :func:`read_stack` call: worked out once
    per distinct format instead of once per plane (a series has one or a few)."""

    def __init__(self, rescale: bool):
        super().__init__()
        self.rescale = rescale

    def of(self, plane) -> NativeFormat:
        """The :class:`NativeFormat` of a plane record."""
        try:  # NaN (never equal to itself) keyed as None: value() reads both as absent
            key = tuple([None if v != v else v for v in map(plane.get, FORMAT_FIELDS)] + [
                int(value(plane, "pixel_data_offset", -1)) >= 0,
                int(value(plane, "pixel_data_length", -1)) >= 0])
            return self[key]
        except KeyError:
            pass
        except (TypeError, ValueError):  # an odd or unhashable value: no caching
            return self._work_out(plane)
        return self.setdefault(key, self._work_out(plane))

    def _work_out(self, plane) -> NativeFormat:
        frame_bytes = _frame_bytes(plane)
        native = native_readable(plane)
        return NativeFormat(frame_bytes, native, _native_dtype(plane) if native else None,
                            store_values(plane, self.rescale),
                            None if native else _frame_info(plane))


def _frame_info(plane):
    """The decoder's :class:`~dicomml.decode.FrameInfo` of a compressed plane whose Pixel
    Data offset the catalog recorded (None: no offset, so the header must be read)."""
    from dicomml.decode import frame_info

    syntax = transfer_syntax(plane)
    if syntax is None or int(value(plane, "pixel_data_offset", -1)) < 0:
        return None
    rows, columns = _frame_shape(plane)
    values = {"Rows": rows, "Columns": columns,
              "SamplesPerPixel": int(value(plane, "samples_per_pixel", 1)),
              "PhotometricInterpretation": str(value(plane, "photometric", "") or ""),
              "NumberOfFrames": int(value(plane, "number_of_frames", 1))}
    values["BitsAllocated"], values["BitsStored"], signed = plane_format(plane)
    values["PixelRepresentation"] = int(signed)
    return frame_info(values, syntax, plane["path"])


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


def _frame_shape(plane) -> tuple[int, int]:
    """(rows, columns) of one stored frame: the whole mosaic for a mosaic tile."""
    return (int(value(plane, "mosaic_rows", plane["rows"])),
            int(value(plane, "mosaic_columns", plane["columns"])))


def _frame_bytes(plane) -> int:
    """Bytes of one stored frame (rows x columns x samples x ceil(bits allocated / 8))."""
    rows, columns = _frame_shape(plane)
    allocated, _, _ = plane_format(plane)
    samples = int(value(plane, "samples_per_pixel", 1))
    return rows * columns * samples * max(1, math.ceil(allocated / 8))


def check_file_holds(path: str, planes: list[dict], formats: Formats | None = None) -> None:
    """Refuse a file too small for the frames its header describes (see module docstring)."""
    first = planes[0]
    known = (formats if formats is not None else Formats(rescale=False)).of(first)
    frame_bytes = known.frame_bytes
    size = os.stat(path).st_size
    if known.native:
        frames = max(int(p["frame"]) for p in planes) + 1
        needed = frames * frame_bytes
        length = int(value(first, "pixel_data_length", -1))
        offset = int(first["pixel_data_offset"])
        if offset + needed > size or 0 <= length < needed:
            held = min(size - offset, length if length >= 0 else size)
            raise TruncatedFileError(
                f"Rows x Columns x frames x bytes need {needed} bytes of pixel data, the file "
                f"holds {max(held, 0)}", path=path, tag="PixelData")
        return
    frames = len({int(p["frame"]) for p in planes})
    if frames * frame_bytes > MAX_EXPANSION * max(size, 1):
        raise InvalidTagError(
            f"Rows x Columns x frames x bytes ({frames * frame_bytes} bytes) is more than "
            f"{MAX_EXPANSION} times the file size ({size} bytes)", path=path, tag="Rows")


def _read_file(path: str, items, flat: np.ndarray, dtype, formats: Formats) -> None:
    """Read the planes ``items`` [(output slot, plane record)] stored in one file."""
    first = items[0][1]
    known = formats.of(first)
    if len(items) == 1 and first["tile"] < 0 and known.native:
        _read_native_into(path, first, flat[items[0][0]], dtype, known)
        return
    frames = sorted({int(plane["frame"]) for _, plane in items})
    if known.native:
        images = _read_native(path, first, frames)
    else:
        images = _decode(path, frames, _frame_shape(first), first, known.info)
    by_frame = dict(zip(frames, images))
    tiles = [int(plane["tile"]) for _, plane in items]
    if max(tiles) >= 0:  # a mosaic: cut every frame into its tiles once
        from dicomml.geometry.mosaic import untile

        rows, columns = int(first["rows"]), int(first["columns"])
        by_frame = {f: untile(image, max(tiles) + 1, rows, columns)
                    for f, image in by_frame.items()}
    for (slot, plane), tile in zip(items, tiles):
        image = by_frame[int(plane["frame"])]
        store(image if tile < 0 else image[tile], plane, flat[slot], dtype)


def transfer_syntax(plane) -> str | None:
    """The plane's transfer syntax UID; a bare data set (no file meta, so no transfer syntax)
    whose Pixel Data the catalog located with a defined length is Implicit VR Little Endian,
    the DICOM default (PS3.5 10.1)."""
    found = value(plane, "transfer_syntax")
    if found:
        return str(found)
    defined = int(value(plane, "pixel_data_length", -1)) >= 0
    return IMPLICIT_LITTLE if defined and int(value(plane, "pixel_data_offset", -1)) >= 0 \
        else None


def native_readable(plane) -> bool:
    """True when the plane is uncompressed grey data at a known offset (read directly)."""
    ts = transfer_syntax(plane)
    offset = value(plane, "pixel_data_offset", -1)
    return (ts in NATIVE_LITTLE or ts == NATIVE_BIG) and offset is not None and int(offset) >= 0 \
        and int(value(plane, "samples_per_pixel", 1)) == 1 \
        and int(value(plane, "bits_allocated", 0)) in (8, 16, 32)


def _native_dtype(plane) -> np.dtype:
    allocated, _, signed = plane_format(plane)
    return stored_dtype(allocated, signed, big=transfer_syntax(plane) == NATIVE_BIG)


def _read_native(path: str, plane, frames: list[int]) -> list[np.ndarray]:
    """Frames (rows, columns) of uncompressed data read at the catalog's offset."""
    dtype = _native_dtype(plane)
    rows, columns = _frame_shape(plane)
    frame_bytes = rows * columns * dtype.itemsize
    offset = int(plane["pixel_data_offset"])
    images = []
    with open(path, "rb", buffering=0) as handle:
        for frame in frames:
            image = np.empty((rows, columns), dtype=dtype)
            handle.seek(offset + frame * frame_bytes)
            if handle.readinto(memoryview(image).cast("B")) != frame_bytes:
                raise TruncatedFileError(f"pixel data ends before frame {frame}", path=path,
                                         tag="PixelData")
            images.append(image if dtype.byteorder != ">" else image.astype(dtype.newbyteorder("=")))
    return images


_LOCAL = threading.local()


def _scratch(shape, dtype) -> np.ndarray:
    """A per-thread reusable buffer (no allocation, no page faults per slice)."""
    buffer = getattr(_LOCAL, "buffer", None)
    nbytes = math.prod(shape) * dtype.itemsize
    if buffer is None or buffer.nbytes < nbytes:
        buffer = _LOCAL.buffer = np.empty(nbytes, dtype=np.uint8)
    return buffer[:nbytes].view(dtype).reshape(shape)


def _read_native_into(path: str, plane: dict, slot: np.ndarray, dtype,
                      known: NativeFormat | None = None) -> None:
    """One uncompressed frame: read straight into ``slot`` when it has the stored dtype,
    else into a small buffer that :func:`store` rescales into ``slot``."""
    stored = known.stored if known is not None else _native_dtype(plane)
    direct = slot.dtype == stored and dtype is None
    buffer = slot if direct else _scratch(slot.shape, stored)
    offset = int(plane["pixel_data_offset"]) + int(plane["frame"]) * buffer.nbytes
    handle = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        got = pread_into(handle, memoryview(buffer).cast("B"), offset)
    finally:
        os.close(handle)
    if got != buffer.nbytes:
        raise TruncatedFileError("pixel data ends early", path=path, tag="PixelData")
    if stored.byteorder == ">":
        buffer = buffer.astype(stored.newbyteorder("="))
    store(buffer, plane, slot, dtype, known.values if known is not None else None)


def _decode(path: str, frames: list[int], shape: tuple[int, int], plane=None,
            info=None) -> list[np.ndarray]:
    """Decoded frames, each of ``shape`` (rows, columns), via :mod:`dicomml.decode`: at the
    catalog's Pixel Data offset when ``info`` (the plane's FrameInfo) is known, else through
    the file's header; DecodeError when the size disagrees."""
    from dicomml.decode import read_frames, read_pixels

    if info is not None:
        from dicomml.decode.located import Location, load_located

        length = int(value(plane, "pixel_data_length", -1))
        location = Location(path, int(plane["pixel_data_offset"]),
                            length if length >= 0 else None, info.with_path(path))
        pixels = read_frames(load_located(location, reuse=True), frames)  # decoded at once
    else:
        pixels = read_pixels(path, frames=frames, rescale=False)
    if pixels.shape[-2:] != shape or pixels.size != len(frames) * shape[0] * shape[1]:
        raise DecodeError(f"decoded {pixels.shape} pixels, but {len(frames)} frame(s) of "
                          f"Rows x Columns {shape[0]} x {shape[1]} were expected", path=path)
    return list(pixels.reshape(len(frames), *shape))
