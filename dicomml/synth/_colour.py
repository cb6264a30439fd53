"""Colour series with ground truth: :func:`write_colour_series`.

The geometry comes from :func:`~dicomml.synth.write_series` (8-bit MR, so its truth holds);
each file's Pixel Data is then replaced by colour samples derived from its grey stored values
``g`` (rows, columns) and its sorted slice index ``k``:
``R = g``, ``G = 255 - g``, ``B = (g + 40 * k) mod 256``.

- ``"RGB"``: those samples, Planar Configuration 0 (R G B per pixel) or 1 (R plane, G plane,
  B plane).
- ``"YBR_FULL"``: the samples converted to Y Cb Cr (PS3.3 C.7.6.3.1.2, rounded); the truth
  is their conversion back to RGB as pydicom's ``convert_color_space`` computes it.
- ``"PALETTE COLOR"``: ``g`` stored as the index into 16-bit red / green / blue lookup tables
  of 256 entries (first mapped index 0); the truth is the tables looked up.

The truth's ``array`` / ``stored`` are (slices, rows, columns, 3) uint8 (uint16 for palettes):
the values a reader must return for the colour volume.

Example
-------
>>> import tempfile
>>> truth = write_colour_series(tempfile.mkdtemp(), shape=(3, 8, 6))
>>> truth.array.shape, truth.array.dtype.name, truth.meta["photometric"]
((3, 8, 6, 3), 'uint8', 'RGB')
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pydicom
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

from ._series import SynthSeries, write_series

PHOTOMETRICS = ("RGB", "YBR_FULL", "PALETTE COLOR")


def write_colour_series(folder, *, shape=(4, 16, 16), photometric: str = "RGB",
                        planar_configuration: int = 0,
                        transfer_syntax: str = ExplicitVRLittleEndian, **options) -> SynthSeries:
    """Write a colour series (see the module docstring) into ``folder``; return its truth.

    ``shape``: (slices, rows, columns); ``photometric``: one of :data:`PHOTOMETRICS`;
    ``transfer_syntax``: Explicit VR Little Endian or RLE Lossless (pydicom's own encoder;
    Planar Configuration 0 only);
    ``options``: passed to :func:`~dicomml.synth.write_series` (geometry, UIDs, names).
    """
    if photometric not in PHOTOMETRICS:
        raise ValueError(f"photometric must be one of {PHOTOMETRICS}, got {photometric!r}")
    if transfer_syntax not in (ExplicitVRLittleEndian, RLELossless):
        raise ValueError("transfer_syntax must be Explicit VR Little Endian or RLE Lossless")
    if transfer_syntax == RLELossless and planar_configuration:
        raise ValueError("RLE Lossless stores each sample in its own segment whatever the "
                         "Planar Configuration (PS3.5 G.2): write it with 0")
    grey = write_series(folder, modality="MR", shape=shape, bits_allocated=8, bits_stored=8,
                        **options)
    positions = np.round(grey.positions, 4)
    truth = np.empty(grey.stored.shape + (3,), np.uint16 if photometric == "PALETTE COLOR"
                     else np.uint8)
    for path in grey.paths:
        ds = pydicom.dcmread(path)
        k = _slice_index(positions, ds.ImagePositionPatient)
        truth[k] = _rewrite(ds, grey.stored[k], k, photometric, planar_configuration)
        if transfer_syntax == RLELossless:
            ds.compress(RLELossless)
        ds.save_as(path, enforce_file_format=True)
    meta = dict(grey.meta, photometric=photometric, planar_configuration=planar_configuration)
    return dataclasses.replace(grey, array=truth, stored=truth.copy(),
                               transfer_syntax=transfer_syntax, meta=meta)


def _slice_index(positions: np.ndarray, position) -> int:
    """The sorted slice whose Image Position (Patient) is ``position``."""
    found = np.round(np.asarray([float(v) for v in position]), 4)
    return int(np.abs(positions - found).sum(axis=1).argmin())


def _samples(grey: np.ndarray, k: int) -> np.ndarray:
    """(rows, columns, 3) uint8 R, G, B of one slice's grey stored values."""
    g = grey.astype(np.int64)
    return np.stack([g, 255 - g, (g + 40 * k) % 256], axis=-1).astype(np.uint8)


def _rewrite(ds, grey: np.ndarray, k: int, photometric: str, planar: int) -> np.ndarray:
    """Replace ``ds``'s pixels by colour ones; return the RGB a reader must produce."""
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if photometric == "PALETTE COLOR":
        return _palette(ds, grey)
    rgb = _samples(grey, k)
    stored = rgb
    if photometric == "YBR_FULL":
        from pydicom.pixels import convert_color_space

        stored = _ybr_full(rgb)
        rgb = convert_color_space(stored, "YBR_FULL", "RGB")
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 3, photometric
    ds.PlanarConfiguration = planar
    ds.PixelData = (np.moveaxis(stored, -1, 0) if planar else stored).tobytes()
    return rgb


def _ybr_full(rgb: np.ndarray) -> np.ndarray:
    """RGB -> YBR_FULL with the equations of PS3.3 C.7.6.3.1.2, rounded, clipped to 8 bits."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.1687 * r - 0.3313 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.4187 * g - 0.0813 * b + 128
    return np.clip(np.round(np.stack([y, cb, cr], axis=-1)), 0, 255).astype(np.uint8)


def _palette(ds, grey: np.ndarray) -> np.ndarray:
    """Store ``grey`` as palette indices with 16-bit tables; return the looked-up RGB."""
    index = np.arange(256)
    tables = [index * 257, (255 - index) * 257, (index * 97 % 256) * 257]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "PALETTE COLOR"
    for name, table in zip(("Red", "Green", "Blue"), tables):
        ds.add_new(f"{name}PaletteColorLookupTableDescriptor", "US", [256, 0, 16])
        ds.add_new(f"{name}PaletteColorLookupTableData", "OW", table.astype("<u2").tobytes())
    ds.PixelData = grey.astype(np.uint8).tobytes()
    return np.stack([t[grey.astype(np.int64)] for t in tables], axis=-1).astype(np.uint16)
