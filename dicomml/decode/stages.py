"""Stored values -> modality values -> presentation values: the one owner of the DICOM value
transforms (PS3.3 C.11.1 Modality LUT, C.11.2 VOI LUT, C.11.6 Presentation LUT; PS3.4 N.2).

Three stages (``values=`` of :func:`dicomml.read_pixels`, :func:`dicomml.read_many`,
:func:`dicomml.load_series` and the Datasets):

- ``"stored"``: the stored integers (Bits Stored corrections applied by the decoder);
- ``"modality"``: Rescale Slope / Intercept, or the Modality LUT Sequence (LUT Descriptor
  ``(entries, first stored value mapped, bits)``: a stored value ``s`` maps to entry
  ``clip(s - first, 0, entries - 1)``; 8 or 16-bit entries), float32;
- ``"presentation"``: the modality values through the VOI transform (Window Center / Width
  with VOI LUT Function LINEAR, LINEAR_EXACT or SIGMOID, or a VOI LUT Sequence), then
  MONOCHROME1 / Presentation LUT Shape INVERSE resolved so that a higher value is always
  brighter; float32 in [0, 1] (``normalize=True``) or in the VOI output range (the modality
  output range for a window, ``[0, 2**bits - 1]`` for a VOI LUT).

Everything a header says about the values is read once into a :class:`ValueParams`
(:func:`params_from_dataset`, per frame for enhanced objects: Pixel Value Transformation and
Frame VOI LUT functional groups); :func:`apply` computes a stage from stored values and returns
what it did as a record (``stage``, ``modality``, ``window`` / ``lut``, ``inverted``,
``rules``: the choices the standard leaves open). For integer data of at most 16 bits the
stages are composed into one lookup table indexed by the stored value (one pass over the
pixels); the table is built by the same formulas that :func:`apply` uses on float data.
:func:`padding_mask` gives the Pixel Padding Value / Pixel Padding Range Limit mask (True on
padding) from stored values.

Rules taken where the standard leaves a choice (each recorded in ``rules`` when taken):

- no VOI transform in the file (e.g. FOR PROCESSING images): identity VOI, the modality
  output range (from Bits Stored and Pixel Representation) mapped to [0, 1];
- both a VOI LUT Sequence and Window Center / Width: the VOI LUT Sequence (as pydicom's
  ``apply_voi_lut``), unless ``window=`` names a window by its explanation or gives one;
- MONOCHROME1, or Presentation LUT Shape INVERSE: inverted once over the output range;
  MONOCHROME1 with Presentation LUT Shape IDENTITY: Photometric Interpretation wins
  (inverted); Presentation LUT Shape on a colour image: ignored (it applies to monochrome
  images only).

Bad input raises :class:`~dicomml.errors.InvalidTagError` naming the file and tag: a window
width below 1 (LINEAR) or not above 0 (LINEAR_EXACT, SIGMOID), an unknown VOI LUT Function, a
LUT whose data holds fewer or more entries than its descriptor declares, bits per entry
outside 8-16, a ``window=`` index or name the file does not have.

Example
-------
>>> import numpy as np
>>> p = ValueParams(bits_stored=12, signed=False, slope=1.0, intercept=-1024.0,
...                 windows=(Window(40.0, 400.0),))
>>> out, record = apply(np.array([[0, 1064, 4095]], np.uint16), p, "presentation")
>>> out.round(2).tolist(), record["window"]["center"]
([[0.0, 0.5, 1.0]], 40.0)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from dicomml.errors import InvalidTagError

#: the accepted ``values=``
STAGES = ("stored", "modality", "presentation")
#: VOI LUT Functions (PS3.3 C.11.2.1.3)
FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
#: largest stored bit depth whose stages are composed into one lookup table
TABLE_BITS = 16


def check_stage(values: str) -> str:
    """``values`` when it is one of :data:`STAGES`, else ValueError."""
    if values not in STAGES:
        raise ValueError(f"values must be one of {', '.join(map(repr, STAGES))}, "
                         f"got {values!r}")
    return values


@dataclasses.dataclass(frozen=True)
class Lut:
    """A Modality, VOI or Presentation LUT: ``table[clip(x - first, 0, len - 1)]``
    (``x`` truncated to an integer), entries of ``bits`` bits, output range
    ``[0, 2**bits - 1]``."""

    first: int
    table: np.ndarray = dataclasses.field(compare=False, repr=False)
    bits: int
    explanation: str | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        index = np.clip(np.floor(x) - self.first, 0, len(self.table) - 1).astype(np.intp)
        return self.table[index].astype(np.float64)

    @property
    def output_range(self) -> tuple[float, float]:
        return 0.0, float(2 ** self.bits - 1)

    def describe(self) -> dict:
        return {"entries": len(self.table), "first": self.first, "bits": self.bits,
                "explanation": self.explanation}


@dataclasses.dataclass(frozen=True)
class Window:
    """Window Center / Width (in modality units) with its VOI LUT Function and explanation."""

    center: float
    width: float
    function: str = "LINEAR"
    explanation: str | None = None

    def describe(self) -> dict:
        return {"center": self.center, "width": self.width, "function": self.function,
                "explanation": self.explanation}


@dataclasses.dataclass(frozen=True)
class ValueParams:
    """What a header says about one frame's values (see the module docstring).

    ``bits_stored`` / ``signed``: the stored range; ``float_data``: Float / Double Float
    Pixel Data (no stored range); ``slope`` / ``intercept`` or ``modality_lut``; ``windows``
    and ``voi_luts`` in file order; ``shape``: Presentation LUT Shape (None when absent);
    ``padding``: (low, high) stored values that are padding, or None; ``path`` names the
    file in errors."""

    bits_stored: int = 16
    signed: bool = False
    photometric: str = "MONOCHROME2"
    slope: float = 1.0
    intercept: float = 0.0
    modality_lut: Lut | None = None
    windows: tuple = ()
    voi_luts: tuple = ()
    shape: str | None = None
    padding: tuple | None = None
    float_data: bool = False
    path: str | None = None

    @property
    def stored_range(self) -> tuple[int, int]:
        """Smallest and largest stored integer Bits Stored and Pixel Representation allow."""
        if self.signed:
            return -(1 << (self.bits_stored - 1)), (1 << (self.bits_stored - 1)) - 1
        return 0, (1 << self.bits_stored) - 1

    @property
    def modality_range(self) -> tuple[float, float]:
        """Output range of the modality stage (PS3.3 C.11.2.1.2: the VOI's y range)."""
        if self.modality_lut is not None:
            return self.modality_lut.output_range
        low, high = self.stored_range
        ends = sorted((low * self.slope + self.intercept, high * self.slope + self.intercept))
        return float(ends[0]), float(ends[1])

    @property
    def colour(self) -> bool:
        return not self.photometric.startswith("MONOCHROME")


# --- reading the header --------------------------------------------------------------------
def params_from_dataset(ds, path=None, frames: int | None = None) -> list[ValueParams]:
    """One :class:`ValueParams` per frame of a pydicom data set (``frames``: the frame count,
    default Number of Frames): top-level attributes, overridden by the shared and then the
    per-frame functional groups (Pixel Value Transformation (0028,9145), Frame VOI LUT
    (0028,9132)) of enhanced objects."""
    path = None if path is None else str(path)
    count = int(frames if frames is not None else _number(ds, "NumberOfFrames", 1) or 1)
    base = _top_params(ds, path)
    shared = _group_values(_first_item(ds, "SharedFunctionalGroupsSequence"), path)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if not shared and not per_frame:
        return [base] * count
    base = _with_group(base, shared, path)
    out, known = [], {}
    for index in range(count):
        item = per_frame[index] if index < len(per_frame) else None
        values = _group_values(item, path)
        key = repr(sorted(values.items()))
        if key not in known:
            known[key] = _with_group(base, values, path)
        out.append(known[key])
    return out


def _top_params(ds, path) -> ValueParams:
    signed = int(_number(ds, "PixelRepresentation", 0) or 0) == 1
    allocated = int(_number(ds, "BitsAllocated", 16) or 16)
    stored = int(_number(ds, "BitsStored", allocated) or allocated)
    float_data = "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
    slope, intercept = _rescale(ds, path)
    modality_lut = None
    if ds.get("ModalityLUTSequence"):
        modality_lut = read_lut(ds.ModalityLUTSequence[0], "ModalityLUTSequence", path,
                                signed, _little(ds))
    return ValueParams(
        bits_stored=stored, signed=signed,
        photometric=str(ds.get("PhotometricInterpretation", "MONOCHROME2") or "").strip()
        .upper() or "MONOCHROME2",
        slope=slope, intercept=intercept, modality_lut=modality_lut,
        windows=read_windows(ds, path),
        voi_luts=tuple(read_lut(item, "VOILUTSequence", path, signed, _little(ds))
                       for item in (ds.get("VOILUTSequence") or [])),
        shape=_text(ds, "PresentationLUTShape"), padding=_padding(ds, signed, path),
        float_data=float_data, path=path)


def _group_values(item, path) -> dict:
    """{field: value} of the Pixel Value Transformation and Frame VOI LUT groups of one
    functional group item (empty when it holds neither)."""
    if item is None:
        return {}
    out = {}
    transform = _first_item(item, "PixelValueTransformationSequence")
    if transform is not None and "RescaleSlope" in transform:
        out["slope"], out["intercept"] = _rescale(transform, path)
    voi = _first_item(item, "FrameVOILUTSequence")
    if voi is not None:
        out["windows"] = read_windows(voi, path)
    return out


def _with_group(params: ValueParams, values: dict, path) -> ValueParams:
    return dataclasses.replace(params, **values) if values else params


def _first_item(ds, keyword: str):
    items = ds.get(keyword) if ds is not None else None
    return items[0] if items else None


def _rescale(ds, path) -> tuple[float, float]:
    slope = _number(ds, "RescaleSlope", 1.0, path)
    intercept = _number(ds, "RescaleIntercept", 0.0, path)
    return float(1.0 if slope is None else slope), float(0.0 if intercept is None else intercept)


def _number(ds, keyword: str, default, path=None):
    """First value of ``keyword`` as a finite float/int, ``default`` when absent or empty;
    InvalidTagError naming the tag when it is not a finite number."""
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        if not len(value):
            return default
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidTagError(f"{keyword} is not a number: {value!r}", path=path,
                              tag=keyword) from None
    if not math.isfinite(number):
        raise InvalidTagError(f"{keyword} is not finite: {value!r}", path=path, tag=keyword)
    return number


def _numbers(ds, keyword: str, path) -> list[float]:
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    items = list(value) if isinstance(value, (list, tuple)) or \
        type(value).__name__ == "MultiValue" else [value]
    out = []
    for item in items:
        try:
            out.append(float(item))
        except (TypeError, ValueError):
            raise InvalidTagError(f"{keyword} is not a number: {item!r}", path=path,
                                  tag=keyword) from None
    return out


def _text(ds, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    return str(value).strip().upper() or None


def read_windows(ds, path=None) -> tuple[Window, ...]:
    """The windows of a data set or functional group item: one per Window Center / Window
    Width pair, with VOI LUT Function (default LINEAR) and Window Center & Width
    Explanation. InvalidTagError when centre and width counts differ."""
    centers, widths = _numbers(ds, "WindowCenter", path), _numbers(ds, "WindowWidth", path)
    if not centers and not widths:
        return ()
    if len(centers) != len(widths):
        raise InvalidTagError(f"{len(centers)} Window Center value(s) but {len(widths)} "
                              "Window Width value(s)", path=path, tag="WindowWidth")
    function = _text(ds, "VOILUTFunction") or "LINEAR"
    explanation = ds.get("WindowCenterWidthExplanation")
    names = [] if explanation is None else (
        [str(e) for e in explanation] if not isinstance(explanation, str) else [explanation])
    return tuple(Window(c, w, function, names[i].strip() if i < len(names) else None)
                 for i, (c, w) in enumerate(zip(centers, widths)))


def _little(ds) -> bool:
    meta = getattr(ds, "file_meta", None)
    encoding = getattr(meta, "_tsyntax_encoding", None) if meta is not None else None
    if encoding and encoding[1] is not None:
        return bool(encoding[1])
    original = getattr(ds, "original_encoding", (None, True))
    return True if original[1] is None else bool(original[1])


def read_lut(item, sequence: str, path=None, signed: bool = False,
             little: bool = True) -> Lut:
    """A :class:`Lut` from one item of a Modality / VOI LUT Sequence: LUT Descriptor
    ``(entries (0 = 65536), first mapped value (signed when the pixels are), bits per entry)``
    and LUT Data (US values, or OW bytes: 16-bit words, or 8-bit entries packed two per word).
    InvalidTagError naming the file and tag on any disagreement."""
    descriptor = item.get("LUTDescriptor")
    if descriptor is None or len(descriptor) != 3:
        raise InvalidTagError(f"{sequence} item without a 3-value LUT Descriptor", path=path,
                              tag="LUTDescriptor")
    entries, first, bits = (int(v) for v in descriptor)
    entries = entries or 65536
    if signed and first > 32767:
        first -= 65536
    if not 8 <= bits <= 16:
        raise InvalidTagError(f"{sequence}: {bits} bits per LUT entry (8 to 16 allowed)",
                              path=path, tag="LUTDescriptor")
    if "LUTData" not in item or item["LUTData"].value is None:
        raise InvalidTagError(f"{sequence} item without LUT Data", path=path, tag="LUTData")
    table = _lut_table(item["LUTData"], entries, bits, little)
    if len(table) != entries:
        raise InvalidTagError(f"{sequence}: the LUT Descriptor declares {entries} entries, "
                              f"the LUT Data holds {len(table)}", path=path, tag="LUTData")
    explanation = item.get("LUTExplanation")
    return Lut(first, table, bits, str(explanation).strip() if explanation else None)


def _lut_table(element, entries: int, bits: int, little: bool) -> np.ndarray:
    value = element.value
    if isinstance(value, (bytes, bytearray)):
        if bits <= 8 and len(value) in (entries, entries + 1) and len(value) != 2 * entries:
            return np.frombuffer(value, np.uint8)[:entries].astype(np.uint16)
        if len(value) % 2:
            value = value[:-1]
        return np.frombuffer(value, "<u2" if little else ">u2").astype(np.uint16)
    items = [value] if isinstance(value, int) else list(value)
    return np.asarray(items, dtype=np.int64).astype(np.uint16)


def _padding(ds, signed: bool, path) -> tuple[int, int] | None:
    value = ds.get("PixelPaddingValue")
    if value is None:
        return None
    low = _as_stored(value, signed, path, "PixelPaddingValue")
    limit = ds.get("PixelPaddingRangeLimit")
    high = low if limit is None else _as_stored(limit, signed, path, "PixelPaddingRangeLimit")
    return (min(low, high), max(low, high))


def _as_stored(value, signed: bool, path, tag: str) -> int:
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 2:
            raise InvalidTagError(f"{tag} of {len(value)} bytes", path=path, tag=tag)
        value = int.from_bytes(value, "little", signed=signed)
    try:
        number = int(value[0] if isinstance(value, (list, tuple)) else value)
    except (TypeError, ValueError):
        raise InvalidTagError(f"{tag} is not an integer: {value!r}", path=path,
                              tag=tag) from None
    if signed and number > 32767:  # read as US in an implicit VR file
        number -= 65536
    return number


# --- choosing the VOI ------------------------------------------------------------------------
def choose_voi(params: ValueParams, window=None) -> tuple[object, list[str]]:
    """``(Window | Lut | None, rules)``: the VOI transform that ``window`` selects (None: the
    file's first, the VOI LUT Sequence before Window Center / Width; an int: that index; a
    str: the window or LUT whose explanation matches, case-insensitive; ``(center,
    width)``: that LINEAR window, or ``(center, width, function)``)."""
    rules: list[str] = []
    if isinstance(window, Sequence) and not isinstance(window, str):
        parts = list(window)
        function = str(parts[2]).upper() if len(parts) > 2 else "LINEAR"
        return Window(float(parts[0]), float(parts[1]), function, "given"), rules
    if isinstance(window, str):
        wanted = window.strip().lower()
        for choice in (*params.voi_luts, *params.windows):
            if (choice.explanation or "").strip().lower() == wanted:
                return choice, rules
        known = [c.explanation for c in (*params.voi_luts, *params.windows)]
        raise InvalidTagError(f"no window or VOI LUT explained as {window!r} (the file has "
                              f"{known})", path=params.path, tag="WindowCenterWidthExplanation")
    index = 0 if window is None else int(window)
    choices, tag = (params.voi_luts, "VOILUTSequence") if params.voi_luts else \
        (params.windows, "WindowCenter")
    if not choices:
        if window is not None:
            raise InvalidTagError(f"window {index} asked for, but the file has no VOI "
                                  "transform", path=params.path, tag="WindowCenter")
        rules.append("no VOI transform in the file: identity VOI, the modality output range "
                     "mapped to the output")
        return None, rules
    if not -len(choices) <= index < len(choices):
        raise InvalidTagError(f"window {index} asked for, the file has {len(choices)}",
                              path=params.path, tag=tag)
    if params.voi_luts and params.windows:
        rules.append("VOI LUT Sequence taken over Window Center / Width")
    return choices[index], rules


def check_window(window: Window, path=None) -> None:
    """InvalidTagError when ``window`` breaks PS3.3 C.11.2.1.2-3 (see module docstring)."""
    if window.function not in FUNCTIONS:
        raise InvalidTagError(f"unknown VOI LUT Function {window.function!r} (one of "
                              f"{', '.join(FUNCTIONS)})", path=path, tag="VOILUTFunction")
    if not (math.isfinite(window.center) and math.isfinite(window.width)):
        raise InvalidTagError("window centre and width must be finite", path=path,
                              tag="WindowWidth")
    if window.function == "LINEAR" and window.width < 1:
        raise InvalidTagError(f"Window Width {window.width:g} is below 1, which a LINEAR "
                              "VOI LUT Function does not allow", path=path, tag="WindowWidth")
    if window.function != "LINEAR" and window.width <= 0:
        raise InvalidTagError(f"Window Width {window.width:g} must be above 0 for "
                              f"{window.function}", path=path, tag="WindowWidth")


# --- the formulas ---------------------------------------------------------------------------
def modality(stored: np.ndarray, params: ValueParams) -> np.ndarray:
    """Modality values (float64) of stored values: the Modality LUT, else the rescale."""
    if params.modality_lut is not None:
        return params.modality_lut(stored)
    return np.asarray(stored, np.float64) * params.slope + params.intercept


def ramp(center: float, width: float, function: str = "LINEAR") -> tuple[float, float]:
    """The centre and width of the straight part of a window, for the ramp ``(x - centre) /
    width + 0.5``: PS3.3 C.11.2.1.2 shifts a LINEAR window by half a value and narrows it by
    one (``c - 0.5``, ``w - 1``; a width of 0 left: a step at the centre); LINEAR_EXACT
    (C.11.2.1.3.2) takes them as given. The one place the rule is written: the numpy stages
    here and the torch ``transforms.Windows`` both use it.

    >>> ramp(40, 80), ramp(40, 80, "LINEAR_EXACT")
    ((39.5, 79.0), (40.0, 80.0))
    """
    if function == "LINEAR":
        return center - 0.5, width - 1.0
    return float(center), float(width)


def window_values(x: np.ndarray, window: Window, y_range: tuple[float, float]) -> np.ndarray:
    """PS3.3 C.11.2.1.2 (LINEAR), C.11.2.1.3.2 (LINEAR_EXACT), C.11.2.1.3.1 (SIGMOID) of
    modality values ``x`` onto ``y_range`` (float64)."""
    y_min, y_max = y_range
    span = y_max - y_min
    x = np.asarray(x, np.float64)
    if window.function == "SIGMOID":
        return span / (1.0 + np.exp(-4.0 * (x - window.center) / window.width)) + y_min
    center, width = ramp(window.center, window.width, window.function)
    if width <= 0:  # LINEAR with width 1: a step at the centre
        return np.where(x <= center, y_min, y_max)
    out = ((x - center) / width + 0.5) * span + y_min
    out = np.where(x <= center - width / 2, y_min, out)
    return np.where(x > center + width / 2, y_max, out)


def presentation(stored: np.ndarray, params: ValueParams, voi, normalize: bool = True
                 ) -> tuple[np.ndarray, tuple[float, float], bool, list[str]]:
    """``(values, output range, inverted, rules)``: stored -> modality -> ``voi`` (a
    :class:`Window`, :class:`Lut` or None) -> inversion -> [0, 1] when ``normalize``."""
    x = modality(stored, params)
    y_range = params.modality_range
    if isinstance(voi, Lut):
        y, out_range = voi(x), voi.output_range
    elif isinstance(voi, Window):
        check_window(voi, params.path)
        y, out_range = window_values(x, voi, y_range), y_range
    else:
        y, out_range = x, y_range
    invert, rules = inversion(params)
    low, high = out_range
    if invert:
        y = (low + high) - y
    if normalize:
        y = (y - low) / (high - low) if high > low else np.zeros_like(y)
        out_range = (0.0, 1.0)
    return y, out_range, invert, rules


def inversion(params: ValueParams) -> tuple[bool, list[str]]:
    """Whether presentation values are inverted over their range, and the rules taken."""
    mono1 = params.photometric == "MONOCHROME1"
    shape = params.shape
    if params.colour:
        return False, ([f"Presentation LUT Shape {shape} ignored: it applies to monochrome "
                        "images only"] if shape else [])
    if mono1 and shape == "IDENTITY":
        return True, ["MONOCHROME1 with Presentation LUT Shape IDENTITY: Photometric "
                      "Interpretation taken (inverted)"]
    if not mono1 and shape == "INVERSE":
        return True, ["Presentation LUT Shape INVERSE on MONOCHROME2: inverted"]
    if shape not in (None, "IDENTITY", "INVERSE"):
        return mono1, [f"Presentation LUT Shape {shape!r} unknown: ignored"]
    return mono1, []


# --- applying -------------------------------------------------------------------------------
def apply(stored: np.ndarray, params: ValueParams, stage: str, window=None,
          normalize: bool = True, out: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """``(values, record)`` of one frame (or several frames sharing ``params``): float32
    values of ``stage`` (see the module docstring), written into ``out`` when given, and what
    was applied (:func:`describe`). ``stored``: stored values as decoded (any shape)."""
    check_stage(stage)
    voi, rules = (choose_voi(params, window) if stage == "presentation" and not params.colour
                  else (None, []))
    record = describe(params, stage, voi, rules, normalize)
    if stage == "stored":
        result = stored if out is None else _put(out, stored)
        return result, record
    linear = None if params.colour else linear_map(params, stage, voi, normalize)
    if linear is not None:
        if out is None:
            out = np.empty(stored.shape, np.float32)
        return _apply_linear(stored, *linear, out), record
    table = lookup_table(params, stage, voi, normalize, stored.dtype)
    if table is not None:
        index = stored.view(np.uint16 if stored.dtype.itemsize == 2 else np.uint8) \
            if stored.dtype.kind == "i" else stored
        if out is None:
            out = np.empty(stored.shape, np.float32)
        return _apply_table(index, table, out), record
    if params.colour:
        values = _colour(stored, params, stage, normalize)
    elif stage == "modality":
        values = modality(stored, params)
    else:
        values = presentation(stored, params, voi, normalize)[0]
    if out is None:
        return values.astype(np.float32), record
    np.copyto(out, values, casting="unsafe")
    return out, record


def linear_map(params: ValueParams, stage: str, voi, normalize: bool
               ) -> tuple[float, float, float, float] | None:
    """``(a, b, low, high)`` such that the stage's values are ``clip(a * stored + b, low,
    high)``, when they are (rescale, then no VOI or a LINEAR / LINEAR_EXACT window wider than
    the step of LINEAR width 1, then the inversion and the normalisation: all linear on the
    window's ramp); None for LUTs and SIGMOID (see :func:`lookup_table`). The same formulas
    as :func:`window_values` and :func:`presentation`, collected into one multiply-add."""
    if params.modality_lut is not None:
        return None
    a, b = params.slope, params.intercept
    if stage == "modality":
        return a, b, -math.inf, math.inf
    if isinstance(voi, Lut):
        return None
    low, high = params.modality_range
    span = high - low
    if isinstance(voi, Window):
        check_window(voi, params.path)
        if voi.function == "SIGMOID":
            return None
        center, width = ramp(voi.center, voi.width, voi.function)
        if width <= 0:
            return None
        # y = ((x - center) / width + 0.5) * span + low, x = a * stored + b
        scale = span / width
        a, b = a * scale, b * scale + low + 0.5 * span - center * scale
    if inversion(params)[0]:
        a, b = -a, (low + high) - b
    if normalize:
        if span <= 0:
            return None
        a, b, low, high = a / span, (b - low) / span, 0.0, 1.0
    return a, b, low, high


#: pixels per block of :func:`_apply_linear` (each block's passes stay in cache)
LINEAR_BLOCK = 1 << 16


def _apply_linear(stored: np.ndarray, a: float, b: float, low: float, high: float,
                  out: np.ndarray) -> np.ndarray:
    """``out = clip(a * stored + b, low, high)`` in float32, block by block."""
    source, target = stored.reshape(-1), out.reshape(-1)
    kind = target.dtype.type
    a32, b32 = kind(a), kind(b)
    clip = math.isfinite(low) or math.isfinite(high)
    for start in range(0, source.size, LINEAR_BLOCK):
        part = target[start:start + LINEAR_BLOCK]
        np.multiply(source[start:start + LINEAR_BLOCK], a32, out=part, casting="unsafe")
        if b:
            part += b32
        if clip:
            np.clip(part, low, high, out=part)
    return out


def _apply_table(index: np.ndarray, table: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = table[index]`` block by block through a small intp buffer (numpy converts a
    whole uint16 index array to intp otherwise: a pass over 4x the pixels' bytes)."""
    source, target = index.reshape(-1), out.reshape(-1)
    buffer = np.empty(min(LINEAR_BLOCK, source.size), np.intp)
    for start in range(0, source.size, LINEAR_BLOCK):
        count = min(LINEAR_BLOCK, source.size - start)
        np.copyto(buffer[:count], source[start:start + count], casting="unsafe")
        np.take(table, buffer[:count], out=target[start:start + count], mode="wrap")
    return out


def _put(out: np.ndarray, values: np.ndarray) -> np.ndarray:
    np.copyto(out, values, casting="unsafe")
    return out


def _colour(stored, params: ValueParams, stage: str, normalize: bool) -> np.ndarray:
    """Colour samples: no Modality or VOI transform applies; presentation values are the
    samples over the stored range."""
    values = np.asarray(stored, np.float64)
    if stage == "presentation" and normalize and not params.float_data:
        low, high = params.stored_range
        if params.photometric == "PALETTE COLOR" and stored.dtype.kind in "iu":
            low, high = 0, np.iinfo(stored.dtype).max  # the palette's entries
        values = (values - low) / (high - low)
    return values


def lookup_table(params: ValueParams, stage: str, voi, normalize: bool,
                 dtype: np.dtype) -> np.ndarray | None:
    """The composed float32 table indexed by the stored value (signed values through their
    unsigned view), or None when the data is not integer of at most :data:`TABLE_BITS` bits
    (8 or 16-bit containers only)."""
    dtype = np.dtype(dtype)
    if params.float_data or dtype.kind not in "iu" or dtype.itemsize not in (1, 2) \
            or params.bits_stored > TABLE_BITS or params.colour:
        return None
    size = 1 << (8 * dtype.itemsize)
    if dtype.kind == "u" and not params.signed:
        size = min(size, 1 << params.bits_stored)  # the decoder masked higher bits
        inputs = np.arange(size, dtype=np.int64)
    else:  # signed: entry u holds the value whose two's complement is u
        inputs = np.arange(size, dtype=np.int64)
        inputs = np.where(inputs >= size // 2, inputs - size, inputs) if dtype.kind == "i" \
            else inputs
    return _table(params, stage, voi, normalize, inputs)


def _table(params, stage, voi, normalize, inputs) -> np.ndarray:
    key = (params, stage, voi, normalize, len(inputs), int(inputs[-1]))
    found = _TABLES.get(key)
    if found is None:
        values = modality(inputs, params) if stage == "modality" else \
            presentation(inputs, params, voi, normalize)[0]
        found = values.astype(np.float32)
        if len(_TABLES) > 64:
            _TABLES.clear()
        _TABLES[key] = found
    return found


_TABLES: dict = {}


def describe(params: ValueParams, stage: str, voi=None, rules=(), normalize: bool = True
             ) -> dict:
    """The JSON-safe record of what :func:`apply` applies (``metadata["values"]``)."""
    record = {"stage": stage, "modality": None, "window": None, "voi_lut": None,
              "inverted": False, "output_range": None, "rules": list(rules)}
    if stage == "stored" or params.colour:
        if params.colour and stage != "stored":
            record["rules"].append("colour image: no Modality or VOI transform applies")
            invert, notes = inversion(params)
            record["rules"].extend(notes)
            if stage == "presentation" and normalize:
                record["output_range"] = [0.0, 1.0]
        return record
    record["modality"] = ({"lut": params.modality_lut.describe()} if params.modality_lut
                          else {"slope": params.slope, "intercept": params.intercept})
    if stage == "modality":
        record["output_range"] = list(params.modality_range)
        return record
    if isinstance(voi, Window):
        check_window(voi, params.path)
        record["window"] = voi.describe()
        out_range = params.modality_range
    elif isinstance(voi, Lut):
        record["voi_lut"] = voi.describe()
        out_range = voi.output_range
    else:
        out_range = params.modality_range
    invert, notes = inversion(params)
    record["inverted"] = invert
    record["rules"].extend(notes)
    record["output_range"] = [0.0, 1.0] if normalize else list(out_range)
    return record


def padding_mask(stored: np.ndarray, params: ValueParams) -> np.ndarray | None:
    """Boolean mask, True where the stored value is Pixel Padding Value (or within
    [Pixel Padding Value, Pixel Padding Range Limit]); None when the file has no padding."""
    if params.padding is None:
        return None
    low, high = params.padding
    if low == high:
        return stored == low
    return (stored >= low) & (stored <= high)


# --- from catalog rows -------------------------------------------------------------------------
#: catalog columns that send a file's values to its header (tables, per-frame groups)
HEADER_FLAGS = ("ModalityLUTSequence", "VOILUTSequence")
#: the catalog columns :func:`params_from_row` and :func:`needs_header` read
ROW_COLUMNS = ("path", "NumberOfFrames", "BitsAllocated", "BitsStored", "PixelRepresentation",
               "PhotometricInterpretation", "RescaleSlope", "RescaleIntercept", "WindowCenter",
               "WindowWidth", "VOILUTFunction", "WindowCenterWidthExplanation",
               "PresentationLUTShape", "PixelPaddingValue", "PixelPaddingRangeLimit",
               *HEADER_FLAGS)


def needs_header(row, stage: str, window=None) -> bool:
    """True when catalog columns cannot describe ``stage`` of this file (``row``: a mapping of
    catalog columns): a Modality or VOI LUT Sequence, a multi-frame file (per-frame groups),
    or (presentation) a window chosen by index above 0 or by name (the catalog holds the first
    window)."""
    if stage == "stored":
        return False
    if any(_given(row.get(name)) for name in HEADER_FLAGS):
        return True
    frames = row.get("NumberOfFrames")
    if _given(frames) and float(frames) > 1:
        return True
    return stage == "presentation" and window is not None and \
        not (isinstance(window, Sequence) and not isinstance(window, str)) and window != 0


def params_from_row(row, path=None) -> ValueParams:
    """:class:`ValueParams` from catalog columns (``row``: a mapping; the first window only;
    see :func:`needs_header` for when the header is needed instead)."""
    signed = int(_given(row.get("PixelRepresentation")) and row["PixelRepresentation"]) == 1
    allocated = int(row.get("BitsAllocated") if _given(row.get("BitsAllocated")) else 16)
    stored = int(row.get("BitsStored") if _given(row.get("BitsStored")) else allocated)
    slope = float(row["RescaleSlope"]) if _given(row.get("RescaleSlope")) else 1.0
    intercept = float(row["RescaleIntercept"]) if _given(row.get("RescaleIntercept")) else 0.0
    windows = ()
    center, width = row.get("WindowCenter"), row.get("WindowWidth")
    if _given(center) and _given(width):
        function = str(row.get("VOILUTFunction") or "LINEAR").strip().upper()
        names = str(row.get("WindowCenterWidthExplanation") or "").split("\\")
        windows = (Window(float(center), float(width), function,
                          names[0].strip() or None),)
    padding = None
    if _given(row.get("PixelPaddingValue")):
        low = _as_stored(int(row["PixelPaddingValue"]), signed, path, "PixelPaddingValue")
        limit = row.get("PixelPaddingRangeLimit")
        high = _as_stored(int(limit), signed, path, "PixelPaddingRangeLimit") \
            if _given(limit) else low
        padding = (min(low, high), max(low, high))
    photometric = str(row.get("PhotometricInterpretation") or "MONOCHROME2").strip().upper()
    shape = row.get("PresentationLUTShape")
    return ValueParams(bits_stored=stored, signed=signed, photometric=photometric,
                       slope=slope, intercept=intercept, windows=windows,
                       shape=str(shape).strip().upper() if _given(shape) else None,
                       padding=padding, path=None if path is None else str(path))


def _given(value) -> bool:
    return value is not None and value == value and value != ""


# --- several frames ----------------------------------------------------------------------------
def apply_frames(stored: np.ndarray, params: Sequence[ValueParams], stage: str, window=None,
                 normalize: bool = True, out: np.ndarray | None = None, mask: bool = True
                 ) -> tuple[np.ndarray, dict, np.ndarray | None]:
    """``(values, record, padding mask)`` of frames ``stored`` (frames, rows, columns[, 3])
    with one :class:`ValueParams` per frame: runs of frames sharing their params are done
    together. ``record`` is the first run's, with ``per_frame`` (one record per frame) when
    the frames differ; the mask is None when no frame has padding."""
    if out is None:
        out = stored if stage == "stored" else np.empty(stored.shape, np.float32)
    records, masks, start = [], [], 0
    for stop in _run_ends(params):
        part = out[start:stop]
        _, record = apply(stored[start:stop], params[start], stage, window, normalize,
                          out=None if part is stored[start:stop] else part)
        records.extend([record] * (stop - start))
        if mask:
            masks.append((start, stop, padding_mask(stored[start:stop], params[start])))
        start = stop
    mask = None
    if any(m is not None for _, _, m in masks):
        mask = np.zeros(stored.shape[:3], bool)
        for begin, end, found in masks:
            if found is not None:
                mask[begin:end] = found if found.ndim == 3 else found.any(axis=-1)
    record = dict(records[0]) if records else describe(ValueParams(), stage)
    if any(r != records[0] for r in records):
        record["per_frame"] = records
    return out, record, mask


def _run_ends(params: Sequence[ValueParams]) -> list[int]:
    ends = [i for i in range(1, len(params)) if params[i] is not params[i - 1]
            and params[i] != params[i - 1]]
    return ends + [len(params)] if params else []
