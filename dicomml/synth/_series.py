"""Write one synthetic series (:func:`write_series`) and return its ground truth.

Example
-------
>>> import tempfile
>>> truth = write_series(tempfile.mkdtemp(), modality="MR", shape=(4, 8, 8))
>>> len(truth.paths), truth.array.shape
(4, (4, 8, 8))
"""

from __future__ import annotations

import hashlib
import pathlib
from dataclasses import dataclass, field

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from . import _geometry as geo
from . import _vendor as vendor
from ._encode import check_transfer_syntax, encode_pixel_data
from ._enhanced import enhanced_dataset
from ._headers import single_frame_dataset, volume_template
from ._plan import make_plan
from ._vendor import STYLES as VENDOR_STYLES


@dataclass(frozen=True)
class SynthSeries:
    """Ground truth of one synthetic series, as written.

    ``array`` holds real-world values (stored * slope + intercept: HU for CT) in sorted
    slice order (ascending along ``cross(row cosine, column cosine)``), shape
    (slices, rows, columns), or (volumes, slices, rows, columns) for 4D. ``stored`` holds the
    stored integers, same shape. ``affine`` maps (slice, row, column, 1) to LPS mm (for
    uneven, gapped or tilted series: slice 0's position with the mean step). ``positions``
    (slices, 3) is each sorted slice's ImagePositionPatient; ``orientation`` (6,) the
    ImageOrientationPatient; ``spacing`` (slice, row, column) mm, nominal. ``meta`` holds
    the rest (see :func:`write_series`).
    """

    paths: list[pathlib.Path]
    array: np.ndarray
    stored: np.ndarray
    affine: np.ndarray
    positions: np.ndarray
    orientation: np.ndarray
    spacing: tuple
    patient_id: str
    study_uid: str
    series_uid: str
    modality: str
    transfer_syntax: str
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape


def write_series(folder, *, modality="CT", shape=(16, 32, 32), spacing=(2.5, 0.75, 0.75),
                 orientation="axial", patient_position="HFS", origin=(-120.0, -120.0, -50.0),
                 slice_offsets=None, gantry_tilt=0.0, signed=None, bits_allocated=16,
                 bits_stored=None, slope=None, intercept=None, photometric="MONOCHROME2",
                 multiframe=False, fourth_dim="temporal", transfer_syntax=ExplicitVRLittleEndian,
                 shuffle=True, seed=0, patient_id=None, patient_name=None, study_uid=None,
                 series_uid=None, series_number=1, series_description=None, body_part=None,
                 acquisition_number=1, instance_numbers="shuffled", extension=".dcm",
                 **extra_tags) -> SynthSeries:
    """Write a synthetic CT or MR series into ``folder`` and return its ground truth.

    Units: mm for geometry, degrees for ``gantry_tilt``, HU for CT values.
    Axis order: ``shape`` is (slices, rows, columns) or (volumes, slices, rows, columns).

    Options:

    - ``orientation``: "axial", "coronal", "sagittal", "oblique" (a rotation drawn from
      ``seed``) or 6 direction cosines; ``patient_position`` ("HFS", "HFP", "FFS", "FFP",
      "HFDR", "HFDL", "FFDR", "FFDL") rotates the named planes as a scanner would.
    - ``origin``: Image Position (Patient) of the slice at offset 0 (LPS mm).
    - ``slice_offsets``: explicit slice positions along the normal in mm (uneven spacing,
      gaps, duplicates; any order, sorted for the ground truth; their count replaces the
      slice count of ``shape``). Default ``k * spacing[0]``. ``gantry_tilt`` (degrees) shifts
      slice ``k`` by ``offset_k * tan(tilt)`` along the column direction and sets
      GantryDetectorTilt.
    - Pixels: ``signed`` (default False), ``bits_allocated`` (16 or 8), ``bits_stored``
      (default 12 for 16-bit data unless signed CT), ``slope``/``intercept`` (CT default 1 and
      -1024, or 0 when signed; MR writes no rescale unless given), ``photometric``.
    - ``multiframe``: one Enhanced CT/MR Image Storage file, frames in shuffled order (see
      ``meta["frame_index"]``); ``fourth_dim``: "temporal" (TemporalPositionIdentifier /
      TemporalPositionIndex), "echo" (EchoNumbers, EchoTime / EffectiveEchoTime), or a
      vendor-style diffusion series whose volumes no standard tag tells apart: "ge_dwi",
      "canon_dti", "philips_dwi" (single-frame MR, Instance Numbers in acquisition order; see
      ``dicomml.synth._vendor``; ``meta["b_values"]``, ``meta["gradients"]`` unit LPS of the
      volumes a reader keeps, ``meta["derived_volumes"]`` the trace volumes it leaves out).
    - ``transfer_syntax``: any of :func:`supported_transfer_syntaxes`; lossy ones set
      ``meta["lossy"]`` and keep the original values as ground truth (compare with a
      tolerance).
    - Files: ``shuffle`` (hash-like names, written in random order; else
      ``S<series>_<hash>_<index>`` in slice order), ``instance_numbers`` ("shuffled", "sorted",
      "reversed"), ``extension`` (".dcm" or "" ...). Existing files are never overwritten
      (``FileExistsError``).
    - ``**extra_tags``: any DICOM keyword, set on every file last; ``None`` deletes the tag
      (e.g. ``ImagePositionPatient=None`` makes a broken series).

    ``meta`` keys: slope, intercept, rescale_written, photometric, bits_allocated,
    bits_stored, signed, lossy, multiframe, fourth_dim, n_volumes, slice_offsets (sorted, mm),
    gantry_tilt, patient_position, sop_class_uid, frame_of_reference_uid, series_number,
    instance_numbers ((volumes, slices) in sorted order; single-frame only), index_of_path
    ((volume, slice) of each path; single-frame only), frame_index ((volume, slice) of each
    stored frame; multi-frame only), display_array, echo_times (ms per volume).

    **MONOCHROME1** — the ground-truth ``array`` is what a correct reader returns *before*
    any display inversion: the Modality LUT output ``stored * slope + intercept`` of the
    stored values. So that the picture looks the same as with MONOCHROME2, the stored values
    are the MONOCHROME2 ones mirrored within the full range allowed by Bits Stored and Pixel
    Representation (``s1 = lo + hi - s2``; lo, hi = 0, 4095 for 12 unsigned bits).
    ``meta["display_array"]`` holds the MONOCHROME2-equivalent values (the array the same
    call with MONOCHROME2 returns); a reader that inverts MONOCHROME1 with
    ``v' = (slope*lo + intercept) + (slope*hi + intercept) - v`` must produce exactly it.
    For MONOCHROME2 ``meta["display_array"]`` equals ``array``.

    Example::

        truth = write_series(tmp, modality="CT", shape=(8, 16, 16), orientation="sagittal")
        vol = dicomml.load_series(tmp)
        assert np.allclose(vol.array, truth.array) and np.allclose(vol.affine, truth.affine)
    """
    plan = make_plan(
        modality=modality, shape=shape, spacing=spacing, orientation=orientation,
        patient_position=patient_position, origin=origin, slice_offsets=slice_offsets,
        gantry_tilt=gantry_tilt, signed=signed, bits_allocated=bits_allocated,
        bits_stored=bits_stored, slope=slope, intercept=intercept, photometric=photometric,
        multiframe=multiframe, fourth_dim=fourth_dim, seed=seed, patient_id=patient_id,
        patient_name=patient_name, study_uid=study_uid, series_uid=series_uid,
        series_number=series_number, series_description=series_description,
        body_part=body_part, acquisition_number=acquisition_number)
    _check_extra_tags(extra_tags)
    transfer_syntax = check_transfer_syntax(transfer_syntax, plan.fmt.bits_stored)
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 31337])
    if plan.fourth_dim in VENDOR_STYLES:  # nothing but Instance Number orders the volumes
        instance_numbers = "sorted"
    numbers = _instance_numbers(plan.n_volumes * plan.n_slices, instance_numbers, rng)
    write = _write_enhanced if plan.multiframe else _write_single_frames
    paths, order, lossy = write(folder, plan, numbers, transfer_syntax, shuffle, rng,
                                extension, extra_tags)
    result = _result(plan, paths, transfer_syntax, lossy, numbers, order)
    if plan.fourth_dim in VENDOR_STYLES:
        result.meta["gradients"] = vendor.truth_gradients(
            plan.fourth_dim, plan.iop, plan.n_volumes,
            _phase_encoding(extra_tags))
    return result


def _phase_encoding(extra_tags: dict) -> str | None:
    """The phase encoding an extra tag set ("" when it deleted it; None when untouched)."""
    if "InPlanePhaseEncodingDirection" not in extra_tags:
        return None
    return str(extra_tags["InPlanePhaseEncodingDirection"] or "")


def _instance_numbers(n: int, mode: str, rng) -> np.ndarray:
    """InstanceNumber of each (volume, slice) in sorted order, flattened."""
    if mode == "sorted":
        return np.arange(1, n + 1)
    if mode == "reversed":
        return np.arange(n, 0, -1)
    if mode == "shuffled":
        return rng.permutation(n) + 1
    raise ValueError(f"instance_numbers must be 'sorted', 'reversed' or 'shuffled', got {mode!r}")


def _check_extra_tags(extra_tags: dict) -> None:
    unknown = [k for k in extra_tags if tag_for_keyword(k) is None]
    if unknown:
        raise TypeError(f"unknown write_series option or DICOM keyword: {', '.join(unknown)}")


def _write_single_frames(folder, plan, numbers, transfer_syntax, shuffle, rng, extension,
                         extra_tags):
    """Write one file per (volume, slice); return (paths, [(volume, slice)], lossy)."""
    index = [(v, s) for v in range(plan.n_volumes) for s in range(plan.n_slices)]
    order = rng.permutation(len(index)) if shuffle else np.arange(len(index))
    paths, written, lossy = [], [], False
    templates = [volume_template(plan, v) for v in range(plan.n_volumes)]
    for i in order:
        volume, slice_index = index[i]
        ds = single_frame_dataset(plan, volume=volume, slice_index=slice_index,
                                  instance_number=int(numbers[i]), template=templates[volume])
        encoded = encode_pixel_data(plan.stored[volume, slice_index][None], transfer_syntax,
                                    bits_stored=plan.fmt.bits_stored,
                                    photometric=plan.photometric)
        lossy |= encoded.lossy
        _set_pixel_data(ds, encoded)
        _apply_extra_tags(ds, extra_tags)
        name = _file_name(plan, ds.SOPInstanceUID, int(i), shuffle) + extension
        paths.append(_write(folder / name, ds, transfer_syntax))
        written.append((volume, slice_index))
    return paths, written, lossy


def _write_enhanced(folder, plan, numbers, transfer_syntax, shuffle, rng, extension,
                    extra_tags):
    """Write one enhanced multi-frame file; return ([path], [(volume, slice)] per frame,
    lossy)."""
    index = [(v, s) for v in range(plan.n_volumes) for s in range(plan.n_slices)]
    order = rng.permutation(len(index)) if shuffle else np.arange(len(index))
    frame_index = [index[i] for i in order]
    ds = enhanced_dataset(plan, frame_index)
    frames = np.stack([plan.stored[v, s] for v, s in frame_index])
    encoded = encode_pixel_data(frames, transfer_syntax, bits_stored=plan.fmt.bits_stored,
                                photometric=plan.photometric)
    _set_pixel_data(ds, encoded)
    _apply_extra_tags(ds, extra_tags)
    name = _file_name(plan, ds.SOPInstanceUID, 0, shuffle) + extension
    return [_write(folder / name, ds, transfer_syntax)], frame_index, encoded.lossy


def _set_pixel_data(ds, encoded) -> None:
    ds.add_new("PixelData", encoded.vr, encoded.value)
    if encoded.encapsulated:
        ds["PixelData"].is_undefined_length = True
    if encoded.lossy:
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = encoded.method


def _apply_extra_tags(ds, extra_tags: dict) -> None:
    """Set (or with value None, delete) extra DICOM attributes by keyword."""
    for keyword, value in extra_tags.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)


def _file_name(plan, sop_uid: str, sorted_index: int, shuffle: bool) -> str:
    """Hash-like names unrelated to slice order, or ``<series hash>_<index>`` in order."""
    if shuffle:
        return "IM" + hashlib.sha1(sop_uid.encode()).hexdigest()[:14].upper()
    series = hashlib.sha1(plan.series_uid.encode()).hexdigest()[:6]
    return f"S{plan.series_number:03d}_{series}_{sorted_index:05d}"


def _write(path: pathlib.Path, ds, transfer_syntax: str) -> pathlib.Path:
    if path.exists():
        raise FileExistsError(f"{path} exists; dicomml.synth never overwrites files")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationVersionName = "DICOMML_SYNTH"
    ds.file_meta = meta
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def _result(plan, paths, transfer_syntax, lossy, numbers, order) -> SynthSeries:
    squeeze = (lambda a: a) if plan.is_4d else (lambda a: a[0])
    meta = dict(
        slope=plan.slope, intercept=plan.intercept, rescale_written=plan.write_rescale,
        photometric=plan.photometric, bits_allocated=plan.fmt.bits_allocated,
        bits_stored=plan.fmt.bits_stored, signed=plan.fmt.signed, lossy=lossy,
        multiframe=plan.multiframe, fourth_dim=plan.fourth_dim if plan.is_4d else None,
        n_volumes=plan.n_volumes, slice_offsets=plan.offsets.copy(),
        gantry_tilt=plan.gantry_tilt, patient_position=plan.patient_position,
        sop_class_uid=plan.sop_class_uid, frame_of_reference_uid=plan.frame_of_reference_uid,
        series_number=plan.series_number, instance_numbers=None if plan.multiframe else numbers.reshape(plan.shape[:2]),
        index_of_path=None if plan.multiframe else list(order),
        frame_index=list(order) if plan.multiframe else None, display_array=squeeze(plan.display),
        echo_times=[plan.echo_time(v) for v in range(plan.n_volumes)])
    if plan.fourth_dim in VENDOR_STYLES:
        derived = vendor.derived_volumes(plan.fourth_dim, plan.n_volumes)
        meta["b_values"] = vendor.b_values(plan.n_volumes - len(derived))
        meta["derived_volumes"] = derived
    return SynthSeries(
        paths=paths, array=squeeze(plan.array), stored=squeeze(plan.stored),
        affine=geo.ground_truth_affine(plan.iop, plan.positions, plan.spacing[1:],
                                       plan.spacing[0]),
        positions=plan.positions.copy(), orientation=plan.iop.copy(), spacing=plan.spacing,
        patient_id=plan.patient_id, study_uid=plan.study_uid, series_uid=plan.series_uid,
        modality=plan.modality, transfer_syntax=str(transfer_syntax), meta=meta)
