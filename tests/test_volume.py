"""Volume: immutability, derived geometry, NIfTI and tensor conversions (checked with nibabel)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dicomml.volume import Volume

nib = pytest.importorskip("nibabel")


def _oblique_affine():
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3] = q * [2.5, 0.6, 0.8]
    affine[:3, 3] = [10, -20, 30]
    return affine


def test_volume_is_immutable():
    volume = Volume(np.zeros((2, 3, 4), np.float32), np.eye(4), {"Modality": "CT"})
    with pytest.raises(ValueError):
        volume.array[0, 0, 0] = 1
    with pytest.raises(ValueError):
        volume.affine[0, 0] = 2
    with pytest.raises(TypeError):
        volume.metadata["Modality"] = "MR"
    with pytest.raises(AttributeError):
        volume.array = np.ones((2, 3, 4))


def test_derived_geometry():
    affine = _oblique_affine()
    volume = Volume(np.zeros((2, 3, 4), np.float32), affine)
    np.testing.assert_allclose(volume.spacing, [2.5, 0.6, 0.8])
    np.testing.assert_allclose(volume.origin, [10, -20, 30])
    np.testing.assert_allclose(volume.direction.T @ volume.direction, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(volume.ras_affine[:2], -affine[:2])
    assert not volume.is_sheared
    assert "Volume(shape=(2, 3, 4)" in repr(volume)


def test_to_nifti_maps_every_voxel_to_the_same_world_point():
    """NIfTI voxel (i, j, k) = our (slice k, row j, column i); RAS = LPS with x, y negated."""
    rng = np.random.default_rng(1)
    array = rng.normal(size=(3, 4, 5)).astype(np.float32)
    affine = _oblique_affine()
    image = Volume(array, affine).to_nifti()
    data = np.asarray(image.dataobj)
    assert data.shape == (5, 4, 3)
    for s, r, c in [(0, 0, 0), (2, 1, 3), (1, 3, 4)]:
        assert data[c, r, s] == array[s, r, c]
        lps = affine @ [s, r, c, 1]
        ras = image.affine @ [c, r, s, 1]
        np.testing.assert_allclose(ras[:3], lps[:3] * [-1, -1, 1], atol=1e-9)
    assert image.header.get_sform(coded=True)[1] == 1
    np.testing.assert_allclose(image.header.get_zooms(), [0.8, 0.6, 2.5], rtol=1e-6)


def test_to_nifti_4d_puts_volumes_last():
    array = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    image = Volume(array, np.eye(4)).to_nifti()
    data = np.asarray(image.dataobj)
    assert data.shape == (5, 4, 3, 2)
    assert data[4, 3, 2, 1] == array[1, 2, 3, 4]


@pytest.mark.parametrize("seed", range(8))
def test_orientation_code_agrees_with_nibabel(seed):
    """Letters name patient directions, so they do not depend on LPS vs RAS labelling:
    our (slice, row, column) code reversed equals nibabel's code of the NIfTI axes."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3] = q * [1.5, 0.7, 0.9]
    volume = Volume(np.zeros((2, 3, 4), np.float32), affine)
    assert tuple(reversed(volume.orientation)) == nib.aff2axcodes(volume.to_nifti().affine)


def test_sheared_affine_is_flagged():
    affine = np.diag([2.0, 1.0, 1.0, 1.0])[:, [2, 1, 0, 3]]
    affine[1, 0] = 0.5  # slice step drifts along y
    assert Volume(np.zeros((2, 2, 2), np.float32), affine).is_sheared


def test_to_tensor_copies():
    volume = Volume(np.ones((2, 3, 4), np.float32), np.eye(4))
    tensor = volume.to_tensor()
    tensor += 1
    assert volume.array.max() == 1 and tensor.dtype == torch.float32
    assert volume.to_tensor(channel=True).shape == (1, 2, 3, 4)


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        Volume(np.zeros((3, 4), np.float32), np.eye(4))
    with pytest.raises(ValueError):
        Volume(np.zeros((2, 3, 4), np.float32), np.eye(3))


def test_volume_pickles_for_dataloader_workers():
    import pickle

    volume = Volume(np.arange(24, dtype=np.float32).reshape(2, 3, 4), _oblique_affine(),
                    {"findings": [], "Modality": "CT"})
    clone = pickle.loads(pickle.dumps(volume))
    np.testing.assert_array_equal(clone.array, volume.array)
    np.testing.assert_array_equal(clone.affine, volume.affine)
    assert dict(clone.metadata) == dict(volume.metadata)
    assert not clone.array.flags.writeable
