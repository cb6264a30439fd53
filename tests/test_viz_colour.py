"""dicomml.viz on colour volumes: a Volume with a trailing RGB axis is drawn in colour.

The series are synthetic RGB / palette files loaded through ``load_series`` (a trailing axis of
3 samples, ``metadata["channels"] == "RGB"``). Each colour view must equal, sample by sample,
the grey view of that sample's own volume drawn by the same function (the grey path is
checked against nibabel's orientation code in test_geometry_conventions / test_viz).
"""

from __future__ import annotations

import numpy as np
import pytest

import dicomml
from dicomml import synth, viz

pytest.importorskip("matplotlib")


def _images(fig) -> list[np.ndarray]:
    return [np.asarray(ax.get_images()[0].get_array()) for ax in fig.axes if ax.get_images()]


def _range(vol) -> tuple[float, float]:
    """What a colour view maps to [0, 1]: 8-bit samples as they are, others their range."""
    if vol.array.dtype == np.uint8:
        return 0.0, 255.0
    return float(vol.array.min()), float(vol.array.max())


def _channel(vol, c: int) -> dicomml.Volume:
    return dicomml.Volume(np.ascontiguousarray(vol.array[..., c]), vol.affine)


@pytest.fixture(params=[("RGB", "sagittal"), ("PALETTE COLOR", "oblique")])
def colour_volume(request, tmp_path):
    photometric, orientation = request.param
    synth.write_colour_series(tmp_path, shape=(5, 12, 10), photometric=photometric,
                              orientation=orientation, seed=4)
    vol = dicomml.load_series(tmp_path)
    assert vol.is_colour and vol.array.shape == (5, 12, 10, 3)
    return vol


@pytest.mark.parametrize("resample_oblique", [True, False])
def test_show_volume_draws_colour_views(colour_volume, resample_oblique):
    vol = colour_volume
    low, high = _range(vol)
    colour = _images(viz.show_volume(vol, resample_oblique=resample_oblique))
    assert [image.shape[-1] for image in colour] == [3, 3, 3]
    for c in range(3):
        grey = _images(viz.show_volume(_channel(vol, c), resample_oblique=resample_oblique))
        for rgb, plain in zip(colour, grey):
            np.testing.assert_allclose(rgb[..., c], np.clip((plain - low) / (high - low), 0, 1))
    assert colour[0].max() > 0 and not np.allclose(colour[0][..., 0], colour[0][..., 1])


def test_show_montage_draws_colour_slices(colour_volume):
    vol = colour_volume
    for plane in (None, "axial"):
        colour = _images(viz.show_montage(vol, n=3, plane=plane))
        assert len(colour) == 3 and all(image.shape[-1] == 3 for image in colour)
        grey = _images(viz.show_montage(_channel(vol, 1), n=3, plane=plane))
        low, high = _range(vol)
        for rgb, plain in zip(colour, grey):
            np.testing.assert_allclose(rgb[..., 1], np.clip((plain - low) / (high - low), 0, 1))


def test_grey_volume_with_three_columns_stays_grey():
    """A grey volume whose last axis happens to be 3 long is not taken for colour."""
    fig = viz.show_volume((np.arange(4 * 5 * 3, dtype=float).reshape(4, 5, 3), np.eye(4)))
    assert all(image.ndim == 2 for image in _images(fig))
