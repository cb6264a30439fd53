"""Pixel-exact agreement with pydicom's own ``pixel_array`` on every file pydicom ships.

Every decodable test file is decoded by every installed decoder for its transfer syntax.
Lossless syntaxes must match exactly. Lossy JPEG (baseline / extended) may differ by up to
``JPEG_LOSSY_TOLERANCE`` grey levels: libjpeg-turbo (imagecodecs) and the decoder pydicom
picks use different IDCT / chroma-upsampling rounding. Other lossy syntaxes (JPEG-LS
near-lossless, JPEG 2000) decode identically here and are held to exact equality.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_files

from dicomml.decode import decoders_for, read_pixels
from dicomml.decode import syntaxes as ts

JPEG_LOSSY_TOLERANCE = 3


def _reference(path):
    """pydicom's pixel_array with a frame axis (palette looked up), or None if it fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path)
            arr = ds.pixel_array
        except Exception as exc:  # noqa: BLE001 - pydicom cannot decode it either
            return None, f"{type(exc).__name__}: {str(exc)[:80]}"
        if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
            from pydicom.pixels.processing import apply_color_lut

            arr = apply_color_lut(arr, ds)
        if int(ds.get("NumberOfFrames", 1) or 1) == 1:
            arr = arr[None]
        return (arr, str(ds.file_meta.TransferSyntaxUID)), None


def _cases():
    cases = []
    for path in sorted(get_testdata_files()):
        if not os.path.isfile(path):
            continue
        name = os.path.basename(path)
        try:
            ds = pydicom.dcmread(path, specific_tags=["PixelData"])
            syntax = str(ds.file_meta.TransferSyntaxUID)
        except Exception:  # noqa: BLE001 - not DICOM (READMEs, JSON, ...)
            continue
        if "PixelData" not in ds:  # reports, DICOMDIRs, RT plans: nothing to decode
            continue
        try:
            names = [d.name for d in decoders_for(syntax)]
        except Exception:  # noqa: BLE001
            names = ["(none)"]
        cases += [pytest.param(path, dec, id=f"{name}-{dec}") for dec in names]
    return cases


_REFERENCES: dict = {}


@pytest.mark.parametrize(("path", "decoder"), _cases())
def test_matches_pydicom(path, decoder):
    if path not in _REFERENCES:
        _REFERENCES[path] = _reference(path)
    reference, reason = _REFERENCES[path]
    if reference is None:
        pytest.skip(f"pydicom cannot decode it either ({reason})")
    expected, syntax = reference
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = read_pixels(path, decoder=decoder)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype.newbyteorder("=")
    diff = np.abs(got.astype(np.int64) - expected.astype(np.int64)).max()
    tolerance = JPEG_LOSSY_TOLERANCE if syntax in (ts.JPEG_BASELINE, ts.JPEG_EXTENDED) else 0
    assert diff <= tolerance, f"max difference {diff} > {tolerance}"


def test_covers_every_syntax_pydicom_ships():
    """The parametrization above really reaches the compressed syntaxes (not all skipped)."""
    syntaxes = set()
    for param in _cases():
        path = param.values[0]
        syntaxes.add(str(pydicom.dcmread(path, stop_before_pixels=True)
                         .file_meta.TransferSyntaxUID))
    expected = {ts.IMPLICIT_VR_LE, ts.EXPLICIT_VR_LE, ts.EXPLICIT_VR_BE,
                ts.DEFLATED_EXPLICIT_VR_LE, ts.RLE_LOSSLESS, ts.JPEG_BASELINE, ts.JPEG_EXTENDED,
                ts.JPEG_LOSSLESS_SV1, ts.JPEG_LS_LOSSLESS, ts.JPEG_LS_NEAR_LOSSLESS,
                ts.JPEG2000_LOSSLESS, ts.JPEG2000}
    assert expected <= syntaxes


def test_fast_header_path_equals_pydicom_path():
    """The bounded header walker finds the same FrameInfo and frame bytes as pydicom's parse,
    on every test file; files it does not handle fall back to pydicom (dataset kept)."""
    from dicomml.decode import load_encoded

    compared = fast = 0
    for path in sorted(get_testdata_files()):
        if not os.path.isfile(path):
            continue
        outcomes = []
        for use_fast in (False, True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    outcomes.append(load_encoded(path, fast=use_fast))
                except Exception as exc:  # noqa: BLE001
                    outcomes.append(type(exc).__name__)
        slow, quick = outcomes
        if isinstance(slow, str) or isinstance(quick, str):
            assert slow == quick, os.path.basename(path)
            continue
        compared += 1
        fast += quick.dataset is None
        assert quick.info == slow.info, os.path.basename(path)
        assert [bytes(f) for f in quick.frames] == [bytes(f) for f in slow.frames]
    assert compared > 80 and fast > 0.9 * compared
