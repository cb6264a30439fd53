"""Deflated Image Frame Compression (1.2.840.10008.1.2.8.1, PS3.5 8.2.16): frames deflated one
by one and encapsulated, the data set itself plain. Files are written here from pydicom's
shipped test files (pydicom 3.0 cannot write this syntax, so the file meta names JPEG lossless
SV1 and the UID is then swapped in place: same length, no other byte changes); the reference
is pydicom's ``pixel_array`` of the source file."""

from __future__ import annotations

import zlib

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate

import dicomml
from dicomml.decode import syntaxes as ts
from dicomml.errors import DecodeError

_STAND_IN = b"1.2.840.10008.1.2.4.70"  # 22 bytes, the UID below padded with one NUL


def _deflate(raw: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-15)
    return packer.compress(raw) + packer.flush()


def _write(ds: pydicom.Dataset, frames: list[bytes], path) -> None:
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = _STAND_IN.decode()
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    assert data.count(_STAND_IN) == 1
    path.write_bytes(data.replace(_STAND_IN, ts.DEFLATED_IMAGE_FRAME.encode() + b"\0"))


def _native_frames(ds: pydicom.Dataset) -> tuple[np.ndarray, list[bytes]]:
    arr = ds.pixel_array
    frames = arr if int(ds.get("NumberOfFrames", 1) or 1) > 1 else arr[None]
    dtype = frames.dtype.newbyteorder("<")
    return frames, [_deflate(f.astype(dtype).tobytes()) for f in frames]


@pytest.mark.parametrize("name", ["CT_small.dcm", "rtdose.dcm", "SC_rgb_small_odd.dcm",
                                  "MR_small.dcm"])
def test_frames_equal_pydicom(tmp_path, name):
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.PlanarConfiguration = 0 if "PlanarConfiguration" in ds else None
    if ds.PlanarConfiguration is None:
        del ds.PlanarConfiguration
    expected, frames = _native_frames(ds)
    _write(ds, frames, tmp_path / "f.dcm")
    got = dicomml.read_pixels(tmp_path / "f.dcm")
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    frame = dicomml.read_pixels(tmp_path / "f.dcm", frames=[len(frames) - 1])
    np.testing.assert_array_equal(frame[0], expected[-1])


def test_scan_and_load_series(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    expected, frames = _native_frames(ds)
    _write(ds, frames, tmp_path / "ct.dcm")
    cat = dicomml.scan(tmp_path, progress=False)
    assert cat.errors.empty, cat.errors.to_dict("records")
    assert cat.instances.TransferSyntaxUID.tolist() == [ts.DEFLATED_IMAGE_FRAME]
    volume = dicomml.load_series(cat, cat.series.series_key[0], dtype=None)
    np.testing.assert_array_equal(volume.array, expected)
    rescaled = dicomml.load_series(cat, cat.series.series_key[0])
    np.testing.assert_allclose(rescaled.array[0], expected[0] * float(ds.RescaleSlope)
                               + float(ds.RescaleIntercept))


def test_one_bit_frames_are_packed_per_frame(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    rng = np.random.default_rng(3)
    masks = rng.integers(0, 2, size=(3, 5, 7), dtype=np.uint8)  # 35 bits: not byte aligned
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    ds.Rows, ds.Columns, ds.NumberOfFrames = 5, 7, 3
    for keyword in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        if keyword in ds:
            delattr(ds, keyword)
    packed = [_deflate(np.packbits(m.ravel(), bitorder="little").tobytes()) for m in masks]
    _write(ds, packed, tmp_path / "seg.dcm")
    np.testing.assert_array_equal(dicomml.read_pixels(tmp_path / "seg.dcm"), masks)


@pytest.mark.parametrize("stream, message", [
    (b"\xff\x00garbage", "corrupt Deflate stream"),
    (_deflate(b"\0" * 100), "inflates to 100 bytes"),
])
def test_corrupt_frames_are_decode_errors(tmp_path, stream, message):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    _write(ds, [stream], tmp_path / "bad.dcm")
    with pytest.raises(DecodeError, match=message) as info:
        dicomml.read_pixels(tmp_path / "bad.dcm")
    assert str(tmp_path / "bad.dcm") in str(info.value)


def test_a_stream_inflating_beyond_the_frame_is_refused(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    bomb = _deflate(bytes(64 * 1024 * 1024))  # 64 MiB of zeros for a 32 KiB frame
    _write(ds, [bomb], tmp_path / "bomb.dcm")
    with pytest.raises(DecodeError, match="beyond the frame"):
        dicomml.read_pixels(tmp_path / "bomb.dcm")


def test_listed_by_the_decoder_table():
    entry = dicomml.decoders()[ts.DEFLATED_IMAGE_FRAME]
    assert entry["name"] == "Deflated Image Frame Compression"
    assert entry["available"] == ["zlib-deflate"]
    assert ts.DEFLATED_IMAGE_FRAME not in ts.DEFLATED_DATA_SET
