"""transforms.Windows (one channel per CT window, the VOI LINEAR formula) against pydicom's
apply_windowing, and the intensity transforms leaving padding (sample["padding_mask"]) out."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file
from pydicom.pixels.processing import apply_modality_lut, apply_windowing

import dicomml
from dicomml import synth
from dicomml import transforms as T


def _pydicom_window(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """pydicom's LINEAR window of modality values ``hu``, mapped to [0, 1]."""
    probe = pydicom.Dataset()
    probe.PhotometricInterpretation, probe.BitsStored, probe.PixelRepresentation = \
        "MONOCHROME2", 16, 1
    probe.RescaleSlope, probe.RescaleIntercept = 1.0, 0.0
    probe.WindowCenter, probe.WindowWidth = center, width
    low, high = -32768.0, 32767.0
    return (apply_windowing(hu.astype(np.float64), probe) - low) / (high - low)


def _ct_sample(tmp_path):
    """CT_small (Pixel Padding Value -2000) with a corner set to padding."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    pixels = ds.pixel_array.copy()
    pixels[:20, :30] = -2000
    ds.PixelData = pixels.tobytes()
    path = str(tmp_path / "ct.dcm")
    ds.save_as(path)
    found = dicomml.read_pixels(path, values="modality", record=True)
    ds = pydicom.dcmread(path)
    hu = apply_modality_lut(ds.pixel_array, ds)
    image = torch.from_numpy(found.array[None])  # (1, 1, rows, columns)
    mask = torch.from_numpy(found.padding_mask[None])
    return hu, {"image": image, "padding_mask": mask}


@pytest.mark.parametrize("names", [["brain", "subdural", "bone"], [(40, 80)],
                                   ["lung", (-50.5, 1.0), "soft_tissue"]])
def test_windows_equal_the_voi_linear_formula(tmp_path, names):
    hu, sample = _ct_sample(tmp_path)
    sample["image"] = sample["image"] + 200.0  # CT_small holds few values near brain windows
    hu = hu + 200.0
    out = T.Windows(names)({"image": sample["image"]})["image"]
    assert out.shape == (len(names), 1, *hu.shape) and out.dtype == torch.float32
    for channel, window in zip(out, names):
        center, width = T.WINDOW_PRESETS[window] if isinstance(window, str) else window
        expected = _pydicom_window(hu, center, width)
        np.testing.assert_allclose(channel[0].numpy(), expected, atol=1e-6)


def test_windows_exclude_padding_and_repeat_the_mask(tmp_path):
    hu, sample = _ct_sample(tmp_path)
    padding = sample["padding_mask"]
    assert padding.any()  # CT_small: Pixel Padding Value -2000
    out = T.Windows(["brain", "bone"])(sample)
    assert out["padding_mask"].shape == out["image"].shape
    assert (out["image"][out["padding_mask"]] == 0).all()
    kept = ~padding[0, 0].numpy()
    np.testing.assert_allclose(out["image"][1, 0].numpy()[kept],
                               _pydicom_window(hu, 400.0, 1800.0)[kept], atol=1e-6)


def test_windows_refuse_bad_windows():
    with pytest.raises(ValueError, match="unknown window preset"):
        T.Windows(["brian"])
    with pytest.raises(ValueError, match=">= 1"):
        T.Windows([(40, 0.5)])
    assert T.Windows(["brain"]).cache_key() != T.Windows(["bone"]).cache_key()


def test_znormalize_and_percentiles_leave_padding_out():
    x = torch.tensor([-2000.0] * 6 + [0.0, 10.0, 20.0, 30.0]).view(1, 1, 1, 10)
    mask = x == -2000.0
    sample = {"image": x, "padding_mask": mask}
    z = T.ZNormalize()(sample)["image"]
    kept = torch.tensor([0.0, 10.0, 20.0, 30.0])
    expected = (kept - kept.mean()) / kept.std(unbiased=False)
    np.testing.assert_allclose(z[~mask].numpy(), expected.numpy(), atol=1e-5)
    assert (z[mask] == 0).all()
    clip = T.ClipNormalize(0, 100, percentiles=True)(sample)["image"]
    np.testing.assert_allclose(clip[~mask].numpy(), [0.0, 1 / 3, 2 / 3, 1.0], atol=1e-6)
    without = T.ClipNormalize(0, 100, percentiles=True)({"image": x})["image"]
    assert not torch.allclose(without, clip)


def test_dataset_with_windows_caches_three_channels(tmp_path):
    common = {"modality": "CT", "shape": (3, 12, 10), "seed": 2}
    value = int(np.unique(synth.write_series(tmp_path / "probe", **common).stored)[2])
    truth = synth.write_series(tmp_path / "ct", **common, PixelPaddingValue=value)
    ds = dicomml.DicomSeriesDataset(tmp_path / "ct", cache_dir=tmp_path / "cache",
                                    transform=T.Windows(["brain", "subdural", "bone"]))
    sample = ds[0]
    assert sample["image"].shape == (3, 3, 12, 10)
    assert sample["padding_mask"].shape == (3, 3, 12, 10)
    padded = torch.from_numpy(truth.stored == value)
    assert padded.any() and (sample["image"][:, padded] == 0).all()
    hu = dicomml.load_series(tmp_path / "ct").array
    np.testing.assert_allclose(sample["image"][1].numpy()[~padded.numpy()],
                               _pydicom_window(hu, 80.0, 200.0)[~padded.numpy()], atol=1e-6)
    again = dicomml.DicomSeriesDataset(tmp_path / "ct", cache_dir=tmp_path / "cache",
                                       transform=T.Windows(["brain", "subdural", "bone"]))[0]
    assert torch.equal(again["image"], sample["image"])


def test_spatial_transforms_move_the_padding_mask_when_asked():
    image = torch.arange(8 * 10 * 12, dtype=torch.float32).view(1, 8, 10, 12)
    sample = {"image": image, "padding_mask": image < 300,
              "affine": torch.eye(4, dtype=torch.float64),
              "spacing": torch.ones(3, dtype=torch.float64)}
    keys = {"label_keys": ("label", "padding_mask")}
    for transform in (T.RandomFlip(axes=(1, 2), p=1.0, **keys), T.ResizeTo((4, 5, 6), **keys)):
        out = transform(sample)
        assert out["padding_mask"].dtype == torch.bool
        assert out["padding_mask"].shape == out["image"].shape
        if isinstance(transform, T.RandomFlip):
            assert torch.equal(out["padding_mask"], out["image"] < 300)
