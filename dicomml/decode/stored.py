"""Fill caller-provided arrays with the stored values of files' frames: the one way from a
file's bytes to stored values, shared by :func:`~dicomml.decode.read_many` and
:func:`~dicomml.load_series`.

A :class:`Request` names a file (a :class:`~dicomml.decode.located.Location` from the catalog,
a path, or :class:`~dicomml.decode.frames.EncodedPixels` already loaded), the frames wanted and
the array receiving them: ``(len(frames), rows, columns[, samples])``, C-contiguous, in the
file's stored dtype (:attr:`~dicomml.decode.info.FrameInfo.dtype`). What lands there are stored
values with the decoder's bit corrections applied (:func:`~dicomml.decode.pipeline.correct_bits`:
Bits Stored masking / sign extension as pydicom does; big endian swapped), any transfer syntax,
native or compressed. No rescale, no MONOCHROME1 inversion, no palette lookup: the callers own
those (and the output order, slots and mosaic tiles).

How each request is served, cheapest first:

1. uncompressed grey data at a catalog offset: read straight into ``out``, one ``preadv`` per
   run of consecutive frames (:func:`~dicomml.decode.located.read_native_at`);
2. a path, when the files are expected to be uncompressed (``expect``): its header prefix
   walked and, when its format is the expected one, the same direct read (:func:`~dicomml.decode.located.read_native_file`);
3. anything else: loaded (located files of a call are all read before any is decoded,
   :func:`~dicomml.decode.located.load_located_run`; paths by
   :func:`~dicomml.decode.frames.load_encoded`) and decoded frame by frame into ``out``.

Example
-------
>>> import tempfile, dicomml
>>> from dicomml.decode.located import locations_from_frame
>>> folder = tempfile.mkdtemp()
>>> truth = dicomml.synth.write_series(folder, shape=(2, 4, 3), transfer_syntax="1.2.840.10008.1.2.5")
>>> where = locations_from_frame(dicomml.scan(folder, progress=False).instances)
>>> out = np.empty((2, 4, 3), where[0].info.dtype)
>>> infos = fill([Request(where[0], out[:1]), Request(where[1], out[1:])])
>>> bool((out == truth.stored).all()), infos[0].transfer_syntax
(True, '1.2.840.10008.1.2.5')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from dicomml.decode.frames import EncodedPixels, load_encoded
from dicomml.decode.info import FrameInfo
from dicomml.decode.located import (
    Location,
    direct_layout,
    load_located,
    load_located_run,
    read_native_at,
    read_native_file,
)
from dicomml.decode.pipeline import decode_frame
from dicomml.decode.registry import decoders_for
from dicomml.decode.threads import default_threads, run_each


class Request(NamedTuple):
    """One file's frames to fill: ``source`` (Location, path or EncodedPixels), ``out``
    (``(len(frames), *frame_shape)`` of the stored dtype, C-contiguous), ``frames``
    (0-based indices, ascending; None: every frame, ``len(out)`` of them)."""

    source: Location | str | EncodedPixels
    out: np.ndarray
    frames: Sequence[int] | None = None


def fill(requests: Sequence[Request], *, expect: FrameInfo | None = None,
         decoder: str | None = None, chains: dict | None = None, threads: int | None = 1,
         strict: bool = True) -> list[FrameInfo | EncodedPixels]:
    """Fill every request's ``out`` (see the module docstring); per request, the
    :class:`~dicomml.decode.info.FrameInfo` of the file as read, or, where the file as read
    now does not fit ``out`` (another frame shape or dtype, fewer frames: e.g. changed since
    the scan), its :class:`~dicomml.decode.frames.EncodedPixels`, loaded but not decoded, for
    the caller to handle (its frames are valid until this thread's next ``fill``).

    ``expect``: the :class:`~dicomml.decode.info.FrameInfo` that paths are expected to have
    (lets uncompressed paths of that format be read directly). ``decoder``: one decoder
    name to use alone. ``chains``: a dict caching the decoders per transfer syntax across
    calls. ``threads``: the frames of one file decoded at once (compressed data; None:
    :func:`~dicomml.decode.threads.default_threads`).
    """
    format_key = expect.format_key if expect is not None and direct_layout(expect) else None
    results = [_read_directly(request, format_key) for request in requests]
    pending = [i for i, info in enumerate(results) if info is None]
    if not pending:
        return results
    chains = {} if chains is None else chains
    for i, encoded in zip(pending, _load([requests[i].source for i in pending])):
        request = requests[i]
        frames = _frames(request)
        if not _fits(encoded.info, request.out, request.frames):
            results[i] = encoded
            continue
        decode_into(encoded, frames, request.out, _chain(encoded.info, decoder, chains),
                    threads=threads, strict=strict)
        results[i] = encoded.info
    return results


def _frames(request: Request) -> list[int]:
    return list(range(len(request.out))) if request.frames is None else list(request.frames)


def _read_directly(request: Request, format_key: tuple | None) -> FrameInfo | None:
    """The FrameInfo when ``request`` was served by a direct read of uncompressed data."""
    source, out = request.source, request.out
    if isinstance(source, Location):
        info = source.info
        frames = None if request.frames is None else list(request.frames)
        if direct_layout(info) and _fits(info, out, frames) \
                and read_native_at(source, out, frames):
            return info
        return None
    if isinstance(source, str) and format_key is not None and request.frames is None:
        return read_native_file(source, out, format_key)
    return None


def _fits(info: FrameInfo, out: np.ndarray, frames) -> bool:
    """True when ``out`` can take ``frames`` (None: all) of a file described by ``info``."""
    if out.dtype != info.dtype or out.shape[1:] != info.frame_shape \
            or not out.flags.c_contiguous:
        return False
    if frames is None:
        return len(out) == info.number_of_frames
    return len(out) == len(frames) and all(0 <= f < info.number_of_frames for f in frames)


def _load(sources: list) -> list[EncodedPixels]:
    """EncodedPixels of each source: located ones read as one run, then the others."""
    located = [s for s in sources if isinstance(s, Location)]
    loaded = iter(load_located_run(located)) if located else iter(())
    return [next(loaded) if isinstance(s, Location) else load(s) for s in sources]


def load(source: Location | str | EncodedPixels) -> EncodedPixels:
    """EncodedPixels of one source, in new memory (a Location through
    :func:`~dicomml.decode.located.load_located`, a path through
    :func:`~dicomml.decode.frames.load_encoded`)."""
    if isinstance(source, EncodedPixels):
        return source
    return load_located(source) if isinstance(source, Location) else load_encoded(source)


def _chain(info: FrameInfo, decoder: str | None, chains: dict) -> list:
    chain = chains.get(info.transfer_syntax)
    if chain is None:
        chain = chains[info.transfer_syntax] = decoders_for(
            info.transfer_syntax, path=info.path, prefer=decoder)
    return chain


def decode_into(encoded: EncodedPixels, frames: list[int], out: np.ndarray, chain: list, *,
                threads: int | None = 1, strict: bool = True) -> None:
    """Decode ``frames`` of a loaded file into ``out[0], out[1]...`` (stored values,
    ``out[k]`` of the frame's shape and the file's dtype), with the decoders ``chain``, on
    ``threads`` threads (None: :func:`~dicomml.decode.threads.default_threads`)."""
    info = encoded.info
    if threads == 1 or len(frames) == 1:  # no closure, no thread count to work out
        for slot, index in enumerate(frames):
            decode_frame(encoded.frames[index], info, chain, index=index, strict=strict,
                         out=out[slot])
        return

    def work(slot: int) -> None:
        index = frames[slot]
        decode_frame(encoded.frames[index], info, chain, index=index, strict=strict,
                     out=out[slot])

    if threads is None:
        threads = default_threads(releases_gil=chain[0].releases_gil, tasks=len(frames))
    run_each(work, range(len(frames)), threads)
