"""``dicomml conformance DIR``: does dicomml build every series of a folder as dcm2niix does?

dcm2niix, the converter most users check against, is run once on ``DIR`` into a temporary
folder (``-f %j_%s``: output files named by Series Instance UID and Series Number); ``DIR`` is
scanned with :func:`dicomml.scan` and every series is loaded with :func:`dicomml.load_series`
(a Series Instance UID whose sub-series stack loads whole, as 4D). Each of our volumes is
paired with a dcm2niix output of the same UID and Series Number and compared after
``nibabel.as_closest_canonical`` on both sides:

- **shape** equal;
- **corners**: the 8 corner voxel centres within :data:`CORNER_MM` (0.05 mm);
- **voxels**: within :data:`VOXEL_RTOL` (1e-3) of the reference's value range, on the
  rescaled values (ours: Rescale Slope/Intercept; dcm2niix's: its scl_slope/scl_inter), else on
  the stored integers (verdict ``match-stored``: the data agree, the scaling differs);
- **diffusion**: b-values exactly and directions within :data:`BVEC_DEG` (1 degree) up to sign,
  comparing our ``metadata["volumes"][i]["gradient"]`` (LPS) with dcm2niix's ``.bvec`` turned
  back into the patient frame.

A 3D volume of ours may also match one volume of a 4D output (dcm2niix's ``_ADC`` file keeps
derived trace volumes inside the DWI, dicomml gives them their own series). Verdicts:
``match``, ``match-stored``, ``mismatch``, ``error`` (dicomml raised), ``no-reference``
(dcm2niix wrote nothing for it) and ``reference-only`` (a dcm2niix output no volume of ours
matched). Nothing is written next to the input.

Example::

    dicomml conformance /data/export            # per-series verdicts and a summary line
    python benchmarks/conformance.py /data/export --json verdicts.json
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dicomml._optional import require

__all__ = ["register", "run_conformance", "run_dcm2niix", "compare", "Verdict",
           "summary_line", "CORNER_MM", "VOXEL_RTOL", "BVEC_DEG"]

CORNER_MM = 0.05
VOXEL_RTOL = 1e-3
BVEC_DEG = 1.0
GOOD = ("match", "match-stored")


@dataclass
class Verdict:
    """One compared unit: our series key(s) and the dcm2niix output it was paired with."""

    key: str
    status: str
    reference: str | None = None
    folder: str | None = None
    shape: list | None = None
    reference_shape: list | None = None
    corner_mm: float | None = None
    voxel_error: float | None = None
    bvec_deg: float | None = None
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in GOOD

    def line(self) -> str:
        where = self.folder or ""
        text = f"{self.status:14s} {where}  [{self.key}]"
        if self.reference:
            text += f" vs {Path(self.reference).name}"
        if self.details:
            text += ": " + "; ".join(self.details)
        return text


# ------------------------------------------------------------------------------ dcm2niix
def run_dcm2niix(source, out_dir, exe: str | None = None) -> list[Path]:
    """Run dcm2niix on ``source`` into ``out_dir`` (files ``<UID>_<SeriesNumber>*.nii``, no
    JSON, not compressed); return the NIfTI files written. RuntimeError when dcm2niix is not
    installed."""
    exe = exe or shutil.which("dcm2niix")
    if exe is None:
        raise RuntimeError("dcm2niix is not installed (pip install dcm2niix)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([exe, "-b", "n", "-z", "n", "-f", "%j_%s", "-o", str(out_dir),
                    str(source)], check=False, capture_output=True, timeout=3600)
    return sorted(out_dir.glob("*.nii"))


_NAME = re.compile(r"^(?P<uid>[0-9.]+)_(?P<number>-?[0-9]*)(?P<suffix>.*)$")


def _reference_id(path: Path) -> tuple[str, str, str]:
    """(Series Instance UID, Series Number text, suffix) of a dcm2niix output name."""
    match = _NAME.match(path.stem)
    if not match:
        return path.stem, "", ""
    return match.group("uid"), match.group("number"), match.group("suffix")


# ------------------------------------------------------------------------------ comparison
def _nibabel():
    return require("nibabel", extra="nifti", needed_by="dicomml conformance")


def _canonical(image):
    nibabel = _nibabel()

    return nibabel.as_closest_canonical(image)


def _corners(affine: np.ndarray, shape) -> np.ndarray:
    """World positions (mm) of the 8 corner voxel centres of a 3D grid."""
    ends = [(0, n - 1) for n in shape[:3]]
    index = np.array([[i, j, k, 1.0] for i in ends[0] for j in ends[1] for k in ends[2]])
    return (affine @ index.T).T[:, :3]


def _voxel_error(ours: np.ndarray, ref: np.ndarray) -> float:
    """max |ours - ref| divided by the reference's value range (1 when the range is 0)."""
    span = float(np.nanmax(ref) - np.nanmin(ref)) if ref.size else 0.0
    diff = float(np.nanmax(np.abs(ours.astype(np.float64) - ref))) if ref.size else 0.0
    return diff / (span if span > 0 else 1.0)


def _samples(image) -> np.ndarray:
    """An image's voxels as float64; RGB24 voxels (colour) as a trailing axis of 3 samples."""
    data = np.asanyarray(image.dataobj)
    if data.dtype.names:
        return np.stack([data[name] for name in data.dtype.names], axis=-1).astype(np.float64)
    return image.get_fdata()


def _unscaled(image, canonical) -> np.ndarray:
    """The canonical reference's stored values: its scaled voxels with dcm2niix's
    scl_slope/scl_inter (those of the file, ``image``) undone."""
    slope = getattr(image.dataobj, "slope", 1.0)
    inter = getattr(image.dataobj, "inter", 0.0)
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    return np.round((canonical.get_fdata() - inter) / slope)


def _bvals_bvecs(reference: Path):
    bval, bvec = reference.with_suffix(".bval"), reference.with_suffix(".bvec")
    if not bval.exists():
        return None, None
    values = np.atleast_1d(np.loadtxt(bval))
    vectors = np.loadtxt(bvec).reshape(3, -1) if bvec.exists() else None
    return values, vectors


def _diffusion(volume) -> tuple[list | None, list | None]:
    """Our b-values and LPS gradients, per volume (None when the volume has none)."""
    volumes = volume.metadata.get("volumes")
    if not volumes:
        b = volume.metadata.get("DiffusionBValue")
        return (None, None) if b is None else ([b], [None])
    values = [v.get("b_value") for v in volumes]
    if all(b is None for b in values):
        return None, None
    return values, [v.get("gradient") for v in volumes]


def _check_diffusion(volume, reference: Path, ras_affine: np.ndarray, verdict: Verdict) -> bool:
    from dicomml.geometry.diffusion import bvecs_to_ras, unit_or_none

    ref_b, ref_vec = _bvals_bvecs(reference)
    ours_b, ours_g = _diffusion(volume)
    if ref_b is None:
        return True
    if ours_b is None:
        verdict.details.append(f"no diffusion encoding (dcm2niix: b = {ref_b.tolist()})")
        return False
    ours_b = [float("nan") if b is None else float(b) for b in ours_b]
    if len(ours_b) != len(ref_b) or not np.array_equal(np.round(ours_b), ref_b):
        verdict.details.append(f"b-values {ours_b} != dcm2niix {ref_b.tolist()}")
        return False
    if ref_vec is None:
        return True
    nib_ref = __import__("nibabel").load(reference)
    ref_ras = bvecs_to_ras(ref_vec, nib_ref.affine)
    worst = 0.0
    for index, gradient in enumerate(ours_g):
        g = unit_or_none(gradient)
        r = ref_ras[:, index]
        if g is None or np.linalg.norm(r) < 1e-6:
            if (g is None) != (np.linalg.norm(r) < 1e-6) and ref_b[index] > 0:
                verdict.details.append(f"volume {index}: gradient {gradient} vs dcm2niix "
                                       f"{r.round(4).tolist()} (RAS)")
                return False
            continue
        ras = np.array([-g[0], -g[1], g[2]])
        cos = min(1.0, abs(float(ras @ r)))
        worst = max(worst, float(np.degrees(np.arccos(cos))))
    verdict.bvec_deg = worst
    if worst > BVEC_DEG:
        verdict.details.append(f"gradient directions differ by up to {worst:.2f} deg")
        return False
    return True


def compare(volume, stored, reference: Path, verdict: Verdict, frame: int | None = None) -> bool:
    """Fill ``verdict`` comparing our ``volume`` (rescaled; ``stored``: the same series as
    stored integers, a callable returning it, or None) with the dcm2niix NIfTI
    ``reference`` (``frame``: compare with that volume of a 4D reference only). True when
    they match."""
    nibabel = _nibabel()

    ref_image = whole = nibabel.load(reference)
    if frame is not None:
        ref_image = ref_image.slicer[..., frame]
    ours = _canonical(volume.to_nifti())
    ref = _canonical(ref_image)
    verdict.reference = str(reference)
    verdict.shape, verdict.reference_shape = list(ours.shape), list(ref.shape)
    if ours.shape != ref.shape:
        verdict.details.append(f"shape {ours.shape} != dcm2niix {ref.shape}")
        return False
    distance = np.linalg.norm(_corners(ours.affine, ours.shape)
                              - _corners(ref.affine, ref.shape), axis=1)
    verdict.corner_mm = float(distance.max())
    ok = verdict.corner_mm <= CORNER_MM
    if not ok:
        verdict.details.append(f"corners differ by up to {verdict.corner_mm:.3f} mm")
    verdict.voxel_error = _voxel_error(_samples(ours), _samples(ref))
    scaled_ok = verdict.voxel_error <= VOXEL_RTOL
    stored_ok = False
    if callable(stored):
        stored = stored() if not scaled_ok else None
    if not scaled_ok and stored is not None:
        raw = _unscaled(whole, ref)
        ours_raw = np.asarray(_canonical(stored.to_nifti()).dataobj)
        stored_ok = ours_raw.shape == raw.shape and _voxel_error(ours_raw, raw) <= VOXEL_RTOL
        verdict.details.append(
            f"rescaled voxels differ by {verdict.voxel_error:.3g} of the range"
            + ("; stored values equal (scaling differs)" if stored_ok else ""))
    ok = ok and (scaled_ok or stored_ok)
    if frame is None:
        ok = _check_diffusion(volume, reference, ref_image.affine, verdict) and ok
    if ok:
        verdict.status = "match" if scaled_ok else "match-stored"
    return ok


# ------------------------------------------------------------------------------ driver
def _load_units(catalog, key_filter=None):
    """Yield (key, folder, volume or exception) per unit: one per Series Instance UID whose
    sub-series stack, else one per sub-series."""
    from dicomml.errors import DicommlError, MultipleSeriesError
    from dicomml.loader import load_series

    series = catalog.series
    if "Rows" in series:  # non-image objects (Philips raw data...): nothing to compare
        series = series[series["Rows"].notna()]
    for uid in dict.fromkeys(series["SeriesInstanceUID"].tolist()):
        rows = series[series["SeriesInstanceUID"] == uid]
        keys = rows["series_key"].tolist()
        if len(rows) > 1:
            try:
                loaded = _load_pair(load_series, catalog, uid)
                yield uid, rows["folder"].iloc[0], loaded
                yield from _derived(load_series, uid, rows["folder"].iloc[0], loaded)
                continue
            except MultipleSeriesError:
                keys = rows["series_key"].tolist()
            except DicommlError as exc:
                yield uid, rows["folder"].iloc[0], exc
                continue
        for key in keys:
            folder = series.loc[series["series_key"] == key, "folder"]
            folder = folder.iloc[0] if len(folder) else rows["folder"].iloc[0]
            try:
                loaded = _load_pair(load_series, catalog, key)
            except DicommlError as exc:
                yield key, folder, exc
                continue
            yield key, folder, loaded
            yield from _derived(load_series, key, folder, loaded)


def _derived(load_series, key, folder, loaded):
    """The derived images a 4D load left out (e.g. a Philips trace image), as their own unit
    ``<key> (derived)``, loaded from their files."""
    from dicomml.errors import DicommlError

    left_out = loaded[0].metadata.get("provenance", {}).get("left_out")
    if not left_out:
        return
    try:
        yield f"{key} (derived)", folder, _load_pair(load_series, list(left_out["files"]), None)
    except DicommlError as exc:
        yield f"{key} (derived)", folder, exc


def _load_pair(load_series, catalog, key):
    """(the rescaled volume, a callable loading the stored integers on demand or None)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        volume = load_series(catalog, key)

    @functools.cache
    def stored():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return load_series(catalog, key, values="stored")
            except Exception:  # noqa: BLE001 - the stored comparison is optional
                return None

    return volume, stored


def _identity(catalog, key: str) -> tuple[str, set[str]]:
    """(Series Instance UID, Series Numbers as dcm2niix prints them) of a unit."""
    rows = catalog.instances
    key = key.removesuffix(" (derived)")
    mask = (rows["series_key"] == key) | (rows["SeriesInstanceUID"] == key)
    chosen = rows[mask]
    uid = str(chosen["SeriesInstanceUID"].iloc[0])
    numbers = set()
    for value in chosen.get("SeriesNumber", []).tolist():
        try:
            numbers.add(str(int(float(value))))
        except (TypeError, ValueError):
            numbers.add("")
    return uid, numbers


def run_conformance(source, *, work_dir=None, dcm2niix: str | None = None,
                    progress=None) -> list[Verdict]:
    """Verdicts for every series of ``source`` (a folder); see the module docstring.

    ``work_dir``: where dcm2niix writes (a temporary folder, removed afterwards, when None);
    ``progress``: optional ``callable(Verdict)`` called as each verdict is made.
    """
    from dicomml.catalog import scan

    source = Path(source)
    owned = work_dir is None
    out = Path(tempfile.mkdtemp(prefix="dicomml-conformance-")) if owned else Path(work_dir)
    try:
        references = run_dcm2niix(source, out, exe=dcm2niix)
        catalog = scan(source, progress=False)
        return _verdicts(catalog, references, source, progress)
    finally:
        if owned:
            shutil.rmtree(out, ignore_errors=True)


def _verdicts(catalog, references: list[Path], source: Path, progress) -> list[Verdict]:
    by_uid: dict[str, list[Path]] = {}
    for path in references:
        by_uid.setdefault(_reference_id(path)[0], []).append(path)
    used: set[Path] = set()
    verdicts = []
    for key, folder, loaded in _load_units(catalog):
        verdict = Verdict(key=key, status="mismatch", folder=_relative(folder, source))
        if isinstance(loaded, Exception):
            verdict.status = "error"
            verdict.details.append(f"{type(loaded).__name__}: {loaded}")
        else:
            _pair(catalog, key, loaded, by_uid, used, verdict)
        verdicts.append(verdict)
        if progress:
            progress(verdict)
    for path in references:
        if path not in used:
            verdict = Verdict(key=_reference_id(path)[0], status="reference-only",
                              reference=str(path))
            verdict.details.append("dcm2niix wrote this; no volume of ours matched it")
            verdicts.append(verdict)
            if progress:
                progress(verdict)
    return verdicts


def _pair(catalog, key, loaded, by_uid, used, verdict) -> None:
    volume, stored = loaded
    uid, numbers = _identity(catalog, key)
    candidates = [p for p in by_uid.get(uid, []) if p not in used  # no Series Number: any
                  and (_reference_id(p)[1] in numbers or not numbers or "" in numbers)]
    if not candidates:
        verdict.status = "no-reference"
        verdict.shape = list(volume.shape)
        verdict.details.append("dcm2niix wrote no output for this series")
        return
    # main outputs (no suffix) first, then those whose shape fits
    candidates.sort(key=lambda p: (_reference_id(p)[2] != "", len(p.name)))
    attempts = []
    for path in candidates:
        trial = Verdict(key=verdict.key, status="mismatch", folder=verdict.folder)
        if compare(volume, stored, path, trial):
            used.add(path)
            verdict.__dict__.update(trial.__dict__)
            return
        attempts.append(trial)
        frames = _frames_of(path)
        if volume.array.ndim == 3 and frames > 1:
            for frame in range(frames):
                trial = Verdict(key=verdict.key, status="mismatch", folder=verdict.folder)
                if compare(volume, stored, path, trial, frame=frame):
                    used.add(path)
                    trial.details.append(f"equals volume {frame} of this 4D output")
                    verdict.__dict__.update(trial.__dict__)
                    return
    best = min(attempts, key=lambda t: (t.shape != t.reference_shape, len(t.details)))
    used.add(Path(best.reference))
    verdict.__dict__.update(best.__dict__)


def _frames_of(path: Path) -> int:
    nibabel = _nibabel()

    shape = nibabel.load(path).shape
    return shape[3] if len(shape) > 3 else 1


def _relative(folder, source: Path) -> str | None:
    if folder is None:
        return None
    try:
        return os.path.relpath(folder, source)
    except ValueError:
        return str(folder)


def summary_line(verdicts: list[Verdict]) -> str:
    """``"N of M series match dcm2niix (P%): a match, b match-stored, ..."``; reference-only
    outputs are counted apart."""
    units = [v for v in verdicts if v.status != "reference-only"]
    good = sum(v.ok for v in units)
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.status] = counts.get(v.status, 0) + 1
    share = 100.0 * good / len(units) if units else 100.0
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return f"{good} of {len(units)} series match dcm2niix ({share:.1f}%): {parts}"


# ------------------------------------------------------------------------------ CLI
def register(subparsers) -> None:
    """Add the ``conformance`` command to the ``dicomml`` CLI."""
    parser = subparsers.add_parser(
        "conformance", help="compare every series of a folder with dcm2niix",
        description="Run dcm2niix once on DIR (into a temporary folder), load every series "
                    "with dicomml and compare each with dcm2niix's volume: shape, the 8 corner "
                    "voxel centres (0.05 mm), voxels (1e-3 of the range), b-values exactly and "
                    "gradient directions within 1 degree. Prints one verdict per series and a "
                    "summary line; exit status 0 when every series matches.")
    add_arguments(parser)
    parser.set_defaults(func=main_args)


def add_arguments(parser) -> None:
    """The command's arguments (shared with ``benchmarks/conformance.py``)."""
    parser.add_argument("source", metavar="DIR", help="folder of DICOM files")
    parser.add_argument("--dcm2niix", metavar="EXE", help="dcm2niix executable (default: PATH)")
    parser.add_argument("--json", metavar="FILE", help="also write the verdicts as JSON")
    parser.add_argument("--quiet", action="store_true", help="print the summary line only")


def main_args(args) -> int:
    """Run the command; exit code 0 when every series matches, 1 otherwise, 2 on bad usage."""
    source = Path(args.source)
    if not source.is_dir():
        print(f"dicomml conformance: {source} is not a folder", file=sys.stderr)
        return 2
    printer = None if args.quiet else (lambda v: print(v.line(), flush=True))
    try:
        verdicts = run_conformance(source, dcm2niix=args.dcm2niix, progress=printer)
    except RuntimeError as exc:
        print(f"dicomml conformance: {exc}", file=sys.stderr)
        return 2
    print(summary_line(verdicts))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(v) for v in verdicts], indent=1))
    return 0 if all(v.ok for v in verdicts) else 1
