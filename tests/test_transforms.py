"""Deterministic transforms checked against independent references.

References: nibabel (``as_closest_canonical``, ``processing.resample_from_to``), SimpleITK
``Resample``, scipy.ndimage, and plain affine algebra written out here. LPS <-> RAS and
(slice, row, column) <-> NIfTI (column, row, slice) conversions are spelled out in this file
rather than taken from dicomml.
"""

from __future__ import annotations

import nibabel as nib
import nibabel.processing as nibproc
import numpy as np
import pytest
import scipy.ndimage as ndi
import SimpleITK as sitk
import torch
from scipy.spatial.transform import Rotation

from dicomml import transforms as T

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
OUR_TO_NIFTI_AXES = [2, 1, 0]  # NIfTI (i, j, k) = our (column, row, slice)


def oblique_affine(spacing=(2.5, 0.7, 0.8), degrees=(12.0, -7.0, 20.0), seed_axes="SPL",
                   origin=(-120.0, 80.0, -300.0)) -> np.ndarray:
    """An LPS affine whose (slice, row, column) axes point roughly to ``seed_axes`` then are
    rotated by ``degrees`` (x, y, z Euler): oblique, anisotropic."""
    base = {"S": [0, 0, 1], "I": [0, 0, -1], "P": [0, 1, 0], "A": [0, -1, 0],
            "L": [1, 0, 0], "R": [-1, 0, 0]}
    directions = np.array([base[c] for c in seed_axes], dtype=float).T
    rot = Rotation.from_euler("xyz", degrees, degrees=True).as_matrix()
    affine = np.eye(4)
    affine[:3, :3] = rot @ directions * np.asarray(spacing)
    affine[:3, 3] = origin
    return affine


CENTRE_BLOB = (9.3, 21.6, 15.2)  # voxel index (slice, row, column) of the phantom's landmark


def phantom(shape=(20, 40, 36), centre=CENTRE_BLOB, sigma=2.5, seed=0) -> np.ndarray:
    """Smooth random background plus a bright Gaussian blob (the landmark) at ``centre``."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    blob = np.exp(-sum((g - c) ** 2 for g, c in zip(grid, centre)) / (2 * sigma**2))
    noise = ndi.gaussian_filter(rng.random(shape), 2.0)
    return (100.0 * noise + 1000.0 * blob).astype(np.float32)


def make_sample(array: np.ndarray, affine: np.ndarray, label: np.ndarray | None = None) -> dict:
    sample = {"image": torch.from_numpy(array.copy())[None],
              "affine": torch.tensor(affine, dtype=torch.float64),
              "spacing": torch.tensor(np.linalg.norm(affine[:3, :3], axis=0)),
              "series_key": "phantom"}
    if label is not None:
        sample["label"] = torch.from_numpy(label.copy())[None]
    return sample


def to_nifti(array: np.ndarray, affine_lps: np.ndarray) -> nib.Nifti1Image:
    """Our (slice, row, column) array + LPS affine -> NIfTI (column, row, slice) + RAS."""
    perm = np.eye(4)[:, OUR_TO_NIFTI_AXES + [3]]  # column j of the result = our axis [2,1,0][j]
    return nib.Nifti1Image(array.transpose(2, 1, 0).copy(), LPS_TO_RAS @ affine_lps @ perm)


# --- Orient ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed_axes", ["SPL", "LSA", "PIR", "ILP"])
def test_orient_ras_matches_nibabel_canonical(seed_axes):
    affine = oblique_affine(seed_axes=seed_axes)
    array = phantom()
    sample = make_sample(array, affine)
    out = T.Orient("RAS")(sample)
    canonical = nib.as_closest_canonical(to_nifti(array, affine))
    # our (axis0, axis1, axis2) after Orient("RAS") are nibabel's canonical (i, j, k)
    np.testing.assert_array_equal(out["image"][0].numpy(), canonical.get_fdata(dtype=np.float32))
    np.testing.assert_allclose(LPS_TO_RAS @ out["affine"].numpy(), canonical.affine, atol=1e-9)
    assert T.axis_codes(out["affine"]) == "RAS"
    assert out["series_key"] == "phantom"


@pytest.mark.parametrize("code", ["LPS", "RAS", "SPL", "IAR", "PSL"])
def test_orient_round_trip_is_exact(code):
    affine = oblique_affine(seed_axes="PIR")
    label = (phantom() > 500).astype(np.int64)
    sample = make_sample(phantom(), affine, label)
    there = T.Orient(code)(sample)
    assert T.axis_codes(there["affine"]) == code
    back = T.Orient(T.axis_codes(sample["affine"]))(there)
    assert torch.equal(back["image"], sample["image"])
    assert torch.equal(back["label"], sample["label"])
    assert back["label"].dtype == torch.int64
    np.testing.assert_allclose(back["affine"].numpy(), affine, rtol=0, atol=1e-12)
    np.testing.assert_allclose(back["spacing"].numpy(), np.linalg.norm(affine[:3, :3], axis=0))


def test_orient_rejects_bad_codes():
    for code in ("RAX", "RRS", "RA"):
        with pytest.raises(ValueError):
            T.Orient(code)


# --- Resample / ResizeTo against nibabel, SimpleITK, scipy ----------------------------------
def nibabel_resample_onto(array, affine_in, affine_out, shape_out, order):
    """nibabel resamples ``array`` onto the grid (shape_out, affine_out); back to our axes."""
    target = (tuple(shape_out[i] for i in OUR_TO_NIFTI_AXES),
              LPS_TO_RAS @ affine_out @ np.eye(4)[:, OUR_TO_NIFTI_AXES + [3]])
    out = nibproc.resample_from_to(to_nifti(array, affine_in), target, order=order)
    return np.asarray(out.dataobj).transpose(2, 1, 0)


def sitk_resample_onto(array, affine_in, affine_out, shape_out):
    """SimpleITK (natively LPS; index order x=column, y=row, z=slice) linear resampling."""
    def image_geometry(affine):
        spacing = np.linalg.norm(affine[:3, :3], axis=0)
        direction = affine[:3, :3] / spacing
        xyz = [2, 1, 0]  # ITK axis order (column, row, slice)
        return spacing[xyz], direction[:, xyz], affine[:3, 3]

    img = sitk.GetImageFromArray(array.astype(np.float64))
    spacing, direction, origin = image_geometry(affine_in)
    img.SetSpacing(spacing.tolist())
    img.SetDirection(direction.flatten().tolist())
    img.SetOrigin(origin.tolist())
    ref = sitk.Image([int(shape_out[2]), int(shape_out[1]), int(shape_out[0])], sitk.sitkFloat64)
    spacing, direction, origin = image_geometry(affine_out)
    ref.SetSpacing(spacing.tolist())
    ref.SetDirection(direction.flatten().tolist())
    ref.SetOrigin(origin.tolist())
    out = sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, 0.0)
    return sitk.GetArrayFromImage(out)


def source_coordinates(affine_in, affine_out, shape_out):
    """Input voxel index of every output voxel: inv(A_in) @ A_out @ index (plain algebra)."""
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape_out], indexing="ij"), -1)
    m = np.linalg.inv(affine_in) @ affine_out
    return grid @ m[:3, :3].T + m[:3, 3]


def interior(coords, shape_in, margin=0.0):
    ok = np.ones(coords.shape[:-1], bool)
    for a, n in enumerate(shape_in):
        ok &= (coords[..., a] >= margin) & (coords[..., a] <= n - 1 - margin)
    return ok


@pytest.mark.parametrize("spacing", [1.0, (1.7, 0.55, 1.2)])
def test_resample_linear_matches_nibabel_and_sitk(spacing):
    affine, array = oblique_affine(), phantom()
    out = T.Resample(spacing=spacing)(make_sample(array, affine))
    got, new_affine = out["image"][0].numpy(), out["affine"].numpy()
    expected_spacing = np.broadcast_to(np.asarray(spacing, float), (3,))
    np.testing.assert_allclose(out["spacing"].numpy(), expected_spacing, rtol=1e-12)
    # same directions as before: only the voxel size changed
    np.testing.assert_allclose(new_affine[:3, :3] / expected_spacing,
                               affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0), atol=1e-12)
    ok = interior(source_coordinates(affine, new_affine, got.shape), array.shape)
    assert ok.mean() > 0.8
    ref_nib = nibabel_resample_onto(array, affine, new_affine, got.shape, order=1)
    ref_itk = sitk_resample_onto(array, affine, new_affine, got.shape)
    np.testing.assert_allclose(got[ok], ref_nib[ok], rtol=0, atol=1e-2)
    np.testing.assert_allclose(got[ok], ref_itk[ok], rtol=0, atol=1e-2)


def test_resample_bspline_matches_scipy_cubic():
    affine, array = oblique_affine(), phantom()
    out = T.Resample(spacing=(1.3, 1.1, 0.6), mode="bspline")(make_sample(array, affine))
    got = out["image"][0].numpy()
    coords = source_coordinates(affine, out["affine"].numpy(), got.shape)
    ref = ndi.map_coordinates(array.astype(np.float64), np.moveaxis(coords, -1, 0), order=3,
                              mode="mirror")
    ok = interior(coords, array.shape)
    np.testing.assert_allclose(got[ok], ref[ok], rtol=0, atol=1e-2)  # values up to ~1100
    # bspline interpolates: differs from linear where the signal curves
    linear = T.Resample(spacing=(1.3, 1.1, 0.6))(make_sample(array, affine))["image"][0].numpy()
    assert np.abs(linear - got)[ok].max() > 1.0


def test_resample_nearest_label_matches_nibabel_order0():
    affine = oblique_affine()
    label = (phantom() > 300).astype(np.int32) + (phantom(seed=1) > 60).astype(np.int32)
    sample = make_sample(phantom(), affine, label)
    out = T.Resample(spacing=(1.1, 0.9, 1.3), mode="nearest")(sample)
    got = out["label"][0].numpy()
    assert out["label"].dtype == torch.int32
    coords = source_coordinates(affine, out["affine"].numpy(), got.shape)
    ref = nibabel_resample_onto(label, affine, out["affine"].numpy(), got.shape, order=0)
    frac = np.abs(coords - np.round(coords))
    unambiguous = interior(coords, label.shape) & np.all(np.abs(frac - 0.5) > 1e-6, axis=-1)
    np.testing.assert_array_equal(got[unambiguous], ref[unambiguous])
    # image nearest too: values are a subset of the input values
    assert np.isin(out["image"].numpy(), sample["image"].numpy()).all()


def test_resize_to_keeps_field_of_view_and_matches_interpolate():
    affine, array = oblique_affine(), phantom()
    out = T.ResizeTo((15, 30, 50))(make_sample(array, affine))
    assert tuple(out["image"].shape) == (1, 15, 30, 50)
    old_spacing = np.linalg.norm(affine[:3, :3], axis=0)
    np.testing.assert_allclose(out["spacing"].numpy(),
                               old_spacing * np.array(array.shape) / np.array([15, 30, 50]))
    # the outer corner of the field of view (index -0.5) is the same world point
    corner = np.array([-0.5, -0.5, -0.5, 1.0])
    np.testing.assert_allclose(out["affine"].numpy() @ corner, affine @ corner, atol=1e-9)
    ok = interior(source_coordinates(affine, out["affine"].numpy(), (15, 30, 50)), array.shape)
    ref = nibabel_resample_onto(array, affine, out["affine"].numpy(), (15, 30, 50), order=1)
    np.testing.assert_allclose(out["image"][0].numpy()[ok], ref[ok], atol=1e-2)


# --- crops -----------------------------------------------------------------------------------
def test_crop_or_pad_moves_origin_by_whole_voxels():
    affine, array = oblique_affine(), phantom()
    label = (array > 400).astype(np.uint8)
    out = T.CropOrPad((10, 50, 30), fill=-5.0)(make_sample(array, affine, label))
    # slices: crop 5 from the start; rows: pad 5 before; columns: crop 3
    start = np.array([5, -5, 3])
    np.testing.assert_allclose(out["affine"].numpy()[:3, 3], affine[:3, :3] @ start + affine[:3, 3])
    img = out["image"][0].numpy()
    np.testing.assert_array_equal(img[:, 5:45, :], array[5:15, :, 3:33])
    assert (img[:, :5] == -5).all() and (img[:, 45:] == -5).all()
    assert out["label"].dtype == torch.uint8 and (out["label"][0, :, :5] == 0).all()


def test_crop_foreground_bounds_the_label():
    affine, array = oblique_affine(), phantom()
    label = np.zeros(array.shape, np.int64)
    label[4:9, 10:20, 7:8] = 2
    out = T.CropForeground(source="label", margin=(1, 0, 2))(make_sample(array, affine, label))
    assert tuple(out["image"].shape[1:]) == (7, 10, 5)
    np.testing.assert_array_equal(out["image"][0].numpy(), array[3:10, 10:20, 5:10])
    np.testing.assert_allclose(out["affine"].numpy() @ [0, 0, 0, 1], affine @ [3, 10, 5, 1])


# --- landmark through deterministic chains --------------------------------------------------
def blob_centroid_world(sample, threshold=400.0):
    """World (LPS mm) of the intensity-weighted centroid of the bright blob."""
    img = sample["image"][0].double().numpy()
    weights = np.clip(img - threshold, 0, None)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in img.shape], indexing="ij"), -1)
    centre = (idx * weights[..., None]).reshape(-1, 3).sum(0) / weights.sum()
    return (sample["affine"].numpy() @ np.append(centre, 1.0))[:3]


def test_landmark_world_position_survives_deterministic_chain():
    affine, array = oblique_affine(), phantom()
    sample = make_sample(array, affine)
    truth = (affine @ np.append(CENTRE_BLOB, 1.0))[:3]
    chain = T.Compose([T.Orient("RAS"), T.Resample(spacing=1.2), T.CropOrPad((30, 34, 40)),
                       T.Orient("IPL"), T.ResizeTo((25, 25, 25)), T.CropForeground()])
    out = chain(sample)
    half_voxel = out["spacing"].max().item() / 2
    assert np.linalg.norm(blob_centroid_world(out) - truth) < half_voxel


# --- intensity -------------------------------------------------------------------------------
def test_window_presets_and_formula():
    hu = torch.linspace(-1200, 1500, 101).view(1, 1, 1, -1)
    for name, (centre, width) in T.WINDOW_PRESETS.items():
        got = T.Window.preset(name)({"image": hu})["image"].numpy().ravel()
        expected = np.clip((hu.numpy().ravel() - (centre - width / 2)) / width, 0, 1)
        np.testing.assert_allclose(got, expected, atol=1e-6)
    assert T.WINDOW_PRESETS["lung"] == (-600.0, 1500.0)
    with pytest.raises(ValueError):
        T.Window.preset("liver-ish")


def test_clip_normalize_percentiles_match_numpy():
    x = torch.from_numpy(phantom())[None]
    out = T.ClipNormalize(1, 99, out_range=(-1, 1), percentiles=True)({"image": x})["image"]
    lo, hi = np.percentile(x.numpy(), [1, 99])
    expected = (np.clip(x.numpy(), lo, hi) - lo) / (hi - lo) * 2 - 1
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-4)


def test_z_normalize_with_mask_key():
    x = torch.from_numpy(phantom())[None]
    label = (x > 300).long()
    out = T.ZNormalize(mask="label")({"image": x, "label": label})["image"]
    inside = out[label.bool()].double()
    assert abs(inside.mean().item()) < 1e-4 and abs(inside.std(unbiased=False).item() - 1) < 1e-4
    everywhere = T.ZNormalize()({"image": x})["image"].double()
    assert abs(everywhere.mean().item()) < 1e-4


def test_to_dtype_keeps_geometry_float64():
    s = make_sample(phantom(), oblique_affine())
    out = T.ToDtype(torch.float16)(s)
    assert out["image"].dtype == torch.float16 and out["affine"].dtype == torch.float64


def test_transforms_do_not_modify_input():
    s = make_sample(phantom(), oblique_affine(), (phantom() > 500).astype(np.int64))
    before = {k: v.clone() for k, v in s.items() if isinstance(v, torch.Tensor)}
    T.Compose([T.Orient("RAS"), T.Resample(1.5), T.Window(40, 400), T.ZNormalize()])(s)
    for key, value in before.items():
        assert torch.equal(s[key], value)


def test_bad_sample_shape_raises():
    with pytest.raises(ValueError, match="slices, rows, columns"):
        T.Resample(1.0)({"image": torch.zeros(4, 4, 4), "affine": torch.eye(4).double()})


# --- real DICOM files end to end ---------------------------------------------------------------
def test_real_dicom_series_through_transforms_matches_synth_ground_truth(tmp_path):
    """Synthetic oblique CT written as DICOM files, read by the loader, Orient + Resample;
    compared with the writer's ground truth (its own array and affine) resampled by nibabel
    onto the grid our final affine describes."""
    from dicomml import synth
    from dicomml.loader import load_series

    truth = synth.write_series(tmp_path / "ct", modality="CT", shape=(12, 24, 20),
                               spacing=(2.0, 0.9, 1.1), orientation="oblique", seed=3)
    vol = load_series(tmp_path / "ct")
    sample = {"image": torch.from_numpy(np.array(vol.array, dtype=np.float32))[None],
              "affine": torch.tensor(np.array(vol.affine))}
    out = T.Compose([T.Orient("RAS"), T.Resample(1.3)])(sample)
    got = out["image"][0].numpy()
    array = truth.array.astype(np.float64)
    ref = nibabel_resample_onto(array, truth.affine, out["affine"].numpy(), got.shape, order=1)
    coords = source_coordinates(truth.affine, out["affine"].numpy(), got.shape)
    ok = interior(coords, array.shape)
    assert ok.mean() > 0.5
    value_range = array.max() - array.min()
    assert np.abs(got[ok] - ref[ok]).max() < 1e-4 * value_range
    # the check has teeth: the truth placed one slice further does not match
    shifted = truth.affine.copy()
    shifted[:3, 3] += truth.affine[:3, 0]
    wrong = nibabel_resample_onto(array, shifted, out["affine"].numpy(), got.shape, order=1)
    assert np.abs(got[ok] - wrong[ok]).max() > 0.05 * value_range


def test_resample_to_the_current_spacing_keeps_the_grid():
    """Spacings read back from a rotated affine carry float noise; the grid must not lose a
    voxel to it, and resampling to the same spacing is (numerically) the identity."""
    affine, array = oblique_affine(spacing=(0.7, 0.7, 0.7)), phantom()
    out = T.Resample(spacing=0.7)(make_sample(array, affine))
    assert tuple(out["image"].shape[1:]) == array.shape
    np.testing.assert_allclose(out["image"][0].numpy(), array, atol=1e-3)
    np.testing.assert_allclose(out["affine"].numpy(), affine, atol=1e-9)


# --- contract with the dataset cache (deterministic / cache_key / pickling) --------------------
def test_cache_key_names_every_parameter_and_flags_randomness():
    import pickle
    import subprocess
    import sys

    a, b = T.Resample(1.0), T.Resample(1.0, mode="bspline")
    assert a.deterministic and a.cache_key() != b.cache_key()
    assert T.Resample(1.0, image_keys=("ct",)).cache_key() != a.cache_key()
    assert "spacing=(1.0, 1.0, 1.0)" in a.cache_key()
    assert T.ToDtype(torch.float16).cache_key() != T.ToDtype(torch.float32).cache_key()
    assert not T.RandomFlip().deterministic and not T.Compose([a, T.RandomGamma()]).deterministic
    assert T.Compose([a, T.Window(40, 400)]).deterministic
    assert not T.ZNormalize(mask=lambda x: x > 0).deterministic  # cannot be named: never cached
    assert T.ZNormalize(mask="label").deterministic
    chain = T.Compose([T.Orient("RAS"), a, T.Window.preset("lung"), T.RandomAffine()])
    clone = pickle.loads(pickle.dumps(chain))
    assert clone.transforms[1].cache_key() == a.cache_key()
    # the key is the same in another interpreter
    code = "from dicomml import transforms as T; print(T.Resample(1.0).cache_key())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert other == a.cache_key()


def test_class_id_labels_pass_through_but_bad_voxel_maps_raise():
    s = make_sample(phantom(), oblique_affine())
    s["label"] = torch.tensor(3)
    out = T.Compose([T.Orient("RAS"), T.Resample(2.0), T.RandomAffine(p=1.0)])(s)
    assert out["label"] is s["label"]
    s["label"] = torch.zeros(20, 40, 36, dtype=torch.long)  # a voxel map without its channel
    with pytest.raises(ValueError, match="slices, rows, columns"):
        T.Orient("RAS")(s)


def test_orient_sheared_gantry_tilt_matches_nibabel():
    affine = oblique_affine(degrees=(0.0, 0.0, 0.0))
    affine[:3, 0] += 0.27 * affine[:3, 1]  # slices step along the rows too (tilted gantry)
    array = phantom()
    out = T.Orient("RAS")(make_sample(array, affine))
    canonical = nib.as_closest_canonical(to_nifti(array, affine))
    np.testing.assert_array_equal(out["image"][0].numpy(), canonical.get_fdata(dtype=np.float32))
    np.testing.assert_allclose(LPS_TO_RAS @ out["affine"].numpy(), canonical.affine, atol=1e-9)


def test_resample_none_keeps_an_axis():
    affine, array = oblique_affine(), phantom()
    out = T.Resample(spacing=(None, 1.4, 1.4))(make_sample(array, affine))
    assert out["image"].shape[1] == array.shape[0]
    np.testing.assert_allclose(out["spacing"].numpy()[0], np.linalg.norm(affine[:3, 0]))
    np.testing.assert_allclose(out["affine"].numpy()[:3, 0], affine[:3, 0], atol=1e-12)
