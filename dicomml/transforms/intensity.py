"""Deterministic intensity transforms: :class:`Window` (+ CT presets), :class:`Windows` (one
channel per window, the DICOM VOI LINEAR formula), :class:`ClipNormalize`,
:class:`ZNormalize`, :class:`ToDtype`, and :class:`ByModality`, which picks one of them by the
sample's modality (HU windows for CT, percentiles for MR). They touch only ``image`` keys, never
geometry. Where the sample holds a ``padding_mask`` (Pixel Padding Value / Range Limit, True on
padding, the image's shape; ``sample["padding_mask"]`` of the Datasets) the statistics of
:class:`ClipNormalize` (percentiles) and :class:`ZNormalize` leave padding out, and
:class:`Windows` / :class:`ZNormalize` set padded voxels to 0.

Example
-------
>>> import torch
>>> from dicomml.transforms import Window
>>> s = {"image": torch.tensor([-1350.0, -600, 150]).view(1, 1, 1, 3)}
>>> Window.preset("lung")(s)["image"].flatten().tolist()
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from dicomml.decode.stages import ramp
from dicomml.transforms._base import Transform

#: CT window presets, (center, width) in HU
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "subdural": (80.0, 200.0),
    "stroke": (40.0, 40.0),
    "soft_tissue": (40.0, 400.0),
}


def padding_of(x: torch.Tensor, sample: Mapping) -> torch.Tensor | None:
    """The sample's ``padding_mask`` as a bool tensor on ``x``'s device when it has ``x``'s
    shape, else None."""
    mask = sample.get("padding_mask") if isinstance(sample, Mapping) else None
    if not isinstance(mask, torch.Tensor) or mask.shape != x.shape:
        return None
    return mask.to(device=x.device, dtype=torch.bool)


class IntensityTransform(Transform):
    """Apply ``self.transform(image_tensor, sample)`` to every image key."""

    def apply(self, sample: Mapping, params=None) -> dict:
        out = dict(sample)
        for key in self.present(sample, self.image_keys):
            out[key] = self.transform(sample[key], sample)
        return out

    def transform(self, x: torch.Tensor, sample: Mapping) -> torch.Tensor:
        raise NotImplementedError


def _rescale(x: torch.Tensor, low, high, out_range) -> torch.Tensor:
    scale = (out_range[1] - out_range[0]) / max(float(high - low), 1e-12) \
        if not isinstance(low, torch.Tensor) else \
        (out_range[1] - out_range[0]) / (high - low).clamp_min(1e-12)
    return (x.clamp(low, high) - low) * scale + out_range[0]


class Window(IntensityTransform):
    """Clip to ``[center - width/2, center + width/2]`` (HU) and map to ``out_range``.

    Presets (``Window.preset(name)``): lung (-600, 1500), mediastinum (50, 350),
    bone (400, 1800), brain (40, 80).
    """

    def __init__(self, center: float, width: float, out_range=(0.0, 1.0), **keys):
        super().__init__(**keys)
        if width <= 0:
            raise ValueError(f"window width must be positive, got {width}")
        self.center, self.width, self.out_range = float(center), float(width), tuple(out_range)

    @classmethod
    def preset(cls, name: str, **kwargs) -> Window:
        if name not in WINDOW_PRESETS:
            raise ValueError(f"unknown window preset {name!r}; one of {sorted(WINDOW_PRESETS)}")
        return cls(*WINDOW_PRESETS[name], **kwargs)

    def transform(self, x, sample):
        low, high = self.center - self.width / 2, self.center + self.width / 2
        return _rescale(x, low, high, self.out_range)


class Windows(IntensityTransform):
    """One channel per window: each of ``windows`` (preset names or ``(center, width)``
    pairs in the image's units, HU for CT modality values) maps the image through the DICOM
    VOI LINEAR function (PS3.3 C.11.2.1.2) onto [0, 1]::

        x <= c - 0.5 - (w - 1) / 2  ->  0
        x >  c - 0.5 + (w - 1) / 2  ->  1
        else ((x - (c - 0.5)) / (w - 1) + 0.5)

    (``w`` >= 1; equal to pydicom's ``apply_windowing`` scaled to [0, 1]). Presets, centre /
    width in HU: brain (40, 80), subdural (80, 200), stroke (40, 40), bone (400, 1800),
    soft_tissue (40, 400), mediastinum (50, 350), lung (-600, 1500).

    An image of C channels becomes ``len(windows) * C`` channels, window-major (all channels
    of the first window, then of the next). Padded voxels (``sample["padding_mask"]``) are
    0 in every channel, and the mask is repeated to the new channels.

    >>> import torch
    >>> s = {"image": torch.tensor([0.0, 40.0, 80.0, 2000.0]).view(1, 1, 1, 4)}
    >>> out = Windows(["brain", (1000, 2001)])(s)["image"]
    >>> [[round(v, 3) for v in channel.flatten().tolist()] for channel in out]
    [[0.0, 0.506, 1.0, 1.0], [0.0, 0.02, 0.04, 1.0]]
    """

    def __init__(self, windows, **keys):
        super().__init__(**keys)
        pairs = []
        for window in windows:
            if isinstance(window, str):
                if window not in WINDOW_PRESETS:
                    raise ValueError(f"unknown window preset {window!r}; one of "
                                     f"{sorted(WINDOW_PRESETS)}")
                window = WINDOW_PRESETS[window]
            center, width = (float(v) for v in window)
            if not width >= 1:
                raise ValueError(f"window width must be >= 1 (VOI LINEAR), got {width}")
            pairs.append((center, width))
        if not pairs:
            raise ValueError("Windows needs at least one window")
        self.windows = tuple(pairs)

    def apply(self, sample: Mapping, params=None) -> dict:
        out = super().apply(sample, params)
        mask = sample.get("padding_mask")
        if isinstance(mask, torch.Tensor) and "image" in out and \
                out["image"].shape[0] == mask.shape[0] * len(self.windows):
            out["padding_mask"] = mask.repeat(len(self.windows), *([1] * (mask.ndim - 1)))
        return out

    def transform(self, x, sample):
        x = x.to(torch.float64) if x.dtype == torch.float64 else x.float()
        mask = padding_of(x, sample)
        channels = []
        for center, width in self.windows:
            center, width = ramp(center, width, "LINEAR")
            if width <= 0:  # width 1: a step at the centre
                y = (x > center).to(x.dtype)
            else:
                y = ((x - center) / width + 0.5).clamp(0.0, 1.0)
                y = torch.where(x <= center - width / 2, torch.zeros_like(y), y)
                y = torch.where(x > center + width / 2, torch.ones_like(y), y)
            if mask is not None:
                y = y.masked_fill(mask, 0.0)
            channels.append(y)
        return torch.cat(channels, dim=0)


class ClipNormalize(IntensityTransform):
    """Clip to ``[low, high]`` and map to ``out_range``. With ``percentiles=True`` low/high are
    percentiles (0-100) of each channel (computed on the tensor's device)."""

    def __init__(self, low: float, high: float, out_range=(0.0, 1.0), percentiles: bool = False,
                 **keys):
        super().__init__(**keys)
        if low >= high:
            raise ValueError(f"low {low} must be below high {high}")
        self.low, self.high = float(low), float(high)
        self.out_range, self.percentiles = tuple(out_range), bool(percentiles)

    def transform(self, x, sample):
        if not self.percentiles:
            return _rescale(x, self.low, self.high, self.out_range)
        flat = x.reshape(x.shape[0], -1).float()
        mask = padding_of(x, sample)
        if mask is not None:  # padding left out of the percentiles (NaN: ignored)
            flat = flat.masked_fill(mask.reshape(x.shape[0], -1), float("nan"))
        if flat.shape[1] > 1_000_000:  # quantile's size limit: a regular subsample
            flat = flat[:, :: flat.shape[1] // 1_000_000 + 1]
        q = torch.tensor([self.low / 100, self.high / 100], device=x.device)
        bounds = torch.nanquantile(flat, q, dim=1).to(x.dtype).view(2, -1, *([1] * (x.ndim - 1)))
        return _rescale(x, bounds[0], bounds[1], self.out_range)


class ZNormalize(IntensityTransform):
    """Per-channel ``(x - mean) / std`` with statistics over ``mask``.

    ``mask``: ``None`` (all voxels), ``"nonzero"`` (``x != 0``), a sample key (its voxels
    ``> 0``, e.g. ``"label"``), or a callable ``image -> bool tensor``. Voxels outside the mask
    are normalised with the same statistics.
    """

    def __init__(self, mask: str | Callable | None = None, eps: float = 1e-8, **keys):
        super().__init__(**keys)
        self.mask, self.eps = mask, float(eps)

    def _mask(self, x, sample):
        if self.mask is None:
            return None
        if callable(self.mask):
            return self.mask(x)
        if self.mask == "nonzero":
            return x != 0
        return (sample[self.mask] > 0).expand_as(x)

    def transform(self, x, sample):
        mask = self._mask(x, sample)
        padding = padding_of(x, sample)
        if padding is not None:  # padding never counts, and ends at 0
            mask = ~padding if mask is None else (mask & ~padding)
        out = torch.empty_like(x)
        for c in range(x.shape[0]):
            values = x[c] if mask is None else x[c][mask[c]]
            if values.numel() == 0:
                values = x[c].reshape(-1)
            mean, std = values.mean(), values.std(unbiased=False)
            out[c] = (x[c] - mean) / (std + self.eps)
        return out if padding is None else out.masked_fill(padding, 0.0)


class ToDtype(Transform):
    """Cast ``keys`` (default: ``image``) to ``dtype``; geometry keys stay float64."""

    def __init__(self, dtype: torch.dtype = torch.float32, keys=("image",)):
        super().__init__()
        self.dtype, self.keys = dtype, tuple(keys)

    def apply(self, sample: Mapping, params=None) -> dict:
        out = dict(sample)
        for key in self.keys:
            if key in sample:
                out[key] = sample[key].to(self.dtype)
        return out


class ByModality(Transform):
    """Apply the transform registered for the sample's modality (``sample["metadata"]
    ["Modality"]``, as :class:`dicomml.DicomSeriesDataset` fills it), else ``default``.

    For folders that mix modalities, where one intensity mapping cannot fit all: CT values are
    calibrated (HU), so a fixed window means the same tissue in every series, while MR (and
    PET, US...) values have no fixed scale and are better mapped by each series' own
    percentiles. ``transforms`` maps a modality code (``"CT"``, ``"MR"``; case-insensitive) to
    a deterministic transform; a modality without an entry gets ``default``, and raises
    ``ValueError`` (naming the series) when ``default`` is None, so that no series is silently
    mapped with another modality's settings. Deterministic, hence cached by the dataset; its
    ``cache_key()`` names every transform it may apply.

    >>> import torch
    >>> norm = ByModality({"CT": Window(40, 400)},
    ...                   default=ClipNormalize(1, 99, percentiles=True))
    >>> ct = {"image": torch.tensor([-160.0, 40, 240]).view(1, 1, 1, 3),
    ...       "metadata": {"Modality": "CT"}}
    >>> norm(ct)["image"].flatten().tolist()
    [0.0, 0.5, 1.0]
    >>> mr = {"image": torch.arange(101.0).view(1, 1, 1, 101), "metadata": {"Modality": "MR"}}
    >>> [round(v, 2) for v in norm(mr)["image"].flatten()[[0, 50, 100]].tolist()]
    [0.0, 0.5, 1.0]
    """

    def __init__(self, transforms: Mapping[str, Transform], default: Transform | None = None):
        super().__init__()
        for name, transform in [*dict(transforms).items(), ("default", default)]:
            if transform is not None and not (isinstance(transform, Transform)
                                              and transform.deterministic):
                raise TypeError(f"ByModality[{name!r}] must be a deterministic dicomml "
                                f"transform, got {transform!r}")
        # sorted (code, transform) pairs: a stable cache key whatever the mapping's order
        self.choices = tuple(sorted((str(code).strip().upper(), t)
                                       for code, t in dict(transforms).items()))
        self.default = default

    def select(self, sample: Mapping) -> Transform:
        """The transform for ``sample`` (see the class doc)."""
        metadata = sample.get("metadata")
        modality = metadata.get("Modality") if isinstance(metadata, Mapping) else None
        code = str(modality).strip().upper() if modality else ""
        chosen = dict(self.choices).get(code, self.default)
        if chosen is None:
            series = sample.get("series_key", "?")
            known = ", ".join(c for c, _ in self.choices)
            what = f"modality {code!r}" if code else "no sample['metadata']['Modality']"
            raise ValueError(f"ByModality: series {series} has {what} and no default; "
                             f"transforms are given for {known} (keep 'Modality' in the "
                             "dataset's metadata, or pass default=)")
        return chosen

    def apply(self, sample: Mapping, params=None) -> dict:
        return self.select(sample).apply(sample, None)

    def __repr__(self) -> str:
        pairs = ", ".join(f"{code!r}: {t!r}" for code, t in self.choices)
        return f"ByModality({{{pairs}}}, default={self.default!r})"
