"""Decoding the synthetic writer's files (ground truth known without any reader) in every
transfer syntax it writes, encapsulation variants (no offset table, fragments spanning
frames, extended offset table), HTJ2K RPCL / lossy, threads, frames, rescale, read_many."""

from __future__ import annotations

import warnings

import imagecodecs
import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames

from dicomml import synth
from dicomml.decode import decoders_for, load_encoded, read_frames, read_many, read_pixels
from dicomml.decode import syntaxes as ts

SHAPE = (3, 24, 32)


_PIXEL_FORMAT = {ts.JPEG_BASELINE: {"bits_allocated": 8, "modality": "MR"},
                 ts.JPEG_EXTENDED: {"bits_stored": 12, "modality": "MR"}}


def _write(tmp_path, syntax, **options):
    options = {**_PIXEL_FORMAT.get(syntax, {}), **options}
    return synth.write_series(tmp_path / syntax, shape=SHAPE, transfer_syntax=syntax,
                              seed=3, **options)


def _pydicom_frames(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
    return arr[None] if int(ds.get("NumberOfFrames", 1) or 1) == 1 else arr


@pytest.mark.parametrize("syntax", synth.supported_transfer_syntaxes())
def test_single_frame_series_matches_truth(tmp_path, syntax):
    truth = _write(tmp_path, syntax)
    for path, (_, index) in zip(truth.paths, truth.meta["index_of_path"]):
        for decoder in decoders_for(syntax):
            got = read_pixels(path, decoder=decoder.name)
            if synth.is_lossy(syntax):  # decoders may differ: hold them to pydicom's result
                ref = _pydicom_frames(path)
                assert np.abs(got.astype(int) - ref.astype(int)).max() <= 3, decoder.name
            else:
                np.testing.assert_array_equal(got[0], truth.stored[index], err_msg=decoder.name)
        scaled = read_pixels(path, rescale=True)
        assert scaled.dtype == np.float32
        if not synth.is_lossy(syntax):
            np.testing.assert_allclose(scaled[0], truth.array[index], rtol=0, atol=1e-3)


@pytest.mark.parametrize("syntax", [ts.EXPLICIT_VR_LE, ts.RLE_LOSSLESS, ts.JPEG_LS_LOSSLESS,
                                    ts.JPEG2000_LOSSLESS, ts.JPEG_LOSSLESS_SV1,
                                    ts.HTJ2K_LOSSLESS])
def test_multiframe_matches_truth(tmp_path, syntax):
    truth = _write(tmp_path, syntax, multiframe=True)
    (path,) = truth.paths
    got = read_pixels(path)
    expected = np.stack([truth.stored[s] for _, s in truth.meta["frame_index"]])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(read_pixels(path, frames=[2, 0]), expected[[2, 0]])
    np.testing.assert_array_equal(read_pixels(path, frames=-1), expected[-1:])
    np.testing.assert_array_equal(read_pixels(path, threads=3), expected)


def _reencapsulate(src_path, dst_path, frames, **how):
    ds = pydicom.dcmread(src_path)
    if how.pop("extended", False):
        ds.PixelData, ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = \
            encapsulate_extended(frames)
    else:
        ds.PixelData = encapsulate(frames, **how)
    ds["PixelData"].is_undefined_length = True
    ds.save_as(dst_path)
    return dst_path


@pytest.mark.parametrize("syntax", [ts.JPEG_LS_LOSSLESS, ts.JPEG2000_LOSSLESS,
                                    ts.JPEG_LOSSLESS_SV1])
@pytest.mark.parametrize("how", [
    {"has_bot": False}, {"has_bot": False, "fragments_per_frame": 3},
    {"has_bot": True, "fragments_per_frame": 2}, {"extended": True}],
    ids=["no-bot", "no-bot-spanning", "bot-spanning", "extended-offsets"])
def test_encapsulation_variants(tmp_path, syntax, how):
    truth = _write(tmp_path, syntax, multiframe=True)
    (path,) = truth.paths
    ds = pydicom.dcmread(path)
    frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))
    variant = _reencapsulate(path, tmp_path / "variant.dcm", frames, **dict(how))
    expected = np.stack([truth.stored[s] for _, s in truth.meta["frame_index"]])
    np.testing.assert_array_equal(read_pixels(variant), expected)


def _htj2k_file(tmp_path, name, syntax, **encode):
    truth = _write(tmp_path, ts.HTJ2K_LOSSLESS)
    ds = pydicom.dcmread(truth.paths[0])
    index = truth.meta["index_of_path"][0][1]
    stored = truth.stored[index]
    frame = imagecodecs.htj2k_encode(stored, **encode)
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = syntax
    ds.save_as(tmp_path / name)
    return tmp_path / name, stored


def test_htj2k_rpcl_lossless(tmp_path):
    path, stored = _htj2k_file(tmp_path, "rpcl.dcm", ts.HTJ2K_LOSSLESS_RPCL, reversible=True,
                               tlm=True)
    frame = bytes(load_encoded(path).frames[0])
    cod = frame.find(b"\xff\x52")
    assert frame[cod + 5] == 2  # the codestream really is RPCL-ordered
    for decoder in decoders_for(ts.HTJ2K_LOSSLESS_RPCL):
        np.testing.assert_array_equal(read_pixels(path, decoder=decoder.name)[0], stored)
    np.testing.assert_array_equal(_pydicom_frames(path)[0], stored)


def test_htj2k_lossy_agrees_with_pydicom(tmp_path):
    path, _ = _htj2k_file(tmp_path, "lossy.dcm", ts.HTJ2K, reversible=False)
    ref = _pydicom_frames(path)
    for decoder in decoders_for(ts.HTJ2K):
        got = read_pixels(path, decoder=decoder.name)
        assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1, decoder.name


def test_read_many_and_out(tmp_path):
    truth = _write(tmp_path, ts.JPEG_LS_LOSSLESS)
    stacked = read_many(truth.paths, threads=2)
    singles = np.concatenate([read_pixels(p) for p in truth.paths])
    np.testing.assert_array_equal(stacked, singles)
    np.testing.assert_array_equal(read_many(truth.paths, threads=1), singles)
    scaled = read_many(truth.paths, rescale=True)
    assert scaled.dtype == np.float32
    volume = np.zeros((len(truth.paths), *SHAPE[1:]), singles.dtype)
    for k, path in enumerate(truth.paths):
        read_frames(load_encoded(path), out=volume[k:k + 1])
    np.testing.assert_array_equal(volume, singles)


@pytest.mark.gpu
@pytest.mark.parametrize("syntax", [ts.JPEG2000_LOSSLESS, ts.HTJ2K_LOSSLESS])
def test_gpu_decoder_matches_cpu(tmp_path, syntax):
    """nvImageCodec (opt-in) gives the CPU decoders' voxels; skipped without CUDA + package."""
    from dicomml.decode import get_decoder

    if not get_decoder("nvimgcodec").is_available():
        pytest.skip("nvImageCodec or a CUDA device is not available")
    truth = _write(tmp_path, syntax, multiframe=True)
    (path,) = truth.paths
    np.testing.assert_array_equal(read_pixels(path, decoder="nvimgcodec"), read_pixels(path))
