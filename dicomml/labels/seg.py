"""DICOM Segmentation (SEG) objects -> masks on a reference grid.

Every frame is placed by its own geometry, never by its order in the file: its Plane Position
(Patient) gives the plane (by distance along the reference's normal) and the in-plane offset
(by projection on the reference's row / column directions); a frame without a position is
placed by its Derivation Image / Source Image reference (a SOP Instance UID of the reference).
Planes with no frame are 0 (SEGs usually omit empty frames); every segment has its own frames
(no equal count assumed).

A frame must lie on the reference grid within ``tolerance`` (a fraction of the voxel size: off
its plane along the normal, and off integer pixel offsets in-plane), with the reference's
orientation and pixel spacing; otherwise :class:`~dicomml.errors.LabelGeometryError` names
the frame and segment, unless ``resample=True`` (nearest neighbour: each reference voxel takes
the value of the frame pixel nearest its centre, frames going to the nearest plane).

Binary SEG: 0/1. Fractional SEG: stored value / MaximumFractionalValue in [0, 1], a voxel is
in the segment when that is ``>= threshold`` (0.5), or the fractions are kept
(``threshold=None``). Label-map SEG (SegmentationType LABELMAP): each pixel is a segment
number.

Example::

    masks, info = read_seg_masks("seg.dcm", grid)            # {segment number: (S, R, C)}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dicomml.catalog.label_objects import LabelInfo
from dicomml.errors import LabelGeometryError, MissingTagError

from .grid import ReferenceGrid


@dataclass
class _Frame:
    index: int
    segment: int | None
    position: np.ndarray | None
    orientation: np.ndarray | None
    spacing: np.ndarray | None
    source_uid: str | None


def _group(ds, i, keyword):
    """Item 0 of ``keyword`` in frame ``i``'s per-frame group, else in the shared group."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", i),
                          ("SharedFunctionalGroupsSequence", 0)):
        seq = ds.get(groups)
        if seq is not None and len(seq) > index:
            inner = seq[index].get(keyword)
            if inner:
                return inner[0]
    return None


def _frames(ds) -> list[_Frame]:
    n = int(ds.get("NumberOfFrames", 1) or 1)
    frames = []
    for i in range(n):
        ident = _group(ds, i, "SegmentIdentificationSequence")
        pos = _group(ds, i, "PlanePositionSequence")
        ori = _group(ds, i, "PlaneOrientationSequence")
        meas = _group(ds, i, "PixelMeasuresSequence")
        deriv = _group(ds, i, "DerivationImageSequence")
        source = deriv.get("SourceImageSequence") if deriv is not None else None
        frames.append(_Frame(
            i, int(ident.ReferencedSegmentNumber) if ident is not None else None,
            np.array(pos.ImagePositionPatient, float) if pos is not None and
            pos.get("ImagePositionPatient") else None,
            np.array(ori.ImageOrientationPatient, float) if ori is not None and
            ori.get("ImageOrientationPatient") else None,
            np.array(meas.PixelSpacing, float) if meas is not None and
            meas.get("PixelSpacing") else None,
            str(source[0].ReferencedSOPInstanceUID) if source else None))
    return frames


def _segment_name(info: LabelInfo, number) -> str | None:
    if number is None:
        return None
    return f"{number} {info.segments.get(number, {}).get('name', '')!r}"


class _Placer:
    """Puts frames of one SEG on a reference grid (see the module docstring)."""

    def __init__(self, grid: ReferenceGrid, info: LabelInfo, shape2d, *, resample: bool,
                 tolerance: float):
        self.grid, self.info, self.shape2d = grid, info, tuple(shape2d)
        self.resample, self.tolerance = resample, tolerance
        self.gaps = grid.half_gaps() * 2

    def fail(self, frame: _Frame, message: str):
        raise LabelGeometryError(f"frame {frame.index + 1}: {message} on {self.grid.name}",
                                 path=self.info.path, segment=_segment_name(self.info,
                                                                            frame.segment))

    def same_axes(self, frame: _Frame) -> bool:
        g = self.grid
        if frame.orientation is not None:
            f_r, f_c = frame.orientation[:3], frame.orientation[3:]
            if not (np.allclose(f_r, g.f_r, atol=1e-4) and np.allclose(f_c, g.f_c, atol=1e-4)):
                return False
        if frame.spacing is not None:
            if not np.allclose(frame.spacing, [g.row_spacing, g.col_spacing], rtol=1e-4):
                return False
        return True

    def place(self, frame: _Frame, pixels: np.ndarray, out: np.ndarray, combine) -> None:
        """Combine ``pixels`` (rows, columns) into ``out`` (S, R, C) at the frame's place."""
        if frame.position is None:
            return self._place_by_source(frame, pixels, out, combine)
        plane, dist = self.grid.plane_of(frame.position[None])
        k, dist = int(plane[0]), float(dist[0])
        if abs(dist) > self.tolerance * self.gaps[k]:
            if not self.resample or abs(dist) > self.gaps[k] / 2:
                self.fail(frame, f"lies {dist:.3g} mm off the nearest plane {k}")
        if not self.same_axes(frame):
            if not self.resample:
                self.fail(frame, "has another orientation or pixel spacing than the "
                                 "reference grid (pass resample=True for nearest)")
            return self._place_nearest(frame, pixels, k, out, combine)
        offset = self.grid.in_plane(frame.position[None], plane)[0]
        shift = np.round(offset)
        if np.abs(offset - shift).max() > self.tolerance:
            if not self.resample:
                self.fail(frame, f"is off the pixel grid by {np.abs(offset - shift).max():.3g}"
                                 " pixels (pass resample=True for nearest)")
            return self._place_nearest(frame, pixels, k, out, combine)
        self._paste(frame, pixels, k, int(shift[0]), int(shift[1]), out, combine)

    def _paste(self, frame, pixels, k, dr, dc, out, combine) -> None:
        rows, cols = out.shape[1:]
        r0, c0 = max(dr, 0), max(dc, 0)
        r1, c1 = min(dr + pixels.shape[0], rows), min(dc + pixels.shape[1], cols)
        inside = pixels[r0 - dr:max(r1 - dr, r0 - dr), c0 - dc:max(c1 - dc, c0 - dc)]
        if np.count_nonzero(inside) != np.count_nonzero(pixels) and not self.resample:
            self.fail(frame, "has non-zero pixels beyond the reference grid's rows/columns")
        if r1 > r0 and c1 > c0:
            combine(out[k, r0:r1, c0:c1], inside)

    def _place_by_source(self, frame, pixels, out, combine) -> None:
        uids = self.grid.sop_uids or ()
        if frame.source_uid is None or frame.source_uid not in uids:
            self.fail(frame, "has no Plane Position (Patient) and no source image reference "
                             "to a plane of the reference")
        if pixels.shape != out.shape[1:]:
            self.fail(frame, f"has {pixels.shape} pixels, the reference {out.shape[1:]}")
        k = uids.index(frame.source_uid)
        combine(out[k], pixels)

    def _place_nearest(self, frame, pixels, k, out, combine) -> None:
        g = self.grid
        ori = frame.orientation if frame.orientation is not None else \
            np.concatenate([g.f_r, g.f_c])
        spacing = frame.spacing if frame.spacing is not None else \
            np.array([g.row_spacing, g.col_spacing])
        rows, cols = out.shape[1:]
        rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        world = g.origins[k] + rr[..., None] * g.affine[:3, 1] + cc[..., None] * g.affine[:3, 2]
        rel = world - frame.position
        fr = np.rint(rel @ ori[3:] / spacing[0]).astype(np.int64)
        fc = np.rint(rel @ ori[:3] / spacing[1]).astype(np.int64)
        ok = (fr >= 0) & (fr < pixels.shape[0]) & (fc >= 0) & (fc < pixels.shape[1])
        sampled = np.zeros((rows, cols), pixels.dtype)
        sampled[ok] = pixels[fr[ok], fc[ok]]
        combine(out[k], sampled)


def _max_into(target, values) -> None:
    np.maximum(target, values, out=target)


def _labelmap_into(target, values) -> None:
    np.copyto(target, values, where=values != 0)


def read_seg_masks(ds, path, grid: ReferenceGrid, info: LabelInfo, *, resample=False,
                   tolerance=0.1, threshold=0.5) -> dict:
    """``{segment number: array (slices, rows, columns)}`` on ``grid``: bool, or float32
    fractions for a fractional SEG with ``threshold=None``."""
    frames = _frames(ds)
    if "PixelData" not in ds:
        raise MissingTagError("SEG has no Pixel Data", path=path, tag="PixelData")
    pixels = ds.pixel_array.reshape(len(frames), int(ds.Rows), int(ds.Columns))
    placer = _Placer(grid, info, pixels.shape[1:], resample=resample, tolerance=tolerance)
    shape = grid.shape
    if info.seg_type == "LABELMAP":
        label = np.zeros(shape, dtype=pixels.dtype)
        for frame in frames:
            placer.place(frame, pixels[frame.index], label, _labelmap_into)
        return {n: label == n for n in sorted(info.segments)}
    fractional = info.seg_type == "FRACTIONAL"
    scale = float(ds.get("MaximumFractionalValue", 1) or 1) if fractional else 1.0
    masks = {}
    for frame in frames:
        if frame.segment is None:
            placer.fail(frame, "has no Segment Identification")
        out = masks.get(frame.segment)
        if out is None:
            out = masks[frame.segment] = np.zeros(shape, dtype=pixels.dtype)
        placer.place(frame, pixels[frame.index], out, _max_into)
    result = {}
    for number in sorted(set(info.segments) | set(masks)):
        stored = masks.get(number, np.zeros(shape, dtype=pixels.dtype))
        if not fractional:
            result[number] = stored != 0
        elif threshold is None:
            result[number] = (stored / scale).astype(np.float32)
        else:
            result[number] = stored / scale >= threshold
    return result
