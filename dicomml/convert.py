"""``dicomml convert``: DICOM series to NIfTI plus a JSON sidecar.

``dicomml convert CATALOG_OR_DIR [--series KEY] -o OUT`` converts one series (``--series``)
or every image series of a catalog (a ``.parquet`` written by ``dicomml scan``) or folder.
Each series becomes ``OUT/<name>.nii.gz`` (RAS, as :meth:`dicomml.Volume.to_nifti`) and
``OUT/<name>.json``: the series-level tags, the geometry checks' findings, the LPS affine
(index (slice, row, column, 1) -> mm), spacing, shape and, for 4D, the values that tell the
volumes apart. ``Rows`` / ``Columns`` in the sidecar are the image matrix of the written
volume (a Siemens mosaic's tile, e.g. 128); ``StoredRows`` / ``StoredColumns`` the frame
as stored in the files (the whole mosaic, e.g. 640).

``<name>`` is, like dcm2niix's ``%s_%p``, the series number and the series description
(``4_ep2d_diff_mddw_20_p2``), characters outside ``[A-Za-z0-9._-]`` replaced by ``_``, plus
the sub-series label for a split series (``_e2``); where two series would get the same name,
each of them gets its series key appended (:func:`output_names`). Nothing is ever written
next to the input files. Objects that are not images (structured reports, RT structure sets,
raw data...) are listed as ignored. Needs ``nibabel``.

The command prints the files it wrote, then a summary: series written, series skipped (with
the reason, once each), objects ignored, files that are not DICOM or unreadable. Exit status:
0 when every image series was written, 1 when any was skipped or nothing was written (an
empty or non-DICOM folder), 2 when the source does not exist.

Example::

    dicomml convert /data/ct -o /tmp/nifti
    dicomml convert catalog.parquet --series 1.2.3.4 -o /tmp/nifti --policy warn

Diffusion series also get ``OUT/<name>.bval`` and ``OUT/<name>.bvec`` in FSL's convention, as
dcm2niix writes them (:func:`write_fsl_diffusion`).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

from dicomml.errors import DicommlError

__all__ = ["register", "convert_series", "sidecar", "output_names",
           "write_fsl_diffusion"]

_DESCRIPTION = (
    "Convert every image series of a catalog or folder (or one, with --series) to "
    "OUT/<name>.nii.gz plus a JSON sidecar (series tags, geometry findings, LPS affine, "
    "spacing, shape). <name> is the series number and description, as dcm2niix's %s_%p "
    "(e.g. 4_ep2d_diff_mddw_20_p2), with the series key appended where two series would "
    "share a name. Objects that are not images (SR, RT structure sets, raw data) are listed "
    "as ignored. Nothing is written next to the input files. Needs nibabel.")
_EPILOG = ("Prints the files written, then a summary: series written, series skipped with "
           "the reason, objects ignored, files that are not DICOM. Exit status: 0 when every "
           "image series was written, 1 when any was skipped or nothing was written, 2 when "
           "the source does not exist.")


def register(subparsers) -> None:
    """Add the ``convert`` command to the ``dicomml`` CLI."""
    parser = subparsers.add_parser(
        "convert", help="DICOM series to NIfTI (+ JSON sidecar)",
        description=_DESCRIPTION, epilog=_EPILOG)
    parser.add_argument("source", metavar="CATALOG_OR_DIR",
                        help="a catalog (.parquet from 'dicomml scan') or a folder of DICOM files")
    parser.add_argument("--series", metavar="KEY", help="convert only this series key")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    parser.add_argument("--policy", default="default",
                        choices=["default", "raise", "warn", "ignore"],
                        help="what geometry findings do (default: raise except gantry tilt)")
    parser.add_argument("--resample", action="store_true",
                        help="resample uneven / gapped / tilted series onto a regular grid")
    parser.add_argument("--stored", action="store_true",
                        help="write the stored integers (no rescale) instead of float32")
    parser.add_argument("--no-gzip", action="store_true", help="write .nii instead of .nii.gz")
    parser.add_argument("--labels", action="store_true",
                        help="also write the SEG / RTSTRUCT label maps of each series as "
                             "<name>_label<n>.nii.gz beside it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)


def safe_name(key: str) -> str:
    """A file name for a series key: ``[A-Za-z0-9._-]`` kept, everything else ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(key)).strip("._") or "series"


def output_names(series) -> dict:
    """``{series_key: file name stem}`` for the rows of a catalog's series table.

    The stem is ``<SeriesNumber>_<ProtocolName>`` (dcm2niix's ``%s_%p``; SeriesDescription
    where ProtocolName is absent; either part alone when the other is absent, the key when
    both are), passed through :func:`safe_name`,
    plus ``_<label>`` for a sub-series ``UID#label`` of a split series. Stems that two or
    more keys would share get ``_<key>`` appended (made safe), so every stem is unique.

    >>> import pandas as pd
    >>> rows = pd.DataFrame({"series_key": ["1.2.3", "1.2.4", "1.2.5#e2"],
    ...                      "SeriesNumber": [4.0, 5.0, 5.0],
    ...                      "SeriesDescription": ["DWI ep2d", "T1", "T1"]})
    >>> output_names(rows)
    {'1.2.3': '4_DWI_ep2d', '1.2.4': '5_T1', '1.2.5#e2': '5_T1_e2'}
    """
    from dicomml._columns import column_list

    keys = [str(k) for k in column_list(series, "series_key")]
    numbers = column_list(series, "SeriesNumber") if "SeriesNumber" in series else \
        [None] * len(keys)
    protocols, descriptions = (
        column_list(series, name) if name in series else [None] * len(keys)
        for name in ("ProtocolName", "SeriesDescription"))
    stems = {}
    for key, number, protocol, description in zip(keys, numbers, protocols, descriptions):
        text = protocol if isinstance(protocol, str) and protocol.strip() else description
        parts = []
        if number is not None and number == number:
            parts.append(str(int(number)) if float(number).is_integer() else str(number))
        if isinstance(text, str) and text.strip():
            parts.append(text.strip())
        label = key.partition("#")[2]
        stem = safe_name("_".join(parts)) if parts else safe_name(key.partition("#")[0])
        stems[key] = f"{stem}_{safe_name(label)}" if label else stem
    counts: dict = {}
    for stem in stems.values():
        counts[stem] = counts.get(stem, 0) + 1
    return {key: stem if counts[stem] == 1 else f"{stem}_{safe_name(key)}"
            for key, stem in stems.items()}


def _json_ready(value):
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def sidecar(volume) -> dict:
    """The JSON sidecar of a volume: tags, findings, geometry (LPS affine, spacing, shape).

    ``Rows`` / ``Columns`` are the volume's image matrix (its last two axes: for a Siemens
    mosaic the tile, not the mosaic); ``StoredRows`` / ``StoredColumns`` the frame size
    stored in the files (the header's Rows / Columns).
    """
    meta = dict(volume.metadata)
    stored = {"StoredRows": meta.get("Rows"), "StoredColumns": meta.get("Columns")}
    return _json_ready({
        **meta,
        "Rows": int(volume.spatial_shape[1]),
        "Columns": int(volume.spatial_shape[2]),
        **stored,
        "shape": list(volume.shape),
        "axes": _axes(volume),
        "affine_lps": volume.affine,
        "spacing_mm": volume.spacing,
        "orientation": volume.orientation,
        "sheared": volume.is_sheared,
        "dtype": str(volume.array.dtype),
    })


def _axes(volume) -> str:
    """The sidecar's names of the array's axes, e.g. ``"volume, slice, row, column"``."""
    colour = getattr(volume, "is_colour", False)
    names = ["slice", "row", "column"] + ["sample (R, G, B)"] * colour
    return ", ".join(["volume"] * (volume.array.ndim - colour == 4) + names)


def convert_series(catalog, key: str, output: Path, *, policy="default", resample=False,
                   dtype="float32", gzip=True, name: str | None = None,
                   labels: bool = False) -> Path:
    """Convert one series to ``output/<name>.nii.gz`` and ``.json``; return the NIfTI path.

    ``name``: the file name stem (default: :func:`output_names` over the catalog's
    objects, so the same as a whole-catalog run gives). ``labels``: also write each SEG /
    RTSTRUCT that refers to the series (``catalog.labels_for(key)``) as a label map on the
    image's grid, ``<name>_label<n>.nii.gz`` with ``<name>_label<n>.json`` ({value: name},
    the source file) beside the image; one that fails to load is reported with a
    :class:`~dicomml.errors.LabelWarning` and left out.
    """
    from dicomml.loader import load_series

    volume = load_series(catalog, key, policy=policy, resample=resample, dtype=dtype)
    if name is None:
        objects = getattr(catalog, "objects", None)
        name = output_names(objects).get(key) if objects is not None else None
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    stem = output / (name or safe_name(key))
    nifti = stem.with_name(stem.name + (".nii.gz" if gzip else ".nii"))
    volume.to_nifti().to_filename(str(nifti))
    stem.with_name(stem.name + ".json").write_text(json.dumps(sidecar(volume), indent=2))
    write_fsl_diffusion(volume, stem)
    if labels:
        write_label_maps(catalog, key, volume, stem, gzip=gzip)
    return nifti


def write_label_maps(catalog, key: str, volume, stem: Path, *, gzip: bool = True) -> list:
    """The label maps of the SEG / RTSTRUCT objects referring to series ``key``, as NIfTI
    (``<stem>_label<n>``, same affine as the image's NIfTI) and JSON; returns their paths."""
    import warnings

    from dicomml.errors import LabelWarning
    from dicomml.labels import load_labels
    from dicomml.volume import Volume

    written = []
    rows = catalog.labels_for(key)
    for n, path in enumerate(rows["path"][rows["error"].isna()], start=1):
        try:
            lab = load_labels(path, volume, catalog=catalog)
        except DicommlError as exc:
            warnings.warn(f"{path}: label map not written: {exc}", LabelWarning, stacklevel=2)
            continue
        out = stem.with_name(f"{stem.name}_label{n}" + (".nii.gz" if gzip else ".nii"))
        Volume(lab.array, lab.affine).to_nifti().to_filename(str(out))
        names = {str(v): p.get("name") for v, p in lab.metadata["labels"].items()}
        stem.with_name(f"{stem.name}_label{n}.json").write_text(
            json.dumps({"source": str(path), "labels": names}, indent=2))
        written.append(out)
    return written


def write_fsl_diffusion(volume, stem: Path) -> tuple[Path, Path] | None:
    """Write ``<stem>.bval`` and ``<stem>.bvec`` (FSL's convention, as dcm2niix writes them)
    for a 4D diffusion volume; return their paths, or None when the volume has no diffusion
    encoding (``metadata["volumes"][i]["b_value"]``).

    b-values (s/mm^2) are written as integers; each ``.bvec`` column is the volume's gradient
    (``metadata["volumes"][i]["gradient"]``, unit LPS) in the voxel frame of the NIfTI written
    by :meth:`dicomml.Volume.to_nifti`, x negated when that affine's determinant is positive
    (:func:`dicomml.geometry.diffusion.fsl_bvecs`); ``0 0 0`` for b=0.

    Example
    -------
    >>> write_fsl_diffusion(volume, Path("/tmp/out/dwi"))     # doctest: +SKIP
    (PosixPath('/tmp/out/dwi.bval'), PosixPath('/tmp/out/dwi.bvec'))
    """
    from dicomml.geometry.diffusion import format_fsl, fsl_bvecs

    volumes = volume.metadata.get("volumes") or []
    b_values = [v.get("b_value") for v in volumes]
    if volume.array.ndim - volume.is_colour != 4 or not any(b is not None for b in b_values):
        return None
    bvals = np.array([0.0 if b is None else float(b) for b in b_values])
    bvecs = fsl_bvecs([v.get("gradient") for v in volumes], volume.nifti_affine())
    bval_path = stem.with_name(stem.name + ".bval")
    bvec_path = stem.with_name(stem.name + ".bvec")
    bval_path.write_text(format_fsl(bvals[None], integers=True))
    bvec_path.write_text(format_fsl(bvecs))
    return bval_path, bvec_path


def _run(args) -> int:
    source = Path(args.source)
    if not source.exists():
        print(f"dicomml convert: {source} does not exist", file=sys.stderr)
        return 2
    catalog = _open(source, progress=not args.no_progress)
    if args.series:
        return _convert_one(catalog, args)
    names = output_names(catalog.objects)
    keys = list(catalog.series["series_key"])
    written, skipped = [], []
    from tqdm.auto import tqdm

    bar = tqdm(keys, unit="series", desc="convert", file=sys.stderr, leave=False,
               disable=args.no_progress or not keys)
    for key in bar:
        try:
            path = convert_series(catalog, key, Path(args.output), name=names[key],
                                  **_options(args))
        except DicommlError as exc:
            skipped.append((key, exc))
            bar.write(f"dicomml convert: skipped {names[key]} ({key}): {_reason(exc, key)}",
                      file=sys.stderr)
            continue
        written.append(path)
        bar.write(str(path), file=sys.stdout)
    bar.close()
    print(conversion_summary(catalog, written, skipped, args.output))
    return 1 if skipped or not written else 0


def _open(source: Path, *, progress: bool):
    """A Catalog from a saved catalog (file or partitioned folder), or from a folder or DICOM
    file (scanned, with a progress bar)."""
    from dicomml.catalog import Catalog

    return Catalog.open(source, progress=progress)


def _options(args) -> dict:
    return {"policy": args.policy, "resample": args.resample,
            "dtype": None if args.stored else "float32", "gzip": not args.no_gzip,
            "labels": bool(getattr(args, "labels", False))}


def _convert_one(catalog, args) -> int:
    """``--series KEY``: convert it or raise its error (the CLI prints it, exit 1)."""
    print(convert_series(catalog, args.series, Path(args.output), **_options(args)))
    return 0


def _reason(exc: DicommlError, key: str) -> str:
    """``ErrorType: message [tag ...]``, without repeating the series key that the error
    names as its path (a file path is kept: it says which file to look at)."""
    text = str(exc)
    if exc.path is not None and str(exc.path) == str(key):
        text = text[len(f"{exc.path}: "):]
    return f"{type(exc).__name__}: {text}"


def conversion_summary(catalog, written: list, skipped: list, output) -> str:
    """The lines ``dicomml convert`` ends with: what was written, skipped, ignored, and the
    files that are not DICOM or could not be read."""
    lines = [f"dicomml convert: {len(written)} series written to {output}"
             + (f", {len(skipped)} skipped (reasons above)" if skipped else "")]
    others = catalog.objects[~catalog.objects["series_key"].isin(catalog.series["series_key"])]
    if len(others):
        counts = others.groupby("object_kind").size()
        lines.append(f"ignored {len(others)} object(s) that are not image series: "
                     + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    errors = catalog.errors
    if len(errors):
        counts = errors.groupby("error_type").size().sort_values(ascending=False)
        lines.append(f"{len(errors)} file(s) not indexed: "
                     + ", ".join(f"{n} {etype}" for etype, n in counts.items())
                     + f" (first: {errors['path'].iloc[0]})")
    if not written and not skipped:
        where = catalog.root or "the source"
        lines.append(f"nothing to convert: no DICOM image series in {where}")
    return "\n".join(lines)
