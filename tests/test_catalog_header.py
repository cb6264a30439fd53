"""The fast header parser must say exactly what pydicom says: every collected tag value and
the Pixel Data value's byte offset/length, on pydicom's test files, ../shared/data, synthetic
series in every transfer syntax, and property-based random data sets."""

from __future__ import annotations

import math
import os
import tracemalloc
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_files
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from dicomml import synth
from dicomml.catalog import tags as T
from dicomml.catalog.header import (
    MAX_HEADER_BYTES,
    parse_file,
    parse_file_safe,
    row_as_dict,
)
from dicomml.errors import InvalidDicomError, MissingTagError, NotDicomError

_MULTI = (list, pydicom.multival.MultiValue)
_GROUP_SEQUENCES = ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence")


# --- the reference: pydicom --------------------------------------------------------------------
def _reference_value(keyword: str, value):
    """What the catalog must hold for a pydicom value of ``keyword``."""
    kind = T.KIND_OF[keyword]
    if value is None or value == "" or (isinstance(value, _MULTI) and len(value) == 0):
        return None
    if kind == T.FLOATS:
        return [float(v) for v in (value if isinstance(value, _MULTI) else [value])]
    if kind == T.TEXT:
        values = value if isinstance(value, _MULTI) else [value]
        return "\\".join(str(v).strip(" \x00") for v in values) or None
    if isinstance(value, _MULTI):
        value = value[0]
    try:
        return float(value) if kind in (T.FLOAT, T.DOUBLE) else int(value)
    except ValueError:
        return None  # an invalid IS/DS string ("1A"): unusable, stored as absent


def _group_value(ds: Dataset, keyword: str):
    """A tag from the shared, then the first per-frame functional group (enhanced files)."""
    for name in _GROUP_SEQUENCES:
        for item in ds.get(name, [])[:1]:
            for sub in item:
                if sub.VR == "SQ":
                    for inner in sub.value[:1]:
                        if keyword in inner:
                            return inner[keyword].value
    return None


def assert_matches_pydicom(path) -> None:
    """Parse ``path`` with both readers; every collected tag and the pixel offsets agree."""
    ds = pydicom.dcmread(path, force=True)
    got = row_as_dict(parse_file(str(path)))
    for keyword in T.KIND_OF:
        source = getattr(ds, "file_meta", Dataset()) if keyword in (
            "MediaStorageSOPClassUID", "TransferSyntaxUID") else ds
        value = source[keyword].value if keyword in source else None
        if value is None or value == "":
            value = _group_value(ds, keyword)
        expected = _reference_value(keyword, value)
        if keyword == "DiffusionBValue" and expected is None:
            continue  # also filled from Siemens private tags, checked elsewhere
        actual = got[keyword]
        if isinstance(expected, float) and isinstance(actual, float):
            assert math.isclose(actual, expected, rel_tol=1e-12), (path, keyword)
        else:
            assert actual == expected, (path, keyword, actual, expected)
    _assert_pixel_location(path, ds, got)


def _assert_pixel_location(path, ds: Dataset, got: dict) -> None:
    offset, length = got["pixel_data_offset"], got["pixel_data_length"]
    if "PixelData" not in ds:
        assert (offset, length) == (-1, 0)
        return
    raw = Path(path).read_bytes()
    if length == -1:  # encapsulated: the value starts with the Basic Offset Table item
        assert raw[offset:offset + 4] in (b"\xfe\xff\x00\xe0", b"\xff\xfe\xe0\x00")
        assert ds["PixelData"].is_undefined_length
    elif hasattr(ds, "file_meta") and \
            ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        assert offset == -1 and length == len(ds.PixelData)
    else:
        assert raw[offset:offset + length] == ds.PixelData


# --- pydicom's own test files ----------------------------------------------------------------
def _pydicom_files():
    return sorted(f for f in get_testdata_files() if os.path.isfile(f))


@pytest.mark.parametrize("path", _pydicom_files(), ids=os.path.basename)
def test_pydicom_test_files(path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pydicom.dcmread(path)
            readable = True
        except Exception:  # noqa: BLE001 - pydicom refuses it: we must refuse it too,
            readable = False  # unless it is a bare data set that pydicom needs force= for
        row, err = parse_file_safe(path)
        if err is None and readable:
            assert_matches_pydicom(path)
        elif err is None:
            forced = pydicom.dcmread(path, force=True)
            assert forced.SOPInstanceUID == row_as_dict(row)["SOPInstanceUID"]
        elif err[0] == "MissingTagError":
            forced = pydicom.dcmread(path, force=True)
            assert err[2] not in forced
        elif err[0] == "DICOMDIR":
            assert pydicom.dcmread(path).file_meta.MediaStorageSOPClassUID == \
                "1.2.840.10008.1.3.10"
        elif err[0] == "TruncatedFileError":
            assert "truncated" in os.path.basename(path).lower()
        elif err[0] == "InvalidTagError":  # e.g. badVR.dcm's NumberOfFrames '1A'
            value = pydicom.dcmread(path, force=True)[err[2]].value
            with pytest.raises(ValueError):
                int(value)
        else:
            assert err[0] == "NotDicomError" and not readable, err


def test_pydicom_test_files_mostly_indexed():
    ok = sum(parse_file_safe(p)[1] is None for p in _pydicom_files())
    assert ok >= 140  # 146 of 176 files: the rest are not images, truncated or DICOMDIRs


# --- real data -----------------------------------------------------------------------------------
def test_shared_data_matches_pydicom(shared_data):
    files = sorted(shared_data.rglob("*.dcm"))
    assert len(files) > 150
    for path in files:
        assert_matches_pydicom(path)


def test_siemens_mosaic_private_tags(shared_data):
    dwi = sorted((shared_data / "dcm_qa_decubitus" / "In" / "HFS").glob("4_*/*.dcm"))
    rows = [row_as_dict(parse_file(str(p))) for p in dwi]
    for path, row in zip(dwi, rows):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        block = ds.private_block(0x0019, "SIEMENS MR HEADER")
        assert row["NumberOfImagesInMosaic"] == block[0x0A].value
        assert row["DiffusionBValue"] == float(block[0x0C].value)
    assert sorted({r["DiffusionBValue"] for r in rows}) == [0.0, 1000.0]


# --- synthetic series: every transfer syntax, multi-frame -----------------------------------------
@pytest.mark.parametrize("syntax", synth.supported_transfer_syntaxes())
def test_synth_transfer_syntaxes(tmp_path, syntax):
    options = {"bits_allocated": 8} if syntax == "1.2.840.10008.1.2.4.50" else {}
    truth = synth.write_series(tmp_path, shape=(2, 12, 10), transfer_syntax=syntax, seed=3,
                               modality="MR", **options)
    for path in truth.paths:
        assert_matches_pydicom(path)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                                    ExplicitVRBigEndian])
def test_synth_enhanced_multiframe(tmp_path, syntax):
    if syntax not in synth.supported_transfer_syntaxes():
        pytest.skip("synth cannot write it")
    truth = synth.write_series(tmp_path, modality="MR", shape=(6, 10, 8), multiframe=True,
                               orientation="oblique" if "oblique" in synth.ORIENTATIONS
                               else "sagittal", transfer_syntax=syntax, seed=4)
    assert len(truth.paths) == 1
    assert_matches_pydicom(truth.paths[0])
    row = row_as_dict(parse_file(str(truth.paths[0])))
    assert row["NumberOfFrames"] == 6
    assert row["PixelSpacing"] == pytest.approx(list(truth.spacing[1:]))
    assert row["ImagePositionPatient"] == pytest.approx(list(truth.positions[0]), abs=1e-4)


# --- property-based: random data sets written by pydicom -----------------------------------------
_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian,
             DeflatedExplicitVRLittleEndian]
_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\\"),
                max_size=16)
_ds = st.floats(-1e4, 1e4, allow_nan=False).map(lambda v: float(f"{v:.6g}"))


def _item(depth: int, draw) -> Dataset:
    item = Dataset()
    item.add_new(0x00081150, "UI", generate_uid())
    if depth < 3 and draw(st.booleans()):
        item.add_new(0x00400555, "SQ", Sequence([_item(depth + 1, draw)
                                                 for _ in range(draw(st.integers(0, 2)))]))
    item.add_new(0x00091010, "LO", "x" * draw(st.integers(0, 40)))
    return item


@st.composite
def random_files(draw):
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = (generate_uid()
                                                                    for _ in range(3))
    ds.PatientID = draw(_text)
    ds.PatientName = draw(_text)
    ds.Modality = draw(st.sampled_from(["CT", "MR", "PT", ""]))
    ds.SeriesDescription = draw(_text)
    ds.InstanceNumber = draw(st.integers(-5, 10**6))
    ds.ImagePositionPatient = draw(st.lists(_ds, min_size=3, max_size=3))
    ds.ImageOrientationPatient = draw(st.lists(_ds, min_size=6, max_size=6))
    ds.PixelSpacing = draw(st.lists(_ds, min_size=2, max_size=2))
    ds.SliceThickness = draw(_ds)
    ds.RescaleSlope, ds.RescaleIntercept = draw(_ds), draw(_ds)
    ds.ImageType = draw(st.lists(st.sampled_from(["ORIGINAL", "DERIVED", "AXIAL", "M"]),
                                 min_size=1, max_size=4))
    ds.add_new(0x00091001, "OB", bytes(draw(st.integers(0, 70_000))))  # crosses 64 KiB
    ds.ReferencedImageSequence = Sequence([_item(0, draw)
                                           for _ in range(draw(st.integers(0, 3)))])
    rows, cols = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(range(256)) * (rows * cols * 2 // 256) + bytes(rows * cols * 2 % 256)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = draw(st.sampled_from(_SYNTAXES))
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    undefined = draw(st.booleans())
    for element in ds.iterall():
        if element.VR == "SQ":
            element.is_undefined_length = undefined
    return ds, draw(st.booleans())


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(random_files())
def test_random_datasets_match_pydicom(tmp_path, case):
    ds, preamble = case
    path = tmp_path / "random.dcm"
    if not preamble and ds.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian  # nobody reads a bare deflate
    if preamble:
        ds.save_as(path, enforce_file_format=True)
    else:  # no preamble, no meta group: a bare data set, encoding guessed by both readers
        syntax = ds.file_meta.TransferSyntaxUID
        del ds.file_meta
        ds.save_as(path, implicit_vr=syntax.is_implicit_VR,
                   little_endian=syntax.is_little_endian)
    assert_matches_pydicom(path)


# --- bounds and refusals ---------------------------------------------------------------------------
def test_no_preamble_implicit_bare_dataset(tmp_path):
    truth = synth.write_series(tmp_path / "s", shape=(1, 8, 8),
                               transfer_syntax=ImplicitVRLittleEndian, seed=5)
    ds = pydicom.dcmread(truth.paths[0])
    bare = tmp_path / "bare"
    ds.save_as(bare, enforce_file_format=False, implicit_vr=True, little_endian=True)
    raw = bare.read_bytes()
    ds_bytes = raw[raw.index(b"\x08\x00"):] if raw[128:132] == b"DICM" else raw
    (tmp_path / "bare2").write_bytes(ds_bytes)  # no preamble, no meta group
    row = row_as_dict(parse_file(str(tmp_path / "bare2")))
    assert row["SOPInstanceUID"] == ds.SOPInstanceUID
    assert row["TransferSyntaxUID"] is None
    assert row["Rows"] == 8 and row["ImagePositionPatient"] == pytest.approx(
        [float(v) for v in ds.ImagePositionPatient])
    offset, length = row["pixel_data_offset"], row["pixel_data_length"]
    assert ds_bytes[offset:offset + length] == ds.PixelData


def test_broken_meta_and_missing_uids(tmp_path):
    truth = synth.write_series(tmp_path / "s", shape=(1, 8, 8), seed=6)
    raw = truth.paths[0].read_bytes()
    broken = tmp_path / "broken_meta.dcm"
    broken.write_bytes(raw[:132] + b"\x02\x00\x01\x00QQ" + raw[138:])
    with pytest.raises(InvalidDicomError, match="meta"):
        parse_file(str(broken))
    ds = pydicom.dcmread(truth.paths[0])
    del ds.SeriesInstanceUID
    ds.save_as(tmp_path / "no_series.dcm")
    with pytest.raises(MissingTagError) as info:
        parse_file(str(tmp_path / "no_series.dcm"))
    assert info.value.tag == "SeriesInstanceUID"
    assert str(tmp_path / "no_series.dcm") in str(info.value)
    (tmp_path / "text.dcm").write_text("hello, not a DICOM file\n" * 10)
    with pytest.raises(NotDicomError):
        parse_file(str(tmp_path / "text.dcm"))


def test_unusable_character_set_keeps_the_file(tmp_path):
    """A Specific Character Set that is no codec name at all (a NUL inside: pydicom's lookup
    raises ValueError) is read as an unknown one, latin-1 (found by fuzz_scan_load)."""
    truth = synth.write_series(tmp_path / "s", shape=(1, 8, 8), seed=8)
    ds = pydicom.dcmread(truth.paths[0])
    ds.SpecificCharacterSet, ds.PatientName = "ISO_IR 100", "Cafe"
    ds.save_as(tmp_path / "ok.dcm")
    raw = (tmp_path / "ok.dcm").read_bytes()
    assert raw.count(b"ISO_IR 100") == 1
    (tmp_path / "nul_charset.dcm").write_bytes(raw.replace(b"ISO_IR 100", b"ISO_IR\x00100"))
    row, err = parse_file_safe(str(tmp_path / "nul_charset.dcm"))
    assert err is None, err
    assert row_as_dict(row)["PatientName"] == "Cafe"


def test_header_work_is_bounded(tmp_path):
    """A header that never ends is refused after MAX_HEADER_BYTES, without big allocations."""
    truth = synth.write_series(tmp_path / "s", shape=(1, 8, 8), seed=7)
    raw = truth.paths[0].read_bytes()
    at = raw.index(b"\x10\x00\x10\x00PN")  # before Patient's Name
    item = b"\x09\x00\x10\x10LO\xe8\x03" + b"a" * 1000
    junk = item * ((MAX_HEADER_BYTES + 2**20) // len(item))  # 9 MiB of 1 kB elements
    big = tmp_path / "endless.dcm"
    big.write_bytes(raw[:at] + junk + raw[at:])
    tracemalloc.start()
    with pytest.raises(InvalidDicomError, match="larger than"):
        parse_file(str(big))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3 * MAX_HEADER_BYTES


# --- Philips private per-frame group (2005,xx0F) ---------------------------------------------------
def _enhanced_with_private_group(path, creator: str, block: int = 0x14, top_echo=None):
    """A minimal enhanced-style file whose first per-frame item holds a private sequence."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.SeriesInstanceUID, ds.StudyInstanceUID = generate_uid(), generate_uid()
    if top_echo is not None:
        ds.EchoNumbers = top_echo
    private = Dataset()
    private.EchoNumbers, private.EchoTime, private.TemporalPositionIdentifier = 3, 12.5, 2
    frame = Dataset()
    frame.add_new((0x2005, block), "LO", creator)
    frame.add_new((0x2005, block << 8 | 0x0F), "SQ", Sequence([private]))
    ds.PerFrameFunctionalGroupsSequence = Sequence([frame])
    ds.save_as(path, enforce_file_format=True)
    return path


def test_philips_private_per_frame_group(tmp_path):
    """Philips keeps EchoNumbers, EchoTime and TemporalPositionIdentifier of each frame of an
    enhanced MR file in (2005,xx0F) under "Philips MR Imaging DD 005": read from there (any
    block), never from another creator's block, and a top-level value wins."""
    for block in (0x14, 0x31):
        path = _enhanced_with_private_group(tmp_path / f"p{block}.dcm", T.PHILIPS_CREATOR, block)
        row = row_as_dict(parse_file(str(path)))
        assert (row["EchoNumbers"], row["EchoTime"], row["TemporalPositionIdentifier"]) == \
            (3, 12.5, 2)
        assert_matches_pydicom(path)
    other = _enhanced_with_private_group(tmp_path / "o.dcm", "SOMEONE ELSE")
    row = row_as_dict(parse_file(str(other)))
    assert (row["EchoNumbers"], row["EchoTime"], row["TemporalPositionIdentifier"]) == \
        (None, None, None)
    top = _enhanced_with_private_group(tmp_path / "t.dcm", T.PHILIPS_CREATOR, top_echo=1)
    assert row_as_dict(parse_file(str(top)))["EchoNumbers"] == 1


def test_shared_philips_enhanced_echo_numbers(shared_data):
    enh = shared_data / "dcm_qa_philips_enh" / "In" / "enh" / "1901_WIP_3DpCASL_real.dcm"
    ds = pydicom.dcmread(enh, stop_before_pixels=True)
    private = ds.PerFrameFunctionalGroupsSequence[0][0x2005, 0x140F].value[0]
    row = row_as_dict(parse_file(str(enh)))
    assert row["EchoNumbers"] == int(private.EchoNumbers) == 1
    assert row["header_source"] == "functional_groups"
