"""``DicomImageDataset``: one 2D sample per image (issue 22 item 2).

Projection radiography (CR, DX, MG, IO), XA/RF single frames, ultrasound, secondary capture
or any single-frame object: each image of the catalog (``has_pixels``) is a sample. The index
is built from the catalog alone (nothing is decoded before ``__getitem__``).

Multi-frame objects (``multiframe=``): ``"frames"`` (default) gives one sample per frame;
``"channels"`` one sample per object with its frames as channels; ``"skip"`` leaves them out.
``frames=`` (a ``slice``, ``range`` or ``(start, stop)``) keeps only those frames of every
multi-frame object: a frame-range read decodes only them and reads only their bytes
(:func:`dicomml.decode.located.load_frames`), so one slab of a 50-frame tomosynthesis object
costs that slab.

Sample (after the transforms):

- ``image``: float32 ``(C, rows, columns)``: C = 1 for grey images, 3 for colour (R, G, B),
  the frames (times 3 for colour) with ``multiframe="channels"``;
- ``spacing``: float64 ``(2,)`` (row spacing, column spacing) in mm, chosen per PS3.3
  10.7.1.1 (:func:`pixel_spacing`), the rule taken in ``provenance["spacing"]``;
- ``affine``: float64 4x4 mapping the index ``(0, row, column, 1)`` to mm: LPS when a
  single-frame image has Image Orientation / Position (Patient), else the pixel grid scaled by
  ``spacing`` (frames of multi-frame objects: ``load_series`` places those;
  ``provenance["affine"]`` says which);
- ``orientation``: Patient Orientation after any flip (e.g. ``"A\\R"``; "" when absent);
  ``laterality``: Image Laterality, else Laterality ("" when absent);
- identifiers (``SOPInstanceUID``, ``series_key``, ``PatientID``, ``StudyInstanceUID``,
  ``SeriesInstanceUID``, ``AccessionNumber``), ``frame`` (the frame index; a list for
  ``"channels"``), ``metadata`` (catalog columns), ``provenance`` (values stage, spacing
  rule, flips, frames), ``padding_mask`` (when the image has padding) and ``label`` when
  labels are joined.

``values=``: ``"modality"`` (default), ``"presentation"`` (the VOI window or LUT, then
MONOCHROME1 / Presentation LUT Shape resolved: [0, 1], higher is brighter; ``window=`` picks a
window by index or explanation, or gives ``(center, width)``) or ``"stored"``, computed by
:mod:`dicomml.decode.stages` (the one owner of the value transforms), what was applied in
``provenance["values"]``; Pixel Padding Value gives ``sample["padding_mask"]`` (bool,
(C, rows, columns), True on padding) when the image has padding. ``orient=``: up to two
Patient Orientation letters that the image's rows / columns should point to, e.g. ``"L"``
(the patient's left on the image's right: the radiological convention of a chest film), ``"A"``
(mammography: anterior, the nipple, to the right, so the chest wall is always on the left),
``"LF"`` (also feet at the bottom); "" or ``"*"`` for a direction left as it is. An image whose
Patient Orientation does not name that axis is left as it is (``provenance["flip"]`` then says
``"unknown"``). Transforms see the 3D layout ``(C, 1, rows, columns)`` as in
:class:`~dicomml.DicomSliceDataset`, so ``dicomml.transforms`` apply unchanged; their
deterministic prefix is cached (``cache_dir``) per image.

Example
-------
>>> import tempfile, dicomml
>>> folder = tempfile.mkdtemp()
>>> _ = dicomml.synth.write_series(folder, shape=(3, 16, 12))
>>> ds = dicomml.DicomImageDataset(folder)
>>> len(ds), ds[0]["image"].shape, ds[0]["spacing"].shape
(3, torch.Size([1, 16, 12]), torch.Size([2]))
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import torch

from dicomml._columns import is_url, plain
from dicomml.catalog.catalog import Catalog
from dicomml.geometry.spacing import SPACING_PLANES, pixel_spacing

from . import _pipeline, _source
from ._core import SERIES_ERRORS, _label_value, _refuse_inside_data
from ._failures import FailedSample, Failures
from .cache import VolumeCache, entry_key, load_or_build
from .labels import LabelReport, join_labels
from .series import _check_index, _check_splits, _generator

log = logging.getLogger("dicomml.dataset")

VALUES = ("stored", "modality", "presentation")
MULTIFRAME = ("frames", "channels", "skip")
#: catalog columns in ``sample["metadata"]`` by default
IMAGE_METADATA = ("Modality", "BodyPartExamined", "ViewPosition", "ViewCodeMeaning",
                  "ImageLaterality", "Laterality", "PatientOrientation",
                  "PresentationIntentType", "PhotometricInterpretation", "Manufacturer")
IDS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "AccessionNumber")
_OPPOSITE = {"A": "P", "P": "A", "L": "R", "R": "L", "H": "F", "F": "H"}


# --- the rules (pure functions of catalog values) ------------------------------------------
def _letters(direction: str) -> str:
    return "".join(c for c in direction.upper() if c in _OPPOSITE)


def orientation_flips(patient_orientation, orient: str) -> tuple[list[str], str, list[str]]:
    """``(axes to flip, Patient Orientation after them, unknown axes)`` for the target
    ``orient`` (up to two letters: the direction the rows, then the columns should point to;
    "" or "*" leaves a direction alone). ``patient_orientation``: the catalog's value
    (``"A\\R"``); an axis whose direction names neither the target letter nor its opposite
    is "unknown" (not flipped). Axes are ``"columns"`` (left-right) and ``"rows"``.

    >>> orientation_flips("P\\\\L", "A")
    (['columns'], 'A\\\\L', [])
    >>> orientation_flips("R\\\\F", "LF")
    (['columns'], 'L\\\\F', [])
    """
    parts = [] if not isinstance(patient_orientation, str) else patient_orientation.split("\\")
    parts = (parts + ["", ""])[:2]
    target = (orient or "").replace("*", " ").ljust(2)[:2].upper()
    flips, unknown = [], []
    for axis, (name, want) in enumerate(zip(("columns", "rows"), target)):
        if want == " ":
            continue
        if want not in _OPPOSITE:
            raise ValueError(f"orient letters are A, P, L, R, H, F (or '*'), got {orient!r}")
        have = _letters(parts[axis])
        if want in have:
            continue
        if _OPPOSITE[want] in have:
            flips.append(name)
            parts[axis] = "".join(_OPPOSITE[c] for c in have)
        else:
            unknown.append(name)
    text = "\\".join(parts) if any(parts) else ""
    return flips, text, unknown


def _frame_selection(frames, count: int) -> list[int]:
    """The frames of an object of ``count`` frames that ``frames=`` keeps."""
    if frames is None:
        return list(range(count))
    if isinstance(frames, tuple) and len(frames) == 2:
        frames = slice(*frames)
    if isinstance(frames, (slice, range)):
        if isinstance(frames, range):
            frames = slice(frames.start, frames.stop, frames.step)
        return list(range(count))[frames]
    raise TypeError(f"frames must be None, a slice, a range or (start, stop), got {frames!r}")


# --- the dataset -----------------------------------------------------------------------------
class DicomImageDataset(torch.utils.data.Dataset):
    """Map-style dataset of 2D images (see the module docstring).

    ``source``: a Catalog, a catalog path or a folder (as for
    :class:`~dicomml.DicomSeriesDataset`); ``filter`` restricts the series. ``labels``: a CSV
    path, DataFrame or dict joined on ``on`` (``SOPInstanceUID`` first when the label table
    has it, then the series-level identifiers: :mod:`dicomml.dataset.labels`).
    ``spacing``: ``"patient"`` or ``"detector"`` (:func:`pixel_spacing`). ``cache_dir``,
    ``transform``, ``on_error``, ``seed``, ``splits``: as for the series dataset.
    """

    def __init__(self, source, *, filter=None, transform=None, labels=None,
                 label_column: str | list[str] = "label", on: str | None = None,
                 keep_unlabeled: bool = False, cache_dir: str | os.PathLike | None = None,
                 on_error: str = "raise", values: str = "modality", window=None,
                 orient: str | None = None,
                 spacing: str = "patient", multiframe: str = "frames", frames=None,
                 metadata: Iterable[str] = IMAGE_METADATA, seed: int | None = None,
                 scan_workers: int | None = None, splits: Mapping | None = None):
        _check_choice("values", values, VALUES)
        _check_choice("multiframe", multiframe, MULTIFRAME)
        _check_choice("spacing", spacing, SPACING_PLANES)
        _check_choice("on_error", on_error, ("raise", "skip"))
        if orient:
            orientation_flips("", orient)  # checks the letters now
        self.values, self.window = values, window
        self.orient, self.spacing = orient or "", spacing
        self.multiframe, self.frames, self.on_error = multiframe, frames, on_error
        self.metadata_keys = tuple(metadata)
        catalog = _source.select(Catalog.open(source, workers=scan_workers), filter)
        self.web_sources = _source.web_sources(catalog)  # travel to spawned workers
        self.split = _check_splits(catalog, splits)
        table = _image_table(catalog.instances)
        self.label_report: LabelReport | None = None
        self._labels = None
        if labels is not None:
            table = self._join(table, labels, label_column, on, keep_unlabeled)
        self._table = table
        self._rows, self._frames = self._build_index(table)
        self._prefix, self._rest = _pipeline.split_transforms(transform)
        self._prefix_keys = [_pipeline.cache_key_of(t) for t in self._prefix]
        self.cache = None
        if cache_dir is not None:
            _refuse_inside_data(cache_dir, getattr(catalog, "root", None))
            self.cache = cache_dir if isinstance(cache_dir, VolumeCache) \
                else VolumeCache(cache_dir)
        self.seed, self.epoch = seed, 0
        self._failures = Failures(on_error)

    def _join(self, table, labels, label_column, on, keep_unlabeled):
        values, report = join_labels(table, labels, label_column=label_column, on=on,
                                     keep_unlabeled=keep_unlabeled)
        self.label_report = report
        log.log(logging.WARNING if report.n_unlabeled and not keep_unlabeled else logging.INFO,
                "%s", str(report).replace("series", "images"))
        if report.n_unlabeled and not keep_unlabeled:
            keep = np.asarray([v is not None for v in values])
            table = table[keep].reset_index(drop=True)
            values = [v for v in values if v is not None]
        self._labels = values
        return table

    def _build_index(self, table: pd.DataFrame) -> tuple[np.ndarray, list]:
        """Per sample: its image row and its frames (an int, or a list for "channels")."""
        rows, frames = [], []
        counts = pd.to_numeric(table["NumberOfFrames"], errors="coerce").fillna(1)
        for i, count in enumerate(counts.astype(int).clip(lower=1).tolist()):
            if count == 1:
                rows.append(i)
                frames.append(0)
                continue
            if self.multiframe == "skip":
                continue
            chosen = _frame_selection(self.frames, count)
            if self.multiframe == "channels":
                if chosen:
                    rows.append(i)
                    frames.append(chosen)
            else:
                rows.extend([i] * len(chosen))
                frames.extend(chosen)
        return np.asarray(rows, dtype=np.int64), frames

    def __len__(self) -> int:
        return int(self._rows.size)

    def position(self, index: int) -> tuple[str, int | list[int]]:
        """``(SOPInstanceUID, frame(s))`` of sample ``index`` (no decoding)."""
        index = _check_index(index, len(self))
        row = self._table.iloc[int(self._rows[index])]
        return str(row["SOPInstanceUID"]), self._frames[index]

    # --- loading ----------------------------------------------------------------------------
    def __getitem__(self, index: int) -> dict | FailedSample:
        index = _check_index(index, len(self))
        if self.on_error == "skip":
            known = self._failures.known(index)
            if known is not None:
                return FailedSample(known)
        try:
            sample = self._load(index)
        except SERIES_ERRORS as exc:
            if self.on_error == "raise":
                raise
            return self._skip(index, exc)
        sample = _pipeline.apply_chain(self._rest, sample,
                                       _generator(self.seed, self.epoch, index))
        return _as_2d(sample, self._label(index))

    def _label(self, index: int):
        if self._labels is None:
            return None
        return _label_value(self._labels[int(self._rows[index])])

    def _load(self, index: int) -> dict:
        """The sample after the cached prefix: from the cache, else decoded (then stored)."""
        row = self._table.iloc[int(self._rows[index])]
        if self.cache is None:
            return self._decode(row, self._frames[index])
        key = entry_key([row["path"]], self._prefix_keys, {
            "image": str(row["SOPInstanceUID"]), "frames": self._frames[index],
            "values": self.values, "window": self.window, "orient": self.orient,
            "spacing": self.spacing,
            "metadata": list(self.metadata_keys)})
        return load_or_build(self.cache, key, lambda: self._decode(row, self._frames[index]),
                             str(row["path"]))

    def _decode(self, row: pd.Series, frames) -> dict:
        wanted = frames if isinstance(frames, list) else [frames]
        stored_at = _stored_row(row)  # a DICOMweb instance: its file in the local store
        image, record, mask = image_values(_read_frames(stored_at, wanted), stored_at,
                                           self.values, wanted, self.window)
        spacing, spacing_rule = pixel_spacing(row, self.spacing)
        affine, affine_kind = _image_affine(row, spacing)
        flips, orientation, unknown = orientation_flips(row.get("PatientOrientation"),
                                                        self.orient)
        image, affine = _flip(image, affine, flips)
        if mask is not None:
            mask, _ = _flip(mask, affine, flips)
        sample = {
            "image": torch.from_numpy(np.ascontiguousarray(image)[:, None]),
            "affine": torch.from_numpy(affine),
            "spacing": torch.tensor([1.0, *spacing], dtype=torch.float64),
            "SOPInstanceUID": _text(row.get("SOPInstanceUID")),
            "series_key": _text(row.get("series_key")),
            **{name: _text(row.get(name)) for name in IDS},
            "frame": frames,
            "orientation": orientation,
            "laterality": _text(row.get("ImageLaterality")) or _text(row.get("Laterality")),
            "metadata": {k: plain(row.get(k)) for k in self.metadata_keys},
            "provenance": {"values": _source.plain_tree(record), "spacing": spacing_rule,
                           "affine": affine_kind, "frames": wanted,
                           "flip": flips + [f"unknown {axis}" for axis in unknown]},
        }
        if mask is not None:
            sample["padding_mask"] = torch.from_numpy(np.ascontiguousarray(mask)[:, None])
        return _pipeline.apply_chain(self._prefix, sample)

    def _skip(self, index: int, exc: BaseException) -> FailedSample:
        sop, frames = self.position(index)
        return self._failures.add(index, f"{sop} frame {frames}", exc, "image")

    def failures(self) -> list[dict]:
        """The samples skipped by ``on_error="skip"`` in any process (DataLoader workers
        included); records as :meth:`dicomml.DicomSeriesDataset.failures` (``series_index``:
        the sample index, ``series_key``: ``"<SOPInstanceUID> frame <n>"``)."""
        return self._failures.records()

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's random-transform draws (only matters with ``seed`` set)."""
        self.epoch = int(epoch)

    def __repr__(self) -> str:
        return (f"DicomImageDataset({len(self)} samples from {len(self._table)} images, "
                f"values={self.values!r}, multiframe={self.multiframe!r}, "
                f"orient={self.orient!r}, cache={self.cache!r})")


def _check_choice(name: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _text(value) -> str:
    return "" if value is None or value != value else str(value)


def _image_table(instances: pd.DataFrame) -> pd.DataFrame:
    """The catalog rows that hold an image (Pixel Data with Rows and Columns), in path order
    within each series."""
    keep = instances["has_pixels"].fillna(False).astype(bool) if "has_pixels" in instances \
        else instances["Rows"].notna()
    keep &= instances["Rows"].notna() & instances["Columns"].notna()
    return instances[keep.to_numpy()].reset_index(drop=True)


def _stored_row(row: pd.Series) -> pd.Series:
    """``row`` itself, or for a DICOMweb instance URL the row of its file in the local store
    (retrieved first when absent): what the pixel and header reads open."""
    if not is_url(row["path"]):
        return row
    from dicomml.decode.located import local_rows

    return local_rows(row.to_frame().T).iloc[0]


def _read_frames(row: pd.Series, frames: list[int]) -> np.ndarray:
    """Stored values of ``frames`` of the image of a catalog row (a file on disk, see
    :func:`_stored_row`): ``(frames, rows, columns)`` or ``(frames, rows, columns, 3)``; only
    those frames are read where the file allows (:func:`~dicomml.decode.located.load_frames`)."""
    from dicomml.decode.frames import load_encoded
    from dicomml.decode.located import load_frames, location_from_row
    from dicomml.decode.reader import read_frames

    location = location_from_row(row)
    encoded = None if location is None else load_frames(location, sorted(set(frames)))
    if encoded is None:
        encoded = load_encoded(str(row["path"]))
    return read_frames(encoded, frames, threads=1)


def image_values(stored: np.ndarray, row: Mapping, values: str, frames: list[int],
                 window=None) -> tuple[np.ndarray, dict, np.ndarray | None]:
    """Stored values of ``frames`` of a catalog row's image -> ``(values, record, padding
    mask)``, channel first: float32 ``(C, rows, columns)`` (grey: C = the frames; colour: R, G,
    B per frame, frame-major), what was applied, and a bool mask of the same shape (None
    without padding). The one hand-off to :mod:`dicomml.decode.stages`: parameters from the
    catalog's columns, or from the header where they cannot describe the stage
    (:func:`~dicomml.decode.stages.needs_header`: LUT sequences, multi-frame objects)."""
    from dicomml.decode import stages
    from dicomml.decode.reader import read_header

    path = str(row["path"])
    if stages.needs_header(row, values, window):
        every = stages.params_from_dataset(read_header(path), path)
        params = [every[f] for f in frames]
    else:
        params = [stages.params_from_row(row, path)] * len(frames)
    out, record, mask = stages.apply_frames(stored, params, values, window)
    out = np.asarray(out, dtype=np.float32)
    if out.ndim == 4:  # colour: (frames, rows, columns, 3) -> (frames * 3, rows, columns)
        out = np.ascontiguousarray(np.moveaxis(out, -1, 1)).reshape(-1, *out.shape[1:3])
        if mask is not None:
            mask = np.repeat(mask, 3, axis=0)
    return out, record, mask


def _image_affine(row: Mapping, spacing: list[float]) -> tuple[np.ndarray, str]:
    """4x4 float64 affine of index (0, row, column, 1): LPS from Image Orientation / Position
    (Patient) when both are there (single-frame objects), else the pixel grid scaled by
    ``spacing``."""
    from dicomml.geometry.affine import affine_from_columns
    from dicomml.geometry.orientation import slice_normal

    frames = row.get("NumberOfFrames")
    if frames is not None and frames == frames and int(frames) > 1:
        # the catalog holds the first frame's position only (load_series places each frame)
        return np.diag([1.0, spacing[0], spacing[1], 1.0]), "pixel grid (multi-frame object)"
    iop, ipp = row.get("ImageOrientationPatient"), row.get("ImagePositionPatient")
    try:
        iop = np.asarray(iop, dtype=np.float64).reshape(6)
        ipp = np.asarray(ipp, dtype=np.float64).reshape(3)
        if np.isfinite(iop).all() and np.isfinite(ipp).all():
            return affine_from_columns(slice_normal(iop), iop, spacing, ipp), "LPS"
    except (TypeError, ValueError):
        pass
    return np.diag([1.0, spacing[0], spacing[1], 1.0]), "pixel grid (no patient frame)"


def _flip(image: np.ndarray, affine: np.ndarray, flips: list[str]):
    """Flip ``image`` (C, rows, columns) along the named axes; the affine follows (index
    ``n - 1 - i`` maps where ``i`` did)."""
    affine = affine.copy()
    for name in flips:
        axis = 2 if name == "columns" else 1
        size = image.shape[axis]
        image = np.flip(image, axis=axis)
        affine[:, 3] += affine[:, axis] * (size - 1)
        affine[:, axis] *= -1
    return image, affine


def _as_2d(sample: dict, label) -> dict:
    """The transforms' 3D layout (C, 1, rows, columns) of the image and the padding mask back
    to (C, rows, columns), spacing (row, column)."""
    out = dict(sample)
    for key in ("image", "padding_mask"):
        if torch.is_tensor(out.get(key)) and out[key].dim() == 4:
            out[key] = out[key].reshape(-1, *out[key].shape[-2:])
    if torch.is_tensor(out.get("spacing")) and out["spacing"].numel() == 3:
        out["spacing"] = out["spacing"][1:].clone()
    if label is not None:
        out["label"] = label
    return out
