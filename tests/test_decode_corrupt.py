"""Corrupt and hostile input: typed errors naming file and frame, never a crash or a hang.

Real compressed frames (pydicom's test files and the synthetic writer's) are truncated and
bit-flipped; every result must be either an array of the declared shape or a
:class:`~dicomml.errors.DecodeError`. The sweep runs in a child process so that a crash
(abort, segfault) fails the test instead of killing pytest, and under a wall-clock limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, generate_frames

from dicomml import synth
from dicomml.decode import decode_frame, get_decoder, load_encoded, read_pixels
from dicomml.decode import syntaxes as ts
from dicomml.errors import DecodeError, DicommlError, InvalidDicomError, TruncatedFileError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPRESSED = ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm",
              "JPEG2000.dcm", "SC_rgb_jpeg_gdcm.dcm", "JPGExtended.dcm", "SC_rgb_jpeg_dcmtk.dcm",
              "JPEGLSNearLossless_16.dcm", "SC_rgb_rle_2frame.dcm", "examples_jpeg2k.dcm"]


def _replace_frames(src, dst, frames):
    ds = pydicom.dcmread(src)
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].is_undefined_length = True
    ds.save_as(dst)
    return dst


def _corrupt_variants(frame: bytes, seed: int) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    out = {f"trunc{p}": frame[:max(1, len(frame) * p // 100)] for p in (5, 50, 90, 99)}
    for k in range(4):
        data = bytearray(frame)
        for i in rng.integers(min(16, len(data) - 1), len(data), 1 + 4 * k):
            data[i] ^= 0xFF
        out[f"flip{k}"] = bytes(data)
    return out


@pytest.fixture(scope="module")
def corrupt_files(tmp_path_factory):
    """Corrupt copies of real compressed files: [(path, declared frame shape)]."""
    root = tmp_path_factory.mktemp("corrupt")
    sources = [get_testdata_file(name) for name in COMPRESSED]
    for syntax in (ts.JPEG_LS_LOSSLESS, ts.HTJ2K_LOSSLESS, ts.JPEG_LOSSLESS_SV1,
                   ts.JPEG2000_LOSSLESS, ts.RLE_LOSSLESS):
        sources.append(str(synth.write_series(root / syntax, shape=(1, 128, 128),
                                              transfer_syntax=syntax).paths[0]))
    cases = []
    for n, src in enumerate(sources):
        enc = load_encoded(src)
        first = bytes(enc.frames[0])
        for name, data in _corrupt_variants(first, n).items():
            frames = [data] + [bytes(f) for f in enc.frames[1:]]
            dst = _replace_frames(src, root / f"{n}_{name}.dcm", frames)
            cases.append((str(dst), [enc.info.number_of_frames, *enc.info.frame_shape]))
    return cases


_SWEEP = textwrap.dedent("""
    import json, sys, warnings
    warnings.simplefilter("ignore")
    from dicomml.decode import read_pixels
    from dicomml.errors import DecodeError
    results = []
    for path, shape in json.loads(sys.stdin.read()):
        try:
            arr = read_pixels(path, threads=1)
            results.append("ok" if list(arr.shape[:len(shape)]) == shape else "WRONG SHAPE")
        except DecodeError as exc:
            ok = exc.path == path and exc.frame == 0
            results.append("DecodeError" if ok else "DecodeError without file/frame")
        except BaseException as exc:
            results.append("UNTYPED " + type(exc).__name__)
    print(json.dumps(results))
""")


def test_corrupt_frames_give_typed_errors_without_crash_or_hang(corrupt_files):
    proc = subprocess.run([sys.executable, "-c", _SWEEP], input=json.dumps(corrupt_files),
                          capture_output=True, text=True, timeout=240, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    bad = [(p, r) for (p, _), r in zip(corrupt_files, results) if r not in ("ok", "DecodeError")]
    assert not bad
    truncated = [r for (p, _), r in zip(corrupt_files, results) if "_trunc" in p]
    assert truncated and all(r == "DecodeError" for r in truncated)  # never silently partial


def test_rust_panic_becomes_decode_error(tmp_path):
    rle = pytest.importorskip("rle.rle")
    src = get_testdata_file("MR_small_RLE.dcm")
    frame = bytearray(bytes(load_encoded(src).frames[0]))
    frame[64] = 0x81  # a replicate run that overruns the segment
    with pytest.raises(BaseException) as raw:
        rle.decode_frame(bytes(frame), 64 * 64, 16, "<")
    assert not isinstance(raw.value, Exception)  # a pyo3 PanicException
    path = _replace_frames(src, tmp_path / "panic.dcm", [bytes(frame)])
    with pytest.raises(DecodeError) as err:
        read_pixels(path, decoder="pylibjpeg-rle")
    assert err.value.frame == 0 and err.value.path == str(path)
    assert "PanicException" in str(err.value)


def test_codestream_size_mismatch_rejected_before_decoding(tmp_path):
    src = get_testdata_file("MR_small_jp2klossless.dcm")
    info = load_encoded(src).info.replace(rows=32)
    with pytest.raises(DecodeError, match="codestream is 64x64x1 but the header declares 32x64"):
        decode_frame(bytes(load_encoded(src).frames[0]), info, index=0)


def test_native_pixel_data_shorter_than_declared():
    with pytest.raises(TruncatedFileError) as err:
        read_pixels(get_testdata_file("MR_truncated.dcm"))
    assert err.value.tag == "PixelData"


def test_encapsulated_frame_count_mismatch(tmp_path):
    src = get_testdata_file("SC_rgb_rle_2frame.dcm")
    frames = list(generate_frames(pydicom.dcmread(src).PixelData, number_of_frames=2))
    path = _replace_frames(src, tmp_path / "one.dcm", frames[:1])
    with pytest.raises(DecodeError, match="holds 1 frame"):
        read_pixels(path)


def test_deflate_bomb_is_capped(tmp_path):
    truth = synth.write_series(tmp_path / "dfl", shape=(1, 256, 256),
                               transfer_syntax=ts.DEFLATED_EXPLICIT_VR_LE)
    path = truth.paths[0]
    np.testing.assert_array_equal(read_pixels(path)[0], truth.stored[0])
    with pytest.raises(InvalidDicomError, match="inflates beyond"):
        read_pixels(path, max_inflated_bytes=4096)
    assert zlib  # the cap is enforced by zlib's max_length, not by reading everything


@pytest.mark.parametrize("name", ["JPEG2000-embedded-sequence-delimiter.dcm",
                                  "nested_priv_SQ.dcm", "badVR.dcm"])
def test_files_pydicom_cannot_decode_give_typed_errors(name):
    with pytest.raises(DicommlError):
        read_pixels(get_testdata_file(name))


def test_isolated_decode_matches_and_relays_errors(tmp_path):
    src = get_testdata_file("SC_rgb_rle_2frame.dcm")
    np.testing.assert_array_equal(read_pixels(src, isolate=True), read_pixels(src))
    frame = bytes(load_encoded(src).frames[0])
    path = _replace_frames(src, tmp_path / "bad.dcm", [frame[:40], frame])
    with pytest.raises(DecodeError) as err:
        read_pixels(path, isolate=True)
    assert err.value.path == str(path) and err.value.frame == 0


def test_isolated_decode_kills_a_spinning_decoder(tmp_path):
    """CharLS spins for ~20 s on this half JPEG-LS frame (strict=False lets it past the
    truncation check); isolate=True bounds it by the timeout."""
    get_decoder("imagecodecs-jpegls").lib  # noqa: B018 - skip below if missing
    truth = synth.write_series(tmp_path / "jls", shape=(1, 512, 512),
                               transfer_syntax=ts.JPEG_LS_LOSSLESS)
    frame = bytes(load_encoded(truth.paths[0]).frames[0])
    path = _replace_frames(truth.paths[0], tmp_path / "spin.dcm",
                           [frame[:len(frame) // 2]])
    with pytest.raises(DecodeError, match="truncated"):
        read_pixels(path, isolate=True, timeout=20)  # strict: rejected before decoding
    with pytest.raises(DecodeError, match="did not finish within 4 s"):
        read_pixels(path, isolate=True, timeout=4, strict=False, decoder="imagecodecs-jpegls")


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm",
                                  "MR_small_implicit.dcm", "JPEG2000.dcm"])
def test_damaged_headers_give_typed_errors(tmp_path, name):
    """Truncations and byte flips anywhere in the header: an array or a DicommlError."""
    data = open(get_testdata_file(name), "rb").read()
    rng = np.random.default_rng(7)
    outcomes = set()
    for k in range(40):
        damaged = bytearray(data)
        if k % 2:
            damaged = damaged[:int(rng.integers(0, len(data)))]
        else:
            for i in rng.integers(128, min(len(data), 2000), 4):
                damaged[i] = int(rng.integers(0, 256))
        path = tmp_path / f"{k}.dcm"
        path.write_bytes(bytes(damaged))
        try:
            arr = read_pixels(path)
            assert isinstance(arr, np.ndarray)
            outcomes.add("array")
        except DicommlError as exc:
            assert exc.path == str(path)
            outcomes.add("error")
    assert "error" in outcomes


@pytest.mark.parametrize("syntax", [ts.EXPLICIT_VR_LE, ts.RLE_LOSSLESS])
def test_pixel_data_with_a_non_ascii_vr_gives_a_typed_error(tmp_path, syntax):
    """Found by the fuzzer (seed 9): a flipped VR byte of Pixel Data raised UnicodeDecodeError."""
    truth = synth.write_series(tmp_path, shape=(1, 8, 8), transfer_syntax=syntax, seed=1)
    path = truth.paths[0]
    data = bytearray(open(path, "rb").read())
    start = data.rindex(b"\xe0\x7f\x10\x00")
    assert bytes(data[start + 4:start + 6]) in (b"OW", b"OB")
    data[start + 4] = 0xCF
    with open(path, "wb") as handle:
        handle.write(bytes(data))
    try:
        read_pixels(path)
    except DicommlError as exc:
        assert str(path) in str(exc)
