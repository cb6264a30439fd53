"""load_series on bad input: typed dicomml errors naming the file and the tag (never
ValueError / TypeError / IndexError), no allocation beyond what a file can hold, and bare
data sets (no preamble, no file meta) loaded like the catalog indexes them.

Inputs are real files: damaged copies from tests/badfiles.py, or dicomml.synth series whose
tags are overridden (a value of None deletes the tag in every file).
"""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

import dicomml
from dicomml import errors as E
from dicomml import synth

sys.path.insert(0, str(Path(__file__).parent))
from badfiles import _dataset_bytes, build_corpus  # noqa: E402

RLE = "1.2.840.10008.1.2.5"


def _write(folder, shape=(3, 8, 8), **options):
    with warnings.catch_warnings():  # damaged values warn in pydicom's writer
        warnings.simplefilter("ignore")
        return synth.write_series(folder, shape=shape, **options)


def _load_error(source, expected):
    with pytest.raises(expected) as info:
        dicomml.load_series(source)
    return info.value


# --- B2: a bad file keeps its recorded error ----------------------------------------------------
@pytest.mark.parametrize("name", ["zero_bytes", "truncated_header", "truncated_pixels",
                                  "invalid_vr", "pixel_length_beyond_file"])
def test_a_single_bad_file_raises_its_typed_error(tmp_path, name):
    case = build_corpus(tmp_path, [name])[name]
    culprit = str(case.culprits[0])
    for source in (culprit, Path(culprit), [culprit]):
        err = _load_error(source, case.load)
        assert not isinstance(err, E.SeriesNotFoundError)
        assert err.path == culprit and culprit in str(err)
        if case.tag is not None:
            assert err.tag == case.tag and f"[tag {case.tag}]" in str(err)


def test_a_folder_of_unreadable_files_raises_the_recorded_error_and_lists_them(tmp_path):
    case = build_corpus(tmp_path, ["truncated_header"])["truncated_header"]
    (case.folder / "empty.dcm").write_bytes(b"")
    cat = dicomml.scan(case.folder, workers=1, progress=False)
    recorded = cat.errors.sort_values("path").iloc[0]
    err = _load_error(case.folder, E.InvalidDicomError)
    assert type(err).__name__ == recorded["error_type"]
    assert err.path == recorded["path"]
    assert "2 unreadable file(s)" in str(err)
    assert all(str(p) in str(err) for p in case.folder.iterdir())


def test_a_catalog_of_unreadable_files_raises_the_recorded_error(tmp_path):
    case = build_corpus(tmp_path, ["invalid_vr"])["invalid_vr"]
    cat = dicomml.scan(case.folder, workers=1, progress=False)
    assert len(cat.instances) == 0 and len(cat.errors) == 1
    err = _load_error(cat, E.InvalidDicomError)
    assert err.path == str(case.culprits[0])


def test_a_folder_with_one_good_series_skips_its_unreadable_file(tmp_path):
    truth = _write(tmp_path, seed=4)
    (tmp_path / "broken.dcm").write_bytes(b"\xff\xfe not DICOM at all")
    vol = dicomml.load_series(tmp_path)
    np.testing.assert_allclose(vol.array, truth.array, atol=1e-3)


def test_an_empty_file_list_is_a_typed_error():
    _load_error([], E.SeriesNotFoundError)


# --- B3: bare data sets ----------------------------------------------------------------------------
def test_bare_implicit_data_sets_load_like_the_catalog_indexes_them(tmp_path):
    """No preamble, no DICM, no file meta: Implicit VR Little Endian by default (PS3.5 10.1)."""
    truth = _write(tmp_path / "src", shape=(4, 8, 6), orientation="oblique", seed=7)
    bare = tmp_path / "bare"
    bare.mkdir()
    for i, path in enumerate(truth.paths):
        (bare / f"slice{i}").write_bytes(_dataset_bytes(pydicom.dcmread(path), implicit=True))
    cat = dicomml.scan(bare, workers=1, progress=False)
    assert len(cat.instances) == 4 and len(cat.errors) == 0
    for source in (bare, sorted(map(str, bare.iterdir())), cat):
        vol = dicomml.load_series(source)
        np.testing.assert_allclose(vol.array, truth.array, atol=1e-3)
        np.testing.assert_allclose(vol.affine, truth.affine, atol=1e-6)


def test_the_bare_data_set_of_the_bad_corpus_loads(tmp_path):
    case = build_corpus(tmp_path, ["bare_dataset_no_preamble"])["bare_dataset_no_preamble"]
    ds = pydicom.dcmread(case.culprits[0], force=True)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    expected = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) \
        + float(ds.RescaleIntercept)
    for source in (case.folder, case.culprits[0]):
        vol = dicomml.load_series(source)
        assert vol.shape == (1, 16, 16)
        np.testing.assert_array_equal(vol.array[0], expected)


# --- B6: damaged sizes and formats -----------------------------------------------------------------
MISSING = ["Rows", "Columns", "BitsAllocated"]


@pytest.mark.parametrize("tag", MISSING)
@pytest.mark.parametrize("layout", ["single", "multiframe", "rle"])
def test_a_missing_size_tag_is_a_missing_tag_error(tmp_path, tag, layout):
    options = {"multiframe": True} if layout == "multiframe" else \
        {"transfer_syntax": RLE} if layout == "rle" else {}
    truth = _write(tmp_path, **options, **{tag: None})
    err = _load_error(tmp_path, E.MissingTagError)
    assert err.tag == tag and err.path in {str(p) for p in truth.paths}
    assert err.path in str(err) and f"[tag {tag}]" in str(err)


def test_the_bad_corpus_missing_rows_names_the_file_by_key_and_by_path(tmp_path):
    case = build_corpus(tmp_path, ["missing_rows"])["missing_rows"]
    culprit = str(case.culprits[0])
    cat = dicomml.scan(case.folder, workers=1, progress=False)
    key = cat.instances.loc[cat.instances["path"] == culprit, "series_key"].iloc[0]
    for call in (lambda: dicomml.load_series(cat, key), lambda: dicomml.load_series(culprit)):
        with pytest.raises(E.MissingTagError) as info:
            call()
        assert info.value.path == culprit and info.value.tag == "Rows"


@pytest.mark.parametrize("tags,tag", [
    ({"Columns": 0}, "Columns"),
    ({"BitsStored": 20}, "BitsStored"),
    ({"BitsStored": 0}, "BitsStored"),
    ({"PixelRepresentation": 3}, "PixelRepresentation"),
    ({"SamplesPerPixel": 0}, "SamplesPerPixel"),
    ({"PixelSpacing": [0.0, 0.5]}, "PixelSpacing"),
    ({"PixelSpacing": [-0.5, 0.5]}, "PixelSpacing"),
    ({"RescaleSlope": "inf"}, "RescaleSlope"),
    ({"RescaleIntercept": "-inf"}, "RescaleIntercept"),
])
def test_an_unusable_value_is_an_invalid_tag_error(tmp_path, tags, tag):
    truth = _write(tmp_path, **tags)
    err = _load_error(tmp_path, E.InvalidTagError)
    assert err.tag == tag and err.path in {str(p) for p in truth.paths}


def test_dtype_none_refuses_bits_it_cannot_keep_with_a_typed_error(tmp_path):
    truth = _write(tmp_path, transfer_syntax=RLE, BitsAllocated=12, BitsStored=12)
    with pytest.raises(E.DicommlError) as info:
        dicomml.load_series(tmp_path, dtype=None)
    assert info.value.path in {str(p) for p in truth.paths}
    assert info.value.tag in ("BitsAllocated", "PixelData")


def test_uncompressed_frames_beyond_the_file_are_refused_before_allocating(tmp_path):
    """Rows says 4096 but each file holds 8 x 8 pixels: TruncatedFileError, not a read."""
    truth = _write(tmp_path, Rows=4096)
    err = _load_error(tmp_path, E.TruncatedFileError)
    assert err.tag == "PixelData" and err.path in {str(p) for p in truth.paths}
    assert "need" in str(err)


def test_compressed_sizes_far_beyond_the_file_are_refused_before_allocating(tmp_path):
    """60000 x 60000 x 2 bytes (7.2 GB) claimed by a 2 KB RLE file: refused by the
    expansion bound, before any allocation or decode."""
    truth = _write(tmp_path, transfer_syntax=RLE, Rows=60000, Columns=60000)
    err = _load_error(tmp_path, E.InvalidTagError)
    assert err.tag == "Rows" and err.path in {str(p) for p in truth.paths}


def test_a_decoded_size_that_disagrees_with_rows_is_a_decode_error(tmp_path):
    truth = _write(tmp_path, transfer_syntax=RLE, Rows=16)
    err = _load_error(tmp_path, (E.DecodeError, E.InvalidDicomError))
    assert err.path in {str(p) for p in truth.paths} and err.tag == "PixelData"


def test_a_frame_count_beyond_the_functional_groups_is_typed(tmp_path):
    truth = _write(tmp_path, multiframe=True, NumberOfFrames=100000)
    err = _load_error(tmp_path, E.DicommlError)
    assert err.path == str(truth.paths[0]) and err.tag is not None


def test_a_single_slice_ignores_an_infinite_slice_thickness(tmp_path):
    _write(tmp_path, shape=(1, 8, 8), SliceThickness="inf", SpacingBetweenSlices=None)
    vol = dicomml.load_series(tmp_path)
    assert np.isfinite(vol.affine).all()
    assert np.linalg.norm(vol.affine[:3, 0]) == pytest.approx(1.0)


def test_fuzzed_series_raise_only_typed_errors(tmp_path):
    """Every header byte of one synthetic file flipped in turn (a small deterministic fuzz):
    each load gives a Volume or a DicommlError with a path, nothing else."""
    src = _write(tmp_path / "src", shape=(1, 8, 8), transfer_syntax="1.2.840.10008.1.2").paths[0]
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(11)
    positions = rng.choice(len(data) - 128, size=60, replace=False)
    escaped = []
    for n, at in enumerate(positions):
        mutated = bytearray(data)
        mutated[at] ^= 1 << int(rng.integers(8))
        path = tmp_path / f"mutated{n}.dcm"
        path.write_bytes(bytes(mutated))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dicomml.load_series(str(path))
        except E.DicommlError as exc:
            assert exc.path is not None
        except Exception as exc:  # noqa: BLE001 - collecting what escaped
            escaped.append(f"byte {at}: {type(exc).__name__}: {exc}")
        path.unlink()
    shutil.rmtree(tmp_path / "src")
    assert not escaped, "\n".join(escaped)
