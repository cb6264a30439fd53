"""The decoder registry: which decoders exist, which are installed, in which order they are
tried per transfer syntax, and what to install for the rest.

The order of preference is measured (``benchmarks/bench_decode.py``; see the figures in the
module ``PREFERENCE`` comment). Users can override it for one process with the environment
variable ``DICOMML_DECODERS`` (comma-separated decoder names tried first), or per call with
``read_pixels(..., decoder="name")``.

Example
-------
>>> from dicomml.decode.registry import decoders
>>> table = decoders()
>>> table["1.2.840.10008.1.2.1"]["available"]
['numpy']
"""

from __future__ import annotations

import os

from dicomml.decode import syntaxes as ts
from dicomml.decode.base import Decoder
from dicomml.decode.codecs_deflate import DeflateFrameDecoder
from dicomml.decode.codecs_gpu import NvImageCodec
from dicomml.decode.codecs_imagecodecs import imagecodecs_decoders
from dicomml.decode.codecs_native import NativeDecoder
from dicomml.decode.codecs_pyjpegls import PyJpegLs
from dicomml.decode.codecs_pylibjpeg import PylibjpegLibjpeg, PylibjpegOpenJpeg, PylibjpegRle
from dicomml.errors import DecoderNotAvailableError

_ALL: dict[str, Decoder] = {
    d.name: d for d in [NativeDecoder(), PylibjpegOpenJpeg(), PylibjpegLibjpeg(),
                        PylibjpegRle(), PyJpegLs(), NvImageCodec(), DeflateFrameDecoder(),
                        *imagecodecs_decoders()]
}

# Order of preference per transfer syntax, fastest first: median of 9 interleaved rounds of
# each decoder's bare decode() on 8 synthetic 512x512 int16 CT frames, one thread, MB/s of
# output (2-core shared VM, 2026-11-26; `benchmarks/bench_decode.py --decoders` prints the
# same table): RLE imagecodecs 331 / pylibjpeg-rle 241; JPEG lossless SV1 libjpeg-turbo
# (imagecodecs-jpeg8) 90 / ljpeg 50 / jpegsof3 52 / pylibjpeg-libjpeg 18; process 14: 131 /
# 84 / 68 / 23; JPEG-LS imagecodecs 82 / pyjpegls 72 / pylibjpeg-libjpeg 18; JPEG 2000
# imagecodecs 15 / pylibjpeg-openjpeg 13; HTJ2K OpenJPH 318 / imagecodecs-OpenJPEG 141 /
# pylibjpeg-openjpeg 88; JPEG 12-bit libjpeg-turbo 226 / pylibjpeg-libjpeg 128.
# imagecodecs also releases the GIL (the pylibjpeg plugins' .pyx hold it throughout).
# pyjpegls and CharLS both spin for ~20 s on some truncated frames (the pipeline rejects
# frames without an end marker first); pyjpegls is never used as a fallback.
_J2K = ["imagecodecs-jpeg2k", "pylibjpeg-openjpeg"]
_LOSSLESS_JPEG = ["imagecodecs-jpeg8", "imagecodecs-ljpeg", "imagecodecs-jpegsof3",
                  "pylibjpeg-libjpeg"]
PREFERENCE: dict[str, list[str]] = {
    **{uid: ["numpy"] for uid in ts.NATIVE},
    ts.RLE_LOSSLESS: ["imagecodecs-dicomrle", "pylibjpeg-rle"],
    ts.JPEG_BASELINE: ["imagecodecs-jpeg8", "pylibjpeg-libjpeg"],
    ts.JPEG_EXTENDED: ["imagecodecs-jpeg8", "pylibjpeg-libjpeg"],
    ts.JPEG_LOSSLESS: list(_LOSSLESS_JPEG),
    ts.JPEG_LOSSLESS_SV1: list(_LOSSLESS_JPEG),
    ts.JPEG_LS_LOSSLESS: ["imagecodecs-jpegls", "pyjpegls", "pylibjpeg-libjpeg"],
    ts.JPEG_LS_NEAR_LOSSLESS: ["imagecodecs-jpegls", "pyjpegls", "pylibjpeg-libjpeg"],
    ts.JPEG2000_LOSSLESS: list(_J2K),
    ts.JPEG2000: list(_J2K),
    **{uid: ["imagecodecs-htj2k", *_J2K] for uid in ts.HTJ2K_FAMILY},
    ts.DEFLATED_IMAGE_FRAME: ["zlib-deflate"],
}
_EXTRA_HINT = {"fast": 'pip install "dicomml[fast]"', None: 'pip install dicomml',
               "gpu": 'pip install "nvidia-nvimgcodec-cu13[nvjpeg2k]" (CUDA 13; -cu12 for '
                      'CUDA 12)'}


def get_decoder(name: str) -> Decoder:
    """The registered decoder called ``name`` (``KeyError`` listing the known names)."""
    try:
        return _ALL[name]
    except KeyError:
        raise KeyError(f"unknown decoder {name!r}; known: {', '.join(sorted(_ALL))}") from None


def register(decoder: Decoder, syntaxes_first: list[str] | None = None) -> None:
    """Add a decoder plugin; it is tried first for ``syntaxes_first`` (default: last)."""
    _ALL[decoder.name] = decoder
    for uid in decoder.transfer_syntaxes:
        order = PREFERENCE.setdefault(uid, [])
        if decoder.name in order:
            order.remove(decoder.name)
        if syntaxes_first is not None and uid in syntaxes_first:
            order.insert(0, decoder.name)
        else:
            order.append(decoder.name)


def _ordered_names(uid: str) -> list[str]:
    names = list(PREFERENCE.get(uid, []))
    forced = [n.strip() for n in os.environ.get("DICOMML_DECODERS", "").split(",") if n.strip()]
    first = [n for n in forced if n in _ALL and uid in _ALL[n].transfer_syntaxes]
    return first + [n for n in names if n not in first]


def decoders_for(uid: str, *, path=None, prefer: str | None = None) -> list[Decoder]:
    """Installed decoders for transfer syntax ``uid``, in the order they are tried.

    ``prefer`` names one decoder to use alone (opt-in decoders such as nvimgcodec only run
    this way). Raises :class:`DecoderNotAvailableError` naming the syntax and the pip extra.
    """
    uid = str(uid)
    if prefer is not None:
        decoder = get_decoder(prefer)
        if uid not in decoder.transfer_syntaxes:
            raise DecoderNotAvailableError(f"decoder {prefer} does not handle "
                                           f"{ts.describe(uid)}", path=path,
                                           transfer_syntax=uid, extra=decoder.extra)
        chosen = [decoder]
    else:
        chosen = [_ALL[n] for n in _ordered_names(uid) if not _ALL[n].opt_in]
    available = [d for d in chosen if d.is_available()]
    if available:
        return available
    if not chosen:
        raise DecoderNotAvailableError(f"no decoder exists for {ts.describe(uid)}", path=path,
                                       transfer_syntax=uid)
    extra = chosen[0].extra
    packages = ", ".join(sorted({d.package for d in chosen}))
    raise DecoderNotAvailableError(
        f"no installed decoder for {ts.describe(uid)}; install one of: {packages} "
        f"({_EXTRA_HINT.get(extra, extra)})", path=path, transfer_syntax=uid, extra=extra)


def decoders() -> dict[str, dict]:
    """The registry as a table: transfer syntax UID -> what decodes it.

    Each value is ``{'name': str, 'available': [decoder names in order of preference],
    'missing': [(decoder name, pip package, install hint)], 'opt_in': [names]}``.
    """
    table = {}
    for uid in ts.NAMES:
        names = _ordered_names(uid) + [n for n, d in _ALL.items()
                                       if d.opt_in and uid in d.transfer_syntaxes]
        entry = {"name": ts.NAMES[uid], "available": [], "missing": [], "opt_in": []}
        for name in names:
            decoder = _ALL[name]
            if not decoder.is_available():
                entry["missing"].append((name, decoder.package,
                                         _EXTRA_HINT.get(decoder.extra, decoder.extra)))
            elif decoder.opt_in:
                entry["opt_in"].append(name)
            else:
                entry["available"].append(name)
        table[uid] = entry
    return table
