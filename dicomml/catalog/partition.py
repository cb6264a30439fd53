"""Leakage-free splits of a catalog: groups (patients) never cross splits.

- :func:`split` (``Catalog.split``): train/val/test (any names, any fractions) by whole
  groups; :func:`kfold` (``Catalog.kfold``): ``k`` train/val pairs whose val parts partition
  the groups; :func:`check_leakage` (``dicomml.check_leakage``): raises
  :class:`~dicomml.errors.LeakageError` naming the patients/studies two catalogs share.
- **Groups.** ``by="PatientID"`` (default) groups the series of one patient. Several columns
  are *linked*: with ``by=("PatientID", "StudyInstanceUID")`` two PatientIDs that share a
  study are one group; ``links`` adds user knowledge (``{"P1-old": "P1"}`` or pairs/sets of
  values of the first ``by`` column that name one patient). Every object of the catalog
  (images and SEG/RTSTRUCT/SR...) goes with its group.
- **Missing PatientID** (or any first ``by`` column): the series are grouped under one
  placeholder per study, ``"<no PatientID: study UID>"``, with a
  :class:`~dicomml.errors.SelectionWarning`; a study is never spread across splits, but two
  studies of one anonymous patient cannot be told apart.
- **Allocation.** Fractions are of *groups* (patients), not series. Counts follow the
  largest-remainder (Hamilton) rule: each split gets ``floor(f * n)`` groups, the groups left
  go to the largest remainders, so every split is within one group of ``f * n``. With
  ``stratify``, each class gets its own largest-remainder allocation (within one group of
  ``f * n_class``), and the class remainders are placed so that the split totals stay within
  one group of ``f * n`` as well. Which groups go where is a permutation drawn from ``seed``
  (NumPy's ``default_rng``) over the sorted group names: deterministic for a seed.
- **Stability.** ``keep=previous`` (an earlier result, its saved file, or a mapping of split
  name to Catalog or to group values) leaves every group already assigned where it was; only
  new groups are placed: their counts are the projection of each split's shortfall onto the
  new groups (per class when stratified), rounded as above, so that the split totals come
  back within one group of ``f * n`` whenever no old split already holds more than its share
  (with stratify, each class within two groups; 1,000 random cases with 10% new patients in
  tests/test_partition.py). A new series of an old patient joins that patient's split.
- **Saving.** ``splits.save("ct.parquet")`` writes ``ct.splits.json`` beside the catalog
  (any other path is written as given); ``Splits.load(path, catalog)`` rebuilds the splits of
  a (possibly rescanned) catalog.

Bad input raises :class:`~dicomml.errors.SplitError` (a ValueError): fractions that do not
sum to 1, fewer groups than splits or folds, a stratify class with fewer groups than splits,
a ``keep`` that a new link contradicts (two old groups in different splits now linked).

Example
-------
>>> import dicomml
>>> from dicomml.catalog.partition import demo_catalog
>>> cat = demo_catalog(n_patients=20)
>>> parts = cat.split((0.8, 0.1, 0.1), seed=0)
>>> {name: part.series.PatientID.nunique() for name, part in parts.items()}
{'train': 16, 'val': 2, 'test': 2}
>>> dicomml.check_leakage(parts)
>>> [len(fold["val"].patients()) for fold in cat.kfold(4, seed=1)]
[5, 5, 5, 5]
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from dicomml._columns import absent
from dicomml.errors import LeakageError, SelectionWarning, SplitError

DEFAULT_NAMES = ("train", "val", "test")
#: Columns :func:`check_leakage` compares by default.
LEAKAGE_COLUMNS = ("PatientID", "StudyInstanceUID")
#: Class of the groups without a stratify label (they form a stratum of their own).
UNLABELED = "<unlabeled>"
_FORMAT = "dicomml-splits"
_EPS = 1e-9


class Splits(dict):
    """Split name -> :class:`~dicomml.catalog.Catalog` (the Datasets take each directly),
    plus how it was made: ``by`` (grouping columns), ``assignment`` (``{column: {value:
    split name}}`` for every value of the grouping columns), ``groups`` (a DataFrame:
    ``group``, ``split``, ``n_series``, ``stratum``) and ``params`` (fractions, seed...).

    >>> from dicomml.catalog.partition import demo_catalog
    >>> parts = demo_catalog(n_patients=10).split((0.5, 0.5), seed=3)
    >>> sorted(parts), parts.groups.split.value_counts().tolist()
    (['test', 'train'], [5, 5])
    """

    def __init__(self, catalogs: Mapping, *, by=(), assignment=None, groups=None,
                 params=None):
        super().__init__(catalogs)
        self.by = tuple(by)
        self.assignment = assignment or {}
        self.groups = groups if groups is not None else pd.DataFrame(
            columns=["group", "split", "n_series", "stratum"])
        self.params = dict(params or {})

    def save(self, path) -> Path:
        """Write the assignment as JSON and return the path written. A catalog path
        (``*.parquet``) puts the file beside it: ``ct.parquet`` -> ``ct.splits.json``."""
        path = splits_path(path)
        payload = {"format": _FORMAT, "version": 1, "by": list(self.by),
                   "names": list(self), "params": self.params,
                   "assignment": self.assignment,
                   "series": {name: sorted(cat.objects.series_key) for name, cat in
                              self.items()}}
        path.write_text(json.dumps(payload, indent=1, sort_keys=True, default=str))
        return path

    @classmethod
    def load(cls, path, catalog) -> Splits:
        """The splits saved at ``path`` applied to ``catalog`` (a series goes to the split of
        any of its grouping values; series of groups the file does not know are left out,
        with a :class:`~dicomml.errors.SelectionWarning`: pass the file as ``keep=`` to
        ``split`` to place them)."""
        payload = read_saved(path)
        from .catalog import Catalog

        catalog = Catalog.open(catalog)
        by = tuple(payload["by"])
        table = group_table(catalog, by, payload["params"].get("links"))
        placed = _place_by_assignment(table, by, payload["assignment"])
        unknown = int(placed.isna().sum())
        if unknown:
            warnings.warn(f"{unknown} series belong to groups that {path} does not assign; "
                          "left out (split with keep= to place them)", SelectionWarning,
                          stacklevel=2)
        names = payload["names"]
        table = table.assign(split=placed)
        catalogs = {name: _subset(catalog, table.series_key[table.split == name])
                    for name in names}
        return cls(catalogs, by=by, assignment=payload["assignment"],
                   groups=_group_summary(table.dropna(subset=["split"])),
                   params=payload["params"])


def splits_path(path) -> Path:
    """Where splits are saved for ``path``: beside a catalog file (``ct.parquet`` ->
    ``ct.splits.json``), else ``path`` itself.

    >>> splits_path("/data/ct.parquet").name
    'ct.splits.json'
    """
    path = Path(path)
    return path.with_suffix(".splits.json") if path.suffix == ".parquet" else path


def read_saved(path) -> dict:
    """The JSON payload written by :meth:`Splits.save` (``SplitError`` if it is not one)."""
    path = splits_path(path)
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SplitError(f"cannot read saved splits: {exc}", path=path) from exc
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise SplitError("not a splits file written by Splits.save", path=path)
    return payload


# --- groups ---------------------------------------------------------------------------------
def group_table(catalog, by="PatientID", links=None) -> pd.DataFrame:
    """One row per object of ``catalog`` (``series_key``) with its ``group`` (the smallest
    first-``by`` value of the linked group) and ``tokens`` (its ``(column, value)`` pairs).

    >>> from dicomml.catalog.partition import demo_catalog
    >>> group_table(demo_catalog(n_patients=2)).group.tolist()
    ['P000', 'P000', 'P001', 'P001']
    """
    by = _columns(by)
    objects = catalog.objects
    for column in by:
        if column not in objects:
            raise SplitError(f"no column {column!r} in the catalog to group by", tag=column)
    first = _with_placeholders(objects, by[0])
    tokens = [[(by[0], value)] for value in first]
    for column in by[1:]:
        for row, value in zip(tokens, objects[column].tolist()):
            if not _missing(value):
                row.append((column, str(value)))
    parent: dict = {}
    for row in tokens:
        for token in row[1:]:
            _union(parent, row[0], token)
    for a, b in _link_pairs(links):
        _union(parent, (by[0], a), (by[0], b))
    root_label: dict = {}
    roots = [_find(parent, row[0]) for row in tokens]
    for root, value in zip(roots, first):
        if root not in root_label or value < root_label[root]:
            root_label[root] = value
    return pd.DataFrame({"series_key": objects["series_key"].tolist(),
                         "group": [root_label[r] for r in roots], "tokens": tokens})


def _with_placeholders(objects: pd.DataFrame, column: str) -> list[str]:
    """Values of ``column`` as text; a missing value becomes one placeholder per study (per
    series when grouping by study), with a warning."""
    source = "SeriesInstanceUID" if column == "StudyInstanceUID" else "StudyInstanceUID"
    values = objects[column].tolist()
    fallback = objects[source].tolist() if source in objects else objects["series_key"]
    out, missing = [], set()
    for value, other in zip(values, fallback):
        if _missing(value):
            label = f"<no {column}: {source.replace('InstanceUID', '').lower()} {other}>"
            missing.add(label)
            out.append(label)
        else:
            out.append(str(value).strip())
    if missing:
        warnings.warn(f"{sum(v in missing for v in out)} series have no {column}: grouped "
                      f"under {len(missing)} placeholder(s), one per "
                      f"{source.replace('InstanceUID', '').lower()} (never spread across "
                      "splits)", SelectionWarning, stacklevel=4)
    return out


def _missing(value) -> bool:
    """No usable group value: :func:`~dicomml._columns.absent`, or blank text."""
    return absent(value) or (isinstance(value, str) and not value.strip())


def _columns(by) -> tuple[str, ...]:
    by = (by,) if isinstance(by, str) else tuple(by)
    if not by:
        raise SplitError("by= names no column")
    return by


def _link_pairs(links) -> list[tuple[str, str]]:
    if links is None:
        return []
    if isinstance(links, Mapping):
        return [(str(a), str(b)) for a, b in links.items()]
    pairs = []
    for members in links:
        members = [str(m) for m in members]
        pairs += [(members[0], m) for m in members[1:]]
    return pairs


def _find(parent: dict, x):
    root = x
    while parent.get(root, root) != root:
        root = parent[root]
    while parent.get(x, x) != root:
        parent[x], x = root, parent[x]
    return root


def _union(parent: dict, a, b) -> None:
    ra, rb = _find(parent, a), _find(parent, b)
    if ra != rb:
        parent[max(ra, rb)] = min(ra, rb)


# --- allocation (pure) ----------------------------------------------------------------------
def hamilton(n: int, fractions) -> np.ndarray:
    """Largest-remainder counts: ``n`` items to splits of ``fractions`` (sum 1); each count
    is ``floor(f * n)`` or one more; ties go to the earlier split.

    >>> hamilton(10, (0.75, 0.15, 0.1)).tolist()
    [8, 1, 1]
    """
    return _largest_remainder(np.asarray(fractions, dtype=np.float64) * n, n)


def _largest_remainder(ideal: np.ndarray, n: int) -> np.ndarray:
    """Integers summing to ``n``, each ``floor`` of ``ideal`` or one more (``ideal`` sums to
    ``n``); the largest fractional parts round up, ties to the earlier entry."""
    counts = np.floor(ideal + _EPS).astype(np.int64)
    order = np.argsort(-(ideal - counts), kind="stable")
    counts[order[:n - int(counts.sum())]] += 1
    return counts


def stratified_counts(sizes, fractions) -> np.ndarray:
    """Counts ``[class, split]``: each row a largest-remainder allocation of its class
    (``floor`` or one more), and column sums within one of ``f * sum(sizes)`` (the row
    remainders go to the splits with the most room left, Gale-Ryser style).

    >>> stratified_counts([3, 3, 4], (0.8, 0.1, 0.1)).tolist()
    [[3, 0, 0], [2, 1, 0], [3, 0, 1]]
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    return _controlled_rounding(sizes[:, None] * np.asarray(fractions, dtype=np.float64)[None])


def _controlled_rounding(ideal: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
    """Round the matrix ``ideal`` (rows sum to integers) to integers: every cell ``floor`` or
    one more where possible, rows keep their sums, column sums within one of ``columns``
    (default: the ideal column sums; same total)."""
    counts = np.floor(ideal + _EPS).astype(np.int64)
    rows = np.rint(ideal.sum(axis=1)).astype(np.int64)
    columns = ideal.sum(axis=0) if columns is None else columns
    room = _largest_remainder(columns, int(rows.sum())) - counts.sum(axis=0)
    left = rows - counts.sum(axis=1)
    for c in np.argsort(-left, kind="stable"):
        frac = ideal[c] - counts[c]
        rank = sorted(range(ideal.shape[1]), key=lambda i: (-room[i], frac[i] <= _EPS,
                                                            -frac[i], i))
        for i in rank[:left[c]]:
            counts[c, i] += 1
            room[i] -= 1
    return counts


def _top_up(deficit: np.ndarray, m: int) -> np.ndarray:
    """The split of ``m`` new items closest to ``deficit`` (target minus what each split
    holds): its Euclidean projection on ``{y >= 0, sum(y) = m}`` (water filling).

    >>> _top_up(np.array([3.0, -1.0, 1.0]), 2).tolist()
    [2.0, 0.0, 0.0]
    """
    u = np.sort(deficit)[::-1]
    cumulative = np.cumsum(u) - m
    ranks = np.arange(1, len(u) + 1)
    rho = int(np.nonzero(u - cumulative / ranks > 0)[0][-1])
    return np.maximum(deficit - cumulative[rho] / (rho + 1), 0.0)


def allocate(groups, fractions, *, strata=None, fixed=None, seed=0) -> dict:
    """``{group: split index}`` for ``groups`` (names), see the module docstring.

    ``strata``: ``{group: class}`` or None; ``fixed``: ``{group: split index}`` kept as is.

    >>> allocate(["a", "b", "c", "d"], (0.5, 0.5), seed=0)
    {'c': 0, 'a': 0, 'b': 1, 'd': 1}
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    members = set(groups)
    fixed = {g: i for g, i in (fixed or {}).items() if g in members}
    new = [g for g in sorted(members) if g not in fixed]
    rng = np.random.default_rng(seed)
    new = [new[i] for i in rng.permutation(len(new))]
    strata = {g: 0 for g in members} if strata is None else {g: strata[g] for g in members}
    classes = sorted(set(strata.values()), key=str)
    ideal = np.zeros((len(classes), len(fractions)))
    for row, cls in enumerate(classes):
        size = sum(1 for g in members if strata[g] == cls)
        held = np.bincount([i for g, i in fixed.items() if strata[g] == cls],
                           minlength=len(fractions))
        n_new = sum(1 for g in new if strata[g] == cls)
        ideal[row] = _top_up(fractions * size - held, n_new) if n_new else 0.0
    held = np.bincount(list(fixed.values()), minlength=len(fractions))
    totals = _top_up(fractions * len(members) - held, len(new)) if new else None
    counts = _controlled_rounding(ideal, totals)
    out = dict(fixed)
    for row, cls in zip(counts, classes):
        mine = [g for g in new if strata[g] == cls]
        out.update(zip(mine, np.repeat(np.arange(len(fractions)), row).tolist()))
    return out


# --- the public operations ------------------------------------------------------------------
def split(catalog, fractions=(0.8, 0.1, 0.1), *, by="PatientID", stratify=None, seed=0,
          names=None, keep=None, links=None) -> Splits:
    """Split ``catalog`` into whole groups (see the module docstring); a :class:`Splits`.

    ``fractions``: a sequence (names from ``names``, default train/val/test, or train/test
    for two) or a mapping name -> fraction; non-negative, summing to 1. ``stratify``: a
    catalog column, or a mapping / pandas Series of labels keyed by series key or by the
    first ``by`` column (a group's class is its most frequent label).

    >>> from dicomml.catalog.partition import demo_catalog
    >>> parts = split(demo_catalog(n_patients=10), {"a": 0.7, "b": 0.3}, seed=1)
    >>> [len(p.patients()) for p in parts.values()]
    [7, 3]
    """
    names, fractions = _fractions(fractions, names)
    by = _columns(by)
    table = group_table(catalog, by, links)
    groups = sorted(set(table.group))
    needed = int((fractions > 0).sum())
    if len(groups) < needed:
        raise SplitError(f"{len(groups)} group(s) by {by[0]} for {needed} non-empty "
                         "splits: need at least one group per split", tag=by[0])
    strata = _strata(catalog, table, stratify, by, needed) if stratify is not None else None
    fixed = _fixed(table, by, keep, names)
    index = allocate(groups, fractions, strata=strata, fixed=fixed, seed=seed)
    params = {"fractions": fractions.tolist(), "seed": seed,
              "stratify": stratify if isinstance(stratify, str) else None,
              "links": _link_pairs(links) or None}
    return _build(catalog, table, by, names, index, strata, params)


def kfold(catalog, k: int, *, by="PatientID", stratify=None, seed=0, links=None) -> list:
    """``k`` :class:`Splits` with keys ``"train"`` and ``"val"``; the val parts partition the
    groups (sizes within one group of each other; stratified like :func:`split`).

    >>> from dicomml.catalog.partition import demo_catalog
    >>> folds = kfold(demo_catalog(n_patients=7), 3, seed=0)
    >>> [len(f["val"].patients()) for f in folds], [len(f["train"].patients()) for f in folds]
    ([3, 2, 2], [4, 5, 5])
    """
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise SplitError(f"k must be an integer >= 2, got {k!r}")
    by = _columns(by)
    table = group_table(catalog, by, links)
    groups = sorted(set(table.group))
    if k > len(groups):
        raise SplitError(f"{k} folds but only {len(groups)} group(s) by {by[0]}", tag=by[0])
    strata = _strata(catalog, table, stratify, by, k) if stratify is not None else None
    index = allocate(groups, np.full(k, 1.0 / k), strata=strata, seed=seed)
    folds = []
    for fold in range(k):
        two = {g: 1 if i == fold else 0 for g, i in index.items()}
        params = {"fold": fold, "k": k, "seed": seed, "links": _link_pairs(links) or None,
                  "stratify": stratify if isinstance(stratify, str) else None}
        folds.append(_build(catalog, table, by, ["train", "val"], two, strata, params))
    return folds


def check_leakage(*catalogs, by=LEAKAGE_COLUMNS, max_listed: int = 10) -> None:
    """Raise :class:`~dicomml.errors.LeakageError` when two of ``catalogs`` share a value of
    any ``by`` column (default: a patient or a study); the message names the values and the
    splits. Pass catalogs positionally (named ``0``, ``1``...) or one mapping of name ->
    Catalog (a :class:`Splits`). Missing values are not compared.

    >>> from dicomml.catalog.partition import demo_catalog
    >>> cat = demo_catalog(n_patients=3)
    >>> check_leakage({"train": cat.filter(PatientID=["P000", "P001"]),
    ...                "test": cat.filter(PatientID=["P001", "P002"])})
    Traceback (most recent call last):
    dicomml.errors.LeakageError: 1 PatientID value(s) in more than one split: 'P001' in train, test; ...
    """
    named = _named(catalogs)
    shared = {}
    for column in _columns(by):
        where: dict = {}
        for name, cat in named.items():
            if column not in cat.objects:
                continue
            for value in set(cat.objects[column].dropna().astype(str)) - {""}:
                where.setdefault(value, []).append(name)
        found = {v: names for v, names in sorted(where.items()) if len(names) > 1}
        if found:
            shared[column] = found
    if not shared:
        return None
    parts = []
    for column, found in shared.items():
        listed = "; ".join(f"{v!r} in {', '.join(map(str, n))}" for v, n in
                           list(found.items())[:max_listed])
        more = f"; and {len(found) - max_listed} more" if len(found) > max_listed else ""
        parts.append(f"{len(found)} {column} value(s) in more than one split: {listed}{more}")
    raise LeakageError("; ".join(parts), shared=shared, tag=next(iter(shared)))


def check_dataset_splits(catalog, splits, by=LEAKAGE_COLUMNS) -> str:
    """What the Datasets run for ``splits=``: the splits share no patient/study, and the
    dataset's series (``catalog``) lie in one split, which shares nothing with the others.
    Returns that split's name; raises :class:`~dicomml.errors.LeakageError`.

    >>> from dicomml.catalog.partition import demo_catalog
    >>> parts = demo_catalog(n_patients=4).split((0.5, 0.5))
    >>> check_dataset_splits(parts["test"], parts)
    'test'
    """
    named = _named((splits,))
    check_leakage(named, by=by)
    keys = set(catalog.series.series_key)
    home = [name for name, cat in named.items() if keys <= set(cat.objects.series_key)]
    if not home:
        holders = sorted({name for name, cat in named.items()
                          if keys & set(cat.objects.series_key)})
        raise LeakageError("the dataset's series are not all in one split (they lie in "
                           f"{', '.join(holders) or 'none of the splits'})")
    others = {name: cat for name, cat in named.items() if name != home[0]}
    check_leakage({f"dataset ({home[0]})": catalog, **others}, by=by)
    return home[0]


# --- helpers --------------------------------------------------------------------------------
def _fractions(fractions, names) -> tuple[list[str], np.ndarray]:
    if isinstance(fractions, Mapping):
        names, values = list(fractions), list(fractions.values())
    else:
        values = list(fractions)
        if names is None:
            names = ["train", "test"] if len(values) == 2 else \
                list(DEFAULT_NAMES) if len(values) == 3 else [f"split{i}" for i in
                                                              range(len(values))]
    names = [str(n) for n in names]
    try:
        f = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SplitError(f"fractions must be numbers, got {values!r}") from exc
    if len(names) != len(f) or len(set(names)) != len(names) or len(f) < 2:
        raise SplitError(f"need at least 2 fractions and one distinct name each, got "
                         f"{len(f)} fraction(s) for names {names}")
    if not np.all(np.isfinite(f)) or (f < 0).any() or abs(f.sum() - 1) > 1e-6:
        raise SplitError(f"fractions must be >= 0 and sum to 1, got {values} (sum "
                         f"{f.sum():.6g})")
    return names, f / f.sum()


def _strata(catalog, table: pd.DataFrame, stratify, by, n_splits: int) -> dict:
    """``{group: class}``: the most frequent label of the group's series."""
    column = stratify if isinstance(stratify, str) else None
    if column is not None:
        if column in catalog.objects:
            labels = catalog.objects[column].tolist()
        elif column in catalog.instances:
            first = catalog.instances.groupby("series_key", sort=False)[column].first()
            labels = table.series_key.map(first).tolist()
        else:
            raise SplitError(f"stratify: no column {column!r} in the catalog", tag=column)
    else:
        mapping = stratify.to_dict() if isinstance(stratify, pd.Series) else dict(stratify)
        keys = [str(k) for k in mapping]
        mapping = dict(zip(keys, mapping.values()))
        if set(keys) & set(table.series_key):
            labels = [mapping.get(k) for k in table.series_key]
        else:
            labels = [mapping.get(row[0][1]) for row in table.tokens]
    frame = pd.DataFrame({"group": table.group, "label": labels}).dropna(subset=["label"])
    counts = frame.groupby(["group", "label"], sort=False).size().reset_index(name="n")
    counts["text"] = counts["label"].astype(str)  # ties: the label that sorts first as text
    best = counts.sort_values(["group", "n", "text"], ascending=[True, False, True],
                              kind="stable").drop_duplicates("group")
    strata = dict(zip(best["group"], best["label"]))
    strata = {g: strata.get(g, UNLABELED) for g in set(table.group)}
    sizes = pd.Series(strata).value_counts()
    small = sizes[sizes < n_splits]
    if len(small):
        raise SplitError(f"stratify: class(es) {', '.join(map(repr, small.index.tolist()))} "
                         f"have fewer groups ({', '.join(map(str, small.tolist()))}) than the "
                         f"{n_splits} splits: merge rare classes or split without stratify",
                         tag=column)
    return strata


def _fixed(table: pd.DataFrame, by, keep, names: list[str]) -> dict:
    """``{group: split index}`` for the groups ``keep`` already assigned."""
    if keep is None:
        return {}
    assignment = assignment_of(keep, by)
    unknown = sorted({s for values in assignment.values() for s in values.values()} -
                     set(names))
    if unknown:
        raise SplitError(f"keep= assigns to split(s) {unknown} not among {names}")
    placed = _place_by_assignment(table, by, assignment, strict=True)
    fixed = {}
    for group, name in zip(table.group, placed):
        if absent(name):
            continue
        if fixed.setdefault(group, names.index(name)) != names.index(name):
            raise SplitError(f"keep=: group {group!r} links series that were in splits "
                             f"{names[fixed[group]]} and {name}", tag=by[0])
    return fixed


def assignment_of(previous, by) -> dict:
    """``{column: {value: split name}}`` from a :class:`Splits`, a saved file, or a mapping
    of split name -> Catalog (or -> values of the first ``by`` column)."""
    by = _columns(by)
    if isinstance(previous, Splits) and previous.assignment:
        return previous.assignment
    if isinstance(previous, (str, os.PathLike)):
        return read_saved(previous)["assignment"]
    if not isinstance(previous, Mapping):
        raise SplitError("keep= takes an earlier split's result, its saved file, or a mapping "
                         f"of split name to Catalog or values; got {type(previous).__name__}")
    out: dict = {column: {} for column in by}
    for name, part in previous.items():
        if hasattr(part, "objects"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SelectionWarning)
                tokens = group_table(part, by).tokens
            for row in tokens:
                for column, value in row:
                    out[column][value] = str(name)
        else:
            out[by[0]].update({str(v): str(name) for v in part})
    return out


def _place_by_assignment(table, by, assignment, strict=False) -> pd.Series:
    """The split of each row of ``table`` by its tokens (None when no token is assigned)."""
    out = []
    for row in table.tokens:
        found = {assignment.get(column, {}).get(value) for column, value in row} - {None}
        if len(found) > 1 and strict:
            raise SplitError(f"keep=: series of {row[0][1]!r} link values assigned to "
                             f"different splits ({', '.join(sorted(found))})", tag=by[0])
        out.append(min(found) if found else None)
    return pd.Series(out, index=table.index, dtype=object)


def _build(catalog, table, by, names, index: dict, strata, params) -> Splits:
    table = table.assign(split=[names[index[g]] for g in table.group])
    if strata is not None:
        table["stratum"] = [strata[g] for g in table.group]
    assignment: dict = {column: {} for column in by}
    for row, name in zip(table.tokens, table.split):
        for column, value in row:
            assignment[column][value] = name
    catalogs = {name: _subset(catalog, table.series_key[table.split == name]) for name in names}
    return Splits(catalogs, by=by, assignment=assignment, groups=_group_summary(table),
                  params=params)


def _group_summary(table: pd.DataFrame) -> pd.DataFrame:
    g = table.groupby("group", sort=True)
    out = pd.DataFrame({"split": g["split"].first(), "n_series": g.size()})
    out["stratum"] = g["stratum"].first() if "stratum" in table else None
    return out.reset_index()


def _subset(catalog, keys: Iterable[str]):
    return catalog.filter(series_key=list(keys))


def _named(catalogs) -> dict:
    if len(catalogs) == 1 and isinstance(catalogs[0], Mapping):
        return {str(k): v for k, v in catalogs[0].items()}
    return {str(i): c for i, c in enumerate(catalogs)}


def demo_catalog(n_patients: int = 10, series_per_patient: int = 2, *, labels=None,
                 missing_patient: int = 0):
    """A header-only Catalog (no files) of ``n_patients`` patients ``P000``..., one study
    each with ``series_per_patient`` CT series, for examples and tests. ``labels``: a list of
    per-patient labels, set as the ``label`` column; ``missing_patient``: how many extra
    studies (one series each) lack PatientID.

    >>> len(demo_catalog(3, 2).series), demo_catalog(3, 2).patients().PatientID.tolist()
    (6, ['P000', 'P001', 'P002'])
    """
    from . import tags as T
    from .catalog import Catalog
    from .table import instances_frame

    records = []
    rows = [(f"P{p:03d}", f"1.2.9.{p}", f"1.2.9.{p}.{s}") for p in range(n_patients)
            for s in range(series_per_patient)]
    rows += [(None, f"1.2.8.{m}", f"1.2.8.{m}.0") for m in range(missing_patient)]
    for pid, study, series in rows:
        row = [None] * len(T.COLUMNS)
        row[T.INDEX["PatientID"]], row[T.INDEX["StudyInstanceUID"]] = pid, study
        row[T.INDEX["SeriesInstanceUID"]], row[T.INDEX["Modality"]] = series, "CT"
        row[T.INDEX["SOPInstanceUID"]], row[T.INDEX["InstanceNumber"]] = series + ".1", 1
        row[T.INDEX["pixel_data_offset"]], row[T.INDEX["pixel_data_length"]] = 0, 8
        records.append((f"/demo/{series}.dcm", 8, 0, tuple(row)))
    cat = Catalog(instances_frame(records))
    if labels is not None:
        by_patient = {f"P{p:03d}": label for p, label in enumerate(labels)}
        cat.series = cat.objects.assign(label=cat.objects.PatientID.map(by_patient))
    return cat
