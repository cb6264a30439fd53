"""Lenient where established readers are (issue 16 item 7): files without a Study / SOP
Instance UID are indexed under a placeholder with a recorded warning; deflated data sets that
pydicom reads are read (other encoders' settings, flushes, a trailing pad byte); a JPEG
lossless frame without its end-of-image marker decodes when its data hold the whole frame,
and a frame that lost data is still refused."""

from __future__ import annotations

import shutil
import zlib

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, generate_fragmented_frames

import dicomml
from dicomml import synth
from dicomml.decode.fastheader import deflated_start
from dicomml.errors import DecodeError, InvalidDicomError, MissingTagError


# --- placeholder UIDs -------------------------------------------------------------------------
def test_missing_study_and_sop_uids_get_placeholders(tmp_path):
    truth = synth.write_series(tmp_path / "s", modality="CT", shape=(4, 8, 8))
    for number, path in enumerate(truth.paths):
        ds = pydicom.dcmread(path)
        del ds.StudyInstanceUID
        if number == 0:
            del ds.SOPInstanceUID
            del ds.file_meta.MediaStorageSOPInstanceUID
        ds.save_as(path, enforce_file_format=False)
    cat = dicomml.scan(tmp_path, progress=False)
    assert len(cat.instances) == 4 and cat.errors.empty
    studies = cat.instances["StudyInstanceUID"].unique()
    assert len(studies) == 1 and studies[0].startswith("2.25.") and len(studies[0]) <= 64
    assert cat.instances["warnings"].str.contains("StudyInstanceUID missing").all()
    assert cat.instances["warnings"].str.contains("SOPInstanceUID missing").sum() == 1
    assert cat.instances["SOPInstanceUID"].notna().all()
    vol = dicomml.load_series(tmp_path / "s")
    np.testing.assert_allclose(vol.array, truth.array)
    np.testing.assert_allclose(vol.affine, truth.affine, atol=1e-6)
    again = dicomml.scan(tmp_path, progress=False)  # deterministic placeholders
    assert list(again.instances["StudyInstanceUID"]) == list(cat.instances["StudyInstanceUID"])


def test_missing_series_uid_is_still_an_error(tmp_path):
    truth = synth.write_series(tmp_path, modality="CT", shape=(2, 8, 8))
    ds = pydicom.dcmread(truth.paths[0])
    del ds.SeriesInstanceUID
    ds.save_as(truth.paths[0])
    cat = dicomml.scan(tmp_path, progress=False)
    assert len(cat.instances) == 1
    error = cat.errors.iloc[0]
    assert error.error_type == MissingTagError.__name__ and error.tag == "SeriesInstanceUID"


def test_complete_files_carry_no_warning(tmp_path):
    synth.write_series(tmp_path, modality="MR", shape=(2, 8, 8))
    cat = dicomml.scan(tmp_path, progress=False)
    assert cat.instances["warnings"].isna().all()


# --- deflated data sets -----------------------------------------------------------------------
def _redeflate(raw: bytes, stream_of) -> bytes:
    start = deflated_start(raw)
    return raw[:start] + stream_of(zlib.decompress(raw[start:], -zlib.MAX_WBITS))


def _deflate(level=6, strategy=zlib.Z_DEFAULT_STRATEGY, wbits=-15, flush_every=0, pad=b""):
    def stream_of(data: bytes) -> bytes:
        encoder = zlib.compressobj(level, zlib.DEFLATED, wbits, 9, strategy)
        if not flush_every:
            return encoder.compress(data) + encoder.flush() + pad
        parts = [encoder.compress(data[i:i + flush_every]) +
                 encoder.flush(zlib.Z_FULL_FLUSH if i % 2 else zlib.Z_SYNC_FLUSH)
                 for i in range(0, len(data), flush_every)]
        return b"".join(parts) + encoder.flush() + pad
    return stream_of


DEFLATE_VARIANTS = {
    "stored-blocks": _deflate(level=0), "huffman-only": _deflate(1, zlib.Z_HUFFMAN_ONLY),
    "fixed-codes": _deflate(9, zlib.Z_FIXED), "rle": _deflate(9, zlib.Z_RLE),
    "small-window": _deflate(wbits=-9), "flushes": _deflate(flush_every=777),
    "pad-byte": _deflate(pad=b"\x00"), "two-pad-bytes": _deflate(pad=b"\x00\xff"),
}


@pytest.mark.parametrize("variant", DEFLATE_VARIANTS)
def test_deflated_streams_pydicom_reads_are_read(tmp_path, variant):
    source = get_testdata_file("image_dfl.dcm")
    path = tmp_path / f"{variant}.dcm"
    path.write_bytes(_redeflate(open(source, "rb").read(), DEFLATE_VARIANTS[variant]))
    expected = pydicom.dcmread(path).pixel_array  # pydicom reads it: so must we
    np.testing.assert_array_equal(dicomml.read_pixels(path)[0], expected)
    vol = dicomml.load_series(path, dtype=None)
    np.testing.assert_array_equal(vol.array[0], expected)


def test_large_deflated_multichunk_stream_with_pad_byte(tmp_path):
    truth = synth.write_series(tmp_path / "s", modality="MR", shape=(1, 700, 701),
                               transfer_syntax="1.2.840.10008.1.2.1.99")
    path = truth.paths[0]
    path.write_bytes(_redeflate(path.read_bytes(), _deflate(1, zlib.Z_HUFFMAN_ONLY,
                                                            flush_every=5000, pad=b"\x00")))
    np.testing.assert_array_equal(pydicom.dcmread(path).pixel_array, truth.stored[0])
    np.testing.assert_array_equal(dicomml.load_series(tmp_path / "s", dtype=None).array,
                                  truth.stored)


def test_zlib_wrapped_stream_is_refused_like_pydicom(tmp_path):
    path = tmp_path / "zlib.dcm"
    path.write_bytes(_redeflate(open(get_testdata_file("image_dfl.dcm"), "rb").read(),
                                _deflate(wbits=15)))
    with pytest.raises(Exception):  # noqa: B017 - pydicom's zlib.error
        _ = pydicom.dcmread(path).pixel_array
    with pytest.raises(InvalidDicomError) as caught:
        dicomml.read_pixels(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("name", ["image_dfl.dcm", "CT_small.dcm"])
@pytest.mark.parametrize("delta", [-4, 2, 200])
def test_wrong_meta_group_length_is_ignored_like_pydicom(tmp_path, name, delta):
    """(0002,0000) that does not end the meta group: pydicom walks group 0002 instead."""
    import struct

    raw = open(get_testdata_file(name), "rb").read()
    assert raw[132:140] == b"\x02\x00\x00\x00UL\x04\x00"
    length = struct.unpack("<I", raw[140:144])[0] + delta
    path = tmp_path / name
    path.write_bytes(raw[:140] + struct.pack("<I", length) + raw[144:])
    expected = pydicom.dcmread(path).pixel_array
    cat = dicomml.scan(tmp_path, progress=False)
    assert len(cat.instances) == 1 and cat.errors.empty
    np.testing.assert_array_equal(dicomml.load_series(path, dtype=None).array[0], expected)


# --- JPEG lossless without end-of-image marker ------------------------------------------------
def _cut_frames(path, cut: int) -> None:
    """Remove the last ``cut`` bytes of every frame's codestream (its ``FF D9`` is 2)."""
    ds = pydicom.dcmread(path)
    frames = [b"".join(f).rstrip(b"\x00") for f in generate_fragmented_frames(
        ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames") or 1))]
    assert all(f.endswith(b"\xff\xd9") for f in frames)
    ds.PixelData = encapsulate([f[:-cut] for f in frames])
    ds.save_as(path)


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.57"])
def test_jpeg_lossless_without_end_marker_decodes(tmp_path, syntax):
    truth = synth.write_series(tmp_path, modality="CT", shape=(3, 32, 40), transfer_syntax=syntax)
    for path in truth.paths:
        _cut_frames(path, 2)
    vol = dicomml.load_series(tmp_path, dtype=None)
    np.testing.assert_array_equal(vol.array, truth.stored)
    decoded = dicomml.read_pixels(truth.paths[0])
    assert decoded.shape == (1, 32, 40)


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.57"])
def test_jpeg_lossless_missing_data_is_still_refused(tmp_path, syntax):
    truth = synth.write_series(tmp_path, modality="CT", shape=(1, 32, 40), transfer_syntax=syntax)
    _cut_frames(truth.paths[0], 30)
    with pytest.raises(DecodeError) as caught:
        dicomml.read_pixels(truth.paths[0])
    assert str(truth.paths[0]) in str(caught.value) and caught.value.tag == "PixelData"
    with pytest.raises(DecodeError):
        dicomml.load_series(tmp_path)
    assert dicomml.read_pixels(truth.paths[0], strict=False).shape == (1, 32, 40)


def test_real_jpeg_lossless_mosaic_without_end_marker_matches_dcm2niix(tmp_path, shared_data):
    nib = pytest.importorskip("nibabel")
    path = tmp_path / "5.dcm"
    shutil.copy(shared_data / "dcm_qa_ts/In/5.dcm", path)
    _cut_frames(path, 2)
    vol = dicomml.load_series(path, dtype=None)
    ref = nib.as_closest_canonical(nib.load(shared_data / "dcm_qa_ts/Ref/5.nii"))
    ours = nib.as_closest_canonical(vol.to_nifti())
    np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asarray(ref.dataobj))
