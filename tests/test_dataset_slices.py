"""DicomSliceDataset (2D slices and slabs) and PatchSampler (3D patches), checked against the
synthetic writer's ground truth (values and slice positions)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from test_dataset import by_series_uid, make_corpus
from torch.utils.data import DataLoader

import dicomml
from dicomml.dataset import (
    DicomSeriesDataset,
    DicomSliceDataset,
    FailedSample,
    PatchSampler,
    collate,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("slices")
    truths = make_corpus(root, shapes=[(6, 16, 20), (4, 12, 12)],
                         orientation="oblique", spacing=(3.0, 0.8, 0.9))
    return root, truths, dicomml.scan(root, progress=False)


def _world(affine, index) -> np.ndarray:
    return (np.asarray(affine) @ np.array([*index, 1.0]))[:3]


@pytest.mark.parametrize("slab,stride", [(1, 1), (3, 1), (2, 2)])
def test_slabs_match_truth_values_and_slice_positions(corpus, slab, stride):
    _, truths, catalog = corpus
    ds = DicomSliceDataset(catalog, slab=slab, stride=stride)
    expected_len = sum(len(range(0, t.shape[0] - slab + 1, stride)) for t in truths)
    assert len(ds) == expected_len
    truth_of = by_series_uid(truths)
    for i in range(len(ds)):
        sample = ds[i]
        truth = truth_of[sample["SeriesInstanceUID"]]
        start = sample["slice_index"]
        assert ds.position(i) == (sample["series_key"], start)
        assert sample["image"].shape == (slab, *truth.shape[1:])
        np.testing.assert_allclose(sample["image"].numpy(), truth.array[start:start + slab],
                                   atol=1e-3)
        for j in range(slab):  # each slab slice sits at the written ImagePositionPatient
            np.testing.assert_allclose(_world(sample["affine"], (j, 0, 0)),
                                       truth.positions[start + j], atol=1e-4)
        np.testing.assert_allclose(sample["spacing"].numpy(), truth.spacing, atol=1e-6)


def test_slice_index_needs_no_decoding_and_cache_gives_same_samples(corpus, tmp_path):
    _, truths, catalog = corpus
    ds = DicomSliceDataset(catalog, slab=2, cache_dir=tmp_path / "c")
    assert len(ds) == sum(t.shape[0] - 1 for t in truths)
    assert ds.source.cache.keys() == []  # building the index decoded nothing
    plain = DicomSliceDataset(catalog, slab=2)
    for i in range(len(ds)):
        assert torch.equal(ds[i]["image"], plain[i]["image"])
    assert len(ds.source.cache.keys()) == len(truths)


def test_slice_labels_follow_their_series(corpus):
    _, truths, catalog = corpus
    labels = {truths[0].patient_id: 3, truths[1].patient_id: 4}
    ds = DicomSliceDataset(catalog, labels=labels, on="PatientID")
    for i in range(len(ds)):
        sample = ds[i]
        assert int(sample["label"]) == labels[sample["PatientID"]]


def _volume_samples(catalog):
    return DicomSeriesDataset(catalog)


def test_uniform_patches_are_crops_with_moved_affines(corpus):
    _, truths, catalog = corpus
    volumes = _volume_samples(catalog)
    sampler = PatchSampler(volumes, (3, 8, 8), patches_per_volume=5, seed=1)
    truth_of = by_series_uid(truths)
    for i in range(len(sampler)):
        for patch in sampler[i]:
            truth = truth_of[patch["SeriesInstanceUID"]]
            s, r, c = patch["patch_origin"].tolist()
            assert patch["image"].shape == (1, 3, 8, 8)
            np.testing.assert_allclose(patch["image"][0].numpy(),
                                       truth.array[s:s + 3, r:r + 8, c:c + 8], atol=1e-3)
            np.testing.assert_allclose(_world(patch["affine"], (0, 0, 0)),
                                       _world(truth.affine, (s, r, c)), atol=1e-4)
            # the volume's voxel (s + 1, 0, 0) is at the written ImagePositionPatient
            np.testing.assert_allclose(_world(patch["affine"], (1, -r, -c)),
                                       truth.positions[s + 1], atol=1e-4)


def test_patch_larger_than_volume_is_padded_at_the_end():
    volume = {"image": torch.ones(1, 2, 4, 4), "affine": torch.eye(4, dtype=torch.float64)}
    (patch,) = PatchSampler([volume], (3, 4, 6), pad_value=-5.0, seed=0)[0]
    assert patch["image"].shape == (1, 3, 4, 6)
    assert patch["patch_origin"].tolist() == [0, 0, 0]
    assert float(patch["image"][0, :2, :, :4].min()) == 1.0
    assert float(patch["image"][0, 2].max()) == -5.0 and float(patch["image"][0, :, :, 4:].max()) == -5.0


def _sparse_label_volume() -> dict:
    label = torch.zeros(1, 20, 40, 40, dtype=torch.int64)
    label[0, 15:17, 30:33, 5:8] = 1  # a small lesion far from the centre
    return {"image": torch.rand(1, 20, 40, 40), "label": label,
            "affine": torch.eye(4, dtype=torch.float64)}


def test_label_weighted_patches_contain_the_foreground():
    volume = _sparse_label_volume()
    weighted = PatchSampler([volume], (4, 8, 8), patches_per_volume=40, mode="weighted",
                            seed=0)
    uniform = PatchSampler([volume], (4, 8, 8), patches_per_volume=40, seed=0)
    hits = [int(p["label"].sum() > 0) for p in weighted[0]]
    misses = [int(p["label"].sum() > 0) for p in uniform[0]]
    assert sum(hits) == 40
    assert sum(misses) < 10  # the lesion is ~0.1% of the volume
    for patch in weighted[0]:
        s, r, c = patch["patch_origin"].tolist()
        assert torch.equal(patch["label"], volume["label"][:, s:s + 4, r:r + 8, c:c + 8])
    half = PatchSampler([volume], (4, 8, 8), patches_per_volume=200, mode="weighted",
                        weighted_fraction=0.5, seed=0)
    share = np.mean([int(p["label"].sum() > 0) for p in half[0]])
    assert 0.35 < share < 0.7


def test_weight_fn_and_errors():
    volume = _sparse_label_volume()
    del volume["label"]
    bright = PatchSampler([volume], (2, 4, 4), mode="weighted", patches_per_volume=10, seed=0,
                          weight_fn=lambda s: (s["image"] > 0.999).to(torch.float32))
    for patch in bright[0]:
        assert float(patch["image"].max()) > 0.99
    with pytest.raises(KeyError, match="label map"):
        PatchSampler([volume], (2, 4, 4), mode="weighted")[0]
    with pytest.raises(ValueError):
        PatchSampler([volume], (2, 4), mode="uniform")


def test_seeded_patch_positions_depend_on_epoch_only():
    volume = _sparse_label_volume()
    sampler = PatchSampler([volume], (4, 8, 8), patches_per_volume=3, seed=5)
    first = [p["patch_origin"].tolist() for p in sampler[0]]
    assert first == [p["patch_origin"].tolist() for p in sampler[0]]
    sampler.set_epoch(1)
    assert first != [p["patch_origin"].tolist() for p in sampler[0]]


def test_patches_through_dataloader_workers(corpus):
    _, truths, catalog = corpus
    sampler = PatchSampler(_volume_samples(catalog), (2, 8, 8), patches_per_volume=3)
    loader = DataLoader(sampler, batch_size=2, num_workers=2, collate_fn=collate,
                        multiprocessing_context="fork")
    (batch,) = list(loader)
    assert batch["image"].shape == (6, 1, 2, 8, 8) and "mask" not in batch
    assert batch["patch_origin"].shape == (6, 3)
    assert len(set(batch["series_key"])) == 2


def test_patches_from_the_memory_mapped_cache_equal_decoded_ones(corpus, tmp_path):
    _, _, catalog = corpus
    decoded = PatchSampler(DicomSeriesDataset(catalog), (3, 8, 8), patches_per_volume=4, seed=2)
    cached_ds = DicomSeriesDataset(catalog, cache_dir=tmp_path / "c", cache_mmap=True)
    cached = PatchSampler(cached_ds, (3, 8, 8), patches_per_volume=4, seed=2)
    for _ in range(2):  # first pass fills the cache, second reads it through mmap
        for i in range(len(decoded)):
            for a, b in zip(decoded[i], cached[i]):
                assert torch.equal(a["patch_origin"], b["patch_origin"])
                assert torch.equal(a["image"], b["image"])
    assert len(cached_ds.cache.keys()) == len(cached_ds)


def test_slice_dataset_skips_a_damaged_series(tmp_path):
    truths = make_corpus(tmp_path / "data", shapes=[(3, 8, 8)] * 3)
    catalog = dicomml.scan(tmp_path / "data", progress=False)
    bad = truths[0]
    with open(bad.paths[1], "r+b") as f:  # cut inside the pixel data
        f.truncate(f.seek(0, 2) - 50)
    ds = DicomSliceDataset(catalog, on_error="skip")
    samples = [ds[i] for i in range(len(ds))]
    uids = [s["SeriesInstanceUID"] for s in samples if not isinstance(s, FailedSample)]
    assert len(uids) == 6 and bad.series_uid not in uids  # the other two series, 3 slices each
    failed = [s.record for s in samples if isinstance(s, FailedSample)]
    assert [r["slice_index"] for r in failed] == [0, 1, 2]
    assert {r["error_type"] for r in failed} == {"TruncatedFileError"}
    assert os.path.samefile(ds.failures()[0]["file"], bad.paths[1])
    with pytest.raises(dicomml.errors.TruncatedFileError):
        strict = DicomSliceDataset(catalog)
        [strict[i] for i in range(len(strict))]
