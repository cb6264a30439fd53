"""The synthetic phantom: an asymmetric volume in index space, in real-world units.

Every feature sits off-centre so that a flip, transposition or shift of any axis changes the
image: an elliptic body with an intensity gradient along columns and slices, an off-centre
dense sphere, a low-density "lung" on the other side, and a bright cubic marker in the first
quarter of the slices, near the first row and the last column.

Values are Hounsfield units for CT and arbitrary unsigned intensities for MR (other
modalities use the MR scale).

Example
-------
>>> values = phantom((4, 8, 8), modality="CT", seed=0)
>>> values.shape, values.dtype
((4, 8, 8), dtype('float64'))
"""

from __future__ import annotations

import numpy as np

# tissue values: (background, body, dense sphere, lung, marker, noise sigma)
_CT = (-1000.0, 40.0, 700.0, -750.0, 1900.0, 4.0)
_MR = (0.0, 420.0, 900.0, 90.0, 1600.0, 6.0)


def phantom(shape: tuple[int, int, int], *, modality: str = "CT", seed: int = 0,
            volume: int = 0) -> np.ndarray:
    """Return the phantom, float64 of ``shape`` = (slices, rows, columns).

    ``volume`` (0, 1, ...) varies the contrast for the 4th dimension of 4D series
    (temporal positions or echoes): the body and sphere fade by 12 % per volume.
    ``seed`` jitters the sphere's centre and draws the noise; equal arguments give equal
    arrays.
    """
    background, body, dense, lung, marker, sigma = _CT if modality == "CT" else _MR
    rng = np.random.default_rng([seed, volume, 7919])
    z, y, x = _normalised_grid(shape)
    fade = 0.88 ** volume
    out = np.full(shape, background, dtype=np.float64)
    inside = (z / 1.15) ** 2 + (y / 0.78) ** 2 + (x / 0.9) ** 2 < 1.0
    tissue = body * fade + 0.15 * abs(body) * (x + 0.5 * z)
    out[inside] = tissue[inside]
    centre = np.array([0.3, -0.3, 0.35]) + rng.uniform(-0.05, 0.05, 3)
    sphere = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 < 0.25 ** 2
    out[sphere] = dense * fade
    lung_mask = ((z + 0.1) / 0.5) ** 2 + ((y - 0.1) / 0.3) ** 2 + ((x + 0.45) / 0.22) ** 2 < 1
    out[lung_mask & inside] = lung
    out += rng.normal(0.0, sigma, shape) * inside
    out[_marker_slices(shape)] = marker
    return out


def _normalised_grid(shape):
    """Index coordinates scaled to [-1, 1] along each axis (0 where an axis has one sample)."""
    axes = [np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1) for n in shape]
    return np.meshgrid(*axes, indexing="ij")


def _marker_slices(shape):
    """Index slices of the marker cube: first quarter of slices, near row 0 and the last column."""
    n_slices, n_rows, n_cols = shape
    depth = max(1, n_slices // 4)
    height = max(1, n_rows // 8)
    width = max(1, n_cols // 8)
    row0 = 1 if n_rows > height + 1 else 0
    col1 = n_cols - 1 if n_cols > width + 1 else n_cols
    return (slice(0, depth), slice(row0, row0 + height), slice(col1 - width, col1))
