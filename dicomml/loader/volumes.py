"""4D series of single-frame files: diffusion encoding from every vendor, derived (trace)
images, and volumes that no standard tag tells apart.

Runs on the plane table (:mod:`dicomml.geometry.planes`) before it is arranged, only when some
position holds more than one single-frame MR plane (a 4D candidate):

1. **Diffusion encoding** (:func:`dicomml.geometry.diffusion.vendor_diffusion`: the standard
   (0018,9087)/(0018,9089), then Philips, GE, Canon or Siemens private tags), read lazily with
   pydicom (only the elements it needs, no pixels) when the catalog holds a b-value or the
   first file at a repeated position carries an encoding. Headers are read at the first and
   last position and assigned by Instance Number rank when both agree, else file by file.
   Fills ``b_value`` and ``gradient`` (unit LPS vector, None for b=0).
2. **Derived images** (a vendor-flagged isotropic/trace image: b > 0 and no direction, e.g.
   Philips (2001,1004) = ``I`` or (0018,9075) = ISOTROPIC) are left out of the 4D volume, as
   dcm2niix leaves them out of its DWI (it writes them only into a separate ``_ADC`` file).
   The left-out files are listed in the provenance; load them as their own series with
   ``load_series(vol.metadata["provenance"]["left_out"]["files"])``.
3. **Volumes no standard tag tells apart** (no temporal position, echo, b-value, gradient or
   acquisition number differs between the planes at one position): when *every* position holds
   the same number of planes, the k-th plane of each position (in Instance Number order, then
   Acquisition Time, Acquisition Number, file path — dcm2niix's order) forms volume k
   (``volume_key``). The rule is recorded (``RULE_INSTANCE``). Unequal counts, or two planes
   at one position that are the same image (same SOP Instance UID, or the same Instance Number
   and identical pixels), stay duplicates (:class:`~dicomml.errors.DuplicateSliceError` under
   the default policy).
4. **Incomplete volumes**: where the dimension values tell every volume apart and some
   positions lack a volume's plane, :func:`drop_incomplete` applies the ``missing`` policy
   (:class:`~dicomml.errors.MissingSliceError` naming the volume and positions, or the
   volume dropped and recorded).

Example
-------
>>> import dicomml, tempfile
>>> folder = tempfile.mkdtemp()
>>> truth = dicomml.synth.write_series(folder, modality="MR", shape=(3, 4, 8, 8),
...                                    fourth_dim="ge_dwi")                  # doctest: +SKIP
>>> vol = dicomml.load_series(folder)                                      # doctest: +SKIP
>>> vol.metadata["volumes"][1]["ordered_by"]                               # doctest: +SKIP
'InstanceNumber'
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dicomml.geometry.planes import DIMENSIONS

__all__ = ["resolve_repeats", "drop_incomplete", "RULE_INSTANCE"]

#: the ordering rule recorded when no standard tag tells the volumes apart
RULE_INSTANCE = "InstanceNumber"
_POSITION_MM = 0.01


def _location_ids(planes: pd.DataFrame) -> np.ndarray:
    """An id per plane for its position (rounded to 0.01 mm)."""
    pos = np.round(np.asarray(planes["position"].tolist(), dtype=np.float64) / _POSITION_MM)
    table = pd.DataFrame(pos.astype(np.int64), columns=["x", "y", "z"])
    return table.groupby(["x", "y", "z"], sort=True).ngroup().to_numpy()


def _plain_single_frame(planes: pd.DataFrame) -> bool:
    return bool((planes["tile"] < 0).all() and (planes["frame"] == 0).all()
                and "volume_key" not in planes.columns
                and planes["path"].nunique() == len(planes))


def resolve_repeats(planes: pd.DataFrame, instances: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The plane table with diffusion encoding filled, derived images left out and a
    ``volume_key`` where needed (module docstring), and what was done
    (``{"diffusion": source, "derived": {...}, "volume_rule": str}``, empty when nothing)."""
    done: dict = {}
    if len(planes) < 2 or not _plain_single_frame(planes):
        return planes, done
    ids = _location_ids(planes)
    if np.bincount(ids).max() < 2:
        return planes, done
    if _is_mr(instances) and _probe_diffusion(planes, ids):
        planes = _with_diffusion(planes, ids, instances, done)
        planes = _without_derived(planes, done)
        ids = _location_ids(planes)
    counts = np.bincount(ids)
    if counts.min() != counts.max():
        incomplete = _incomplete(planes, ids)
        if incomplete is not None:
            done["incomplete"] = incomplete
        return planes, done
    if counts.max() < 2 or _distinct(planes, ids):
        return planes, done
    if _same_images(planes, ids, instances):
        return planes, done
    planes = planes.copy()
    planes["volume_key"] = _rank_in_location(planes, ids, instances)
    done["volume_rule"] = RULE_INSTANCE
    return planes, done


def _signatures(planes: pd.DataFrame) -> list[tuple]:
    """Per plane: its dimension values as text ("" for None / NaN)."""
    names = [n for n in DIMENSIONS if n in planes.columns]
    return [tuple("" if (v is None or (isinstance(v, float) and v != v)) else str(v)
                  for v in row) for row in zip(*(planes[n].tolist() for n in names))]


def _incomplete(planes: pd.DataFrame, ids: np.ndarray) -> dict | None:
    """Volumes missing at some positions, when the dimension values tell every volume apart
    (a complete position holds one plane of each): ``{"volumes": [values...], "positions":
    [LPS mm...], "rows": [plane rows of those volumes]}``; None otherwise."""
    counts = np.bincount(ids)
    n = int(counts.max())
    signatures = _signatures(planes)
    full = int(np.argmax(counts == n))
    complete = {signatures[i] for i in np.flatnonzero(ids == full)}
    if n < 2 or len(complete) != n or any(s not in complete for s in signatures):
        return None
    missing: set = set()
    positions = []
    for location in np.flatnonzero(counts < n):
        here = {signatures[i] for i in np.flatnonzero(ids == location)}
        if len(here) != counts[location]:
            return None  # a repeated signature: duplicates, not a missing slice
        missing |= complete - here
        positions.append(list(planes["position"].iloc[int(np.flatnonzero(ids == location)[0])]))
    names = [n for n in DIMENSIONS if n in planes.columns]
    rows = [i for i, sig in enumerate(signatures) if sig in missing]
    return {"volumes": [dict(zip(names, sig)) for sig in sorted(missing)],
            "positions": positions, "rows": rows}


def drop_incomplete(planes: pd.DataFrame, done: dict, action: str, key: str) -> pd.DataFrame:
    """Apply the ``missing`` policy to the incomplete volumes :func:`resolve_repeats` found:
    "raise" a :class:`~dicomml.errors.MissingSliceError` naming the volumes and positions,
    otherwise drop those volumes (recorded in ``done["dropped_volumes"]``; "warn" also warns a
    :class:`~dicomml.errors.GeometryWarning`)."""
    import warnings

    from dicomml.errors import GeometryWarning, MissingSliceError

    found = done.pop("incomplete", None)
    if found is None:
        return planes
    message = (f"volume(s) {found['volumes']} lack slices at {len(found['positions'])} "
               f"position(s) (LPS mm) {found['positions'][:10]}")
    if action == "raise":
        raise MissingSliceError(message + "; policy={'missing': 'warn'} drops those volumes",
                                path=key)
    if action == "warn":
        warnings.warn(f"{key}: {message}; dropped", GeometryWarning, stacklevel=3)
    done["dropped_volumes"] = {"volumes": found["volumes"], "positions": found["positions"],
                               "action": action}
    keep = np.ones(len(planes), dtype=bool)
    keep[found["rows"]] = False
    return planes[keep].reset_index(drop=True)


def _is_mr(instances: pd.DataFrame) -> bool:
    if "Modality" not in instances:
        return True
    return bool((instances["Modality"] == "MR").any())


def _distinct(planes: pd.DataFrame, ids: np.ndarray) -> bool:
    """True when at every position the dimension values differ between all its planes."""
    names = [n for n in DIMENSIONS if n in planes.columns]
    keys = pd.DataFrame({"location": ids})
    for name in names:
        column = planes[name]
        if column.dtype.kind in "fiu":
            keys[name] = column.fillna(-np.inf).to_numpy()
            continue
        values = column.tolist()
        if any(v is not None for v in values):  # e.g. gradients; all None says nothing
            keys[name] = ["" if v is None else str(v) for v in values]
    return not keys.duplicated().any()


def _encoding(path: str, orientation):
    """The :class:`~dicomml.geometry.diffusion.Encoding` of one file (None when unreadable)."""
    import pydicom
    from pydicom.tag import Tag

    from dicomml.geometry.diffusion import DIFFUSION_TAGS, vendor_diffusion

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True,
                             specific_tags=[Tag(*t) for t in DIFFUSION_TAGS])
        return vendor_diffusion(ds, orientation)
    except Exception:  # noqa: BLE001 - a header that cannot say: no encoding from it
        return None


def _probe_diffusion(planes: pd.DataFrame, ids: np.ndarray) -> bool:
    """True when the series may be diffusion weighted: the catalog holds a b-value, or the first
    file at a repeated position carries an encoding (every vendor writes one on every image of
    a DWI series, b=0 included). An fMRI series of thousands of files is not read header by header
    for nothing."""
    if planes["b_value"].notna().any():
        return True
    location = int(np.argmax(np.bincount(ids)))
    rows = planes[ids == location].iloc[:1]
    return any(found is not None and found.b_value == found.b_value
               for found in map(_encoding, rows["path"].tolist(), rows["orientation"].tolist()))


def _with_diffusion(planes: pd.DataFrame, ids: np.ndarray, instances: pd.DataFrame,
                    done: dict) -> pd.DataFrame:
    """b_value / gradient / isotropic per plane from the files' headers (lazily read).

    Where every position holds the same number of planes, the headers at the first and the
    last position are read; when the k-th plane (Instance Number order) of both carries the
    same encoding for every k, the k-th plane of every position gets it (a DWI of thousands of
    files costs two volumes' worth of header reads). Otherwise every file is read."""
    paths, orientations = planes["path"].tolist(), planes["orientation"].tolist()
    encodings = _encodings_by_rank(planes, ids, instances)
    if encodings is None:
        encodings = [_encoding(p, o) for p, o in zip(paths, orientations)]
    else:
        done["diffusion_rule"] = ("read at the first and last position; the k-th plane of "
                                  "every position (Instance Number order) has the k-th encoding")
    b_values, gradients, isotropic, sources = [], [], [], set()
    for found, b_old in zip(encodings, planes["b_value"].tolist()):
        if found is None or found.b_value != found.b_value:
            b_values.append(b_old)
            gradients.append(None)
            isotropic.append(False)
            continue
        sources.add(found.source)
        b_values.append(found.b_value)
        gradients.append(found.gradient)
        isotropic.append(found.isotropic)
    if not sources:
        done.pop("diffusion_rule", None)
        return planes
    planes = planes.copy()
    planes["b_value"] = np.asarray(b_values, dtype=np.float64)
    planes["gradient"] = pd.Series(gradients, index=planes.index, dtype=object)
    planes["isotropic"] = isotropic
    done["diffusion"] = ", ".join(sorted(sources))
    return planes


def _encodings_by_rank(planes: pd.DataFrame, ids: np.ndarray, instances: pd.DataFrame):
    """Per plane, the encoding read at the first position for its rank (module rule of
    :func:`_with_diffusion`); None when the rule does not apply or the two positions differ."""
    counts = np.bincount(ids)
    if len(counts) < 3 or counts.min() != counts.max() or counts.max() < 2:
        return None
    rank = _rank_in_location(planes, ids, instances)
    paths, orientations = planes["path"].tolist(), planes["orientation"].tolist()
    read = {}
    for location in (0, len(counts) - 1):
        for index in np.flatnonzero(ids == location):
            read[(location, int(rank[index]))] = _encoding(paths[index], orientations[index])
    first = {r: e for (loc, r), e in read.items() if loc == 0}
    last = {r: e for (loc, r), e in read.items() if loc != 0}
    if not all(_same_encoding(first[r], last.get(r)) for r in first):
        return None
    return [first[int(r)] for r in rank]


def _same_encoding(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if not (a.b_value == b.b_value or (a.b_value != a.b_value and b.b_value != b.b_value)):
        return False
    if (a.gradient is None) != (b.gradient is None) or a.isotropic != b.isotropic:
        return False
    return a.gradient is None or bool(np.allclose(a.gradient, b.gradient, atol=1e-6))


def _without_derived(planes: pd.DataFrame, done: dict) -> pd.DataFrame:
    """Leave out isotropic (trace) images when directional diffusion images remain."""
    if "isotropic" not in planes.columns:
        return planes
    derived = planes["isotropic"].to_numpy(dtype=bool)
    directional = planes["gradient"].map(lambda g: g is not None).to_numpy(dtype=bool)
    if not derived.any() or not directional.any():
        return planes.drop(columns="isotropic")
    files = planes.loc[derived, "path"].tolist()
    done["derived"] = {
        "kind": "isotropic (trace) diffusion image", "files": files,
        "b_values": sorted(set(planes.loc[derived, "b_value"].tolist())),
        "reason": "b > 0 with no gradient direction, flagged isotropic by the vendor; "
                  "dcm2niix also keeps such images out of the DWI volume"}
    return planes[~derived].drop(columns="isotropic").reset_index(drop=True)


def _same_images(planes: pd.DataFrame, ids: np.ndarray, instances: pd.DataFrame) -> bool:
    """True when two planes at one position are the same image: the same SOP Instance UID, or
    the same Instance Number (absent counts as the same) with identical pixel data. Distinct
    instances may hold identical pixels (GE published fMRI runs whose volumes are equal):
    Instance Number, which identifies an image within its series (PS3.3 C.7.6.1), decides."""
    if "SOPInstanceUID" in instances and "path" in instances:
        uid_of = dict(zip(instances["path"].tolist(), instances["SOPInstanceUID"].tolist()))
        uids = [uid_of.get(p) for p in planes["path"].tolist()]
        pairs = {(i, u) for i, u in zip(ids.tolist(), uids) if u is not None}
        if len(pairs) < sum(u is not None for u in uids):
            return True
    numbers = planes["instance"].fillna(-1.0).to_numpy()
    if len({(i, n) for i, n in zip(ids.tolist(), numbers.tolist())}) == len(planes):
        return False
    # pixels, at up to three positions spread over the stack (a plane outside the body can
    # be constant in every volume: such planes say nothing)
    n_locations = int(ids.max()) + 1
    verdicts = []
    for location in sorted({n_locations // 2, n_locations // 4, (3 * n_locations) // 4}):
        found = _identical_pixels(planes.loc[ids == location, "path"].tolist())
        if found is not None:
            verdicts.append(found)
    return bool(verdicts) and all(verdicts)


def _identical_pixels(paths: list[str]) -> bool | None:
    """True when two of the files hold the same non-constant pixels, False when none do,
    None when every plane is constant or one cannot be decoded here."""
    from dicomml.decode import read_pixels

    seen = set()
    informative = False
    for path in paths:
        try:
            data = np.ascontiguousarray(read_pixels(path))
        except Exception:  # noqa: BLE001 - undecodable here: the loader reports it later
            return None
        if data.size and data.min() == data.max():
            continue
        informative = True
        digest = (data.shape, data.dtype.str, data.tobytes())
        if digest in seen:
            return True
        seen.add(digest)
    return False if informative else None


def _rank_in_location(planes: pd.DataFrame, ids: np.ndarray,
                      instances: pd.DataFrame) -> np.ndarray:
    """0-based rank of each plane among the planes at its position, by Instance Number, then
    Acquisition Time, Acquisition Number and path (dcm2niix's order)."""
    times = {}
    if "AcquisitionTime" in instances:
        times = dict(zip(instances["path"].tolist(), instances["AcquisitionTime"].tolist()))
    paths = planes["path"].tolist()
    keys = (  # most significant last (np.lexsort); text as its rank in sorted order
        pd.factorize(np.asarray(paths, dtype=object), sort=True)[0],
        planes["acquisition"].fillna(np.inf).to_numpy(dtype=np.float64),
        pd.factorize(np.asarray([str(times.get(p) or "") for p in paths], dtype=object),
                     sort=True)[0],
        planes["instance"].fillna(np.inf).to_numpy(dtype=np.float64),
        np.asarray(ids),
    )
    order = np.lexsort(keys)  # stable: ties keep the table's order
    located = np.asarray(ids)[order]
    starts = np.r_[0, np.flatnonzero(np.diff(located)) + 1]
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(starts, sizes)
    return rank
