"""Hostile headers (issue 25): attributes that lie about the pixels give a typed error naming
the file, the tag and both sizes, before anything of the declared size is allocated.

Each case runs every public entry point (scan, read_pixels, read_many of paths and of catalog
rows, load_series, a DicomSeriesDataset item) in a child process whose address space is
limited to 4 GiB (``resource.RLIMIT_AS``), as benchmarks/fuzz_scan_load.py does.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, resource, sys, warnings
warnings.simplefilter("ignore")
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
import dicomml
from dicomml.dataset import DicomSeriesDataset
from dicomml.errors import DicommlError
path = sys.argv[1]
cat = dicomml.scan(os.path.dirname(path), progress=False)
out = {"scan": list(cat.errors.error_type) if len(cat.errors) else "ok"}
calls = {
    "read_pixels": lambda: dicomml.read_pixels(path).shape,
    "read_many": lambda: dicomml.read_many([path, path]).shape,
    "read_many_rows": lambda: dicomml.read_many(cat.instances).shape,
    "load_series": lambda: dicomml.load_series(path).array.shape,
    "dataset": lambda: tuple(DicomSeriesDataset(cat)[0]["image"].shape),
}
for name, call in calls.items():
    if name in ("read_many_rows", "dataset") and not len(cat.series):
        continue
    try:
        out[name] = ["ok", list(call())]
    except DicommlError as exc:
        out[name] = ["typed", type(exc).__name__, str(exc)]
    except BaseException as exc:
        out[name] = ["untyped", type(exc).__name__, str(exc)[:300]]
print(json.dumps(out))
"""


def _header_bytes(**attrs) -> bytes:
    """A CT file's bytes up to (not including) Pixel Data: 4 x 4, 16 bits, one sample."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3", "1.2.3.4"
    ds.Modality, ds.PatientID, ds.InstanceNumber = "CT", "p", 1
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [1, 1], 1
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _pixel_element(length: int, value: bytes) -> bytes:
    """An explicit VR little endian (7FE0,0010) OW element with the given length field."""
    return struct.pack("<HH", 0x7FE0, 0x0010) + b"OW\0\0" + struct.pack("<I", length) + value


def _run(path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True,
                          text=True, timeout=300, cwd=REPO, env={"PYTHONPATH": str(REPO),
                                                                 "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check_typed(result: dict, tag: str, sizes: tuple[str, ...], *, entry_points=None):
    for name, outcome in result.items():
        if name == "scan" or (entry_points and name not in entry_points):
            continue
        assert outcome[0] == "typed", (name, outcome)
        assert f"[tag {tag}]" in outcome[2] or f"[tag {tag}]" in outcome[2], (name, outcome)
        for size in sizes:
            assert size in outcome[2], (name, outcome)


def test_number_of_frames_near_2_32_is_bounded_by_the_pixel_data(tmp_path):
    """NumberOfFrames 4e9 over 32 bytes: read_many of catalog rows used to allocate 119 GiB
    (MemoryError) from the catalog's facts; now no entry point allocates, all name the sizes."""
    path = tmp_path / "frames.dcm"
    path.write_bytes(_header_bytes(NumberOfFrames=4_000_000_000) + _pixel_element(32, bytes(32)))
    result = _run(path)
    for name in ("read_pixels", "read_many", "read_many_rows"):
        assert result[name][0] == "typed", (name, result[name])
        assert "4000000000" in result[name][2] and "32" in result[name][2], result[name]
    for name in ("load_series", "dataset"):
        assert result[name][0] == "typed", (name, result[name])
        assert "NumberOfFrames" in result[name][2]


def test_pixel_data_length_beyond_the_file_is_not_read(tmp_path):
    """A Pixel Data length field of 0xFFFFFFF0 in a ~1 kB file: read_pixels / read_many used
    to hand the file to pydicom, which tried a 4 GiB read (MemoryError); now the header
    parser's finding is the error, naming the tag and both sizes."""
    path = tmp_path / "length.dcm"
    path.write_bytes(_header_bytes() + _pixel_element(0xFFFFFFF0, bytes(32)))
    result = _run(path)
    assert result["scan"] == ["TruncatedFileError"]
    for name in ("read_pixels", "read_many", "load_series"):
        assert result[name][:2] == ["typed", "TruncatedFileError"], (name, result[name])
        assert "4294967280" in result[name][2] and "after 32" in result[name][2], result[name]
        assert "MemoryError" not in result[name][2]
        assert result[name][2].endswith("[tag PixelData]")


@pytest.mark.parametrize("case", ["second_element", "samples_3_of_2", "short"])
def test_short_pixel_data_never_loads_with_another_shape(tmp_path, case):
    """Pixel data shorter than Rows x Columns x Frames x Samples (half of it, then a second
    Pixel Data element; SamplesPerPixel 3 over 2-sample data) never loads with another shape
    or padded: every entry point raises a typed error naming PixelData and both sizes."""
    path = tmp_path / f"{case}.dcm"
    if case == "second_element":
        data = _header_bytes() + _pixel_element(16, bytes(16)) * 2
        sizes = ("16", "32")
    elif case == "samples_3_of_2":
        data = _header_bytes(SamplesPerPixel=3, PhotometricInterpretation="RGB",
                             PlanarConfiguration=0, BitsAllocated=8, BitsStored=8,
                             HighBit=7) + _pixel_element(32, bytes(32))
        sizes = ("32", "48")
    else:
        data = _header_bytes(NumberOfFrames=3) + _pixel_element(64, bytes(64))
        sizes = ("64", "96")
    path.write_bytes(data)
    result = _run(path)
    for name, outcome in result.items():
        if name == "scan":
            continue
        assert outcome[0] == "typed", (name, outcome)
        assert outcome[2].endswith("[tag PixelData]"), (name, outcome)
        assert all(size in outcome[2] for size in sizes), (name, outcome)


def test_structured_fuzzer_short_run_is_clean():
    """benchmarks/fuzz_structured.py, fixed seed, 40 hostile files through every entry point
    of fuzz_scan_load's child harness: no crash, hang or untyped exception, and the lies are
    caught (typed errors dominate)."""
    import importlib.util

    bench = REPO / "benchmarks" / "fuzz_structured.py"
    sys.path.insert(0, str(bench.parent))
    try:
        spec = importlib.util.spec_from_file_location("fuzz_structured", bench)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        summary = module.fuzz(40, seed=7, batch_size=40)
    finally:
        sys.path.remove(str(bench.parent))
    assert (summary["n_crashes"], summary["n_hangs"], summary["n_untyped"]) == (0, 0, 0), \
        summary["findings"][:3]
    assert summary["outcomes"].get("typed", 0) > summary["outcomes"].get("ok", 0)
