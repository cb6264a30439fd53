"""An immutable image volume with exact geometry: :class:`Volume`.

Conventions (the one place they are stated for this module; see also docs/conventions.md)
-----------------------------------------------------------------------------------------
- ``array`` has shape **(slices, rows, columns)**, or **(volumes, slices, rows, columns)** for
  a 4D series (time points, echoes, diffusion directions...). It is read-only.
- Colour (RGB, YBR_* converted to RGB, PALETTE COLOR looked up; ``metadata["channels"] ==
  "RGB"``): a trailing channel axis, **(slices, rows, columns, 3)** or **(volumes, slices,
  rows, columns, 3)**, samples in R, G, B order; the affine still maps the three spatial axes.
- ``affine`` is a 4x4 float64 matrix mapping the index vector ``(slice, row, column, 1)`` to
  patient coordinates in **mm** in DICOM's **LPS** frame (x to the patient's Left, y Posterior,
  z Superior). With Image Orientation (Patient) = (F_r, F_c) and Pixel Spacing = (Δrow, Δcol):
  ``affine[:3, 0]`` is the step from one slice to the next, ``affine[:3, 1] = F_c * Δrow``,
  ``affine[:3, 2] = F_r * Δcol`` and ``affine[:3, 3]`` the position of the first voxel of
  slice 0. For CT with gantry tilt the slice step is not perpendicular to the planes (a
  "sheared", non-orthogonal affine) unless the volume was resampled.
- ``spacing`` = (slice, row, column) mm, always positive (lengths of the affine's columns);
  ``direction`` = 3x3 unit axis directions (columns: slice, row, column), LPS;
  ``origin`` = ``affine[:3, 3]``.
- ``ras_affine`` = ``diag(-1, -1, 1, 1) @ affine``: the same index -> RAS mm (NIfTI's world).
- :meth:`to_nifti` reorders the axes to NIfTI's (column, row, slice[, volume]) and uses the RAS
  affine, so ``nibabel.as_closest_canonical`` of it equals that of dcm2niix's output.

Example
-------
>>> import numpy as np
>>> affine = np.array([[0, 0, 0.5, 0], [0, 0.5, 0, 0], [2.0, 0, 0, 0], [0, 0, 0, 1]])
>>> vol = Volume(np.zeros((3, 4, 5), np.float32), affine)   # axial: slices go up
>>> vol.spacing.tolist(), vol.orientation
([2.0, 0.5, 0.5], 'SPL')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from dicomml._optional import require
from dicomml.geometry.affine import direction_from_affine, spacing_from_affine
from dicomml.geometry.orientation import lps_to_nifti_affine, lps_to_ras, orientation_code


@dataclass(frozen=True, eq=False)
class Volume:
    """Voxels plus geometry. Arrays are made read-only; ``metadata`` is a read-only mapping.

    ``metadata`` holds the series-level tags (keyword -> value), ``"findings"`` (the geometry
    checks' findings as dicts), and for 4D ``"volumes"`` (one dict per volume of the values that
    tell the volumes apart: temporal position, echo, b-value, gradient, acquisition...).
    """

    array: np.ndarray
    affine: np.ndarray
    metadata: Mapping = field(default_factory=dict)

    def __post_init__(self):
        array = np.asarray(self.array)
        colour = dict(self.metadata).get("channels") == "RGB"
        if array.ndim - colour not in (3, 4) or (colour and array.shape[-1] != 3):
            raise ValueError(f"Volume array must be 3D or 4D{' plus 3 RGB samples' * colour}, "
                             f"got shape {array.shape}")
        affine = np.array(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got {affine.shape}")
        array.setflags(write=False)
        affine.setflags(write=False)
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    def __reduce__(self):  # picklable (DataLoader workers): the metadata proxy is not
        return (type(self), (self.array, self.affine, dict(self.metadata)))

    # --- geometry -----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """``array.shape``."""
        return self.array.shape

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """(slices, rows, columns)."""
        end = self.array.ndim - self.is_colour
        return tuple(self.array.shape[end - 3:end])

    @property
    def is_colour(self) -> bool:
        """True for an RGB volume (``metadata["channels"] == "RGB"``): the array's last axis
        holds the 3 samples (R, G, B) of each voxel."""
        return self.metadata.get("channels") == "RGB"

    @property
    def channels(self) -> int:
        """Samples per voxel: 3 for colour (the array's last axis), else 1 (no such axis)."""
        return 3 if self.is_colour else 1

    @property
    def spacing(self) -> np.ndarray:
        """Voxel spacing (slice, row, column), mm, positive."""
        return spacing_from_affine(self.affine)

    @property
    def origin(self) -> np.ndarray:
        """LPS position (mm) of voxel (0, 0, 0)."""
        return self.affine[:3, 3].copy()

    @property
    def direction(self) -> np.ndarray:
        """3x3 unit directions of the (slice, row, column) axes as columns, LPS."""
        return direction_from_affine(self.affine)

    @property
    def ras_affine(self) -> np.ndarray:
        """The affine with RAS output: ``diag(-1, -1, 1, 1) @ affine``."""
        return lps_to_ras(self.affine)

    @property
    def orientation(self) -> str:
        """Patient direction each axis (slice, row, column) points to, e.g. ``"SPL"`` (LPS
        letters; :func:`dicomml.geometry.orientation_code`). ``ValueError`` when an axis of the
        affine has zero length or is not finite."""
        return orientation_code(self.affine, "LPS")

    @property
    def is_sheared(self) -> bool:
        """True when the slice axis is not perpendicular to the planes (gantry tilt)."""
        d = self.direction
        return bool(abs(d[:, 0] @ d[:, 1]) > 1e-6 or abs(d[:, 0] @ d[:, 2]) > 1e-6)

    # --- conversions --------------------------------------------------------------------------
    def nifti_affine(self) -> np.ndarray:
        """RAS affine for NIfTI's axis order (column, row, slice): ``ras_affine[:, [2, 1, 0, 3]]``
        (:func:`dicomml.geometry.lps_to_nifti_affine`)."""
        return lps_to_nifti_affine(self.affine)

    def nifti_array(self) -> np.ndarray:
        """The array in NIfTI's axis order: (column, row, slice[, volume]), colour samples
        kept last."""
        spatial = self.array.ndim - self.is_colour
        order = tuple(reversed(range(spatial))) + tuple(range(spatial, self.array.ndim))
        return self.array.transpose(order)

    def to_nifti(self):
        """A ``nibabel.Nifti1Image`` (RAS, (column, row, slice[, volume])); needs ``nibabel``.

        Colour volumes whose samples are integers in 0..255 are written as dcm2niix writes
        RGB: NIfTI's RGB24 (datatype 128, nibabel dtype ``[('R', 'u1'), ('G', 'u1'),
        ('B', 'u1')]``); other colour volumes keep their dtype with the 3 samples as NIfTI's
        5th dimension (intent ``vector``)."""
        nibabel = require("nibabel", extra="nifti", needed_by="to_nifti()")
        data = np.ascontiguousarray(self.nifti_array())
        if self.is_colour:
            data = _nifti_colour(data)
        image = nibabel.Nifti1Image(data, self.nifti_affine())
        if self.is_colour and data.dtype.names is None:
            image.header.set_intent("vector")
        image.set_qform(self.nifti_affine(), code=1)
        image.set_sform(self.nifti_affine(), code=1)
        return image

    def channel_array(self) -> np.ndarray:
        """The array channel-first, ``(C, slices, rows, columns)``: C = 1 for 3D, the volumes
        for 4D, the R, G, B samples for colour (4D colour: ``3 * volumes``, channel
        ``3 * v + s`` is sample s of volume v). A view where the layout allows, else a copy.

        >>> Volume(np.zeros((2, 4, 5, 3)), np.eye(4), {"channels": "RGB"}).channel_array().shape
        (3, 2, 4, 5)
        """
        array = self.array
        if not self.is_colour:
            return array[None] if array.ndim == 3 else array
        array = np.moveaxis(array, -1, -4)  # the samples before the slice axis
        return array.reshape(-1, *array.shape[-3:])

    def to_tensor(self, *, channel: bool = False):
        """A ``torch.Tensor`` copy of the array; ``channel=True`` adds a leading channel axis
        for 3D volumes (``(1, slices, rows, columns)``) and moves a colour volume's samples
        to the front (``(3, slices, rows, columns)``)."""
        import torch

        if channel and self.is_colour and self.array.ndim == 4:
            return torch.from_numpy(np.ascontiguousarray(np.moveaxis(self.array, -1, 0)))
        tensor = torch.from_numpy(np.array(self.array))
        return tensor[None] if channel and tensor.ndim == 3 else tensor

    def to_torchio(self):
        """A ``torchio.ScalarImage`` ((C, column, row, slice), RAS affine, as ``to_nifti()``);
        needs the ``torchio`` extra."""
        from dicomml.interop.torchio import volume_to_scalar_image

        return volume_to_scalar_image(self)

    def to_metatensor(self):
        """A MONAI ``MetaTensor`` ((C, column, row, slice), RAS affine); needs the ``monai``
        extra."""
        from dicomml.interop.monai import volume_to_metatensor

        return volume_to_metatensor(self)

    def __repr__(self) -> str:
        spacing = ", ".join(f"{v:.4g}" for v in self.spacing)
        origin = ", ".join(f"{v:.4g}" for v in self.origin)
        key = self.metadata.get("series_key")
        key = f" series_key={key!r}" if key else ""
        try:
            orientation = repr(self.orientation)
        except ValueError:  # a zero-length or non-finite axis points nowhere
            orientation = "None"
        return (f"Volume(shape={self.array.shape}, dtype={self.array.dtype}, "
                f"spacing=({spacing}) mm, origin=({origin}) mm LPS, "
                f"orientation={orientation}{' sheared' if self.is_sheared else ''}{key})")


#: NIfTI's RGB24 voxel type as nibabel spells it (datatype 128)
RGB24 = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])


def _nifti_colour(data: np.ndarray) -> np.ndarray:
    """Colour samples (last axis, R G B) as RGB24 voxels when they are integers in 0..255
    (dcm2niix's RGB output), else as a 5th NIfTI dimension (x, y, z, t, 3)."""
    if data.dtype.kind in "iuf" and data.size and np.all((data >= 0) & (data <= 255)) \
            and np.array_equal(data, np.round(data)):
        return np.ascontiguousarray(data.astype(np.uint8)).view(RGB24)[..., 0]
    if data.ndim == 4:  # (x, y, z, 3) -> (x, y, z, 1, 3): NIfTI keeps dimension 5 for vectors
        return data[:, :, :, None, :]
    return data
