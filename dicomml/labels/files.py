"""Label images in files (NIfTI, NRRD, MHA/MHD) -> labels on a reference image's grid.

A label file is read with nibabel (``.nii``, ``.nii.gz``) or SimpleITK (``.nrrd``, ``.nhdr``,
``.mha``, ``.mhd``), its index -> world mapping turned into ours (index (slice, row, column, 1)
-> LPS mm; NIfTI's RAS is flipped in x and y, ITK's world already is LPS), and compared with
the reference's grid in world coordinates:

- the same grid up to an axis permutation and / or flips (a NIfTI written in RAS+ canonical
  order, an ITK image in another axis order): reoriented exactly (transposes and flips, no
  interpolation);
- any other grid: :class:`~dicomml.errors.LabelGeometryError` printing both grids, unless
  ``resample=True`` (nearest neighbour: each reference voxel takes the label at its centre,
  0 outside the file's grid).

Example::

    labels = load_label_file("mask.nii.gz", dicomml.load_series(cat, key))
"""

from __future__ import annotations

import os

import numpy as np

from dicomml._optional import require
from dicomml.errors import InvalidDicomError, LabelGeometryError
from dicomml.geometry.affine import spacing_from_affine
from dicomml.geometry.orientation import orientation_code

NIFTI = (".nii", ".nii.gz")
ITK = (".nrrd", ".nhdr", ".mha", ".mhd")
LABEL_FILE_SUFFIXES = NIFTI + ITK


def is_label_file(path) -> bool:
    """True for a path whose suffix is one of :data:`LABEL_FILE_SUFFIXES`."""
    return str(path).lower().endswith(LABEL_FILE_SUFFIXES)


def read_label_file(path) -> tuple[np.ndarray, np.ndarray]:
    """``(array (slices, rows, columns), affine index -> LPS mm)`` of a label image file."""
    path = os.fspath(path)
    nifti = path.lower().endswith(NIFTI)
    reader = require("nibabel" if nifti else "SimpleITK", extra="labels",
                     needed_by="NIfTI label files" if nifti else "NRRD / MHA label files")
    try:
        if nifti:
            image = reader.load(path)
            data = np.asanyarray(image.dataobj)
            ras = image.affine
            affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ras[:, [2, 1, 0, 3]]
        else:
            sitk = reader
            image = sitk.ReadImage(path)
            data = sitk.GetArrayFromImage(image)  # (z, y, x)
            ras = None
            d = np.array(image.GetDirection(), float).reshape(3, 3) * np.array(image.GetSpacing())
            affine = np.eye(4)
            affine[:3, :3] = d[:, ::-1]
            affine[:3, 3] = image.GetOrigin()
    except (OSError, RuntimeError, ValueError) as err:
        raise InvalidDicomError(f"cannot read label file: {err}", path=path) from err
    if ras is not None:
        data = np.transpose(data, (2, 1, 0) + tuple(range(3, data.ndim)))
    if data.ndim != 3:
        data = np.squeeze(data)
    if data.ndim != 3:
        raise LabelGeometryError(f"label image must be 3D, got shape {data.shape}", path=path)
    return data, affine


def _describe(shape, affine) -> str:
    spacing = ", ".join(f"{v:.4g}" for v in spacing_from_affine(affine))
    origin = ", ".join(f"{v:.4g}" for v in affine[:3, 3])
    return (f"shape {tuple(shape)}, spacing ({spacing}) mm, origin ({origin}) mm LPS, "
            f"orientation {orientation_code(affine, 'LPS')}")


def _signed_permutation(t: np.ndarray, tol: float) -> np.ndarray | None:
    """``t`` (3x3) if it is a signed permutation matrix within ``tol``, else None."""
    rounded = np.rint(t)
    if np.abs(t - rounded).max() > tol:
        return None
    if not (np.abs(rounded).sum(axis=0) == 1).all() or not (np.abs(rounded).sum(axis=1) == 1).all():
        return None
    return rounded


def reorient_exact(data, affine, ref_shape, ref_affine, *, tol: float = 1e-3):
    """``data`` on the reference grid when the two grids differ by an axis permutation and
    flips only (``tol`` in voxels), else None."""
    t = np.linalg.solve(ref_affine, affine)  # label index -> reference index
    perm = _signed_permutation(t[:3, :3], tol)
    if perm is None or np.abs(t[:3, 3] - np.rint(t[:3, 3])).max() > tol:
        return None
    out = data
    axes = [int(np.flatnonzero(perm[i])[0]) for i in range(3)]  # ref axis i <- label axis
    out = np.transpose(out, axes)
    shift = np.rint(t[:3, 3]).astype(int)
    for i in range(3):
        if perm[i, axes[i]] < 0:
            out = np.flip(out, axis=i)
            if shift[i] != out.shape[i] - 1:
                return None
        elif shift[i] != 0:
            return None
    return np.ascontiguousarray(out) if out.shape == tuple(ref_shape) else None


def resample_nearest(data, affine, ref_shape, ref_affine) -> np.ndarray:
    """Nearest-neighbour labels on the reference grid (0 outside the label grid)."""
    t = np.linalg.solve(affine, ref_affine)  # reference index -> label index
    k, r, c = np.meshgrid(*(np.arange(n) for n in ref_shape), indexing="ij")
    idx = np.stack([k, r, c], axis=-1).reshape(-1, 3) @ t[:3, :3].T + t[:3, 3]
    idx = np.rint(idx).astype(np.int64)
    ok = np.all((idx >= 0) & (idx < np.array(data.shape)), axis=1)
    out = np.zeros(int(np.prod(ref_shape)), dtype=data.dtype)
    out[ok] = data[idx[ok, 0], idx[ok, 1], idx[ok, 2]]
    return out.reshape(ref_shape)


def load_label_file(path, reference, *, resample: bool = False):
    """A label image file as a :class:`~dicomml.volume.Volume` on ``reference``'s grid
    (a Volume, or a ``(catalog, series_key)`` pair); see the module docstring.

    Integer labels keep their values (a float file with whole values becomes int32).
    """
    from dicomml.volume import Volume

    from .reference import resolve_reference

    if reference is None:
        raise ValueError("a label file needs a reference (a Volume or (catalog, series_key))")
    grid, _ = resolve_reference(reference, None)
    data, affine = read_label_file(path)
    if data.dtype.kind == "f":
        if not np.array_equal(data, np.rint(data)):
            raise LabelGeometryError("label image holds non-integer values", path=path)
        data = data.astype(np.int32)
    out = reorient_exact(data, affine, grid.shape, grid.affine)
    resampled = out is None
    if resampled:
        if not resample:
            raise LabelGeometryError(
                f"label grid differs from the image's: label {_describe(data.shape, affine)}; "
                f"image {_describe(grid.shape, grid.affine)} (pass resample=True for nearest)",
                path=os.fspath(path))
        out = resample_nearest(data, affine, grid.shape, grid.affine)
    values = [int(v) for v in np.unique(out) if v != 0]
    meta = {"labels": {v: {"name": str(v)} for v in values}, "label_kind": "file",
            "label_path": os.fspath(path), "SeriesInstanceUID": grid.series_uid,
            "reference": grid.name, "resampled": resampled}
    return Volume(out, grid.affine, meta)
