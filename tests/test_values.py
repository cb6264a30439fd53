"""Value stages (dicomml.decode.stages through read_pixels / read_many) against pydicom's
apply_modality_lut, apply_voi, apply_windowing and apply_presentation_lut, on pydicom's test
files that carry a window and on files written here for every case (tests/values_files.py).
Tolerance: 1e-5 of the output range."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.pixels.processing import (
    apply_modality_lut,
    apply_presentation_lut,
    apply_voi,
    apply_voi_lut,
    apply_windowing,
)
from values_files import lut_item, reference, stored_image, write

import dicomml
from dicomml.errors import InvalidTagError


def _close(ours, theirs, value_range):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1e-5 * value_range


def _pydicom_files_with_values():
    """pydicom test files (as installed) with a window, a LUT or MONOCHROME1 and readable
    pixels."""
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in get_testdata_files("*.dcm"):
            try:
                ds = pydicom.dcmread(path)
                if not any(k in ds for k in ("WindowCenter", "VOILUTSequence",
                                             "ModalityLUTSequence")) \
                        and ds.get("PhotometricInterpretation") != "MONOCHROME1":
                    continue
                ds.pixel_array  # noqa: B018 - readable by pydicom
            except Exception:  # noqa: BLE001 - unreadable or truncated test files
                continue
            found.append(path)
    return found


PYDICOM_FILES = _pydicom_files_with_values()


def test_there_are_pydicom_files_with_windows():
    assert len(PYDICOM_FILES) >= 8


@pytest.mark.parametrize("path", PYDICOM_FILES, ids=lambda p: p.rsplit("/", 1)[-1])
def test_pydicom_files_modality_and_every_window(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds, arr = reference(path)
        modality = apply_modality_lut(arr, ds)
        ours = dicomml.read_pixels(path, values="modality")[0]
        _close(ours, modality, max(np.ptp(modality), 1))
        count = len(ds.WindowCenter) if ds["WindowCenter"].VM > 1 else 1
        for index in range(count):
            found = dicomml.read_pixels(path, values="presentation", window=index,
                                        normalize=False, record=True)
            low, high = found.record["output_range"]
            _close(found.array[0], apply_windowing(modality.copy(), ds, index), high - low)
            unit = dicomml.read_pixels(path, values="presentation", window=index)[0]
            _close(unit, (found.array[0] - low) / (high - low), 1.0)
            assert found.record["window"]["center"] == float(
                ds.WindowCenter[index] if count > 1 else ds.WindowCenter)


def test_window_by_explanation_and_by_pair():
    path = get_testdata_file("examples_overlay.dcm")
    ds, arr = reference(path)
    second = dicomml.read_pixels(path, values="presentation", window="window2",
                                 normalize=False, record=True)
    assert second.record["window"]["explanation"] == "WINDOW2"
    _close(second.array[0], apply_windowing(apply_modality_lut(arr, ds), ds, 1), 4095)
    given = dicomml.read_pixels(path, values="presentation", window=(200.0, 443.0))
    by_index = dicomml.read_pixels(path, values="presentation", window=1)
    np.testing.assert_allclose(given, by_index, atol=1e-6)
    with pytest.raises(InvalidTagError) as err:
        dicomml.read_pixels(path, values="presentation", window="lung")
    assert err.value.path == path and err.value.tag == "WindowCenterWidthExplanation"


# --- synthetic files: one per case -----------------------------------------------------------
@pytest.mark.parametrize("bits,ow", [(16, False), (16, True), (8, False)])
def test_modality_lut_sequence(tmp_path, bits, ow):
    image = stored_image(bits=12)
    table = (np.arange(3000) * (255 / 2999 if bits == 8 else 7.0)).astype(np.uint16)
    path = write(tmp_path / "m.dcm", image, ModalityLUTSequence=lut_item(100, table, bits, ow),
                 WindowCenter=8000 if bits == 16 else 128, WindowWidth=9000 if bits == 16 else 200)
    ds, arr = reference(path)
    found = dicomml.read_pixels(path, values="modality", record=True)
    _close(found.array[0], apply_modality_lut(arr, ds), 2 ** bits - 1)
    assert found.record["modality"]["lut"]["first"] == 100
    shown = dicomml.read_pixels(path, values="presentation", normalize=False)[0]
    _close(shown, apply_windowing(apply_modality_lut(arr, ds), ds), 2 ** bits - 1)


def test_modality_lut_signed_first_value(tmp_path):
    image = stored_image(bits=12, signed=True, seed=2)
    table = np.arange(4096, dtype=np.uint16)
    path = write(tmp_path / "s.dcm", image, signed=True,
                 ModalityLUTSequence=lut_item(-2048, table, 16))
    found = dicomml.read_pixels(path, values="modality")[0]
    np.testing.assert_array_equal(found, image.astype(np.int64) + 2048)


@pytest.mark.parametrize("ow", [False, True])
def test_voi_lut_sequence_and_choice_over_window(tmp_path, ow):
    image = stored_image(bits=12, seed=3)
    luts = [lut_item(500, (np.linspace(0, 65535, 2000)).astype(np.uint16), 16, ow,
                     explanation="SOFT"),
            lut_item(0, (np.linspace(0, 4095, 4096)).astype(np.uint16), 12, ow,
                     explanation="FULL")]
    path = write(tmp_path / "v.dcm", image, VOILUTSequence=luts, WindowCenter=2000,
                 WindowWidth=1000)
    ds, arr = reference(path)
    for index, bits in ((0, 16), (1, 12)):
        found = dicomml.read_pixels(path, values="presentation", window=index,
                                    normalize=False, record=True)
        _close(found.array[0], apply_voi(arr, ds, index), 2 ** bits - 1)
        assert found.record["voi_lut"]["bits"] == bits
        assert "VOI LUT Sequence taken over Window Center / Width" in found.record["rules"]
    default = dicomml.read_pixels(path, values="presentation", normalize=False)[0]
    _close(default, apply_voi_lut(arr, ds), 65535)  # pydicom's default prefers the LUT
    named = dicomml.read_pixels(path, values="presentation", window="full", record=True)
    assert named.record["voi_lut"]["explanation"] == "FULL"


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize("signed,slope,intercept", [(False, 1.0, 0.0), (True, 0.5, -1024.0),
                                                    (False, -2.0, 100.0)])
def test_window_functions_with_rescale(tmp_path, function, signed, slope, intercept):
    image = stored_image(bits=12, signed=signed, seed=4)
    path = write(tmp_path / "w.dcm", image, signed=signed, RescaleSlope=slope,
                 RescaleIntercept=intercept, WindowCenter=[40.0, -300.0],
                 WindowWidth=[400.0, 1.0 if function == "LINEAR" else 0.5],
                 VOILUTFunction=function, WindowCenterWidthExplanation=["SOFT", "EDGE"])
    ds, arr = reference(path)
    modality = apply_modality_lut(arr, ds)
    for index in (0, 1):
        found = dicomml.read_pixels(path, values="presentation", window=index,
                                    normalize=False, record=True)
        low, high = found.record["output_range"]
        theirs = apply_windowing(modality.copy(), ds, index)
        if slope < 0:  # pydicom takes y_min = rescale(lowest stored), above y_max here:
            theirs = low + high - theirs  # its output runs the other way (PS3.3: min, max)
        _close(found.array[0], theirs, high - low)
        assert found.record["window"]["function"] == function


def test_presentation_lut_shape_inverse(tmp_path):
    image = stored_image(bits=12, seed=5)
    path = write(tmp_path / "i.dcm", image, photometric="MONOCHROME1",
                 PresentationLUTShape="INVERSE", WindowCenter=2048, WindowWidth=4096)
    ds, arr = reference(path)
    windowed = apply_windowing(apply_modality_lut(arr, ds), ds)
    expected = apply_presentation_lut(windowed, ds)  # max - value: the range starts at 0
    found = dicomml.read_pixels(path, values="presentation", normalize=False, record=True)
    _close(found.array[0], expected, 4095)
    assert found.record["inverted"] and found.record["rules"] == []


def test_monochrome1_and_its_monochrome2_twin_give_the_same_presentation(tmp_path):
    image = stored_image(bits=12, seed=6)
    common = {"RescaleSlope": 2.0, "RescaleIntercept": -1000.0, "WindowCenter": 1500.0,
              "WindowWidth": 3000.0, "VOILUTFunction": "LINEAR_EXACT"}  # symmetric
    mono2 = write(tmp_path / "m2.dcm", image, **common)
    mono1 = write(tmp_path / "m1.dcm", (4095 - image).astype(np.uint16),
                  photometric="MONOCHROME1", PresentationLUTShape="INVERSE",
                  **{**common, "WindowCenter": 2 * 4095 - 2000 - 1500.0})
    ours2 = dicomml.read_pixels(mono2, values="presentation")
    ours1 = dicomml.read_pixels(mono1, values="presentation")
    np.testing.assert_allclose(ours1, ours2, atol=1e-5)
    # a MONOCHROME1 file without Presentation LUT Shape (CR) is inverted all the same
    plain = write(tmp_path / "p1.dcm", (4095 - image).astype(np.uint16),
                  photometric="MONOCHROME1", **{**common,
                                                "WindowCenter": 2 * 4095 - 2000 - 1500.0})
    np.testing.assert_allclose(dicomml.read_pixels(plain, values="presentation"), ours2,
                               atol=1e-5)


# --- the peers' traps, pinned -------------------------------------------------------------------
def test_voi_lut_8_bit_entries(tmp_path):
    """8-bit VOI LUT entries on 8-bit stored values (pydicom indexes an 8-bit LUT through a
    uint8 array, so its reference holds only where stored - first stays below 256)."""
    image = stored_image(bits=8, seed=12)
    table = (255 - np.arange(256)).astype(np.uint16)
    path = write(tmp_path / "v8.dcm", image, bits=8, VOILUTSequence=lut_item(0, table, 8))
    ds, arr = reference(path)
    found = dicomml.read_pixels(path, values="presentation", normalize=False)[0]
    _close(found, apply_voi(arr, ds), 255)
    np.testing.assert_array_equal(found, 255 - image)


def test_trap_rescale_only_is_not_presentation(tmp_path):
    """MONAI's PydicomReader stops at the rescale: a viewer shows the window."""
    image = stored_image(bits=12, seed=7)
    path = write(tmp_path / "r.dcm", image, RescaleSlope=1.0, RescaleIntercept=-1024.0,
                 WindowCenter=40.0, WindowWidth=400.0)
    modality = dicomml.read_pixels(path, values="modality")[0]
    shown = dicomml.read_pixels(path, values="presentation")[0]
    rescale_only = (modality - modality.min()) / np.ptp(modality)
    assert np.abs(shown - rescale_only).max() > 0.4
    assert shown[modality <= 40 - 200].max() == 0 and shown[modality >= 40 + 200].min() == 1


def test_trap_monochrome1_left_inverted(tmp_path):
    """ITK-style readers leave MONOCHROME1 as stored: bone dark. Presentation inverts."""
    image = stored_image(bits=12, seed=8)
    mono1 = write(tmp_path / "m1.dcm", image, photometric="MONOCHROME1")
    shown = dicomml.read_pixels(mono1, values="presentation")[0]
    left = image / 4095.0
    np.testing.assert_allclose(shown, 1 - left, atol=1e-6)
    assert np.abs(shown - left).max() > 0.9


def test_trap_inversion_before_rescale(tmp_path):
    """Inverting stored values before the rescale shifts every value by the intercept (and
    with it the window): the inversion belongs after the VOI transform."""
    image = stored_image(bits=12, seed=9)
    path = write(tmp_path / "b.dcm", image, photometric="MONOCHROME1", RescaleSlope=1.0,
                 RescaleIntercept=-1024.0, WindowCenter=1000.0, WindowWidth=1000.0)
    ds, arr = reference(path)
    ours = dicomml.read_pixels(path, values="presentation", normalize=False, record=True)
    low, high = ours.record["output_range"]
    right = low + high - apply_windowing(apply_modality_lut(arr, ds), ds)
    _close(ours.array[0], right, high - low)
    early = apply_windowing(apply_modality_lut((4095 - arr).astype(np.uint16), ds), ds)
    assert np.abs(early - right).max() > 0.04 * (high - low)


# --- padding --------------------------------------------------------------------------------
@pytest.mark.parametrize("signed,value,limit", [(False, 0, None), (False, 10, 3),
                                                (True, -2000, None), (True, -2048, -1500)])
def test_padding_mask(tmp_path, signed, value, limit):
    image = stored_image(bits=12, signed=signed, seed=10)
    image[5:9, 5:9] = value
    extra = {} if limit is None else {"PixelPaddingRangeLimit": limit}
    ds = pydicom.Dataset()
    path = write(tmp_path / "pad.dcm", image, signed=signed, PixelPaddingValue=value, **extra)
    ds = pydicom.dcmread(path)
    low, high = sorted((value, value if limit is None else limit))
    expected = (image >= low) & (image <= high)
    found = dicomml.read_pixels(path, values="modality", record=True)
    assert found.padding_mask is not None and found.padding_mask[0, 5:9, 5:9].all()
    np.testing.assert_array_equal(found.padding_mask[0], expected)
    assert int(ds.PixelPaddingValue) == value
    none = dicomml.read_pixels(get_testdata_file("MR_small.dcm"), values="modality",
                               record=True)
    assert none.padding_mask is None
    ct = dicomml.read_pixels(get_testdata_file("CT_small.dcm"), record=True)  # -2000
    ct_ds, ct_arr = reference(get_testdata_file("CT_small.dcm"))
    np.testing.assert_array_equal(ct.padding_mask[0], ct_arr == -2000)


# --- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("width,function", [(0.0, "LINEAR"), (-5.0, "LINEAR"),
                                            (0.5, "LINEAR"), (0.0, "SIGMOID"),
                                            (-1.0, "LINEAR_EXACT")])
def test_bad_window_width_names_file_and_tag(tmp_path, width, function):
    path = write(tmp_path / "bad.dcm", stored_image(), WindowCenter=100.0, WindowWidth=width,
                 VOILUTFunction=function)
    with pytest.raises(InvalidTagError) as err:
        dicomml.read_pixels(path, values="presentation")
    assert err.value.path == path and err.value.tag == "WindowWidth"
    assert dicomml.read_pixels(path, values="modality").shape == (1, 32, 40)


def test_unknown_voi_function(tmp_path):
    path = write(tmp_path / "f.dcm", stored_image(), WindowCenter=100.0, WindowWidth=50.0,
                 VOILUTFunction="CUBIC")
    with pytest.raises(InvalidTagError) as err:
        dicomml.read_pixels(path, values="presentation")
    assert err.value.tag == "VOILUTFunction" and err.value.path == path


@pytest.mark.parametrize("sequence", ["VOILUTSequence", "ModalityLUTSequence"])
@pytest.mark.parametrize("declared,held", [(4096, 4000), (1000, 4096)])
def test_lut_descriptor_disagrees_with_data(tmp_path, sequence, declared, held):
    table = np.arange(held, dtype=np.uint16)
    path = write(tmp_path / "lut.dcm", stored_image(),
                 **{sequence: lut_item(0, table, 16, entries=declared)})
    with pytest.raises(InvalidTagError) as err:
        dicomml.read_pixels(path, values="presentation")
    assert err.value.path == path and err.value.tag == "LUTData"
    assert f"declares {declared}" in str(err.value)


def test_lut_bits_out_of_range(tmp_path):
    path = write(tmp_path / "bits.dcm", stored_image(),
                 VOILUTSequence=lut_item(0, np.arange(4096), 20))
    with pytest.raises(InvalidTagError) as err:
        dicomml.read_pixels(path, values="presentation")
    assert err.value.tag == "LUTDescriptor"


def test_presentation_lut_shape_on_colour_is_a_recorded_fallback(tmp_path):
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    rgb = np.random.default_rng(1).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 8, 10, 3, "RGB"
    ds.PlanarConfiguration, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 0, 8, 8, 7
    ds.PixelRepresentation, ds.PresentationLUTShape = 0, "INVERSE"
    ds.PixelData = rgb.tobytes()
    path = str(tmp_path / "rgb.dcm")
    ds.save_as(path, enforce_file_format=True)
    found = dicomml.read_pixels(path, values="presentation", record=True)
    np.testing.assert_allclose(found.array[0], rgb / 255.0, atol=1e-6)
    assert not found.record["inverted"]
    assert any("monochrome images only" in rule for rule in found.record["rules"])


def test_for_processing_without_voi_records_the_rule(tmp_path):
    image = stored_image(bits=14, seed=11)
    path = write(tmp_path / "fp.dcm", image, bits=14, PresentationIntentType="FOR PROCESSING")
    found = dicomml.read_pixels(path, values="presentation", record=True)
    np.testing.assert_allclose(found.array[0], image / (2 ** 14 - 1), atol=1e-6)
    assert found.record["window"] is None and "identity VOI" in found.record["rules"][0]


def test_values_is_checked():
    with pytest.raises(ValueError, match="values must be one of"):
        dicomml.read_pixels(get_testdata_file("CT_small.dcm"), values="display")


# --- read_many -----------------------------------------------------------------------------------
def test_read_many_values_from_paths_and_catalog(tmp_path):
    folder = tmp_path / "cr"
    folder.mkdir()
    paths = []
    for i in range(3):
        image = stored_image(bits=12, seed=20 + i)
        paths.append(write(folder / f"{i}.dcm", image, RescaleIntercept=-100.0 * i,
                           RescaleSlope=1.0, WindowCenter=1000.0 + 100 * i,
                           WindowWidth=800.0, PixelPaddingValue=0))
    expected = np.stack([dicomml.read_pixels(p, values="presentation")[0] for p in paths])
    from_paths = dicomml.read_many(paths, values="presentation", record=True)
    np.testing.assert_allclose(from_paths.array, expected, atol=1e-6)
    assert len(from_paths.record["per_file"]) == 3
    cat = dicomml.scan(folder)
    rows = cat.instances.sort_values("path")
    from_catalog = dicomml.read_many(rows, values="presentation", record=True)
    np.testing.assert_allclose(from_catalog.array, expected, atol=1e-6)
    assert from_catalog.padding_mask.shape == expected.shape
    modality = dicomml.read_many(rows, values="modality")
    np.testing.assert_allclose(modality, np.stack([dicomml.read_pixels(p, values="modality")[0]
                                                   for p in paths]))
