"""Read the pixels of a sorted plane table into one preallocated array.

Uncompressed little/big-endian data whose Pixel Data offset the catalog recorded is read with
``readinto`` at that offset — no header parsing; everything else (compressed, deflated, bare
data sets without an offset) is decoded by :func:`dicomml.decode.read_pixels`. A Siemens mosaic
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

import numpy as np
import pandas as pd

from dicomml.errors import DecodeError, InvalidTagError, TruncatedFileError

from ._util import value
from .values import output_dtype, plane_format, store, stored_dtype

IMPLICIT_LITTLE = "1.2.840.10008.1.2"
NATIVE_LITTLE = {IMPLICIT_LITTLE, "1.2.840.10008.1.2.1"}
NATIVE_BIG = "1.2.840.10008.1.2.2"
#: largest accepted ratio of decoded pixel bytes to file size for compressed data (lossless
#: codecs reach a few hundred on blank images; a damaged Rows/Columns/NumberOfFrames far more)
MAX_EXPANSION = 4096
_GEOMETRY_COLUMNS = ("position", "orientation", "pixel_spacing")


def read_stack(planes: pd.DataFrame, order: np.ndarray, *, dtype="float32",
               threads: int | None = None) -> np.ndarray:
    """Pixels of the planes ``order`` (volumes, slices) into one (V, S, R, C) array."""
    tasks = _tasks_by_file(planes.loc[order.ravel()])
    for path, items in tasks.items():
        check_file_holds(path, [plane for _, plane in items])
    first = next(iter(tasks.values()))[0][1]
    out = np.empty(order.shape + (int(first["rows"]), int(first["columns"])),
                   dtype=output_dtype(planes.loc[order.ravel()], dtype))
    flat = out.reshape(-1, *out.shape[2:])
    workers = threads or min(8, os.cpu_count() or 1)
    jobs = list(tasks.items())
    if workers <= 1 or len(jobs) < 4:
        for path, items in jobs:
            _read_file(path, items, flat, dtype)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda job: _read_file(job[0], job[1], flat, dtype), jobs))
    return out


def _tasks_by_file(used: pd.DataFrame) -> dict[str, list]:
    """{path: [(output slot, plane record)]}, records as plain dicts (no pandas per plane)."""
    names = [c for c in used.columns if c not in _GEOMETRY_COLUMNS]
    columns = [used[c].tolist() for c in names]
    tasks: dict[str, list] = {}
    for slot, values in enumerate(zip(*columns)):
        record = dict(zip(names, values))
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


def check_file_holds(path: str, planes: list[dict]) -> None:
    """Refuse a file too small for the frames its header describes (see module docstring)."""
    first = planes[0]
    frame_bytes = _frame_bytes(first)
    size = os.stat(path).st_size
    if native_readable(first):
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


def _read_file(path: str, items, flat: np.ndarray, dtype) -> None:
    """Read the planes ``items`` [(output slot, plane record)] stored in one file."""
    first = items[0][1]
    if len(items) == 1 and first["tile"] < 0 and native_readable(first):
        _read_native_into(path, first, flat[items[0][0]], dtype)
        return
    frames = sorted({int(plane["frame"]) for _, plane in items})
    if native_readable(first):
        images = _read_native(path, first, frames)
    else:
        images = _decode(path, frames, _frame_shape(first))
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


def _read_native_into(path: str, plane: dict, slot: np.ndarray, dtype) -> None:
    """One uncompressed frame: read straight into ``slot`` when it has the stored dtype,
    else into a small buffer that :func:`store` rescales into ``slot``."""
    stored = _native_dtype(plane)
    direct = slot.dtype == stored and dtype is None
    buffer = slot if direct else _scratch(slot.shape, stored)
    offset = int(plane["pixel_data_offset"]) + int(plane["frame"]) * buffer.nbytes
    with open(path, "rb", buffering=0) as handle:
        handle.seek(offset)
        if handle.readinto(memoryview(buffer).cast("B")) != buffer.nbytes:
            raise TruncatedFileError("pixel data ends early", path=path, tag="PixelData")
    if stored.byteorder == ">":
        buffer = buffer.astype(stored.newbyteorder("="))
    store(buffer, plane, slot, dtype)


def _decode(path: str, frames: list[int], shape: tuple[int, int]) -> list[np.ndarray]:
    """Decoded frames, each of ``shape`` (rows, columns), via dicomml.decode (pydicom's
    pixel_array where that module is absent); DecodeError when the size disagrees."""
    try:
        from dicomml.decode import read_pixels
    except ImportError:
        read_pixels = None
    if read_pixels is not None:
        pixels = np.asarray(read_pixels(path, frames=frames, rescale=False))
    else:  # pragma: no cover - decode module not installed
        import pydicom

        pixels = pydicom.dcmread(path, force=True).pixel_array
        pixels = pixels.reshape(-1, *pixels.shape[-2:])[frames]
    if pixels.shape[-2:] != shape or pixels.size != len(frames) * shape[0] * shape[1]:
        raise DecodeError(f"decoded {pixels.shape} pixels, but {len(frames)} frame(s) of "
                          f"Rows x Columns {shape[0]} x {shape[1]} were expected", path=path)
    return list(pixels.reshape(len(frames), *shape))
