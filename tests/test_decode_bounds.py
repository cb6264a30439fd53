"""Headers cut short and deflate bombs: typed errors naming file (and tag), memory bounded by
what the header justifies (issue 8 hardening; bugs B4 and B5)."""

from __future__ import annotations

import os
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicomml import synth
from dicomml.decode import read_pixels
from dicomml.decode import syntaxes as ts
from dicomml.decode.fastheader import deflated_start
from dicomml.errors import InvalidDicomError, TruncatedFileError

MiB = 2**20


def _element_offset(data: bytes, group: int, element: int, vr: bytes) -> int:
    at = data.find(struct.pack("<HH", group, element) + vr)
    assert at > 0
    return at


def _one_file(tmp_path, syntax=ts.EXPLICIT_VR_LE, shape=(1, 16, 16)):
    truth = synth.write_series(tmp_path / "src", shape=shape, transfer_syntax=syntax, seed=3)
    return truth.paths[0], truth.stored[0]


def test_header_cut_inside_an_element_is_truncated(tmp_path):
    src, _ = _one_file(tmp_path)
    data = src.read_bytes()
    cut = _element_offset(data, 0x0028, 0x0030, b"DS") + 10  # inside Pixel Spacing's value
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:cut])
    with pytest.raises(TruncatedFileError) as err:
        read_pixels(path)
    assert err.value.path == str(path) and err.value.tag == "PixelSpacing"
    assert str(path) in str(err.value)


def test_element_length_beyond_the_file_is_truncated(tmp_path):
    src, _ = _one_file(tmp_path)
    ds = pydicom.dcmread(src)
    ds.private_block(0x0009, "DICOMML TEST", create=True).add_new(0x01, "OB", b"\0" * 8)
    path = tmp_path / "huge_length.dcm"
    ds.save_as(path, enforce_file_format=True)
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, _element_offset(bytes(data), 0x0009, 0x1001, b"OB") + 8,
                     0xFFFFFFF0)
    path.write_bytes(bytes(data))
    with pytest.raises(TruncatedFileError) as err:
        read_pixels(path)
    assert err.value.path == str(path) and err.value.tag == "(0009,1001)"


def _deflated_parts(path) -> tuple[bytes, bytes]:
    """(meta part, inflated data set) of a deflated file."""
    data = path.read_bytes()
    start = deflated_start(data)
    return data[:start], zlib.decompress(data[start:], -zlib.MAX_WBITS)


def _deflate(meta: bytes, dataset: bytes, path):
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    path.write_bytes(meta + packer.compress(dataset) + packer.flush())
    return path


def _peak_python_bytes(fn) -> tuple[int, object]:
    tracemalloc.start()
    try:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - returned for the caller's checks
            result = exc
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def test_bomb_before_pixel_data_fails_after_the_header_cap(tmp_path):
    """64 MiB of zeros in a private element before Pixel Data (64 KiB deflated): refused
    after inflating the 8 MiB header cap, not 64 MiB."""
    src, _ = _one_file(tmp_path, ts.DEFLATED_EXPLICIT_VR_LE)
    meta, dataset = _deflated_parts(src)
    bomb = struct.pack("<HH2sHI", 0x0009, 0x1001, b"OB", 0, 64 * MiB) + bytes(64 * MiB)
    at = _element_offset(dataset, 0x0010, 0x0010, b"PN")  # Patient's Name: group 0010 > 0009
    path = _deflate(meta, dataset[:at] + bomb + dataset[at:], tmp_path / "bomb.dcm")
    assert path.stat().st_size < MiB
    peak, result = _peak_python_bytes(lambda: read_pixels(path))
    assert isinstance(result, InvalidDicomError), result
    assert result.path == str(path) and "inflates beyond" in str(result)
    assert peak < 40 * MiB, f"peak {peak / MiB:.0f} MiB"


def test_pixel_data_longer_than_justified_is_inflated_only_as_far_as_needed(tmp_path):
    """Pixel Data declares 64 MiB (zeros after the real frame): only the frame the header
    describes (16x16 int16) is inflated and returned."""
    src, stored = _one_file(tmp_path, ts.DEFLATED_EXPLICIT_VR_LE)
    meta, dataset = _deflated_parts(src)
    at = dataset.rfind(struct.pack("<HH", 0x7FE0, 0x0010))
    value = at + 12
    assert len(dataset) - value == stored.nbytes
    grown = bytearray(dataset + bytes(64 * MiB - stored.nbytes))
    struct.pack_into("<I", grown, at + 8, 64 * MiB)
    path = _deflate(meta, bytes(grown), tmp_path / "long_pixels.dcm")
    peak, result = _peak_python_bytes(lambda: read_pixels(path))
    assert isinstance(result, np.ndarray), result
    np.testing.assert_array_equal(result[0], stored)
    assert peak < 16 * MiB, f"peak {peak / MiB:.0f} MiB"


def test_deflated_stream_cut_short_is_truncated(tmp_path):
    src, _ = _one_file(tmp_path, ts.DEFLATED_EXPLICIT_VR_LE, shape=(1, 64, 64))
    data = src.read_bytes()
    path = tmp_path / "cut_deflated.dcm"
    path.write_bytes(data[:deflated_start(data) + (len(data) - deflated_start(data)) // 2])
    with pytest.raises(TruncatedFileError) as err:
        read_pixels(path)
    assert err.value.path == str(path)


def test_deflated_corrupt_stream_is_invalid(tmp_path):
    src, _ = _one_file(tmp_path, ts.DEFLATED_EXPLICIT_VR_LE)
    data = bytearray(src.read_bytes())
    start = deflated_start(bytes(data))
    data[start:start + 16] = b"\xff" * 16
    path = tmp_path / "corrupt_deflated.dcm"
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidDicomError) as err:
        read_pixels(path)
    assert err.value.path == str(path)


@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 40, 24)])
def test_deflated_files_still_decode(tmp_path, shape):
    truth = synth.write_series(tmp_path / "ok", shape=shape, shuffle=False,
                               transfer_syntax=ts.DEFLATED_EXPLICIT_VR_LE, seed=5)
    plain = synth.write_series(tmp_path / "plain", shape=shape, shuffle=False, seed=5)
    for path, reference in zip(truth.paths, plain.paths):
        expected = pydicom.dcmread(reference).pixel_array  # the same slice, not deflated
        np.testing.assert_array_equal(read_pixels(path)[0], expected)
        np.testing.assert_array_equal(read_pixels(path, decoder="numpy")[0], expected)


RLE_CHILD = """
import json, sys
import dicomml
from dicomml.errors import DecodeError
try:
    dicomml.read_pixels(sys.argv[1])
    print(json.dumps({"outcome": "decoded"}))
except DecodeError as exc:
    print(json.dumps({"outcome": "DecodeError", "path": exc.path, "frame": exc.frame,
                      "message": str(exc)}))
"""


@pytest.mark.parametrize("segment, offset", [(2, 0xFFFFFF08), (2, 2099100), (1, 60),
                                             (0, 16)])
def test_rle_segment_offsets_are_checked_before_any_decoder(tmp_path, segment, offset):
    """Offsets beyond the frame made imagecodecs read out of bounds (a segfault): checked
    first, in a child process so that a regression cannot take pytest down."""
    import json
    import subprocess
    import sys

    from pydicom.data import get_testdata_file
    from pydicom.encaps import encapsulate, generate_frames

    src = get_testdata_file("SC_rgb_rle_2frame.dcm")
    ds = pydicom.dcmread(src)
    frames = [bytearray(f) for f in generate_frames(ds.PixelData, number_of_frames=2)]
    struct.pack_into("<I", frames[0], 4 * segment, offset)  # 0: the segment count
    ds.PixelData = encapsulate([bytes(f) for f in frames])
    ds["PixelData"].is_undefined_length = True
    path = tmp_path / "bad_rle.dcm"
    ds.save_as(path)
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", RLE_CHILD, str(path)], capture_output=True,
                         text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "DecodeError", result
    assert result["path"] == str(path) and result["frame"] == 0
    assert "RLE" in result["message"]


def test_unknown_vr_in_the_pixel_module_is_invalid_dicom(tmp_path):
    """pydicom raises NotImplementedError when it converts an element of unknown VR ("UW"):
    the pydicom path of load_encoded turns it into InvalidDicomError naming file and tag."""
    from pydicom.data import get_testdata_file

    from dicomml.decode import load_encoded

    data = bytearray(open(get_testdata_file("ExplVR_BigEnd.dcm"), "rb").read())
    at = data.find(struct.pack(">HH", 0x0028, 0x0002) + b"US", 132)
    data[at + 4:at + 6] = b"UW"
    path = tmp_path / "uw.dcm"
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidDicomError) as err:
        load_encoded(path, fast=False)
    assert err.value.path == str(path) and err.value.tag == "SamplesPerPixel"
