"""Random transforms: geometry kept true (landmark, nibabel resampling onto the new grid),
labels integer and aligned, seeded reproducibility, and real DataLoader worker processes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from test_transforms import (
    blob_centroid_world,
    interior,
    make_sample,
    nibabel_resample_onto,
    oblique_affine,
    phantom,
    source_coordinates,
)

from dicomml import transforms as T

CENTRE = (9.3, 21.6, 15.2)


def sphere_label(shape=(20, 40, 36), centre=CENTRE, radius=5.0) -> np.ndarray:
    grid = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return (sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2).astype(np.int64)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def full_chain(mode="linear"):
    return T.Compose([
        T.RandomFlip(axes=(0, 1, 2), p=0.5),
        T.RandomRot90(axes=(1, 2), p=0.7),
        T.RandomAffine(degrees=20, scale=(0.85, 1.2), shear=0.1, translation=3.0, mode=mode,
                       p=1.0),
        T.RandomCrop((16, 30, 30), p=1.0),
        T.RandomGamma(p=0.5), T.RandomContrast(p=0.5), T.RandomNoise(std=(0, 5), p=0.5),
        T.RandomBlur(sigma=(0, 0.5), p=0.5), T.RandomBiasField(0.05, p=0.5),
        T.RandomIntensityShift((-5, 5), p=0.5),
    ])


@pytest.mark.parametrize("seed", range(6))
def test_landmark_stays_at_its_world_position_through_random_chain(seed):
    affine, array = oblique_affine(), phantom()
    sample = make_sample(array, affine, sphere_label(radius=1.5))
    truth = (affine @ np.append(CENTRE, 1.0))[:3]
    chain = T.Compose([T.Orient("RAS"), T.Resample(1.1), T.RandomFlip(p=0.5),
                       T.RandomRot90(axes=(0, 2), p=0.7),
                       T.RandomAffine(degrees=25, scale=(0.8, 1.25), shear=0.15,
                                      translation=4.0, fill=0.0, p=1.0),
                       T.RandomLabelCrop((36, 36, 36), pos_fraction=1.0)])
    out = chain(sample, gen(seed))
    half_voxel = out["spacing"].max().item() / 2
    assert np.linalg.norm(blob_centroid_world(out) - truth) < half_voxel
    # label travelled with the image: its centroid is at the same world point
    lab = out["label"][0].numpy()
    assert out["label"].dtype == torch.int64 and set(np.unique(lab)) <= {0, 1}
    centre = np.argwhere(lab).mean(0)
    assert np.linalg.norm((out["affine"].numpy() @ np.append(centre, 1))[:3] - truth) < 1.0


@pytest.mark.parametrize("mode", ["linear", "bspline"])
def test_random_affine_output_equals_resampling_onto_the_new_affine(mode):
    """The output must be the input resampled onto the grid its new affine describes — checked
    with nibabel (linear) / scipy cubic spline, which only see the two affines."""
    affine, array = oblique_affine(), phantom()
    t = T.RandomAffine(degrees=30, scale=(0.8, 1.2), shear=0.2, translation=5.0, mode=mode,
                       fill=0.0)
    out = t(make_sample(array, affine), gen(3))
    got = out["image"][0].numpy()
    coords = source_coordinates(affine, out["affine"].numpy(), got.shape)
    ok = interior(coords, array.shape)
    assert ok.mean() > 0.5
    if mode == "linear":
        ref = nibabel_resample_onto(array, affine, out["affine"].numpy(), got.shape, order=1)
    else:
        ref = ndi.map_coordinates(array.astype(np.float64), np.moveaxis(coords, -1, 0), order=3,
                                  mode="mirror")
    np.testing.assert_allclose(got[ok], ref[ok], atol=0.05)
    # beyond one voxel (linear: values blend into the fill within it) / half a voxel (bspline)
    outside = ~interior(coords, array.shape, margin=-1.0 if mode == "linear" else -0.5)
    assert outside.any() and (got[outside] == 0).all()


def test_random_affine_label_nearest_and_aligned_with_image():
    affine = oblique_affine()
    label = sphere_label()
    image = label.astype(np.float32) * 100.0
    t = T.RandomAffine(degrees=30, scale=(0.9, 1.1), p=1.0, fill=0.0)
    out = t(make_sample(image, affine, label), gen(5))
    lab, img = out["label"][0].numpy(), out["image"][0].numpy()
    assert out["label"].dtype == torch.int64 and set(np.unique(lab)) == {0, 1}
    agree = ((img > 50) == (lab == 1)).mean()
    assert agree > 0.99


def test_elastic_displacement_is_bounded_and_affine_unchanged():
    affine, array = oblique_affine(), phantom()
    sample = make_sample(array, affine, sphere_label())
    truth = (affine @ np.append(CENTRE, 1.0))[:3]
    t = T.RandomElastic(control_points=6, max_displacement=4.0, fill=0.0)
    out = t(sample, gen(1))
    assert torch.equal(out["affine"], sample["affine"])
    moved = np.linalg.norm(blob_centroid_world(out) - truth)
    assert moved < 4.0 + out["spacing"].max().item() / 2
    assert not torch.equal(out["image"], sample["image"])
    assert out["label"].dtype == torch.int64
    still = T.RandomElastic(max_displacement=0.0)(sample, gen(1))
    np.testing.assert_allclose(still["image"].numpy(), array[None], atol=1e-3)


def test_flip_and_rot90_are_exact_and_invertible():
    affine, array = oblique_affine(), phantom()
    sample = make_sample(array, affine, sphere_label())
    rot = T.RandomRot90(axes=(1, 2), p=1.0)
    once = rot.apply(sample, {"apply": True, "k": 1})
    assert tuple(once["image"].shape) == (1, 20, 36, 40)
    np.testing.assert_array_equal(once["image"][0].numpy(), np.rot90(array, 1, axes=(1, 2)))
    back = rot.apply(once, {"apply": True, "k": 3})
    assert torch.equal(back["image"], sample["image"]) and torch.equal(back["label"],
                                                                       sample["label"])
    np.testing.assert_allclose(back["affine"].numpy(), affine, atol=1e-12)
    # a proper rotation: the affine's handedness does not change
    assert np.sign(np.linalg.det(once["affine"].numpy())) == np.sign(np.linalg.det(affine))
    flip = T.RandomFlip(axes=(0, 2), p=1.0)
    flipped = flip(sample, gen(0))
    np.testing.assert_array_equal(flipped["image"][0].numpy(), array[::-1, :, ::-1])
    np.testing.assert_allclose(flipped["affine"].numpy() @ [0, 0, 0, 1],
                               affine @ [19, 0, 35, 1])


def test_random_crop_and_label_crop():
    affine, array = oblique_affine(), phantom()
    label = sphere_label()
    sample = make_sample(array, affine, label)
    crop = T.RandomCrop((8, 8, 8))
    out = crop(sample, gen(2))
    start = np.linalg.solve(affine, out["affine"].numpy()[:, 3])[:3]
    assert np.allclose(start, np.round(start), atol=1e-9)
    s = np.round(start).astype(int)
    np.testing.assert_array_equal(out["image"][0].numpy(), array[s[0]:s[0] + 8, s[1]:s[1] + 8,
                                                                 s[2]:s[2] + 8])
    for seed in range(5):
        fg = T.RandomLabelCrop((6, 6, 6), pos_fraction=1.0)(sample, gen(seed))
        assert fg["label"].sum() > 0  # centred on a foreground voxel
        bg = T.RandomLabelCrop((3, 3, 3), pos_fraction=0.0)(sample, gen(seed))
        assert bg["label"][0, 1, 1, 1] == 0
    padded = T.RandomCrop((30, 10, 10), fill=-1.0)(sample, gen(0))
    assert tuple(padded["image"].shape) == (1, 30, 10, 10)
    assert (padded["image"] == -1.0).any()


def test_seeded_reproducibility_and_params_replay():
    sample = make_sample(phantom(), oblique_affine(), sphere_label())
    chain = full_chain()
    a, b = chain(sample, gen(7)), chain(sample, gen(7))
    for key in ("image", "label", "affine", "spacing"):
        assert torch.equal(a[key], b[key])
    c = chain(sample, gen(8))
    assert not torch.equal(a["image"], c["image"])
    params = chain.get_params(gen(7))
    replay = chain.apply(sample, params)
    assert torch.equal(replay["image"], a["image"])
    assert params == chain.get_params(gen(7))


def test_probability_zero_is_identity_and_p_is_respected():
    sample = make_sample(phantom(), oblique_affine())
    for t in full_chain().transforms:
        t.p = 0.0
        out = t(sample, gen(0))
        assert torch.equal(out["image"], sample["image"]), type(t).__name__
    hits = sum(T.RandomGamma(p=0.3).get_params(gen(i))["apply"] for i in range(400))
    assert 80 < hits < 160


def test_intensity_transforms_against_formulas():
    x = torch.from_numpy(phantom())[None]
    s = {"image": x, "spacing": torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)}
    out = T.RandomIntensityShift((3, 3)).apply(s, {"apply": True, "offset": 3.0})
    assert torch.allclose(out["image"], x + 3)
    gamma = T.RandomGamma().apply(s, {"apply": True, "gamma": 2.0})["image"]
    lo, hi = x.min(), x.max()
    assert torch.allclose(gamma, lo + (hi - lo) * ((x - lo) / (hi - lo)) ** 2, atol=1e-3)
    contrast = T.RandomContrast().apply(s, {"apply": True, "factor": 0.5})["image"]
    assert torch.allclose(contrast, x.mean() + 0.5 * (x - x.mean()), atol=1e-3)
    blur = T.RandomBlur().apply(s, {"apply": True, "sigma": [2.0, 1.0, 1.0]})["image"]
    ref = ndi.gaussian_filter(x[0].double().numpy(), sigma=(1.0, 1.0, 2.0), mode="nearest",
                              truncate=3.0)
    np.testing.assert_allclose(blur[0].numpy(), ref, atol=0.05)
    noise = T.RandomNoise(std=(10, 10))(s, gen(0))["image"] - x
    assert abs(noise.std().item() - 10) < 0.3 and abs(noise.mean().item()) < 0.3
    bias = T.RandomBiasField(0.3)(s, gen(0))["image"] / x.clamp_min(1e-3)
    assert (bias > 0).all() and bias.std() > 0.01


class _PhantomDataset(torch.utils.data.Dataset):
    def __init__(self, chain):
        self.chain = chain

    def __len__(self):
        return 4

    def __getitem__(self, index):
        sample = make_sample(phantom(seed=index), oblique_affine(), sphere_label())
        return self.chain(sample, torch.Generator().manual_seed(1000 + index))


def test_transforms_run_in_dataloader_worker_processes():
    chain = T.Compose([T.Orient("RAS"), T.Resample(1.5), full_chain()])
    loader = torch.utils.data.DataLoader(_PhantomDataset(chain), batch_size=None, num_workers=2)
    from_workers = list(loader)
    direct = _PhantomDataset(chain)
    for index, got in enumerate(from_workers):
        expected = direct[index]
        assert torch.equal(got["image"], expected["image"])
        assert torch.equal(got["affine"], expected["affine"])
        assert got["label"].dtype == torch.int64


def test_custom_keys_move_together_and_others_pass_through():
    affine = oblique_affine()
    label = sphere_label()
    sample = {"ct": torch.from_numpy(phantom())[None], "pet": torch.from_numpy(phantom(seed=3))[None],
              "seg": torch.from_numpy(label)[None], "affine": torch.tensor(affine),
              "note": "kept"}
    t = T.RandomAffine(degrees=15, image_keys=("ct", "pet"), label_keys=("seg",))
    out = t(sample, gen(0))
    ref = T.RandomAffine(degrees=15)(make_sample(phantom(seed=3), affine, label), gen(0))
    assert torch.equal(out["pet"], ref["image"]) and torch.equal(out["seg"], ref["label"])
    assert out["note"] == "kept"
    with pytest.raises(KeyError):
        t({"affine": torch.tensor(affine)}, gen(0))
