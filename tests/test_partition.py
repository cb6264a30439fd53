"""Leakage-free splits (dicomml.catalog.partition): properties over 1,000 seeds, stability with
keep=, leakage checks, the Datasets' splits= hook, bad input."""

from __future__ import annotations

import types
import warnings

import numpy as np
import pandas as pd
import pytest

import dicomml
from dicomml.catalog.partition import (
    Splits,
    allocate,
    demo_catalog,
    group_table,
    hamilton,
    stratified_counts,
)
from dicomml.errors import LeakageError, SelectionWarning, SplitError

SEEDS = range(1000)


def _random_objects(rng) -> types.SimpleNamespace:
    """A catalog-like object: series of random patients; some patients appear under a second
    ID that shares one of their studies (linked through StudyInstanceUID)."""
    n_patients = int(rng.integers(3, 40))
    rows = []
    for p in range(n_patients):
        for s in range(int(rng.integers(1, 4))):
            study = f"st{p}.{int(rng.integers(0, 2))}"
            rows.append((f"P{p}", study, f"se{p}.{s}"))
        if rng.random() < 0.2:  # the same person under another ID, in an old study
            rows.append((f"ALIAS{p}", f"st{p}.0", f"se{p}.alias"))
    frame = pd.DataFrame(rows, columns=["PatientID", "StudyInstanceUID", "series_key"])
    frame["SeriesInstanceUID"] = frame.series_key
    return types.SimpleNamespace(objects=frame)


def _fractions(rng, k: int) -> np.ndarray:
    f = rng.dirichlet(np.ones(k))
    return f / f.sum()


def test_no_group_crosses_a_split_and_fractions_hold_for_1000_seeds():
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        cat = _random_objects(rng)
        table = group_table(cat, ("PatientID", "StudyInstanceUID"))
        groups = sorted(set(table.group))
        fractions = _fractions(rng, int(rng.integers(2, 5)))
        index = allocate(groups, fractions, seed=seed)
        split_of_series = table.group.map(index)
        # linked columns: every patient ID and every study lies in exactly one split
        for column in ("PatientID", "StudyInstanceUID"):
            spread = split_of_series.groupby(cat.objects[column]).nunique()
            assert spread.max() == 1, (seed, column)
        counts = np.bincount(list(index.values()), minlength=len(fractions))
        assert np.all(np.abs(counts - fractions * len(groups)) < 1 + 1e-9), seed


def test_alias_of_a_patient_shares_its_split():
    cat = types.SimpleNamespace(objects=pd.DataFrame({
        "PatientID": ["P1", "P1-old", "P2", "P3", "P4"],
        "StudyInstanceUID": ["s1", "s1", "s2", "s3", "s4"],
        "series_key": ["a", "b", "c", "d", "e"], "SeriesInstanceUID": list("abcde")}))
    table = group_table(cat, ("PatientID", "StudyInstanceUID"))
    assert table.group.tolist()[:2] == ["P1", "P1"]
    assert group_table(cat, "PatientID").group.tolist()[:2] == ["P1", "P1-old"]
    # a user mapping links IDs that share no study
    cat.objects.loc[1, "StudyInstanceUID"] = "s9"
    assert group_table(cat, ("PatientID", "StudyInstanceUID")).group[1] == "P1-old"
    assert group_table(cat, "PatientID", links={"P1-old": "P1"}).group[1] == "P1"
    assert group_table(cat, "PatientID", links=[("P2", "P3", "P4")]).group.tolist()[2:] == \
        ["P2", "P2", "P2"]


def test_stratification_within_one_sample_per_class_for_1000_seeds():
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        k = int(rng.integers(2, 5))
        fractions = _fractions(rng, k)
        sizes = rng.integers(k, 30, size=int(rng.integers(1, 6)))
        strata = {f"g{c}.{i}": f"class{c}" for c, n in enumerate(sizes) for i in range(n)}
        index = allocate(list(strata), fractions, strata=strata, seed=seed)
        table = pd.DataFrame({"cls": pd.Series(strata), "split": pd.Series(index)})
        per_class = pd.crosstab(table.cls, table.split).reindex(columns=range(k), fill_value=0)
        ideal = np.outer(per_class.sum(axis=1), fractions)
        assert np.all(np.abs(per_class.to_numpy() - ideal) < 1 + 1e-9), seed
        totals = per_class.sum(axis=0).to_numpy()
        assert np.all(np.abs(totals - fractions * len(strata)) < 1 + 1e-9), seed


def test_stability_with_10_percent_new_patients_for_1000_seeds():
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        n = int(rng.integers(10, 80))
        fractions = _fractions(rng, 3)
        old = [f"P{i:03d}" for i in range(n)]
        first = allocate(old, fractions, seed=seed)
        new = old + [f"N{i:03d}" for i in range(max(1, n // 10))]
        second = allocate(new, fractions, fixed=first, seed=seed + 1)
        assert all(second[g] == first[g] for g in old), seed
        counts = np.bincount(list(second.values()), minlength=3)
        # as close as whole groups allow: within one group of the target
        assert np.abs(counts - fractions * len(new)).max() < 1 + 1e-9, seed


def test_stability_of_a_stratified_split_for_1000_seeds():
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        k = int(rng.integers(2, 5))
        fractions = _fractions(rng, k)
        sizes = rng.integers(k, 30, size=int(rng.integers(1, 5)))
        strata = {f"g{c}.{i}": c for c, n in enumerate(sizes) for i in range(n)}
        first = allocate(list(strata), fractions, strata=strata, seed=seed)
        grown = dict(strata)  # about 10% new patients in every class
        grown.update({f"n{c}.{i}": c for c, n in enumerate(sizes) for i in range(max(1, n // 10))})
        second = allocate(list(grown), fractions, strata=grown, fixed=first, seed=seed + 1)
        assert all(second[g] == first[g] for g in first), seed
        table = pd.DataFrame({"cls": pd.Series(grown), "split": pd.Series(second)})
        per_class = pd.crosstab(table.cls, table.split).reindex(columns=range(k), fill_value=0)
        totals = per_class.sum(axis=0).to_numpy()
        assert np.abs(totals - fractions * len(grown)).max() < 1 + 1e-9, seed
        ideal = np.outer(per_class.sum(axis=1), fractions)
        assert np.abs(per_class.to_numpy() - ideal).max() < 2 + 1e-9, seed


def test_split_of_a_catalog_keep_and_save(tmp_path):
    cat = demo_catalog(n_patients=50, labels=["a", "b"] * 25)
    first = cat.split((0.8, 0.1, 0.1), stratify="label", seed=4)
    assert [len(p.patients()) for p in first.values()] == [40, 5, 5]
    dicomml.check_leakage(first)
    grown = demo_catalog(n_patients=55, labels=["a", "b"] * 28)
    saved = first.save(tmp_path / "ct.parquet")
    assert saved.name == "ct.splits.json"
    for keep in (first, saved, dict(first)):
        again = grown.split((0.8, 0.1, 0.1), stratify="label", seed=99, keep=keep)
        for name, part in first.items():
            assert set(part.series.PatientID) <= set(again[name].series.PatientID)
        counts = np.array([len(p.patients()) for p in again.values()])
        assert np.abs(counts - np.array([44, 5.5, 5.5])).max() <= 1  # within one group
    reloaded = Splits.load(saved, cat)
    assert {n: sorted(p.series.series_key) for n, p in reloaded.items()} == \
        {n: sorted(p.series.series_key) for n, p in first.items()}
    # a new series of an old patient joins that patient's split
    old_patient = first["test"].series.PatientID.iloc[0]
    assert old_patient in set(grown.split((0.8, 0.1, 0.1), keep=first)["test"]
                              .series.PatientID)


def test_split_is_deterministic_for_a_seed_and_differs_across_seeds():
    cat = demo_catalog(n_patients=30)
    keys = [sorted(cat.split(seed=s)["test"].series.series_key) for s in (1, 1, 2)]
    assert keys[0] == keys[1] and keys[0] != keys[2]


def test_splits_through_catalog_never_share_a_patient():
    cat = demo_catalog(n_patients=23, series_per_patient=3)
    for seed in range(20):
        parts = cat.split((0.6, 0.2, 0.2), seed=seed)
        dicomml.check_leakage(parts)
        assert sum(len(p) for p in parts.values()) == len(cat)


def test_kfold_val_parts_partition_the_patients():
    cat = demo_catalog(n_patients=11, labels=["x", "y", "y"] * 3 + ["x", "y"])
    folds = cat.kfold(3, stratify="label", seed=0)
    vals = [set(f["val"].series.PatientID) for f in folds]
    assert set().union(*vals) == set(cat.series.PatientID)
    assert sum(len(v) for v in vals) == 11 and {len(v) for v in vals} <= {3, 4}
    for fold in folds:
        dicomml.check_leakage(fold)
        assert len(fold["train"]) + len(fold["val"]) == len(cat)


def test_leakage_check_names_a_patient_seeded_in_two_splits():
    cat = demo_catalog(n_patients=6)
    parts = dict(cat.split((0.5, 0.5), seed=0))
    moved = parts["test"].series.PatientID.iloc[0]
    parts["train"] = cat.filter(PatientID=list(parts["train"].series.PatientID) + [moved])
    with pytest.raises(LeakageError, match=moved) as info:
        dicomml.check_leakage(parts)
    assert info.value.shared["PatientID"] == {moved: ["train", "test"]}
    with pytest.raises(LeakageError, match="StudyInstanceUID"):
        dicomml.check_leakage(parts["train"], parts["test"], by="StudyInstanceUID")


def test_datasets_check_splits(tmp_path):
    for p in range(4):
        dicomml.synth.write_series(tmp_path / "data" / f"p{p}", shape=(2, 8, 8),
                                   patient_id=f"P{p}", seed=p)
    cat = dicomml.scan(tmp_path / "data", progress=False, workers=1)
    parts = cat.split((0.5, 0.5), seed=0)
    ds = dicomml.DicomSeriesDataset(parts["train"], splits=parts)
    assert ds.split == "train" and len(ds) == 2
    slices = dicomml.DicomSliceDataset(parts["test"], splits=parts)
    assert slices.split == "test"
    with pytest.raises(LeakageError, match="not all in one split"):
        dicomml.DicomSeriesDataset(cat, splits=parts)
    leaky = {"train": parts["train"], "test": cat}
    with pytest.raises(LeakageError, match="PatientID"):
        dicomml.DicomSeriesDataset(parts["train"], splits=leaky)


def test_missing_patient_id_is_one_placeholder_per_study_with_a_warning():
    cat = demo_catalog(n_patients=6, series_per_patient=1, missing_patient=4)
    objects = cat.objects.copy()  # give one anonymous study a second series
    extra = objects[objects.PatientID.isna()].iloc[[0]].assign(series_key="1.2.8.0.extra")
    cat.series = pd.concat([objects, extra], ignore_index=True)
    with pytest.warns(SelectionWarning, match="no PatientID"):
        table = group_table(cat)
    anonymous = table[table.group.str.startswith("<no PatientID")]
    assert anonymous.group.nunique() == 4 and len(anonymous) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SelectionWarning)
        for seed in range(20):
            parts = cat.split((0.5, 0.5), seed=seed)
            homes = [n for n, p in parts.items() if "1.2.8.0.extra" in set(p.objects.series_key)]
            twin = [n for n, p in parts.items() if "1.2.8.0.0" in set(p.objects.series_key)]
            assert homes == twin


@pytest.mark.parametrize("call, message", [
    (lambda c: c.split((0.5, 0.4)), "sum to 1"),
    (lambda c: c.split((0.5, 0.6, -0.1)), ">= 0"),
    (lambda c: c.split((0.5, 0.5), names=("a",)), "one distinct name"),
    (lambda c: c.kfold(6), "6 folds but only 5"),
    (lambda c: c.kfold(1), "k must be"),
    (lambda c: c.split((0.4, 0.3, 0.3), stratify="label"), "class\\(es\\) 'b'"),
    (lambda c: c.split((0.5, 0.5), stratify="nope"), "no column 'nope'"),
    (lambda c: demo_catalog(2).split(), "2 group\\(s\\)"),
])
def test_bad_input_raises_split_errors(call, message):
    cat = demo_catalog(n_patients=5, labels=["a", "a", "a", "b", "b"])
    with pytest.raises(SplitError, match=message):
        call(cat)


def test_keep_contradicted_by_a_new_link_raises():
    cat = demo_catalog(n_patients=4)
    parts = cat.split((0.5, 0.5), seed=0)
    a = parts["train"].series.PatientID.iloc[0]
    b = parts["test"].series.PatientID.iloc[0]
    with pytest.raises(SplitError, match="were in splits"):
        cat.split((0.5, 0.5), keep=parts, links={a: b})


def test_hamilton_and_stratified_counts_by_hand():
    assert hamilton(7, (0.5, 0.25, 0.25)).tolist() == [3, 2, 2]  # 3.5, 1.75, 1.75
    assert hamilton(3, (0.8, 0.1, 0.1)).tolist() == [3, 0, 0]
    counts = stratified_counts([3, 3, 3], (0.8, 0.1, 0.1))
    assert counts.sum(axis=0).tolist() == [7, 1, 1]  # Hamilton of 9: 7.2, 0.9, 0.9


def test_stratify_by_a_label_mapping_keyed_by_patient_or_series():
    cat = demo_catalog(n_patients=12)
    by_patient = pd.Series({f"P{p:03d}": "pos" if p < 6 else "neg" for p in range(12)})
    parts = cat.split((0.5, 0.5), stratify=by_patient, seed=7)
    for part in parts.values():
        assert sorted(by_patient[sorted(set(part.series.PatientID))].value_counts()) == [3, 3]
    by_series = {k: by_patient[pid] for k, pid in zip(cat.series.series_key,
                                                       cat.series.PatientID)}
    again = cat.split((0.5, 0.5), stratify=by_series, seed=7)
    assert {n: sorted(p.series.series_key) for n, p in again.items()} == \
        {n: sorted(p.series.series_key) for n, p in parts.items()}
    assert parts.groups.stratum.value_counts().to_dict() == {"neg": 6, "pos": 6}
