"""File- and series-level reading: :func:`read_pixels`, :func:`read_frames`,
:func:`read_many`.

Arrays are ``(frames, rows, columns)`` or ``(frames, rows, columns, 3)`` for color (RGB,
channel last, like pydicom's ``pixel_array``); values are the stored values in the dtype of
BitsAllocated / PixelRepresentation, unless ``values="modality"`` (float32: Rescale Slope /
Intercept or the Modality LUT Sequence) or ``values="presentation"`` (float32 in [0, 1]: VOI
window or LUT, MONOCHROME1 / INVERSE resolved); the stages are :mod:`dicomml.decode.stages`.
``rescale=True`` (older spelling) is ``slope * v + intercept`` only.

Example
-------
>>> from pydicom.data import get_testdata_file
>>> arr = read_pixels(get_testdata_file("CT_small.dcm"))
>>> arr.shape, arr.dtype
((1, 128, 128), dtype('int16'))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from dicomml.decode.frames import MAX_INFLATED_BYTES, EncodedPixels, load_encoded
from dicomml.decode.located import (
    Location,
    load_frames,
    locate_file,
    locations_from_frame,
    readable,
)
from dicomml.decode.palette import apply_palette, palette_lut
from dicomml.decode.registry import decoders_for
from dicomml.decode.stages import (
    apply_frames,
    check_stage,
    needs_header,
    params_from_dataset,
    params_from_row,
)
from dicomml.decode.stored import Request, decode_into, fill, load
from dicomml.decode.threads import default_threads, run_each
from dicomml.errors import DecodeError, InvalidDicomError, InvalidTagError

if TYPE_CHECKING:
    import pandas


def frame_indices(frames, count: int, path=None) -> list[int]:
    """Normalise ``frames`` (None, int or sequence of ints; negatives count from the end)."""
    if frames is None:
        return list(range(count))
    items = [frames] if isinstance(frames, (int, np.integer)) else list(frames)
    out = []
    for item in items:
        index = int(item)
        if not -count <= index < count:
            raise InvalidTagError(f"frame {index} is out of range for {count} frame(s)",
                                  path=path, tag="NumberOfFrames")
        out.append(index % count)
    return out


def output_shape(encoded: EncodedPixels, nframes: int) -> tuple[int, ...]:
    """``(nframes, rows, columns[, 3])`` of :func:`read_frames`' result."""
    info = encoded.info
    if _is_palette(encoded):
        return (nframes, info.rows, info.columns, 3)
    return (nframes, *info.frame_shape)


def _is_palette(encoded: EncodedPixels) -> bool:
    return (encoded.info.photometric_interpretation == "PALETTE COLOR"
            and encoded.info.samples_per_pixel == 1)


def _apply_palette(arr: np.ndarray, encoded: EncodedPixels) -> np.ndarray:
    return apply_palette(arr, palette_lut(encoded.dataset, encoded.info.path))


def read_frames(encoded: EncodedPixels, frames=None, *, out: np.ndarray | None = None,
                threads: int | None = None, decoder: str | None = None,
                strict: bool = True, chain: list | None = None) -> np.ndarray:
    """Decode ``frames`` of an already loaded file (:func:`~dicomml.decode.load_encoded`).

    ``out``, when given, must have shape :func:`output_shape` and receives the result (so
    a loader can decode straight into its volume). ``threads``: frames decoded at once
    (default: :func:`~dicomml.decode.threads.default_threads`). ``decoder``: one decoder
    name to use alone instead of the registry's order. ``chain``: the decoders
    :func:`~dicomml.decode.registry.decoders_for` returned for this file's transfer syntax
    and ``decoder`` (saves looking them up again for every file of a series).
    """
    info = encoded.info
    indices = frame_indices(frames, info.number_of_frames, info.path)
    if chain is None:
        chain = decoders_for(info.transfer_syntax, path=info.path, prefer=decoder)
    palette = _is_palette(encoded)
    shape = (len(indices), *info.frame_shape)
    target = out if out is not None and not palette else np.empty(shape, info.dtype)
    if target.shape != shape:
        raise ValueError(f"out has shape {target.shape}, expected {shape}")

    decode_into(encoded, indices, target, chain, threads=threads, strict=strict)
    if not palette:
        return target
    rgb = _apply_palette(target, encoded)
    if out is None:
        return rgb
    out[...] = rgb
    return out


def rescale_values(arr: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """``slope * arr + intercept`` as float32 (the modality LUT of CT / PET)."""
    out = arr.astype(np.float32)
    if slope != 1.0:
        out *= np.float32(slope)
    if intercept != 0.0:
        out += np.float32(intercept)
    return out


class PixelValues(NamedTuple):
    """What ``read_pixels(..., record=True)`` / ``read_many(..., record=True)`` return: the
    ``array``, the ``record`` of the values applied (:func:`dicomml.decode.stages.describe`:
    ``stage``, ``modality``, ``window`` / ``voi_lut``, ``inverted``, ``output_range``,
    ``rules``; ``per_frame`` when frames differ; ``read_many``: ``per_file``), and the
    boolean ``padding_mask`` (frames, rows, columns) from Pixel Padding Value / Range Limit,
    True on padding (None when no file has padding)."""

    array: np.ndarray
    record: dict
    padding_mask: np.ndarray | None


def read_pixels(path: str | os.PathLike, frames=None, *, values: str | None = None,
                window=None, normalize: bool = True, record: bool = False,
                rescale: bool = False, threads: int | None = None, decoder: str | None = None,
                isolate: bool = False, timeout: float = 60.0, strict: bool = True,
                max_inflated_bytes: int = MAX_INFLATED_BYTES) -> np.ndarray | PixelValues:
    """Decode the pixel data of one DICOM file.

    Returns ``(frames, rows, columns)`` or ``(frames, rows, columns, 3)`` (RGB; palette color
    is looked up to RGB). ``values`` (:mod:`dicomml.decode.stages`): ``"stored"`` (default):
    stored values in the BitsAllocated dtype; ``"modality"``: float32 Rescale Slope /
    Intercept or Modality LUT Sequence output (pydicom's ``apply_modality_lut``);
    ``"presentation"``: float32 in [0, 1] (``normalize=False``: in the VOI output range)
    after the VOI transform ``window`` selects (None: the file's first; an index; a Window
    Center & Width Explanation; or ``(center, width)`` in modality units) and MONOCHROME1 /
    Presentation LUT Shape INVERSE resolved so that higher is brighter; enhanced objects per
    frame from their functional groups. ``record=True`` returns a :class:`PixelValues`
    (array, record of what was applied, padding mask). ``rescale=True`` (the older spelling):
    float32 ``RescaleSlope * value + RescaleIntercept`` only.

    ``frames``: None (all), an int or a sequence of 0-based indices; only those frames are
    read from the file (uncompressed: at their offsets; encapsulated: through the offset table
    or the file's fragment index, :func:`~dicomml.decode.located.load_frames`), so a frame
    range of a big multi-frame object never loads the whole file. ``threads``: frames
    decoded concurrently (default 1 in DataLoader workers, else a small pool when the decoder
    releases the GIL). ``decoder``: force one decoder by name (see ``dicomml doctor``).
    ``isolate=True``: decode in a child process killed after ``timeout`` seconds, for
    untrusted data whose native decoder might crash or hang (costs a process start).
    ``strict=False``: also decode JPEG / JPEG 2000 frames that lack their end-of-image marker
    (truncated frames are otherwise rejected before decoding). ``max_inflated_bytes`` caps
    the inflated size of a Deflated Explicit VR Little Endian data set (on top of the cap
    its header justifies: 8 MiB before Pixel Data plus the declared frames' bytes).

    Raises :class:`~dicomml.errors.DecodeError` (naming file and frame),
    :class:`~dicomml.errors.DecoderNotAvailableError` (naming syntax and pip extra), or an
    :class:`~dicomml.errors.InvalidDicomError` subclass for broken headers.

    Example
    -------
    >>> from pydicom.data import get_testdata_file
    >>> read_pixels(get_testdata_file("CT_small.dcm"), rescale=True).dtype
    dtype('float32')
    """
    stage = _stage(values, rescale)
    if isolate:
        from dicomml.decode.isolate import read_pixels_isolated

        if stage != "stored" or record:
            raise ValueError("isolate=True reads stored values (or rescale=True) only")
        return read_pixels_isolated(path, frames, rescale=rescale, decoder=decoder,
                                    timeout=timeout, strict=strict)
    encoded = None if frames is None else _frames_only(path, frames)
    if encoded is None:
        encoded = load_encoded(path, max_inflated_bytes=max_inflated_bytes)
    arr = read_frames(encoded, frames, threads=threads, decoder=decoder, strict=strict)
    if rescale and values is None:
        return rescale_values(arr, encoded.info.rescale_slope, encoded.info.rescale_intercept)
    if stage == "stored" and not record:
        return arr
    info = encoded.info
    indices = frame_indices(frames, info.number_of_frames, info.path)
    params = file_params(encoded.dataset, info, stage, window)
    found = apply_frames(arr, [params[i] for i in indices], stage, window, normalize,
                         mask=record)
    return PixelValues(*found) if record else found[0]


def _stage(values: str | None, rescale: bool) -> str:
    """The stage of ``values=`` (None: ``"modality"`` with ``rescale=True``, else stored)."""
    if values is None:
        return "modality" if rescale else "stored"
    return check_stage(values)


def file_params(dataset, info, stage: str = "presentation", window=None) -> list:
    """Per frame :class:`~dicomml.decode.stages.ValueParams` of a file: from its pydicom
    ``dataset`` when loaded, else from :func:`header_params`; float pixel data take the
    file's own linear map (``info.rescale_slope`` / ``rescale_intercept``)."""
    if dataset is None:
        params = header_params(info.path, stage, window, info.number_of_frames)
    else:
        params = params_from_dataset(dataset, info.path, info.number_of_frames)
    if info.float_data:
        import dataclasses

        params = [dataclasses.replace(p, float_data=True, slope=info.rescale_slope,
                                      intercept=info.rescale_intercept) for p in params]
    return params


def header_params(path, stage: str, window=None, frames: int | None = None) -> list:
    """Per frame :class:`~dicomml.decode.stages.ValueParams` of the file ``path``: from the
    catalog's bounded header parser (its display-values columns, ~10x cheaper than pydicom),
    or, where those cannot describe the stage (:func:`~dicomml.decode.stages.needs_header`:
    LUT sequences, multi-frame files, a window chosen by index or name), from pydicom."""
    from dicomml.catalog.header import parse_file, row_as_dict
    from dicomml.errors import DicommlError

    path = os.fspath(path)
    try:
        row = row_as_dict(parse_file(path))
    except DicommlError:  # pydicom names what is wrong, or reads what the parser refused
        row = None
    if row is None or needs_header(row, stage, window):
        return params_from_dataset(read_header(path), path, frames)
    found = row.get("NumberOfFrames")
    count = int(frames if frames is not None else found if found and found == found else 1)
    return [params_from_row(row, path)] * max(count, 1)


def read_header(path):
    """The pydicom header of ``path`` (no pixel data); InvalidDicomError naming the file."""
    import pydicom

    try:
        return pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as exc:  # noqa: BLE001 - any parser failure becomes a typed error
        raise InvalidDicomError(f"header unreadable: {exc}", path=path) from exc


def _frames_only(path, frames):
    """EncodedPixels of just ``frames`` of the file at ``path`` (None: read it whole)."""
    location = locate_file(path)
    if location is None:
        return None
    indices = frame_indices(frames, location.info.number_of_frames, location.path)
    return load_frames(location, sorted(set(indices)))


def _sources(paths) -> tuple[list, list[str]]:
    """(what to load, file names) for :func:`read_many`: paths, or catalog rows whose
    :class:`~dicomml.decode.located.Location` skips the header walk."""
    if hasattr(paths, "columns") and hasattr(paths, "iloc"):  # a catalog DataFrame
        items = locations_from_frame(paths)
        return items, [item if isinstance(item, str) else item.path for item in items]
    items = [os.fspath(p) for p in paths]
    return items, [str(p) for p in items]


def _checked_out(out: np.ndarray | None, shape: tuple, dtype) -> np.ndarray:
    """``out`` when it can hold the result (else ValueError), or a new array."""
    if out is None:
        return np.empty(shape, dtype)
    if not (isinstance(out, np.ndarray) and out.shape == shape and out.dtype == dtype
            and out.flags.c_contiguous and out.flags.writeable):
        raise ValueError(f"out must be a writable C-contiguous array of shape {shape} and "
                         f"dtype {np.dtype(dtype)}, got {getattr(out, 'shape', None)} "
                         f"{getattr(out, 'dtype', None)}")
    return out


#: files per run in :func:`read_many` (read together, then decoded)
RUN_FILES = 16


def _runs(count: int, threads: int) -> list[range]:
    """Consecutive runs of file indices: at most :data:`RUN_FILES` each, and about four per
    thread when there are several (load balance)."""
    size = RUN_FILES if threads <= 1 else max(1, min(RUN_FILES, -(-count // (4 * threads))))
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


def read_many(paths: Sequence[str | os.PathLike] | pandas.DataFrame, *,
              values: str | None = None, window=None, normalize: bool = True,
              record: bool = False, rescale: bool = False, threads: int | None = None,
              decoder: str | None = None, out: np.ndarray | None = None
              ) -> np.ndarray | PixelValues:
    """Decode every frame of several files (one series) concurrently; stacked on axis 0.

    ``values``, ``window``, ``normalize``, ``record``: as in :func:`read_pixels`, file by
    file (float32 result). From catalog rows the values come from the catalog's columns
    (first window, rescale, VOI LUT Function, Presentation LUT Shape, padding); a file with
    a Modality / VOI LUT Sequence, a multi-frame file, or a window chosen by index or name
    has its header read; from paths every header is read.

    ``paths``: file paths, or a catalog's rows of one series (a DataFrame such as
    ``catalog.series_instances(key)``): the catalog then says where each file's pixel data
    lies and how it is stored, so no header is parsed again (a file changed since the scan
    is read the full way). All files must share the frame count, shape and dtype (else
    DecodeError). Files are read and decoded straight into the result in a thread pool
    (``threads`` as in :func:`read_pixels`; each file's own frames use one thread).

    ``out``: a writable C-contiguous array of the result's shape and dtype to decode into
    (e.g. a buffer reused across series, or pinned / shared memory); ValueError otherwise.

    Example
    -------
    >>> from pydicom.data import get_testdata_file
    >>> read_many([get_testdata_file("CT_small.dcm")] * 2).shape
    (2, 128, 128)
    >>> buffer = np.empty((2, 128, 128), np.int16)
    >>> read_many([get_testdata_file("CT_small.dcm")] * 2, out=buffer) is buffer
    True
    """
    stage = _stage(values, rescale)
    if values is not None and (stage != "stored" or record):
        return _read_many_values(paths, stage, window, normalize, record, threads=threads,
                                 decoder=decoder, out=out)
    items, names = _sources(paths)
    if not items:
        raise ValueError("read_many needs at least one path")
    # the first file sets the result's shape and dtype: a catalog row tells them without a
    # read; a path, palette color or an unusual layout is loaded first
    first = None if isinstance(items[0], Location) and readable(items[0]) else load(items[0])
    series = items[0].info if first is None else first.info  # FrameInfo of the first file
    preloaded = {} if first is None else {0: first}
    chain = decoders_for(series.transfer_syntax, path=series.path, prefer=decoder)
    if threads is None:
        threads = default_threads(releases_gil=chain[0].releases_gil, tasks=len(items))
    per_file = series.number_of_frames
    palette = first is not None and _is_palette(first)
    shape = output_shape(first, len(items) * per_file) if palette \
        else (len(items) * per_file, *series.frame_shape)
    if rescale:
        dtype = np.float32
    else:  # palette output takes the LUT's dtype: learn it from the first frame
        dtype = read_frames(first, 0).dtype if palette else series.dtype
    out = _checked_out(out, shape, dtype)
    chains = {series.transfer_syntax: chain}

    def work(run: range) -> None:
        """Fill a run of files (read together, then decoded: each stays in cache)."""
        if palette:  # the lookup needs each file's LUTs: loaded one by one
            for i in run:
                other(i, preloaded.get(i) or load(items[i]))
            return
        requests = [Request(preloaded.get(i) or items[i], target(i)) for i in run]
        found = fill(requests, expect=series, decoder=decoder, chains=chains)
        for i, request, info in zip(run, requests, found):
            if isinstance(info, EncodedPixels):
                other(i, info)
            elif rescale:
                part(i)[...] = rescale_values(request.out, info.rescale_slope,
                                              info.rescale_intercept)

    def part(i: int) -> np.ndarray:
        return out[i * per_file:(i + 1) * per_file]

    def target(i: int) -> np.ndarray:  # stored values: the result, or a buffer to rescale
        if not rescale:
            return part(i)
        info = items[i].info if isinstance(items[i], Location) else series
        return np.empty((per_file, *info.frame_shape), info.dtype)

    def other(i: int, encoded: EncodedPixels) -> None:
        """A file that does not fit the result as it is (palette, another dtype...)."""
        info = encoded.info
        if output_shape(encoded, info.number_of_frames) != (per_file, *shape[1:]):
            raise DecodeError(f"frame count or shape differs from {reference(i)}", path=names[i])
        if rescale:
            part(i)[...] = rescale_values(read_frames(encoded, threads=1, decoder=decoder),
                                          info.rescale_slope, info.rescale_intercept)
        elif _is_palette(encoded):
            read_frames(encoded, threads=1, decoder=decoder, out=part(i))
        else:
            raise DecodeError(f"pixel dtype {info.dtype} differs from {out.dtype} "
                              f"of {reference(i)}", path=names[i])

    def reference(i: int) -> str:  # what file i was compared with, for error messages
        return names[0] if i else "what the catalog recorded for it (changed since the scan?)"

    run_each(work, _runs(len(items), threads), threads)
    return out


def _read_many_values(paths, stage: str, window, normalize: bool, record: bool, *,
                      threads, decoder, out) -> np.ndarray | PixelValues:
    """:func:`read_many` with ``values=``: stored values first, then each file's stage."""
    stored = read_many(paths, threads=threads, decoder=decoder)
    per_file = _file_params(paths, stage, window)
    frames = len(stored) // len(per_file)
    if stage == "stored":
        result = _checked_out(out, stored.shape, stored.dtype)
        if result is not stored:
            result[...] = stored
    else:
        result = _checked_out(out, stored.shape, np.float32)
    records, masks = [], []
    for i, params in enumerate(per_file):
        part = slice(i * frames, (i + 1) * frames)
        _, found, mask = apply_frames(stored[part], params, stage, window, normalize, mask=record,
                                      out=result[part])
        records.append(found)
        masks.append(mask)
    if not record:
        return result
    summary = dict(records[0])
    if any(r != records[0] for r in records):
        summary["per_file"] = records
    mask = None
    if any(m is not None for m in masks):
        mask = np.zeros(stored.shape[:3], bool)
        for i, found in enumerate(masks):
            if found is not None:
                mask[i * frames:(i + 1) * frames] = found
    return PixelValues(result, summary, mask)


def _file_params(paths, stage: str, window) -> list[list]:
    """Per file, per frame :class:`~dicomml.decode.stages.ValueParams`: from catalog
    columns where they are enough (:func:`~dicomml.decode.stages.needs_header`), else from
    the file's header."""
    if hasattr(paths, "columns") and hasattr(paths, "iloc"):
        out = []
        from dicomml.decode.stages import ROW_COLUMNS

        names = [c for c in ROW_COLUMNS if c in paths.columns]
        for row in paths[names].to_dict("records"):
            path = str(row["path"])
            if needs_header(row, stage, window):
                out.append(params_from_dataset(read_header(path), path))
            else:
                frames = int(row["NumberOfFrames"]) if row.get("NumberOfFrames") == \
                    row.get("NumberOfFrames") and row.get("NumberOfFrames") else 1
                out.append([params_from_row(row, path)] * frames)
        return out
    return [header_params(path, stage, window) for path in paths]
