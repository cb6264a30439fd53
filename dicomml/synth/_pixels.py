"""Stored pixel values: pixel format, quantisation, MONOCHROME1 inversion.

Example
-------
>>> fmt = PixelFormat(bits_allocated=16, bits_stored=12, signed=False)
>>> fmt.stored_range
(0, 4095)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PixelFormat:
    """Bits Allocated / Stored and Pixel Representation of a series."""

    bits_allocated: int = 16
    bits_stored: int = 16
    signed: bool = False

    def __post_init__(self):
        if self.bits_allocated not in (8, 16):
            raise ValueError(f"bits_allocated must be 8 or 16, got {self.bits_allocated}")
        if not 1 <= self.bits_stored <= self.bits_allocated:
            raise ValueError(f"bits_stored must be 1..{self.bits_allocated}, "
                             f"got {self.bits_stored}")

    @property
    def stored_range(self) -> tuple[int, int]:
        """Smallest and largest stored integer."""
        if self.signed:
            half = 1 << (self.bits_stored - 1)
            return -half, half - 1
        return 0, (1 << self.bits_stored) - 1

    @property
    def dtype(self) -> np.dtype:
        """Little-endian numpy dtype of one stored sample."""
        kind = "i" if self.signed else "u"
        return np.dtype(f"<{kind}{self.bits_allocated // 8}")


def quantise(values: np.ndarray, fmt: PixelFormat, slope: float, intercept: float,
             *, monochrome1: bool = False) -> np.ndarray:
    """Stored integers for real-world ``values`` (``stored * slope + intercept ~ values``).

    Values outside the representable range are clipped. With ``monochrome1`` the stored
    values are mirrored within the full range allowed by Bits Stored and Pixel
    Representation (``lo + hi - stored``, e.g. ``4095 - stored`` for 12 unsigned bits), so
    that the image *displays* like the MONOCHROME2 one.
    """
    lo, hi = fmt.stored_range
    stored = np.clip(np.rint((values - intercept) / slope), lo, hi)
    if monochrome1:
        stored = lo + hi - stored
    return stored.astype(fmt.dtype)


def real_world(stored: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """The Modality LUT: ``stored * slope + intercept`` in float64."""
    return stored.astype(np.float64) * slope + intercept
