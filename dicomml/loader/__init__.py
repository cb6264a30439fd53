"""Load one DICOM series as a :class:`~dicomml.volume.Volume`: ``load_series``.

Pipeline (one path for every kind of source)
--------------------------------------------
1. **Resolve** the source to the catalog rows of one series: a ``Catalog`` plus a
   ``series_key``, a folder holding one series, or a list of files. Folders and lists are
   split into series with the catalog's own scanner (``dicomml.scan``), so the keys are the
   catalog's; several series raise :class:`~dicomml.errors.MultipleSeriesError` listing them.
2. **Plane table** (contract in :mod:`dicomml.geometry.planes`): one row per 2D plane —
   single-frame files from the catalog columns, enhanced multi-frame objects from
   ``dicomml.geometry.enhanced.frame_planes``, Siemens mosaics from
   ``dicomml.geometry.mosaic.mosaic_planes`` (one row per tile, corrected positions).
3. **Repeats** (:mod:`.volumes`): where single-frame MR planes repeat at a position, the
   diffusion encoding of every vendor is read, derived trace images are left out, and volumes
   that no standard tag tells apart are numbered in Instance Number order (dcm2niix's rule).
4. **Arrange** (:func:`dicomml.geometry.stack.arrange`): group by position (4D when every
   position holds the same number of planes told apart by temporal position / echo / b-value /
   gradient / acquisition), sort by the projection of Image Position (Patient) on the slice
   normal (never by file name or Instance Number), check, build the affine.
5. **Policy** on the findings (``duplicate``, ``missing``, ``uneven``, ``inconsistent``,
   ``tilt``): ``"raise"`` a typed :mod:`dicomml.errors` error, ``"warn"`` a
   :class:`~dicomml.errors.GeometryWarning`, or ``"ignore"``. Every finding is also stored in
   ``Volume.metadata["findings"]``; ``metadata["provenance"]`` records how the volume was
   built (files in slice order, the 4D ordering rule, the policies that fired; see
   :func:`.assemble.provenance`).
6. **Pixels**: uncompressed little/big-endian data whose Pixel Data offset is known (the
   catalog records it) is read with ``os.preadv`` straight into a preallocated array — no
   re-parsing; compressed data at a known offset is read from there and decoded
   (:mod:`dicomml.decode.located`, again without parsing the header); anything else goes
   through ``dicomml.decode.read_pixels``. Large series are read by ``threads`` reader threads, each
   taking runs of consecutive files; with a float output each slice is read into a small
   per-thread buffer and converted (bits, rescale, MONOCHROME1 — only the passes needed)
   into its slot while still in cache. ``allocate=`` lets the caller supply the output
   (e.g. shared memory).

Pixel values
------------
- Only the ``BitsStored`` low bits count: unsigned values are masked, signed values are sign-
  extended from bit ``BitsStored - 1`` (DICOM PS3.5 8.1.1).
- ``dtype="float32"`` (default): the Modality LUT ``value = stored * slope + intercept``, with
  Rescale Slope/Intercept per plane (per frame for enhanced objects). ``dtype=None`` keeps the
  stored integers (no rescale; the slopes/intercepts are in ``metadata["rescale"]``).
- **MONOCHROME1** is inverted after rescale so that higher values are brighter everywhere:
  ``value' = (slope * s_min + intercept) + (slope * s_max + intercept) - value`` where
  ``[s_min, s_max]`` is the range of the stored integers allowed by BitsStored and Pixel
  Representation (e.g. ``[0, 4095]`` for 12 unsigned bits). The formula is independent of the
  image content (the same for every slice and file) and maps that range onto itself. With
  ``dtype=None`` the same mirror is applied to the stored integers: ``s' = s_min + s_max - s``.
  ``metadata["inverted_monochrome1"]`` is True when this happened.

4D metadata and provenance
--------------------------
``metadata["volumes"][i]`` holds, per volume, the values that tell the volumes apart
(``temporal``, ``echo``, ``acquisition``...), ``ordered_by`` (the attribute that ordered them:
``TemporalPositionIdentifier``..., or ``InstanceNumber`` where no standard tag tells them apart,
dcm2niix's rule) and ``told_apart_by``; for diffusion series ``b_value`` (s/mm^2) and
``gradient`` (unit vector, LPS patient frame, None for b=0), from the standard tags, the
enhanced MR Diffusion Sequence, Siemens CSA, or GE / Philips / Canon private tags
(:mod:`dicomml.geometry.diffusion`). ``metadata["provenance"]`` records how the volume was built
(:func:`.assemble.provenance`): the files in slice order (per volume), the 4D rule, the
policies that fired, derived images left out, the diffusion source, the transfer syntaxes with
the decoder tried first, the value scaling applied (``metadata["scaling"]`` has its details),
the dicomml version.

Modules: :mod:`.sources` (step 1), :mod:`.planes` (2, header checks), :mod:`.volumes` (3),
:mod:`.policy` (5), :mod:`.pixels` and :mod:`.values` (6), :mod:`.assemble` (one-slice affine,
resampling, metadata, provenance). Header values used as sizes are checked before anything
is allocated: a missing or unusable Rows, Columns, Bits Allocated... raises
:class:`~dicomml.errors.MissingTagError` / :class:`~dicomml.errors.InvalidTagError` naming the file and the tag; a file too small for the
frames its header describes raises :class:`~dicomml.errors.TruncatedFileError`.

Geometry conventions: see :mod:`dicomml.volume` (array (slices, rows, columns), affine index
-> LPS mm).

Example
-------
>>> import dicomml, tempfile
>>> folder = tempfile.mkdtemp()
>>> truth = dicomml.synth.write_series(folder, modality="CT", shape=(5, 8, 8))
>>> vol = dicomml.load_series(folder)
>>> bool(np.allclose(vol.array, truth.array)), bool(np.allclose(vol.affine, truth.affine))
(True, True)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from dicomml.decode.stages import check_stage
from dicomml.geometry.checks import DEFAULT_TOLERANCES, Tolerances
from dicomml.geometry.stack import arrange
from dicomml.volume import Volume

from . import philips
from .assemble import provenance, series_metadata, single_slice_affine
from .assemble import resample as _resample
from .floats import float_notes
from .pixels import read_stack
from .planes import build_planes
from .policy import DEFAULT_POLICY, RESAMPLED, actions, apply_policy
from .sources import resolve_source
from .values import values_record, with_value_params
from .vendor import adjust_planes, plane_notes
from .volumes import drop_incomplete, resolve_repeats

__all__ = ["load_series", "DEFAULT_POLICY", "resolve_source", "build_planes", "read_stack",
           "series_metadata"]


def load_series(source, key: str | None = None, *, policy: str | Mapping[str, str] = "default",
                dtype: str | None = "float32", resample: bool = False,
                threads: int | None = None,
                tolerances: Tolerances = DEFAULT_TOLERANCES, allocate=None,
                values: str | None = None, window=None, normalize: bool = True,
                scaling: str = "default") -> Volume:
    """Load one series as a :class:`~dicomml.volume.Volume` (see the module docstring).

    Parameters
    ----------
    source : Catalog, folder, one file, or list of files
    key : the ``series_key`` (needed when the source holds several series); a
        SeriesInstanceUID that the catalog split into sub-series (``UID#e1``, ``UID#t2``...)
        loads all of them together as one 4D volume
    policy : ``"default"`` (:data:`DEFAULT_POLICY`), ``"raise"``, ``"warn"``, ``"ignore"``, or a
        dict ``{finding kind: action}`` overriding the defaults
    dtype : ``"float32"`` (any numpy float dtype works) or ``None`` (stored integers, the
        same as ``values="stored"``)
    resample : put uneven, gapped or tilted series onto a regular orthogonal grid (linear
        interpolation; the result is then float32 whatever ``dtype``) instead of raising /
        returning a sheared affine
    threads : reader threads (default: up to 8, by CPU count)
    tolerances : :class:`dicomml.geometry.checks.Tolerances`
    allocate : optional ``allocate(shape, dtype) -> ndarray`` returning the writable,
        C-contiguous array of shape (volumes, slices, rows, columns) that the pixels are
        decoded into (e.g. a view of ``multiprocessing.shared_memory``); the Volume's array
        is then a (read-only) view of it. With ``resample=True`` on a series that needs
        resampling, the resampled array is a new one.
    values : ``"stored"`` (stored integers, ``dtype=None``), ``"modality"`` (the default with
        a float ``dtype``: Rescale Slope / Intercept per plane, or the Modality LUT
        Sequence) or ``"presentation"`` (float in [0, 1]: the VOI window or LUT, per frame
        for enhanced objects, then MONOCHROME1 / Presentation LUT Shape INVERSE resolved;
        ``normalize=False``: the VOI output range); see :mod:`dicomml.decode.stages`.
        MONOCHROME1 is mirrored in every stage (higher is brighter). What was applied, with
        the rules taken, is in ``metadata["values"]`` (and ``metadata["provenance"]
        ["values"]``); the Pixel Padding Value / Range Limit mask (bool, the array's shape)
        in ``metadata["padding_mask"]`` (None without padding, or after resampling).
    window : the VOI window of ``values="presentation"``: None (the file's first), an index,
        a Window Center & Width Explanation, or ``(center, width)`` in modality units
    normalize : presentation values in [0, 1] (True) or in the VOI output range
    scaling : ``"default"``, ``"philips_float"`` or ``"display"``: for Philips MR with a
        private scale slope, the floating-point values dcm2niix writes by default, or the
        display values (Rescale Slope / Intercept only); see :mod:`dicomml.loader.philips`.
        What was applied is in ``metadata["scaling"]``. ``values="presentation"`` always
        uses the display values (windows are given in them). The older spelling
        ``values="philips_float"`` / ``"display"`` / ``"default"`` is still accepted
        (DeprecationWarning) as ``scaling=``.

    Returns a Volume: array (slices, rows, columns) or (volumes, slices, rows, columns),
    plus a trailing axis of 3 samples (R, G, B) for colour series (``metadata["channels"]``
    ``== "RGB"``: RGB, YBR_* converted as pydicom does, PALETTE COLOR looked up; no rescale),
    affine from (slice, row, column, 1) to LPS mm. Raises :mod:`dicomml.errors` types naming
    the file (and tag) or the series key.
    """
    chosen = actions(policy)
    stage, scaling, dtype = value_options(values, scaling, dtype)
    instances, key = resolve_source(source, key)
    planes = build_planes(instances)
    planes, scaling = adjust_planes(planes, instances, scaling, dtype)
    planes, built = resolve_repeats(planes, instances)
    planes = drop_incomplete(planes, built, chosen["missing"], key)
    stack = arrange(planes, tolerances)
    apply_policy(stack.findings, chosen, key, resample)
    planes = with_value_params(planes, instances, stage, window)
    masks: dict = {}
    data = read_stack(planes, stack.order, dtype=dtype, threads=threads, allocate=allocate,
                      stage=stage, window=window, normalize=normalize, masks=masks)
    affine = stack.affine
    if stack.order.shape[1] == 1:
        affine = single_slice_affine(affine, instances)
    colour = data.ndim == 5  # (V, S, R, C, 3): read_stack's colour output
    mask = masks.get("padding")
    if resample and stack.kinds() & set(RESAMPLED):
        data, affine = _resample_channels(data, stack) if colour else _resample(data, stack)
        mask = None  # the padding of the stored grid; the resampled grid has none
    metadata = series_metadata(instances, key, stack, planes, dtype, resample)
    if colour:
        metadata["channels"] = "RGB"
    metadata.update(plane_notes(planes, stack.order), scaling=scaling)
    metadata.update(float_notes(planes, stack.order, data, dtype))
    metadata["values"] = values_record(planes, stack.order, stage, window, normalize,
                                       metadata.get("inverted_monochrome1", False))
    metadata["padding_mask"] = None if mask is None else (mask if stack.is_4d else mask[0])
    metadata["provenance"] = provenance(planes, stack, built, chosen, resample)
    metadata["provenance"]["scaling"] = (scaling or {}).get("applied")
    metadata["provenance"]["values"] = metadata["values"]
    return Volume(data if stack.is_4d else data[0], affine, metadata)


def value_options(values: str | None, scaling: str, dtype) -> tuple[str, str, object]:
    """``(stage, scaling, dtype)`` of :func:`load_series`' ``values`` / ``scaling`` /
    ``dtype``: the older ``values="default" | "philips_float" | "display"`` moves to
    ``scaling`` (DeprecationWarning); ``"stored"`` means ``dtype=None``; presentation uses
    the display scaling."""
    if values in philips.VALUES:
        if values != "default":
            warnings.warn(f"load_series(values={values!r}) is now scaling={values!r}; "
                          "values= chooses 'stored', 'modality' or 'presentation'",
                          DeprecationWarning, stacklevel=3)
            scaling = values
        values = None
    if scaling not in philips.VALUES:
        raise ValueError(f"scaling must be one of {', '.join(map(repr, philips.VALUES))}, "
                         f"got {scaling!r}")
    if values is None:
        values = "modality" if dtype is not None else "stored"
    check_stage(values)
    if values == "stored":
        return values, scaling, None
    if dtype is None:
        raise ValueError(f"values={values!r} gives floats: use a float dtype, or "
                         "values='stored' for stored integers")
    if np.dtype(dtype).kind != "f":
        raise ValueError(f"dtype must be a float dtype or None (stored integers), got {dtype!r}")
    return values, "display" if values == "presentation" else scaling, dtype


def _resample_channels(data: np.ndarray, stack) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~dicomml.loader.assemble.resample` of colour data (V, S, R, C, 3): each
    sample resampled as a volume of its own."""
    volumes = np.moveaxis(data, -1, 1).reshape(-1, *data.shape[1:4])
    out, affine = _resample(volumes, stack)
    out = out.reshape(data.shape[0], 3, *out.shape[1:])
    return np.ascontiguousarray(np.moveaxis(out, 1, -1)), affine
