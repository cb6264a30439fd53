"""ByModality: intensity normalisation chosen by the sample's modality (a HU window for CT,
each series' percentiles for MR), checked against the window formula and numpy's percentiles
on real DICOM series read through the Dataset, its cache and DataLoader workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dicomml
from dicomml import transforms as T

WINDOW = T.Window(center=40, width=400)
PERCENTILES = T.ClipNormalize(1, 99, percentiles=True)


def _window(hu: np.ndarray) -> np.ndarray:
    """Window(40, 400) by its definition: [-160, 240] HU onto [0, 1]."""
    return np.clip((hu + 160.0) / 400.0, 0.0, 1.0)


def _percentiles(x: np.ndarray) -> np.ndarray:
    """Per channel: the 1st and 99th percentiles (numpy's linear rule) onto [0, 1]."""
    out = np.empty_like(x, dtype=np.float64)
    for c in range(x.shape[0]):
        lo, hi = np.percentile(x[c], [1, 99])
        out[c] = (np.clip(x[c], lo, hi) - lo) / (hi - lo)
    return out


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A CT, an MR and a 4D MR series (MR values in the thousands, as scanners store them)."""
    root = tmp_path_factory.mktemp("mixed")
    truths = {
        "CT": dicomml.synth.write_series(root / "ct", modality="CT", shape=(6, 24, 24), seed=1),
        "MR": dicomml.synth.write_series(root / "mr", modality="MR", shape=(6, 24, 24), seed=2,
                                         slope=4.0, intercept=0.0),
        "4D": dicomml.synth.write_series(root / "mr4d", modality="MR", shape=(3, 5, 20, 20),
                                         multiframe=True, seed=3, slope=4.0, intercept=0.0),
    }
    return dicomml.scan(root, progress=False), truths


def _by_description(dataset) -> dict:
    out = {}
    for i in range(len(dataset)):
        sample = dataset[i]
        shape = tuple(sample["image"].shape)
        out["4D" if shape[0] > 1 else sample["metadata"]["Modality"]] = sample
    return out


def test_each_modality_gets_its_own_mapping(mixed, tmp_path):
    catalog, truths = mixed
    norm = T.ByModality({"CT": WINDOW, "mr": PERCENTILES})
    ds = dicomml.DicomSeriesDataset(catalog, transform=norm, cache_dir=tmp_path / "cache")
    samples = _by_description(ds)
    np.testing.assert_allclose(samples["CT"]["image"][0].numpy(),
                               _window(truths["CT"].array), atol=1e-6)
    np.testing.assert_allclose(samples["MR"]["image"].numpy(),
                               _percentiles(truths["MR"].array[None]), atol=1e-5)
    # 4D: each volume (channel) between its own percentiles
    np.testing.assert_allclose(samples["4D"]["image"].numpy(),
                               _percentiles(truths["4D"].array), atol=1e-5)


def test_cached_through_dataloader_workers(mixed, tmp_path):
    catalog, truths = mixed
    norm = T.ByModality({"CT": WINDOW}, default=PERCENTILES)
    assert norm.deterministic
    ds = dicomml.DicomSeriesDataset(catalog, transform=norm, cache_dir=tmp_path / "cache")
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2,
                                         collate_fn=dicomml.collate)
    first = {b["series_key"][0]: b["image"][0] for b in loader}
    assert len(ds.cache.keys()) == 3  # the prefix was cached by the workers
    second = {b["series_key"][0]: b["image"][0] for b in loader}
    for key, image in first.items():
        assert torch.equal(image, second[key])
        assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0


def test_cache_key_names_every_choice_and_ignores_their_order():
    a = T.ByModality({"CT": WINDOW, "MR": PERCENTILES})
    b = T.ByModality({"mr": PERCENTILES, "ct": WINDOW})
    assert a.cache_key() == b.cache_key()
    assert WINDOW.cache_key() in a.cache_key() and PERCENTILES.cache_key() in a.cache_key()
    other = T.ByModality({"CT": T.Window(40, 80), "MR": PERCENTILES})
    assert other.cache_key() != a.cache_key()
    with_default = T.ByModality({"CT": WINDOW, "MR": PERCENTILES}, default=PERCENTILES)
    assert with_default.cache_key() != a.cache_key()


def test_a_modality_without_a_choice_is_refused_not_guessed():
    norm = T.ByModality({"CT": WINDOW})
    pet = {"image": torch.ones(1, 2, 2, 2), "metadata": {"Modality": "PT"},
           "series_key": "1.2.3"}
    with pytest.raises(ValueError, match=r"series 1\.2\.3 has modality 'PT'.*given for CT"):
        norm(pet)
    with pytest.raises(ValueError, match=r"no sample\['metadata'\]\['Modality'\]"):
        norm({"image": torch.ones(1, 2, 2, 2)})
    assert torch.equal(T.ByModality({"CT": WINDOW}, default=T.Window(1, 2))(pet)["image"],
                       torch.full((1, 2, 2, 2), 0.5))


def test_random_or_foreign_choices_are_refused():
    with pytest.raises(TypeError, match="deterministic"):
        T.ByModality({"MR": T.RandomGamma()})
    with pytest.raises(TypeError, match="deterministic"):
        T.ByModality({"CT": WINDOW}, default=lambda s: s)
