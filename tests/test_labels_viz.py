"""viz.show_volume(vol, labels=...): the label map overlaid on the same planes, with a legend."""

from __future__ import annotations

import numpy as np
import pytest

import dicomml

pytest.importorskip("matplotlib")


@pytest.mark.parametrize("orientation", ["axial", "oblique"])
def test_overlay_follows_the_image_planes(tmp_path, orientation):
    dicomml.synth.write_series(tmp_path, shape=(6, 10, 10), orientation=orientation,
                                       seed=4)
    image = dicomml.load_series(tmp_path)
    label = np.zeros(image.spatial_shape, np.uint8)
    label[2:5, 3:8, 3:8] = 2   # the centre voxel (3, 5, 5) is inside
    label[0, 0:2, 0:2] = 5
    lab = dicomml.Volume(label, image.affine, {"labels": {2: {"name": "liver"},
                                                           5: {"name": "spot"}}})
    fig = dicomml.viz.show_volume(image, labels=lab)
    axes = fig.axes[:3]
    for ax in axes:
        assert len(ax.images) == 2  # image, overlay
        overlay = ax.images[1].get_array()
        assert overlay.count() > 0  # some label drawn through the centre
        assert overlay.shape == ax.images[0].get_array().shape
    # the same planes as the label map drawn as an image through the image path
    drawn = dicomml.viz.show_volume(dicomml.Volume(label.astype(np.float32), image.affine),
                                    window=(0, 5))
    for ax, ref in zip(axes, drawn.axes[:3]):
        np.testing.assert_array_equal(~np.ma.getmaskarray(ax.images[1].get_array()),
                                      np.asarray(ref.images[0].get_array()) != 0)
    legend = [t.get_text() for t in axes[-1].get_legend().get_texts()]
    assert legend == ["2 liver", "5 spot"]
    channels = dicomml.Volume(np.stack([label == 2, label == 5]).astype(np.uint8), image.affine)
    fig = dicomml.viz.show_volume(image, labels=channels)
    assert int(fig.axes[0].images[1].get_array().count()) == int(
        axes[0].images[1].get_array().count())
