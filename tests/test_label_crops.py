"""Label-weighted crops use the segmentation given through ``segmentation=`` (issue 17).

A synthetic CT series carries a DICOM SEG (written by highdicom) whose only foreground is a
small 2 x 3 x 3 box in a far corner, away from the phantom's bright body. Crops weighted by the
label (``PatchSampler(mode="weighted")`` and ``transforms.RandomLabelCrop``) must all contain
that box, through real DataLoader workers; uniform crops of the same size mostly miss it, so
a sampler that ignored the label (or weighted by the image) would fail these tests.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import torch
from test_labels_seg import _masks_in_file_order, _write_seg

import dicomml
from dicomml import transforms as T

pytest.importorskip("highdicom")

SHAPE = (12, 24, 24)  # slices, rows, columns
BOX = (slice(9, 11), slice(19, 22), slice(1, 4))
PATCH = (4, 6, 6)


@pytest.fixture()
def labelled(tmp_path):
    root = tmp_path / "data"
    truth = dicomml.synth.write_series(root / "ct", shape=SHAPE, seed=3)
    masks = np.zeros((*SHAPE, 1), bool)
    masks[(*BOX, 0)] = True
    _write_seg(root / "ct", [pydicom.dcmread(p) for p in truth.paths],
               _masks_in_file_order(truth, masks))
    return root, masks[..., 0]


def _hits(patches) -> list[int]:
    return [int((p["label"] > 0).sum()) for p in patches]


def test_weighted_patches_centre_on_the_segmentation(labelled):
    root, mask = labelled
    ds = dicomml.DicomSeriesDataset(root, segmentation="catalog")
    sample = ds[0]
    np.testing.assert_array_equal(sample["label"][0].numpy(), mask.astype(np.int64))
    weighted = dicomml.PatchSampler(ds, PATCH, patches_per_volume=24, mode="weighted", seed=0)
    loader = torch.utils.data.DataLoader(weighted, batch_size=1, num_workers=2,
                                         collate_fn=dicomml.collate)
    patches = []
    for batch in loader:
        assert batch["label"].shape == (24, 1, *PATCH)
        patches += [{"label": label} for label in batch["label"]]
    assert len(patches) == 24 and min(_hits(patches)) > 0
    uniform = dicomml.PatchSampler(ds, PATCH, patches_per_volume=24, mode="uniform", seed=0)
    assert sum(h > 0 for h in _hits(uniform[0])) < 12  # the box is small: uniform mostly misses


def test_random_label_crop_uses_the_segmentation_label(labelled):
    root, mask = labelled
    ds = dicomml.DicomSeriesDataset(
        root, segmentation="catalog",
        transform=T.RandomLabelCrop(PATCH, pos_fraction=1.0))
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2,
                                         collate_fn=dicomml.collate)
    crops = [batch for _ in range(8) for batch in loader]
    assert all(batch["image"].shape == (1, 1, *PATCH) for batch in crops)
    assert all(int(batch["label"].sum()) > 0 for batch in crops)
    background = dicomml.DicomSeriesDataset(
        root, segmentation="catalog", transform=T.RandomLabelCrop(PATCH, pos_fraction=0.0))
    # background-centred crops mostly miss the small box (about 1 in 20 touches it, so a
    # fixed count of crops without any box voxel is not flaky); foreground ones never do
    assert sum(int(background[0]["label"].sum()) == 0 for _ in range(16)) >= 8
