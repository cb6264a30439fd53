"""The one interface every pixel decoder implements: :class:`Decoder`.

A decoder turns the bytes of one encoded frame into an integer array of shape
``(rows, columns)`` or ``(rows, columns, samples)`` (samples interleaved), *before* any
sign / unused-bit correction or color conversion: the shared pipeline in
:mod:`dicomml.decode.pipeline` does those, identically for every decoder.

JPEG-family decoders return the raw components (no YCbCr -> RGB transform); JPEG 2000
decoders return what the codestream's multi-component transform yields (RGB for YBR_RCT/ICT).

Example
-------
>>> from dicomml.decode.registry import get_decoder
>>> dec = get_decoder("imagecodecs-jpegls")
>>> dec.name, dec.extra, dec.releases_gil
('imagecodecs-jpegls', 'fast', True)
"""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np

from dicomml.decode.info import FrameInfo


class Decoder:
    """Base class of decoder plugins.

    Attributes
    ----------
    name : str
        Unique name, ``"<package>-<codec>"``.
    package : str
        The pip distribution that provides it (e.g. ``"pylibjpeg-openjpeg"``).
    module : str
        The module imported to use it (availability is ``importlib`` finding it).
    extra : str | None
        The dicomml pip extra that installs it (``None``: a core dependency).
    transfer_syntaxes : frozenset[str]
        UIDs it decodes.
    releases_gil : bool
        True when its native code runs without the GIL (threads then decode in parallel);
        measured with ``benchmarks/bench_decode.py --gil``.
    """

    name: str = ""
    package: str = ""
    module: str = ""
    extra: str | None = None
    transfer_syntaxes: frozenset[str] = frozenset()
    releases_gil: bool = False
    #: Opt-in only: never tried unless asked for by name (crash-prone or GPL).
    opt_in: bool = False
    #: False: only used as the first choice, never retried after another decoder failed
    #: (for decoders that may spin for seconds on corrupt data).
    fallback_on_error: bool = True
    #: True: :meth:`decode_into` writes a one-sample-per-pixel frame straight into a buffer.
    decodes_into: bool = False

    def __init__(self) -> None:
        self._available: bool | None = None
        self._lib = None

    def is_available(self) -> bool:
        """True when the backing package imports (checked once, then cached)."""
        if self._available is None:
            try:
                self._lib = self._load()
                self._available = self._lib is not None
            except Exception:  # noqa: BLE001 - any import failure means "not available"
                self._available = False
        return self._available

    def _load(self):
        """Import and return the backing module (override for extra checks)."""
        if importlib.util.find_spec(self.module.split(".")[0]) is None:
            return None
        return importlib.import_module(self.module)

    @property
    def lib(self):
        """The imported backing module (raises ``RuntimeError`` when unavailable)."""
        if not self.is_available():
            raise RuntimeError(f"{self.name}: package {self.package} is not installed")
        return self._lib

    def decode(self, src: bytes, info: FrameInfo) -> np.ndarray:
        """Decode one frame: ``(rows, columns[, samples])`` integers, samples interleaved."""
        raise NotImplementedError

    def decode_into(self, src: bytes, info: FrameInfo, out: np.ndarray) -> np.ndarray:
        """Decode one frame with ``samples_per_pixel == 1`` into ``out`` (``(rows, columns)``,
        C-contiguous, unsigned, the decoder's own output itemsize); return ``out``.

        Must raise (not return a partial result) when the frame does not fill ``out``
        exactly; only called when :attr:`decodes_into` is True.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Decoder {self.name} ({self.package})>"
