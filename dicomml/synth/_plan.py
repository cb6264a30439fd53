"""Resolve :func:`~dicomml.synth.write_series` options into one immutable :class:`Plan`.

The plan holds everything the writer needs and everything the ground truth reports: the
geometry (rounded as written), the pixel format, the UIDs and the phantom's stored values.

Example
-------
>>> plan = make_plan(modality="MR", shape=(3, 8, 8))
>>> plan.shape, plan.fmt.bits_stored, plan.write_rescale
((1, 3, 8, 8), 12, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydicom.uid import (
    CTImageStorage,
    EnhancedCTImageStorage,
    EnhancedMRImageStorage,
    MRImageStorage,
    generate_uid,
)

from . import _geometry as geo
from ._phantom import phantom
from ._pixels import PixelFormat, quantise, real_world
from ._vendor import STYLES as VENDOR_STYLES

MODALITIES = ("CT", "MR")
_SOP_CLASSES = {
    ("CT", False): CTImageStorage, ("CT", True): EnhancedCTImageStorage,
    ("MR", False): MRImageStorage, ("MR", True): EnhancedMRImageStorage,
}


@dataclass(frozen=True)
class Plan:
    """Every resolved choice of one synthetic series (see :func:`make_plan`)."""

    modality: str
    shape: tuple[int, int, int, int]          # (volumes, slices, rows, columns)
    is_4d: bool
    spacing: tuple[float, float, float]      # (slice, row, column) mm, nominal
    iop: np.ndarray
    offsets: np.ndarray                      # sorted offsets along the normal, mm
    positions: np.ndarray                    # (slices, 3) IPP, sorted
    gantry_tilt: float
    patient_position: str
    fmt: PixelFormat
    slope: float
    intercept: float
    write_rescale: bool
    photometric: str
    multiframe: bool
    fourth_dim: str
    seed: int
    patient_id: str
    patient_name: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    series_number: int
    series_description: str
    body_part: str
    acquisition_number: int
    stored: np.ndarray = field(repr=False)   # (volumes, slices, rows, columns)
    array: np.ndarray = field(repr=False)
    display: np.ndarray = field(repr=False)  # the MONOCHROME2-equivalent real-world values
    temporal_spacing_ms: float = 1000.0

    @property
    def n_volumes(self) -> int:
        return self.shape[0]

    @property
    def n_slices(self) -> int:
        return self.shape[1]

    @property
    def sop_class_uid(self) -> str:
        return _SOP_CLASSES[(self.modality, self.multiframe)]

    @property
    def slice_locations(self) -> np.ndarray:
        """Signed distance of each slice along the normal (the SliceLocation tag), mm."""
        return self.positions @ geo.slice_normal(self.iop)

    @property
    def window(self) -> tuple[float, float]:
        if self.modality == "CT":
            return 40.0, 400.0
        low, high = float(self.array.min()), float(self.array.max())
        return round((low + high) / 2, 2), round(max(high - low, 1.0), 2)

    def echo_time(self, volume: int) -> float:
        """Echo time in ms of ``volume`` (echoes step by 20 ms)."""
        return 15.0 + (20.0 * volume if self.fourth_dim == "echo" else 0.0)


def make_plan(*, modality="CT", shape=(16, 32, 32), spacing=(2.5, 0.75, 0.75),
              orientation="axial", patient_position="HFS", origin=(-120.0, -120.0, -50.0),
              slice_offsets=None, gantry_tilt=0.0, signed=None, bits_allocated=16,
              bits_stored=None, slope=None, intercept=None, photometric="MONOCHROME2",
              multiframe=False, fourth_dim="temporal", seed=0, patient_id=None,
              patient_name=None, study_uid=None, series_uid=None, series_number=1,
              series_description=None, body_part=None, acquisition_number=1) -> Plan:
    """Check and resolve the options of :func:`~dicomml.synth.write_series`."""
    modality = _check_modality(modality)
    shape4 = _shape4(shape, slice_offsets)
    offsets = _offsets(shape4[1], spacing[0], slice_offsets)
    iop = geo.orientation_cosines(orientation, patient_position=patient_position, seed=seed)
    positions = geo.slice_positions(iop, origin, offsets, gantry_tilt=gantry_tilt)
    fmt, slope, intercept, write_rescale = _pixel_choices(
        modality, signed, bits_allocated, bits_stored, slope, intercept)
    photometric = _check_photometric(photometric)
    if fourth_dim not in ("temporal", "echo", *VENDOR_STYLES):
        raise ValueError(f"fourth_dim must be 'temporal', 'echo', 'ge_dwi' or 'canon_dti', "
                         f"got {fourth_dim!r}")
    if fourth_dim in VENDOR_STYLES and (multiframe or modality != "MR"):
        raise ValueError(f"fourth_dim={fourth_dim!r} writes single-frame MR files only")
    values = np.stack([phantom(shape4[1:], modality=modality, seed=seed, volume=v)
                       for v in range(shape4[0])])
    stored = quantise(values, fmt, slope, intercept,
                      monochrome1=photometric == "MONOCHROME1")
    display = real_world(quantise(values, fmt, slope, intercept), slope, intercept)
    ids = _identifiers(modality, seed, patient_id, patient_name, study_uid, series_uid,
                       series_number)
    return Plan(
        modality=modality, shape=shape4, is_4d=len(shape) == 4,
        spacing=tuple(float(s) for s in geo.ds_round(spacing)), iop=iop, offsets=offsets,
        positions=positions, gantry_tilt=float(gantry_tilt),
        patient_position=patient_position, fmt=fmt, slope=slope, intercept=intercept,
        write_rescale=write_rescale, photometric=photometric, multiframe=bool(multiframe),
        fourth_dim=fourth_dim, seed=int(seed), series_number=int(series_number),
        series_description=series_description or _describe(modality, orientation, shape4),
        body_part=body_part or ("CHEST" if modality == "CT" else "HEAD"),
        acquisition_number=int(acquisition_number), stored=stored,
        array=real_world(stored, slope, intercept), display=display, **ids)


def _check_modality(modality: str) -> str:
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    return modality


def _check_photometric(photometric: str) -> str:
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"photometric must be MONOCHROME1 or MONOCHROME2, got {photometric!r}")
    return photometric


def _shape4(shape, slice_offsets) -> tuple[int, int, int, int]:
    shape = tuple(int(n) for n in shape)
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise ValueError(f"shape must be (slices, rows, columns) or "
                         f"(volumes, slices, rows, columns) of positive sizes, got {shape}")
    shape4 = shape if len(shape) == 4 else (1, *shape)
    if slice_offsets is not None:
        shape4 = (shape4[0], len(slice_offsets), *shape4[2:])
    return shape4


def _offsets(n_slices: int, step: float, slice_offsets) -> np.ndarray:
    """Offsets along the normal, ascending; default ``k * step``."""
    if slice_offsets is None:
        return np.arange(n_slices, dtype=np.float64) * float(step)
    offsets = np.sort(np.asarray(slice_offsets, dtype=np.float64), kind="stable")
    if offsets.ndim != 1 or len(offsets) < 1 or not np.all(np.isfinite(offsets)):
        raise ValueError(f"slice_offsets must be a non-empty list of finite mm, got {slice_offsets!r}")
    return offsets


def _pixel_choices(modality, signed, bits_allocated, bits_stored, slope, intercept):
    """(PixelFormat, slope, intercept, write_rescale) with modality-typical defaults."""
    signed = False if signed is None else bool(signed)
    if bits_stored is None:
        bits_stored = 12 if (modality == "MR" or not signed) and bits_allocated == 16 else bits_allocated
    fmt = PixelFormat(int(bits_allocated), int(bits_stored), signed)
    write_rescale = modality == "CT" or slope is not None or intercept is not None
    if intercept is None:
        intercept = -1024.0 if modality == "CT" and not signed else 0.0
    slope = 1.0 if slope is None else float(slope)
    if slope == 0 or not np.isfinite(slope):
        raise ValueError(f"slope must be finite and non-zero, got {slope}")
    slope, intercept = (float(v) for v in geo.ds_round([slope, intercept]))
    return fmt, slope, intercept, write_rescale


def _identifiers(modality, seed, patient_id, patient_name, study_uid, series_uid,
                 series_number) -> dict:
    patient_id = patient_id or f"SYNTH{seed:04d}"
    study_uid = study_uid or generate_uid(entropy_srcs=["study", patient_id, str(seed)])
    series_uid = series_uid or generate_uid(
        entropy_srcs=["series", study_uid, modality, str(series_number), str(seed)])
    return dict(
        patient_id=patient_id,
        patient_name=patient_name or f"Synthetic^{patient_id}",
        study_uid=study_uid, series_uid=series_uid,
        frame_of_reference_uid=generate_uid(entropy_srcs=["for", study_uid]))


def _describe(modality, orientation, shape4) -> str:
    plane = orientation if isinstance(orientation, str) else "custom"
    text = f"{modality} {plane} phantom"
    return text + (f" 4D x{shape4[0]}" if shape4[0] > 1 else "")
