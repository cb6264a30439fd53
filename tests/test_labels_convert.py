"""dicomml convert --labels: SEG / RTSTRUCT label maps as NIfTI beside the image."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_labels_rtstruct import _hand_struct, _rectangle

import dicomml
from dicomml.cli import main

nibabel = pytest.importorskip("nibabel")


def test_convert_writes_label_maps_on_the_image_grid(tmp_path):
    src = tmp_path / "src"
    truth = dicomml.synth.write_series(src, shape=(4, 10, 12), orientation="sagittal", seed=3)
    _hand_struct(truth, {"GTV": [_rectangle(truth, 2, 1, 4, 2, 6)]}, src / "rs.dcm")
    out = tmp_path / "out"
    assert main(["convert", str(src), "-o", str(out), "--labels", "--no-progress"]) == 0
    images = [p for p in out.glob("*.nii.gz") if "_label" not in p.name]
    labels = list(out.glob("*_label1.nii.gz"))
    assert len(images) == 1 and len(labels) == 1
    image, label = nibabel.load(images[0]), nibabel.load(labels[0])
    np.testing.assert_allclose(label.affine, image.affine)
    assert label.shape == image.shape
    expected = np.zeros((4, 10, 12), np.uint8)  # (slices, rows, columns)
    expected[2, 1:5, 2:7] = 1
    np.testing.assert_array_equal(np.asarray(label.dataobj), expected.transpose(2, 1, 0))
    meta = json.loads(labels[0].with_name(labels[0].name.replace(".nii.gz", ".json"))
                      .read_text())
    assert meta["labels"] == {"1": "GTV"} and meta["source"].endswith("rs.dcm")
