"""nibabel / MONAI / TorchIO adapters: layout and geometry checked with nibabel and explicit
LPS->RAS algebra; adapters moved content and affine consistently (landmark stays put)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from test_transforms import (
    CENTRE_BLOB,
    blob_centroid_world,
    make_sample,
    oblique_affine,
    phantom,
    to_nifti,
)

from dicomml import interop
from dicomml import transforms as T
from dicomml.volume import Volume

tio = pytest.importorskip("torchio")
monai_transforms = pytest.importorskip("monai.transforms")

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def test_volume_to_scalar_image_equals_volume_to_nifti():
    affine, array = oblique_affine(), phantom()
    vol = Volume(array, affine)
    image = interop.volume_to_scalar_image(vol)
    reference = vol.to_nifti()
    np.testing.assert_array_equal(image.data[0].numpy(), reference.get_fdata(dtype=np.float32))
    np.testing.assert_allclose(image.affine, reference.affine, atol=1e-12)
    # explicit: voxel (column c, row r, slice k) of TorchIO = LPS point affine @ (k, r, c) flipped
    k, r, c = 3, 7, 11
    lps = affine @ [k, r, c, 1]
    np.testing.assert_allclose(image.affine @ [c, r, k, 1], LPS_TO_RAS @ lps, atol=1e-9)
    assert image.data[0, c, r, k] == array[k, r, c]


def test_to_metatensor_equals_volume_to_nifti_and_round_trips():
    affine, array = oblique_affine(), phantom()
    vol = Volume(array, affine)
    meta = interop.to_metatensor(vol)
    reference = vol.to_nifti()
    np.testing.assert_array_equal(meta[0].numpy(), reference.get_fdata(dtype=np.float32))
    np.testing.assert_allclose(meta.affine.numpy(), reference.affine, atol=1e-12)
    tensor, lps = interop.from_metatensor(meta)
    assert torch.equal(tensor[0], torch.from_numpy(array.copy()))
    np.testing.assert_allclose(lps.numpy(), affine, atol=1e-12)


def test_torchio_subject_round_trip_keeps_everything():
    sample = make_sample(phantom(), oblique_affine(), (phantom() > 500).astype(np.int64))
    subject = interop.to_torchio(sample)
    assert isinstance(subject["image"], tio.ScalarImage)
    assert isinstance(subject["label"], tio.LabelMap)
    back = interop.from_torchio(subject, reference=sample)
    for key in ("image", "label"):
        assert torch.equal(back[key], sample[key]) and back[key].dtype == sample[key].dtype
    np.testing.assert_allclose(back["affine"].numpy(), sample["affine"].numpy(), atol=1e-12)
    assert back["series_key"] == "phantom"


def test_torchio_adapter_resample_keeps_landmark_and_label_dtype():
    affine, array = oblique_affine(), phantom()
    sample = make_sample(array, affine, (array > 500).astype(np.int64))
    truth = (affine @ np.append(CENTRE_BLOB, 1.0))[:3]
    out = interop.TorchIOAdapter(tio.Resample(1.2))(sample)
    np.testing.assert_allclose(out["spacing"].numpy(), [1.2] * 3, atol=1e-6)
    assert out["label"].dtype == torch.int64 and out["series_key"] == "phantom"
    assert np.linalg.norm(blob_centroid_world(out) - truth) < 0.6


def test_torchio_adapter_is_reproducible_with_generator():
    sample = make_sample(phantom(), oblique_affine())
    adapter = interop.TorchIOAdapter(tio.RandomAffine(degrees=10))
    a = adapter(sample, torch.Generator().manual_seed(3))
    b = adapter(sample, torch.Generator().manual_seed(3))
    assert torch.equal(a["image"], b["image"])
    adapter = interop.TorchIOAdapter(tio.RandomNoise(std=5))
    c = adapter(sample, torch.Generator().manual_seed(3))
    assert not torch.equal(c["image"], sample["image"])


def test_monai_orientation_matches_our_orient():
    """MONAI works on NIfTI (i, j, k) = our (column, row, slice): its "RAS" is our "SAR"."""
    sample = make_sample(phantom(), oblique_affine(seed_axes="PIR"),
                         (phantom() > 500).astype(np.int64))
    orientation = monai_transforms.Orientationd(keys=["image", "label"], axcodes="RAS",
                                                labels=(("L", "R"), ("P", "A"), ("I", "S")))
    out = interop.MonaiAdapter(orientation)(sample)
    ours = T.Orient("SAR")(sample)
    assert torch.equal(out["image"], ours["image"])
    assert torch.equal(out["label"], ours["label"]) and out["label"].dtype == torch.int64
    np.testing.assert_allclose(out["affine"].numpy(), ours["affine"].numpy(), atol=1e-6)


def test_monai_spacing_keeps_landmark():
    affine, array = oblique_affine(), phantom()
    sample = make_sample(array, affine)
    truth = (affine @ np.append(CENTRE_BLOB, 1.0))[:3]
    out = interop.MonaiAdapter(monai_transforms.Spacingd(keys="image", pixdim=1.3))(sample)
    np.testing.assert_allclose(out["spacing"].numpy(), [1.3] * 3, atol=1e-5)
    assert np.linalg.norm(blob_centroid_world(out) - truth) < 0.65


def test_monai_adapter_seeded():
    sample = make_sample(phantom(), oblique_affine())
    adapter = interop.MonaiAdapter(monai_transforms.RandGaussianNoised(keys="image", prob=1.0))
    a = adapter(sample, torch.Generator().manual_seed(1))["image"]
    b = adapter(sample, torch.Generator().manual_seed(1))["image"]
    assert torch.equal(a, b) and not torch.equal(a, sample["image"])


def test_sample_to_nifti_after_transforms_lands_in_scanner_space(tmp_path):
    """A prediction saved after Orient + Resample overlays the original in world space."""
    affine, array = oblique_affine(), phantom()
    out = T.Compose([T.Orient("RAS"), T.Resample(1.0)])(make_sample(array, affine))
    path = tmp_path / "pred.nii.gz"
    nib.save(interop.sample_to_nifti(out), path)
    loaded = nib.load(path)
    original = to_nifti(array, affine)
    # independent: resample the original NIfTI onto the saved image's grid with nibabel
    import nibabel.processing as nibproc
    ref = nibproc.resample_from_to(original, loaded, order=1)
    data, ref_data = loaded.get_fdata(), ref.get_fdata()
    inside = nibproc.resample_from_to(
        nib.Nifti1Image(np.ones(array.shape[::-1]), original.affine), loaded, order=0,
        cval=0).get_fdata() > 0
    np.testing.assert_allclose(data[inside], ref_data[inside], atol=1.0)
    back = interop.nifti_to_sample(loaded)
    np.testing.assert_allclose(back["affine"].numpy(), out["affine"].numpy(), atol=1e-5)


def test_volume_to_sample_feeds_the_transforms():
    affine, array = oblique_affine(), phantom()
    vol = Volume(array.copy(), affine, metadata={"series_key": "s1"})
    sample = interop.volume_to_sample(vol)
    assert sample["image"].dtype == torch.float32 and tuple(sample["image"].shape) == (1, 20, 40, 36)
    np.testing.assert_array_equal(sample["image"][0].numpy(), array)
    np.testing.assert_allclose(sample["spacing"].numpy(), vol.spacing)
    assert sample["series_key"] == "s1"
    out = T.Orient("RAS")(sample)
    canonical = nib.as_closest_canonical(vol.to_nifti())
    np.testing.assert_array_equal(out["image"][0].numpy(), canonical.get_fdata(dtype=np.float32))


def test_volume_methods_delegate_to_interop_with_explicit_geometry():
    affine, array = oblique_affine(), phantom()
    vol = Volume(array, affine)
    image, meta = vol.to_torchio(), vol.to_metatensor()
    k, r, c = 2, 5, 9
    ras = LPS_TO_RAS @ affine @ [k, r, c, 1]
    np.testing.assert_allclose(image.affine @ [c, r, k, 1], ras, atol=1e-9)
    np.testing.assert_allclose(meta.affine.numpy() @ [c, r, k, 1], ras, atol=1e-9)
    assert image.data[0, c, r, k] == array[k, r, c] == meta[0, c, r, k]
