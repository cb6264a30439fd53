"""The geometry conventions have one home (dicomml.geometry) and every layer agrees with it.

References are independent of our code: nibabel's ``aff2axcodes``, ``io_orientation``,
``ornt_transform``, ``apply_orientation``, ``inv_ornt_aff`` and ``affines.voxel_sizes``,
and the definition of NIfTI's index order written out here with explicit index vectors.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from nibabel import orientations as nio
from nibabel.affines import voxel_sizes

from dicomml import geometry, viz
from dicomml import transforms as T
from dicomml.dataset._core import volume_sample
from dicomml.interop import layout
from dicomml.transforms._base import spacing_of, with_geometry
from dicomml.volume import Volume

FLIP_XY = np.diag([-1.0, -1.0, 1.0, 1.0])  # LPS <-> RAS, written out independently


def _rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def orthogonal_affine(seed: int) -> np.ndarray:
    """Random rotation (any obliquity), random flips, spacing 0.3..5 mm, random origin."""
    rng = np.random.default_rng(seed)
    affine = np.eye(4)
    affine[:3, :3] = _rotation(rng) * rng.choice([-1, 1], 3) * rng.uniform(0.3, 5.0, 3)
    affine[:3, 3] = rng.normal(scale=100, size=3)
    return affine


def tilted_affine(seed: int) -> np.ndarray:
    """Near-axis (up to 20 deg off) rotation with a gantry-tilt shear of up to 30 deg."""
    rng = np.random.default_rng(seed)
    axes = np.eye(3)[:, rng.permutation(3)] * rng.choice([-1, 1], 3)
    angle = np.deg2rad(rng.uniform(-20, 20))
    c, s = np.cos(angle), np.sin(angle)
    rotation = axes @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    spacing = rng.uniform(0.3, 5.0, 3)
    affine = np.eye(4)
    affine[:3, :3] = rotation * spacing
    tilt = np.deg2rad(rng.uniform(-30, 30))
    affine[:3, 0] = spacing[0] * (np.cos(tilt) * rotation[:, 0] + np.sin(tilt) * rotation[:, 1])
    affine[:3, 3] = rng.normal(scale=100, size=3)
    return affine


AFFINES = [orthogonal_affine(s) for s in range(40)] + [tilted_affine(s) for s in range(40)]


@pytest.mark.parametrize("affine", AFFINES)
def test_every_layer_names_the_axes_as_nibabel_does(affine):
    expected = nib.aff2axcodes(FLIP_XY @ affine)  # RAS frame, same patient letters
    code = "".join(expected)
    assert geometry.axis_codes(affine) == expected
    assert geometry.axis_codes(FLIP_XY @ affine, "RAS") == expected
    assert geometry.orientation_code(affine) == code
    assert viz.orientation_letters(affine) == code
    assert Volume(np.zeros((2, 2, 2), np.float32), affine).orientation == code
    assert T.axis_codes(torch.from_numpy(affine)) == code
    assert T.axis_codes(torch.from_numpy(affine).float()) == code  # any dtype


@pytest.mark.parametrize("affine", AFFINES[::4])
@pytest.mark.parametrize("target", ["RAS", "LPS", "SPL", "IPL", "ASR"])
def test_reorientation_matches_nibabel(affine, target):
    array = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    ornt = nio.ornt_transform(nio.io_orientation(FLIP_XY @ affine), nio.axcodes2ornt(target))
    expected = nio.apply_orientation(array, ornt)
    expected_affine = affine @ nio.inv_ornt_aff(ornt, array.shape)  # index map: any frame

    perm, flips = geometry.reorientation(affine, target)
    ours = np.transpose(array, perm)
    ours = np.flip(ours, [i for i, f in enumerate(flips) if f])
    np.testing.assert_array_equal(ours, expected)
    out, out_affine = viz.reorient(array, affine, target)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_allclose(out_affine, expected_affine, atol=1e-9)
    sample = {"image": torch.from_numpy(array)[None], "affine": torch.from_numpy(affine)}
    oriented = T.Orient(target)(sample)
    np.testing.assert_array_equal(oriented["image"][0].numpy(), expected)
    np.testing.assert_allclose(oriented["affine"].numpy(), expected_affine, atol=1e-9)


@pytest.mark.parametrize("affine", AFFINES)
def test_every_layer_takes_spacing_as_nibabel_voxel_sizes(affine):
    expected = voxel_sizes(affine)
    np.testing.assert_allclose(geometry.spacing_from_affine(affine), expected, rtol=1e-14)
    np.testing.assert_allclose(Volume(np.zeros((2, 2, 2)), affine).spacing, expected, rtol=1e-14)
    tensor = torch.from_numpy(affine)
    assert spacing_of(tensor).dtype == torch.float64
    np.testing.assert_allclose(spacing_of(tensor).numpy(), expected, rtol=1e-14)
    image = torch.zeros(1, 2, 2, 2)
    np.testing.assert_allclose(with_geometry({"image": image}, tensor)["spacing"].numpy(),
                               expected, rtol=1e-14)
    np.testing.assert_allclose(layout.volume_to_sample(Volume(np.zeros((2, 2, 2)), affine))
                               ["spacing"].numpy(), expected, rtol=1e-14)


@pytest.mark.parametrize("affine", AFFINES[::5])
def test_nifti_affine_maps_nifti_indices_to_ras(affine):
    """NIfTI's voxel (i, j, k) = our (column, row, slice); its affine outputs RAS mm."""
    rng = np.random.default_rng(1)
    nifti = geometry.lps_to_nifti_affine(affine)
    for k, r, c in rng.integers(0, 50, size=(5, 3)):
        np.testing.assert_allclose(nifti @ [c, r, k, 1], FLIP_XY @ affine @ [k, r, c, 1],
                                   atol=1e-9)
    assert nib.aff2axcodes(nifti) == tuple(reversed(geometry.axis_codes(affine)))
    np.testing.assert_array_equal(geometry.nifti_to_lps_affine(nifti), affine)
    np.testing.assert_array_equal(Volume(np.zeros((2, 2, 2)), affine).nifti_affine(), nifti)
    _, tensor_affine = layout.to_nifti_layout(torch.zeros(1, 2, 2, 2), torch.from_numpy(affine))
    np.testing.assert_array_equal(tensor_affine.numpy(), nifti)
    _, back = layout.from_nifti_layout(torch.zeros(1, 2, 2, 2), tensor_affine)
    np.testing.assert_array_equal(back.numpy(), affine)
    np.testing.assert_array_equal(geometry.lps_to_ras(affine), FLIP_XY @ affine)
    np.testing.assert_array_equal(geometry.ras_to_lps(FLIP_XY @ affine), affine)


def test_degenerate_affines_and_bad_codes_raise_the_same_everywhere():
    flat = np.diag([0.0, 1.0, 1.0, 1.0])
    for call in (geometry.axis_codes, geometry.orientation_code, viz.orientation_letters,
                 lambda a: T.axis_codes(torch.from_numpy(a)),
                 lambda a: geometry.reorientation(a, "RAS")):
        with pytest.raises(ValueError, match="zero-length"):
            call(flat)
    with np.errstate(invalid="ignore"):  # is_sheared divides by the zero length
        assert "orientation=None" in repr(Volume(np.zeros((2, 2, 2)), flat))
    for code in ("RAX", "RRS", "RA", "LLS"):
        with pytest.raises(ValueError):
            geometry.parse_code(code)
        with pytest.raises(ValueError):
            viz.reorient(np.zeros((2, 2, 2)), np.eye(4), code)


def test_volume_sample_is_the_one_volume_to_sample_rule():
    affine = orthogonal_affine(3)
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    volume = Volume(array.copy(), affine, metadata={"series_key": "s1"})
    copied = layout.volume_to_sample(volume)
    assert list(copied) == ["image", "affine", "spacing", "series_key"]
    bare = volume_sample(volume)
    assert list(bare) == ["image", "affine", "spacing"]
    assert torch.equal(bare["image"], copied["image"])
    copied["image"] += 1  # a copy: the caller's volume stays as it was, and read-only
    np.testing.assert_array_equal(volume.array, array)
    assert not volume.array.flags.writeable
    dataset = volume_sample(volume, {"series_key": "s1", "PatientID": "p"}, {"Modality": "CT"})
    assert list(dataset) == ["image", "affine", "spacing", "series_key", "PatientID", "metadata"]
    np.testing.assert_array_equal(dataset["image"][0].numpy(), array)
    for key in ("affine", "spacing"):
        assert torch.equal(dataset[key], copied[key]) and dataset[key].dtype == torch.float64
    np.testing.assert_array_equal(dataset["affine"].numpy(), affine)
