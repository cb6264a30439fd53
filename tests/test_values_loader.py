"""load_series(values=...): the stages of dicomml.decode.stages on volumes (per plane, per
frame for enhanced objects), the padding mask, the older values= spelling, and the Datasets'
values= pass-through with sample["padding_mask"] and sample["provenance"]["values"]."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import torch
from pydicom.pixels.processing import apply_modality_lut, apply_windowing
from values_files import lut_item, stored_image, write

import dicomml
from dicomml import synth

CT = {"modality": "CT", "shape": (4, 12, 10), "bits_stored": 12, "slope": 1.0,
      "intercept": -1024.0, "seed": 5}


def _pydicom_presentation(path, index=0):
    """Presentation values of one file by pydicom, [0, 1] over the modality output range
    (MONOCHROME2 files only)."""
    ds = pydicom.dcmread(path)
    windowed = apply_windowing(apply_modality_lut(ds.pixel_array, ds), ds, index)
    low = 0 * ds.RescaleSlope + ds.RescaleIntercept
    high = (2 ** ds.BitsStored - 1) * ds.RescaleSlope + ds.RescaleIntercept
    return (windowed - low) / (high - low)


def test_presentation_volume_equals_pydicom_per_file(tmp_path):
    synth.write_series(tmp_path, **CT)
    vol = dicomml.load_series(tmp_path, values="presentation")
    assert vol.array.dtype == np.float32
    files = vol.metadata["provenance"]["files"]
    expected = np.stack([_pydicom_presentation(path) for path in files])
    np.testing.assert_allclose(vol.array, expected, atol=1e-5)
    record = vol.metadata["values"]
    assert record["stage"] == "presentation" and record["window"]["center"] == 40.0
    assert vol.metadata["provenance"]["values"] == record
    raw = dicomml.load_series(tmp_path, values="presentation", normalize=False)
    assert raw.metadata["values"]["output_range"] == [-1024.0, 3071.0]
    pair = dicomml.load_series(tmp_path, values="presentation", window=(40.0, 400.0))
    np.testing.assert_array_equal(pair.array, vol.array)


def test_monochrome1_twin_volumes_have_equal_presentation(tmp_path):
    exact = {"VOILUTFunction": "LINEAR_EXACT"}
    synth.write_series(tmp_path / "m2", **CT, **exact)
    # the MONOCHROME1 twin: stored values mirrored (synth), window mirrored with them
    synth.write_series(tmp_path / "m1", **CT, photometric="MONOCHROME1", **exact,
                       WindowCenter=(0 - 1024) + (4095 - 1024) - 40.0, WindowWidth=400.0)
    two = dicomml.load_series(tmp_path / "m2", values="presentation")
    one = dicomml.load_series(tmp_path / "m1", values="presentation")
    np.testing.assert_allclose(one.array, two.array, atol=1e-5)
    assert one.metadata["values"]["inverted"] and not two.metadata["values"]["inverted"]
    # stored and modality stages keep dicomml's volume rule: MONOCHROME1 mirrored
    np.testing.assert_allclose(dicomml.load_series(tmp_path / "m1").array,
                               dicomml.load_series(tmp_path / "m2").array, atol=1e-3)


def test_stored_stage_and_the_older_spellings(tmp_path):
    truth = synth.write_series(tmp_path, **CT)
    stored = dicomml.load_series(tmp_path, values="stored")
    np.testing.assert_array_equal(stored.array, truth.stored)
    np.testing.assert_array_equal(stored.array, dicomml.load_series(tmp_path, dtype=None).array)
    assert stored.metadata["values"]["stage"] == "stored"
    with pytest.warns(DeprecationWarning, match="scaling='display'"):
        shown = dicomml.load_series(tmp_path, values="display")
    assert shown.metadata["values"]["stage"] == "modality"
    with pytest.raises(ValueError, match="float dtype"):
        dicomml.load_series(tmp_path, values="presentation", dtype=None)


@pytest.mark.parametrize("limit", [None, 40])
def test_padding_mask_of_a_volume(tmp_path, limit):
    truth = synth.write_series(tmp_path / "probe", **CT)
    value = int(np.unique(truth.stored)[3])
    extra = {"PixelPaddingValue": value}
    if limit is not None:
        extra["PixelPaddingRangeLimit"] = limit
    truth = synth.write_series(tmp_path / "pad", **CT, **extra)
    vol = dicomml.load_series(tmp_path / "pad")
    low, high = sorted((value, value if limit is None else limit))
    expected = (truth.stored >= low) & (truth.stored <= high)
    assert expected.any()
    np.testing.assert_array_equal(vol.metadata["padding_mask"], expected)
    np.testing.assert_allclose(vol.array, truth.array, atol=1e-3)  # values unchanged
    plain = dicomml.load_series(tmp_path / "probe")
    assert plain.metadata["padding_mask"] is None


def test_enhanced_per_frame_windows(tmp_path):
    """Frame VOI LUT per frame (PS3.3 C.7.6.16.2.10): each frame its own window."""
    truth = synth.write_series(tmp_path / "in", **CT, multiframe=True)
    (path,) = truth.paths
    ds = pydicom.dcmread(path)
    for i, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        voi = pydicom.Dataset()
        voi.WindowCenter, voi.WindowWidth = 10.0 * i, 100.0 + 50 * i
        item.FrameVOILUTSequence = [voi]
    if "FrameVOILUTSequence" in ds.SharedFunctionalGroupsSequence[0]:
        del ds.SharedFunctionalGroupsSequence[0].FrameVOILUTSequence
    out = tmp_path / "out"
    out.mkdir()
    ds.save_as(out / "enhanced.dcm")
    vol = dicomml.load_series(out, values="presentation", normalize=False)
    modality = dicomml.load_series(out)
    record = vol.metadata["values"]
    assert record["distinct"] == 4 and len(record["per_plane"]) == 4
    centres = {r["window"]["center"] for r in record["per_plane"]}
    assert centres == {0.0, 10.0, 20.0, 30.0}
    read = dicomml.read_pixels(out / "enhanced.dcm", values="presentation", normalize=False,
                               record=True)  # per frame too, in stored frame order
    assert [r["window"]["center"] for r in read.record["per_frame"]] == [0.0, 10.0, 20.0, 30.0]
    # each slice equals the PS3.3 LINEAR window of its own frame (via pydicom's formula)
    by_position = {}
    for i, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        z = float(item.PlanePositionSequence[0].ImagePositionPatient[2])
        by_position[round(z, 3)] = (10.0 * i, 100.0 + 50 * i)
    for k in range(vol.array.shape[0]):
        z = round(float(vol.affine[2, 3] + k * vol.affine[2, 0]), 3)
        center, width = by_position[z]
        probe = pydicom.Dataset()
        probe.PhotometricInterpretation, probe.BitsStored = "MONOCHROME2", 12
        probe.PixelRepresentation, probe.RescaleSlope, probe.RescaleIntercept = 0, 1.0, -1024.0
        probe.WindowCenter, probe.WindowWidth = center, width
        expected = apply_windowing(np.asarray(modality.array[k], np.float64), probe)
        np.testing.assert_allclose(vol.array[k], expected, atol=1e-5 * 4095)


def test_modality_lut_sequence_in_a_volume(tmp_path):
    image = stored_image(bits=12, seed=3)
    table = (np.arange(3000) * 3).astype(np.uint16)
    path = write(tmp_path / "m.dcm", image, ModalityLUTSequence=lut_item(100, table, 16),
                 WindowCenter=5000.0, WindowWidth=6000.0)
    ds = pydicom.dcmread(path)
    vol = dicomml.load_series(path)
    np.testing.assert_allclose(vol.array[0], apply_modality_lut(ds.pixel_array, ds))
    assert vol.metadata["values"]["modality"]["lut"]["entries"] == 3000
    shown = dicomml.load_series(path, values="presentation")
    np.testing.assert_allclose(shown.array, dicomml.read_pixels(path, values="presentation"),
                               atol=1e-6)


# --- datasets ------------------------------------------------------------------------------------
def test_datasets_take_values_and_serve_padding_mask(tmp_path):
    value = int(np.unique(synth.write_series(tmp_path / "probe", **CT).stored)[2])
    truth = synth.write_series(tmp_path / "data", **CT, PixelPaddingValue=value)
    truth_mask = truth.stored == value
    assert truth_mask.any()
    cache = tmp_path / "cache"
    ds = dicomml.DicomSeriesDataset(tmp_path / "data", values="presentation", cache_dir=cache)
    sample = ds[0]
    expected = dicomml.load_series(tmp_path / "data", values="presentation")
    np.testing.assert_allclose(sample["image"][0].numpy(), expected.array)
    assert sample["provenance"]["values"]["stage"] == "presentation"
    assert sample["padding_mask"].dtype == torch.bool
    assert sample["padding_mask"].shape == sample["image"].shape
    np.testing.assert_array_equal(sample["padding_mask"][0].numpy(), truth_mask)
    again = dicomml.DicomSeriesDataset(tmp_path / "data", values="presentation",
                                       cache_dir=cache)[0]  # from the cache
    assert torch.equal(again["padding_mask"], sample["padding_mask"])
    modality = dicomml.DicomSeriesDataset(tmp_path / "data", cache_dir=cache)[0]
    assert modality["provenance"]["values"]["stage"] == "modality"
    assert not torch.equal(modality["image"], sample["image"])
    slices = dicomml.DicomSliceDataset(tmp_path / "data", values="presentation")
    one = slices[2]
    np.testing.assert_allclose(one["image"][0].numpy(), expected.array[2])
    np.testing.assert_array_equal(one["padding_mask"][0].numpy(), truth_mask[2])
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2,
                                         collate_fn=dicomml.collate)
    batch = next(iter(loader))
    assert batch["padding_mask"].shape == (1, *sample["image"].shape)


@pytest.mark.parametrize("photometric", ["RGB", "PALETTE COLOR"])
def test_colour_presentation_is_the_samples_over_their_range(tmp_path, photometric):
    synth.write_colour_series(tmp_path, shape=(3, 8, 6), photometric=photometric)
    modality = dicomml.load_series(tmp_path)
    shown = dicomml.load_series(tmp_path, values="presentation")
    top = 65535.0 if photometric == "PALETTE COLOR" else 255.0
    np.testing.assert_allclose(shown.array, modality.array / top, atol=1e-6)
    assert 0 <= shown.array.min() and shown.array.max() <= 1
    assert "colour image: no Modality or VOI transform applies" in \
        shown.metadata["values"]["rules"]


def test_a_bad_window_names_its_file_and_is_skipped_by_the_dataset(tmp_path):
    from dicomml.errors import InvalidTagError

    synth.write_series(tmp_path / "good", **CT)
    truth = synth.write_series(tmp_path / "bad", **{**CT, "seed": 6})
    broken = sorted(truth.paths)[1]
    ds = pydicom.dcmread(broken)
    ds.WindowWidth = 0
    ds.save_as(broken)
    with pytest.raises(InvalidTagError) as err:
        dicomml.load_series(tmp_path / "bad", values="presentation")
    assert err.value.path == str(broken) and err.value.tag == "WindowWidth"
    assert dicomml.load_series(tmp_path / "bad").array.shape == (4, 12, 10)  # modality: fine
    data = dicomml.DicomSeriesDataset(tmp_path, values="presentation", on_error="skip")
    batch = dicomml.collate([data[i] for i in range(len(data))])
    assert batch["image"].shape[0] == 1 and len(batch["failed"]) == 1
    assert batch["failed"][0]["error_type"] == "InvalidTagError"
