"""Base classes shared by every transform: :class:`Transform`, :class:`RandomTransform`,
:class:`Compose`, plus the sample-dict helpers.

A *sample* is a dict (docs/conventions.md): ``image`` float32 tensor ``(C, slices, rows,
columns)``; optional ``label`` integer tensor ``(C or 1, slices, rows, columns)``; ``affine``
float64 4x4 tensor mapping ``(slice, row, column, 1)`` to LPS mm; ``spacing`` float64 ``(3,)``
tensor (slice, row, column) mm. Other keys pass through untouched. Transforms never modify the
input dict or its tensors in place; they return a new dict.

Random transforms draw their parameters apart from applying them (TorchIO style)::

    params = t.get_params(generator)   # small dict (numbers, lists, a small CPU tensor for
                                       # RandomElastic), independent of the sample
    out = t.apply(sample, params)      # deterministic given params

so that the same draw can be replayed on another sample (image and its label, CPU and CUDA).

Example
-------
>>> import torch
>>> from dicomml.transforms import Compose, RandomFlip, ZNormalize
>>> sample = {"image": torch.rand(1, 4, 5, 6), "affine": torch.eye(4, dtype=torch.float64),
...           "spacing": torch.ones(3, dtype=torch.float64)}
>>> t = Compose([ZNormalize(), RandomFlip(axes=(0, 1, 2), p=0.5)])
>>> out = t(sample, generator=torch.Generator().manual_seed(0))
>>> out["image"].shape
torch.Size([1, 4, 5, 6])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from dicomml.geometry.affine import spacing_from_affine

IMAGE_KEYS = ("image",)
LABEL_KEYS = ("label",)


def spatial_shape(sample: Mapping, keys: Sequence[str] = IMAGE_KEYS + LABEL_KEYS
                  ) -> tuple[int, int, int]:
    """(slices, rows, columns) of the first of ``keys`` found in ``sample``."""
    for key in keys:
        if key in sample:
            return tuple(int(n) for n in sample[key].shape[-3:])
    raise KeyError(f"sample has none of the keys {tuple(keys)}")


def sample_affine(sample: Mapping) -> torch.Tensor:
    """``sample["affine"]`` as a float64 CPU tensor; identity when the sample has none."""
    affine = sample.get("affine")
    if affine is None:
        return torch.eye(4, dtype=torch.float64)
    return torch.as_tensor(affine, dtype=torch.float64).detach().cpu()


def affine_array(affine) -> np.ndarray:
    """A 4x4 affine tensor (any device and dtype) or array as a float64 numpy array: what the
    :mod:`dicomml.geometry` functions take. A float64 CPU tensor shares its memory.

    >>> affine_array(torch.eye(4)).dtype
    dtype('float64')
    """
    if isinstance(affine, torch.Tensor):
        if not (affine.is_cpu and affine.dtype is torch.float64 and not affine.requires_grad):
            affine = affine.detach().to(device="cpu", dtype=torch.float64)
        return affine.numpy()
    return np.asarray(affine, dtype=np.float64)


def spacing_of(affine: torch.Tensor) -> torch.Tensor:
    """Voxel spacing (slice, row, column) mm of a 4x4 affine tensor, float64 (3,) on the
    affine's device: :func:`dicomml.geometry.spacing_from_affine` of its CPU copy.

    >>> spacing_of(torch.diag(torch.tensor([2.5, -0.7, 0.7, 1.0], dtype=torch.float64)))
    tensor([2.5000, 0.7000, 0.7000], dtype=torch.float64)
    """
    spacing = torch.from_numpy(spacing_from_affine(affine_array(affine)))
    return spacing.to(affine.device) if isinstance(affine, torch.Tensor) else spacing


def with_geometry(sample: Mapping, affine: torch.Tensor, **tensors) -> dict:
    """A new sample: ``sample`` with ``tensors`` replaced and ``affine``/``spacing`` updated.

    ``affine`` is a float64 CPU tensor; it is stored on the device/dtype of the input affine
    (float64 CPU when the sample had none) and ``spacing`` recomputed from it.
    """
    out = dict(sample)
    out.update(tensors)
    old = sample.get("affine")
    device = old.device if isinstance(old, torch.Tensor) else torch.device("cpu")
    out["affine"] = affine.to(device=device, dtype=torch.float64)
    out["spacing"] = spacing_of(affine).to(device=device)
    return out


def check_spatial(tensor: torch.Tensor, key: str) -> None:
    """Raise ``ValueError`` unless ``tensor`` is channel-first 4D ``(C, slices, rows, columns)``."""
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4:
        shape = getattr(tensor, "shape", type(tensor).__name__)
        raise ValueError(f"sample[{key!r}] must be a (C, slices, rows, columns) tensor, "
                         f"got {shape}")


class Transform:
    """A deterministic dict-in, dict-out transform.

    Subclasses implement :meth:`apply` (``params`` is ``None`` for deterministic transforms).
    ``image_keys`` are interpolated with the transform's mode, ``label_keys`` with nearest
    neighbour and kept integer.
    """

    def __init__(self, image_keys: Sequence[str] = IMAGE_KEYS,
                 label_keys: Sequence[str] = LABEL_KEYS):
        self.image_keys = tuple(image_keys)
        self.label_keys = tuple(label_keys)

    def __call__(self, sample: Mapping, generator: torch.Generator | None = None) -> dict:
        return self.apply(sample, None)

    def apply(self, sample: Mapping, params: Mapping | None = None) -> dict:
        raise NotImplementedError

    def shape_of(self, sample: Mapping) -> tuple[int, int, int]:
        """(slices, rows, columns) of the first image/label key present."""
        return spatial_shape(sample, self.image_keys + self.label_keys)

    def device_of(self, sample: Mapping) -> torch.device:
        """Device of the first image/label key present (``KeyError`` when none is)."""
        keys = self.present(sample, self.image_keys + self.label_keys)
        if not keys:
            raise KeyError(f"{type(self).__name__}: sample has none of the keys "
                           f"{self.image_keys + self.label_keys}")
        return sample[keys[0]].device

    def present(self, sample: Mapping, keys: Iterable[str]) -> list[str]:
        """The keys of ``keys`` found in ``sample`` (checked to be 4D tensors).

        A label key holding a scalar or 1D value (a class id, not a voxel map) is skipped.
        """
        found = []
        for key in keys:
            if key not in sample:
                continue
            value = sample[key]
            if key in self.label_keys and (not isinstance(value, torch.Tensor) or value.ndim <= 1):
                continue
            check_spatial(value, key)
            found.append(key)
        return found

    @property
    def deterministic(self) -> bool:
        """True: the output depends only on the input (the dataset may cache it), unless a
        parameter is an anonymous function (a lambda or a local function) that
        :meth:`cache_key` cannot name."""
        return not any(_anonymous(v) for v in vars(self).values())

    def cache_key(self) -> str:
        """A stable string naming the class and every parameter (keys included), the same
        across processes and machines, e.g. ``"Resample(image_keys=('image',), ...)"``."""
        fields = ", ".join(f"{k}={_stable_repr(v)}" for k, v in sorted(vars(self).items())
                           if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                           if not k.startswith("_") and k not in ("image_keys", "label_keys"))
        return f"{type(self).__name__}({fields})"


def _anonymous(value) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_anonymous(v) for v in value)
    if isinstance(value, Transform):
        return not value.deterministic
    name = getattr(value, "__qualname__", "")
    return callable(value) and not isinstance(value, (type, torch.dtype)) and (
        "<lambda>" in name or "<locals>" in name or not name)


def _stable_repr(value) -> str:
    if isinstance(value, Transform):
        return value.cache_key()
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_stable_repr(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, torch.dtype):
        return str(value)
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    return repr(value)


class RandomTransform(Transform):
    """A transform applied with probability ``p`` with parameters drawn from a generator.

    ``get_params(generator)`` returns a small dict, independent of the sample, that always
    holds ``"apply"`` (bool: the probability draw); ``apply(sample, params)`` is deterministic.
    Calling the transform does both. Pass a seeded ``torch.Generator`` for reproducibility;
    with ``generator=None`` the global torch RNG is used (seeded per DataLoader worker).
    """

    deterministic = False  # never cached by the dataset

    def __init__(self, p: float = 1.0, **keys):
        super().__init__(**keys)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = float(p)

    def __call__(self, sample: Mapping, generator: torch.Generator | None = None) -> dict:
        return self.apply(sample, self.get_params(generator))

    def get_params(self, generator: torch.Generator | None = None) -> dict:
        apply = bool(uniform(generator) < self.p)
        params = {"apply": apply}
        if apply:
            params.update(self.draw(generator))
        return params

    def draw(self, generator: torch.Generator | None) -> dict:
        """The transform-specific parameters (called only when the probability draw hits)."""
        return {}

    def apply(self, sample: Mapping, params: Mapping | None = None) -> dict:
        if params is None:
            raise ValueError(f"{type(self).__name__}.apply needs params from get_params()")
        if not params.get("apply", True):
            return dict(sample)
        return self.apply_params(sample, params)

    def apply_params(self, sample: Mapping, params: Mapping) -> dict:
        raise NotImplementedError


def uniform(generator: torch.Generator | None, low: float = 0.0, high: float = 1.0,
            size: int | Sequence[int] | None = None):
    """Uniform draw(s) in ``[low, high)`` from ``generator`` (CPU); a float or a float64 tensor."""
    shape = () if size is None else ((size,) if isinstance(size, int) else tuple(size))
    value = torch.rand(shape, generator=generator, dtype=torch.float64) * (high - low) + low
    return float(value) if size is None else value


def as_range(value, name: str, around: float = 0.0) -> tuple[float, float]:
    """``x`` -> ``(around - x, around + x)``; a pair is returned as floats; checked low <= high."""
    if isinstance(value, (int, float)):
        low, high = around - float(value), around + float(value)
    else:
        low, high = (float(v) for v in value)
    if low > high:
        raise ValueError(f"{name}: low {low} > high {high}")
    return low, high


def per_axis_ranges(value, name: str, around: float = 0.0) -> list[tuple[float, float]]:
    """A number, a pair, or three pairs/numbers -> three ``(low, high)`` ranges."""
    if isinstance(value, (int, float)) or (len(value) == 2 and all(
            isinstance(v, (int, float)) for v in value)):
        return [as_range(value, name, around)] * 3
    if len(value) != 3:
        raise ValueError(f"{name}: expected a number, a (low, high) pair or 3 of them")
    return [as_range(v, name, around) for v in value]


class Compose(Transform):
    """Apply transforms in order; one generator is threaded through the random ones.

    Example
    -------
    >>> import torch
    >>> from dicomml.transforms import Compose, RandomGamma, Window
    >>> t = Compose([Window(40, 400), RandomGamma(p=1.0)])
    >>> s = {"image": torch.rand(1, 2, 3, 4)}
    >>> a = t(s, torch.Generator().manual_seed(1))["image"]
    >>> b = t(s, torch.Generator().manual_seed(1))["image"]
    >>> bool(torch.equal(a, b))
    True
    """

    def __init__(self, transforms: Sequence[Transform]):
        super().__init__()
        self.transforms = list(transforms)

    def __call__(self, sample: Mapping, generator: torch.Generator | None = None) -> dict:
        for transform in self.transforms:
            sample = transform(sample, generator)
        return dict(sample)

    def get_params(self, generator: torch.Generator | None = None) -> list:
        """One params entry per transform (``None`` for deterministic ones)."""
        return [t.get_params(generator) if hasattr(t, "get_params") else None
                for t in self.transforms]

    def apply(self, sample: Mapping, params: Sequence | None = None) -> dict:
        params = [None] * len(self.transforms) if params is None else params
        for transform, p in zip(self.transforms, params, strict=True):
            sample = transform.apply(sample, p) if p is not None else transform(sample)
        return dict(sample)

    def __repr__(self) -> str:
        inner = ",\n    ".join(repr(t) for t in self.transforms)
        return f"Compose([\n    {inner}\n])"
