"""Decoding at the catalog's Pixel Data offsets (``dicomml.decode.located``): the same voxels
as the full path in every syntax the writer produces, and the full path whenever the catalog's
facts cannot be trusted (file changed since the scan, palette color, deflated data)."""

from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest
from pydicom.data import get_testdata_file

import dicomml
from dicomml import synth
from dicomml.decode import frame_info, located, read_many, stored
from dicomml.decode import syntaxes as ts
from dicomml.decode.fastheader import parse_header
from dicomml.errors import DecodeError, DicommlError

_PIXEL_FORMAT = {ts.JPEG_BASELINE: {"bits_allocated": 8, "modality": "MR"},
                 ts.JPEG_EXTENDED: {"bits_stored": 12, "modality": "MR"}}


def _series(folder, syntax, **options):
    options = {**_PIXEL_FORMAT.get(syntax, {}), **options}
    truth = synth.write_series(folder, shape=(4, 20, 24), transfer_syntax=syntax, seed=5,
                               **options)
    catalog = dicomml.scan(folder, workers=1, progress=False)
    return truth, catalog.series_instances(catalog.series["series_key"].iloc[0])


@pytest.fixture
def no_header_walk(monkeypatch):
    """Fail the test if the located path falls back to parsing a header."""
    def refuse(path, **_):
        raise AssertionError(f"header of {path} was parsed")

    monkeypatch.setattr(located, "load_encoded", refuse)


@pytest.mark.parametrize("syntax", synth.supported_transfer_syntaxes())
def test_catalog_rows_decode_like_paths_and_truth(tmp_path, syntax, no_header_walk):
    truth, rows = _series(tmp_path, syntax, signed=syntax in (ts.RLE_LOSSLESS, ts.JPEG_LS_LOSSLESS))
    paths = rows["path"].tolist()
    by_rows = read_many(rows, threads=1) if syntax != ts.DEFLATED_EXPLICIT_VR_LE else None
    if syntax == ts.DEFLATED_EXPLICIT_VR_LE:  # no offset in the catalog: never located
        assert all(isinstance(item, str) for item in located.locations_from_frame(rows))
        return
    by_paths = np.stack([load_encoded_pixels(p) for p in paths])
    np.testing.assert_array_equal(by_rows, by_paths)
    if not synth.is_lossy(syntax):
        index_of = {str(p): i for p, (_, i) in zip(truth.paths, truth.meta["index_of_path"])}
        expected = np.stack([truth.stored[index_of[p]] for p in paths])
        np.testing.assert_array_equal(by_rows, expected)


def load_encoded_pixels(path):
    """One file's frame through the full path (header walked)."""
    return dicomml.read_pixels(path)[0]


@pytest.mark.parametrize("syntax", [ts.RLE_LOSSLESS, ts.JPEG_LS_LOSSLESS, ts.JPEG2000_LOSSLESS,
                                    ts.EXPLICIT_VR_LE])
def test_multiframe_rows_use_the_offset_table_layout(tmp_path, syntax, no_header_walk):
    truth = synth.write_series(tmp_path, shape=(5, 16, 12), transfer_syntax=syntax,
                               multiframe=True, seed=2)
    rows = dicomml.scan(tmp_path, workers=1, progress=False).instances
    got = read_many(rows, threads=1)
    np.testing.assert_array_equal(got, [truth.stored[s] for _, s in truth.meta["frame_index"]])


def test_a_file_changed_since_the_scan_is_read_the_full_way(tmp_path):
    truth, rows = _series(tmp_path / "a", ts.RLE_LOSSLESS)
    other = synth.write_series(tmp_path / "b", shape=(4, 20, 24), seed=9,
                               transfer_syntax=ts.JPEG_LS_LOSSLESS)
    victim = rows["path"].iloc[0]
    shutil.copyfile(other.paths[0], victim)  # other size, other syntax, other pixels
    got = read_many(rows.iloc[:1], threads=1)
    np.testing.assert_array_equal(got, dicomml.read_pixels(victim))


def test_first_file_of_another_shape_since_the_scan_names_it(tmp_path):
    _, rows = _series(tmp_path / "a", ts.RLE_LOSSLESS)
    other = synth.write_series(tmp_path / "b", shape=(2, 10, 12), seed=9,
                               transfer_syntax=ts.RLE_LOSSLESS)
    victim = rows["path"].iloc[0]
    shutil.copyfile(other.paths[0], victim)  # the row still says 20 x 24
    with pytest.raises(DecodeError, match="changed since the scan") as caught:
        read_many(rows, threads=1)
    assert caught.value.path == victim


def test_a_file_cut_short_since_the_scan_names_the_file(tmp_path):
    _, rows = _series(tmp_path, ts.JPEG_LS_LOSSLESS)
    victim = rows["path"].iloc[1]
    with open(victim, "r+b") as handle:
        handle.truncate(os.path.getsize(victim) - 40)
    with pytest.raises(DicommlError) as caught:
        read_many(rows, threads=1)
    assert victim in str(caught.value)


def test_same_size_rewrite_is_caught_by_mtime(tmp_path):
    _, rows = _series(tmp_path, ts.RLE_LOSSLESS)
    victim = rows["path"].iloc[0]
    data = bytearray(open(victim, "rb").read())
    data[-3] ^= 0xFF  # same size, different last RLE bytes
    with open(victim, "wb") as handle:
        handle.write(bytes(data))
    stat = os.stat(victim)
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    location = located.locations_from_frame(rows.iloc[:1])[0]
    assert located._read_at(location) is None  # so load_located takes the full path


def test_palette_color_falls_back_to_the_full_path():
    path = get_testdata_file("examples_palette.dcm")
    rows = dicomml.scan(path, workers=1, progress=False).instances
    loc = located.locations_from_frame(rows)[0]
    assert loc.info.photometric_interpretation == "PALETTE COLOR"
    encoded = located.load_located(loc)
    assert encoded.dataset is not None  # pydicom's data set, for the LUTs
    np.testing.assert_array_equal(read_many(rows), dicomml.read_pixels(path))


def test_catalog_values_are_checked_like_header_values(tmp_path):
    _, rows = _series(tmp_path, ts.RLE_LOSSLESS)
    broken = rows.iloc[:1].copy()
    broken["BitsStored"] = 20.0
    with pytest.raises(DicommlError) as caught:
        read_many(broken)
    assert "BitsStored" in str(caught.value) and broken["path"].iloc[0] in str(caught.value)


def test_rows_without_an_offset_are_read_from_their_path(tmp_path):
    truth, rows = _series(tmp_path, ts.EXPLICIT_VR_LE)
    rows = rows.copy()
    rows["pixel_data_offset"] = -1
    assert all(isinstance(item, str) for item in located.locations_from_frame(rows))
    assert read_many(rows).shape == (4, 20, 24)


def test_frame_info_cache_keeps_files_apart(tmp_path):
    values = {"Rows": 4, "Columns": 5, "BitsAllocated": 16, "BitsStored": 12}
    a = frame_info(values, ts.RLE_LOSSLESS, "a.dcm")
    b = frame_info(values, ts.RLE_LOSSLESS, "b.dcm")
    c = frame_info({**values, "PixelRepresentation": 1}, ts.RLE_LOSSLESS, "a.dcm")
    assert (a.path, b.path) == ("a.dcm", "b.dcm") and a.dtype == b.dtype == np.uint16
    assert c.dtype == np.int16 and a.format_key == b.format_key != c.format_key
    with pytest.raises(DicommlError, match="BitsStored"):
        frame_info({**values, "BitsStored": 17}, ts.RLE_LOSSLESS, "c.dcm")


def test_loader_decodes_compressed_series_at_catalog_offsets(tmp_path, monkeypatch):
    truth = synth.write_series(tmp_path, shape=(6, 16, 16), transfer_syntax=ts.JPEG_LS_LOSSLESS,
                               seed=4)
    catalog = dicomml.scan(tmp_path, workers=1, progress=False)

    def refuse(*args, **kwargs):
        raise AssertionError("the loader parsed a header again")

    monkeypatch.setattr(located, "load_encoded", refuse)
    monkeypatch.setattr("dicomml.decode.read_pixels", refuse)
    volume = dicomml.load_series(catalog, catalog.series["series_key"].iloc[0])
    np.testing.assert_allclose(volume.array, truth.array, atol=1e-3)
    np.testing.assert_allclose(volume.affine, truth.affine, atol=1e-6)


def test_decode_error_from_a_located_frame_names_the_file(tmp_path):
    _, rows = _series(tmp_path, ts.JPEG_LS_LOSSLESS)
    victim = rows["path"].iloc[2]
    data = bytearray(open(victim, "rb").read())
    start = int(rows["pixel_data_offset"].iloc[2])
    sof = data.index(b"\xff\xf7", start)  # JPEG-LS start of frame: claim another width
    data[sof + 7:sof + 9] = (999).to_bytes(2, "big")
    with open(victim, "wb") as handle:
        handle.write(bytes(data))
    fresh = dicomml.scan(tmp_path, workers=1, progress=False)
    rows = fresh.series_instances(fresh.series["series_key"].iloc[0])
    with pytest.raises(DecodeError) as caught:
        read_many(rows, threads=1)
    assert victim in str(caught.value)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("syntax", [ts.IMPLICIT_VR_LE, ts.EXPLICIT_VR_BE])
def test_uncompressed_rows_are_read_straight_into_the_result(tmp_path, signed, syntax,
                                                             no_header_walk):
    truth, rows = _series(tmp_path, syntax, signed=signed, bits_stored=12)
    out = np.empty((1, 20, 24), truth.stored.dtype)
    location = located.locations_from_frame(rows)[0]
    assert located.read_native_into(location, out)
    np.testing.assert_array_equal(out[0], dicomml.read_pixels(location.path)[0])
    assert not located.read_native_into(location, np.empty((1, 20, 24), np.float32))
    with open(location.path, "ab") as handle:  # the file changed since the scan
        handle.write(b"\0\0")
    assert not located.read_native_into(location, out)


def test_eight_bit_big_endian_is_not_read_directly(tmp_path):
    _, rows = _series(tmp_path, ts.EXPLICIT_VR_BE, bits_allocated=8, modality="MR")
    location = located.locations_from_frame(rows)[0]
    out = np.empty((1, 20, 24), np.uint8)
    assert not located.read_native_into(location, out)  # OW words: bytes swapped in pairs
    np.testing.assert_array_equal(read_many(rows)[0], dicomml.read_pixels(location.path)[0])


def test_unused_high_bits_are_dropped_on_the_direct_read(tmp_path, no_header_walk):
    truth, rows = _series(tmp_path, ts.EXPLICIT_VR_LE, bits_stored=12)
    location = located.locations_from_frame(rows)[0]
    data = bytearray(open(location.path, "rb").read())
    pixels = np.frombuffer(data, "<u2", count=20 * 24, offset=location.offset).copy()
    data[location.offset:location.offset + pixels.nbytes] = (pixels | 0xF000).tobytes()
    with open(location.path, "wb") as handle:
        handle.write(bytes(data))
    fresh = located.locations_from_frame(dicomml.scan(location.path, workers=1,
                                                      progress=False).instances)[0]
    out = np.empty((1, 20, 24), np.uint16)
    assert located.read_native_into(fresh, out)
    np.testing.assert_array_equal(out[0], (pixels & 0x0FFF).reshape(20, 24))
    raw = np.fromfile(location.path, "<u2", count=pixels.size, offset=location.offset)
    assert (raw > 0x0FFF).all()  # the file really holds values with the unused bits set


@pytest.mark.parametrize("syntax", [ts.IMPLICIT_VR_LE, ts.EXPLICIT_VR_LE, ts.EXPLICIT_VR_BE])
def test_uncompressed_paths_are_read_straight_into_the_result(tmp_path, syntax, monkeypatch):
    """read_many(paths): only the first file is loaded whole; the others have their header
    prefix walked and their pixel data read into the result, unused high bits dropped."""
    truth = synth.write_series(tmp_path, shape=(5, 20, 24), transfer_syntax=syntax, seed=3,
                               signed=True, bits_stored=12)
    paths = [str(p) for p in truth.paths]
    victim = paths[2]  # set the unused high bits in one file (its values stay the same)
    header = parse_header(open(victim, "rb").read())
    data = bytearray(open(victim, "rb").read())
    order = ">" if syntax == ts.EXPLICIT_VR_BE else "<"
    pixels = np.frombuffer(data, order + "i2", count=20 * 24, offset=header.pixel_offset)
    pixels = pixels.astype(np.int16)
    dirty = ((pixels.view(np.uint16) & 0x0FFF) | 0x7000).astype(order + "u2")  # sign bits 0111
    data[header.pixel_offset:header.pixel_offset + pixels.nbytes] = dirty.tobytes()
    open(victim, "wb").write(bytes(data))
    expected = np.stack([dicomml.read_pixels(p)[0] for p in paths])
    np.testing.assert_array_equal(expected[2], pixels.reshape(20, 24))
    loaded = []
    real = stored.load_encoded
    monkeypatch.setattr(stored, "load_encoded", lambda p, **k: loaded.append(p) or real(p, **k))
    np.testing.assert_array_equal(read_many(paths, threads=1), expected)
    assert loaded == [paths[0]]
    loaded.clear()  # a header longer than the prefix walked: the full path, same result
    monkeypatch.setattr(located, "HEADER_PREFIX", 200)
    np.testing.assert_array_equal(read_many(paths, threads=1), expected)
    assert loaded == paths


def test_uncompressed_path_of_another_format_or_cut_short_takes_the_full_path(tmp_path):
    truth = synth.write_series(tmp_path / "a", shape=(3, 20, 24), seed=3, signed=False,
                               bits_stored=12, transfer_syntax=ts.EXPLICIT_VR_LE)
    other = synth.write_series(tmp_path / "b", shape=(1, 20, 24), seed=4, signed=True,
                               bits_stored=12, transfer_syntax=ts.EXPLICIT_VR_LE)
    paths = [str(p) for p in truth.paths]
    out = np.empty((1, 20, 24), truth.stored.dtype)
    key = frame_info(parse_header(open(paths[0], "rb").read()).values,
                             ts.EXPLICIT_VR_LE).format_key
    assert located.read_native_file(paths[1], out, key)
    assert not located.read_native_file(str(other.paths[0]), out, key)  # signed: another key
    with pytest.raises(DecodeError, match="dtype"):
        read_many([paths[0], str(other.paths[0])], threads=1)
    with open(paths[1], "r+b") as handle:
        handle.truncate(os.path.getsize(paths[1]) - 10)
    assert not located.read_native_file(paths[1], out, key)
    with pytest.raises(DicommlError) as caught:
        read_many(paths, threads=1)
    assert paths[1] in str(caught.value)


@pytest.mark.parametrize("threads", [1, 2])
def test_runs_of_files_read_before_decoding_match_one_by_one(tmp_path, threads, monkeypatch):
    truth = synth.write_series(tmp_path, shape=(21, 12, 10), transfer_syntax=ts.RLE_LOSSLESS,
                               seed=6)
    catalog = dicomml.scan(tmp_path, workers=1, progress=False)
    rows = catalog.series_instances(catalog.series["series_key"].iloc[0])
    expected = np.stack([dicomml.read_pixels(p)[0] for p in rows["path"]])
    np.testing.assert_array_equal(read_many(rows, threads=threads), expected)
    # a run larger than the reusable buffer: the overflow is read into fresh memory
    monkeypatch.setattr(located, "REUSED_READ_MAX", 3 * os.path.getsize(truth.paths[0]))
    monkeypatch.setattr(located, "_LOCAL", threading.local())
    np.testing.assert_array_equal(read_many(rows, threads=threads), expected)


def test_read_many_decodes_into_a_given_buffer(tmp_path):
    truth, rows = _series(tmp_path, ts.JPEG_LS_LOSSLESS)
    buffer = np.full((4, 20, 24), 7, truth.stored.dtype)
    assert read_many(rows, out=buffer) is buffer
    np.testing.assert_array_equal(buffer, read_many(rows["path"].tolist()))
    for wrong in (np.empty((4, 20, 24), np.float32), np.empty((3, 20, 24), truth.stored.dtype),
                  np.empty((4, 24, 20), truth.stored.dtype).transpose(0, 2, 1)):
        with pytest.raises(ValueError, match="out must be"):
            read_many(rows, out=wrong)


def test_every_decodable_pydicom_file_reads_the_same_from_catalog_rows():
    """pydicom's test files (color, palette, multi-frame, every codec, odd headers): decoding
    from the catalog's rows gives exactly what the full path gives."""
    from pydicom.data import get_testdata_files

    compared = 0
    # the default pattern lists the files the wheel ships; a pattern such as "*.dcm" would
    # also try to download pydicom's online test files (minutes of retries offline)
    for path in sorted(p for p in get_testdata_files() if p.endswith(".dcm")):
        try:
            expected = dicomml.read_pixels(path)
        except DicommlError:
            continue  # files nothing can decode are covered by test_decode_pydicom
        rows = dicomml.scan(path, workers=1, progress=False).instances
        if len(rows) != 1:
            continue
        np.testing.assert_array_equal(read_many(rows, threads=1), expected, err_msg=path)
        compared += 1
    assert compared >= 50
