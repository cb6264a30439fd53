"""Orientation codes of an LPS affine, as used by :class:`dicomml.transforms.Orient`.

A code has one letter per array axis (slice, row, column) naming the patient direction toward
which that index *increases* (nibabel's convention; ``"RAS"`` = nibabel's canonical). Letters:
``L``/``R`` (x), ``P``/``A`` (y), ``S``/``I`` (z). A standard axial CT stack read as
(slice, row, column) is ``"SPL"``.

Example
-------
>>> import torch
>>> axial = torch.tensor([[0, 0, 0.7, 0], [0, 0.7, 0, 0], [2.5, 0, 0, 0], [0, 0, 0, 1.]],
...                      dtype=torch.float64)
>>> axis_codes(axial)
'SPL'
"""

from __future__ import annotations

import torch

# letter -> (world axis in LPS, sign)
LETTERS = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "S": (2, 1), "I": (2, -1)}
_NAMES = {(0, 1): "L", (0, -1): "R", (1, 1): "P", (1, -1): "A", (2, 1): "S", (2, -1): "I"}


def parse_code(code: str) -> list[tuple[int, int]]:
    """``"RAS"`` -> ``[(world axis, sign), ...]``; ``ValueError`` unless the code names each of
    x, y, z exactly once."""
    code = str(code).upper()
    if len(code) != 3 or any(c not in LETTERS for c in code):
        raise ValueError(f"orientation code must be 3 of L/R, P/A, S/I, got {code!r}")
    parsed = [LETTERS[c] for c in code]
    if sorted(w for w, _ in parsed) != [0, 1, 2]:
        raise ValueError(f"orientation code {code!r} names a world axis twice")
    return parsed


def axis_directions(affine: torch.Tensor) -> list[tuple[int, int]]:
    """For each array axis, the (world axis, sign) it is closest to.

    Greedy on the normalised direction cosines: the largest remaining ``|cosine|`` is assigned
    first, so every world axis is used exactly once even for oblique volumes.
    """
    cos = affine[:3, :3].to(torch.float64).cpu()
    cos = (cos / torch.linalg.vector_norm(cos, dim=0)).abs().clone()
    signs = torch.sign(affine[:3, :3].to(torch.float64).cpu())
    result: list[tuple[int, int] | None] = [None] * 3
    for _ in range(3):
        flat = int(torch.argmax(cos))
        world, axis = divmod(flat, 3)
        result[axis] = (world, 1 if signs[world, axis] >= 0 else -1)
        cos[world, :] = -1.0
        cos[:, axis] = -1.0
    return result  # type: ignore[return-value]


def axis_codes(affine: torch.Tensor) -> str:
    """The 3-letter orientation code of ``affine`` (LPS output; see module docstring)."""
    return "".join(_NAMES[d] for d in axis_directions(affine))


def reorientation(affine: torch.Tensor, code: str) -> tuple[list[int], list[bool]]:
    """``(perm, flips)`` turning an array with ``affine`` into one with orientation ``code``:
    output axis ``i`` is input axis ``perm[i]``, reversed where ``flips[i]``."""
    current = axis_directions(affine)
    perm, flips = [], []
    for world, sign in parse_code(code):
        axis = next(a for a, (w, _) in enumerate(current) if w == world)
        perm.append(axis)
        flips.append(current[axis][1] != sign)
    return perm, flips
