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

import numpy as np
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
    """benchmarks/fuzz_structured.py, fixed seed, 200 hostile files of every family through
    every entry point of fuzz_scan_load's child harness (a DataLoader worker included): no
    crash, hang, untyped exception, peak memory beyond the bound or shape other than the
    headers declare, and the lies are caught (typed errors dominate)."""
    import importlib.util

    bench = REPO / "benchmarks" / "fuzz_structured.py"
    sys.path.insert(0, str(bench.parent))
    try:
        spec = importlib.util.spec_from_file_location("fuzz_structured", bench)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        summary = module.fuzz(200, seed=7, batch_size=200)
    finally:
        sys.path.remove(str(bench.parent))
    counts = [summary[f"n_{kind}"] for kind in ("crashes", "hangs", "untyped", "memory", "shape")]
    assert counts == [0] * 5, summary["findings"][:3]
    assert summary["outcomes"].get("typed", 0) > summary["outcomes"].get("ok", 0)
    assert summary["outcomes"].get("ok", 0) > 0 and summary["inputs"] == 200


# --- classes found by benchmarks/fuzz_structured.py's families (issue 25, second part) -----------
def _raw_element(tag: int, vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian element written as it is (no validation)."""
    if vr in (b"OB", b"OW", b"OF", b"OD", b"OV", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr + b"\0\0" + \
            struct.pack("<I", len(value)) + value
    return struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr + struct.pack("<H", len(value)) + \
        value


def _with_raw(data: bytes, tag: int, element: bytes) -> bytes:
    """``data`` (a file from :func:`_header_bytes`) with ``element`` (tag ``tag``) inserted
    in tag order among the top-level elements after the meta group."""
    pos = 132
    while pos + 8 <= len(data):
        group, elem = struct.unpack_from("<HH", data, pos)
        vr = data[pos + 4:pos + 6]
        if group > 2 and (group << 16 | elem) > tag:
            return data[:pos] + element + data[pos:]
        if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
            pos += 12 + struct.unpack_from("<I", data, pos + 8)[0]
        else:
            pos += 8 + struct.unpack_from("<H", data, pos + 6)[0]
    return data + element


@pytest.mark.parametrize("orientation", [b"1\\1\\1\\1\\1\\1 ", b"1\\0\\0\\1\\0\\0 ", b"0\\0\\0\\0\\1\\0 "])
def test_degenerate_orientation_is_refused_not_a_nan_affine(tmp_path, orientation):
    """ImageOrientationPatient with parallel or zero row / column vectors: load_series and the
    Dataset used to return a volume whose affine held NaN; now InvalidTagError names the tag.
    read_pixels does not place pixels, so it still reads them."""
    data = _header_bytes()
    at = data.index(struct.pack("<HH", 0x0020, 0x0037))
    length = struct.unpack_from("<H", data, at + 6)[0]
    data = data[:at] + _raw_element(0x00200037, b"DS", orientation) + data[at + 8 + length:]
    path = tmp_path / "iop.dcm"
    path.write_bytes(data + _pixel_element(32, bytes(32)))
    result = _run(path)
    assert result["read_pixels"] == ["ok", [1, 4, 4]]
    for name in ("load_series", "dataset"):
        assert result[name][:2] == ["typed", "InvalidTagError"], (name, result[name])
        assert result[name][2].endswith("[tag ImageOrientationPatient]"), result[name]


def test_palette_descriptor_past_16_bits_reads_as_read_pixels_does(tmp_path):
    """A palette whose descriptor maps indices past 65535 (4096 entries from 65535): the
    loader's index table overflowed uint16 (OverflowError, untyped); now the unreachable
    entries are cut, and load_series gives read_pixels' (pydicom's) colours."""
    import dicomml

    data = _header_bytes(PhotometricInterpretation="PALETTE COLOR")
    for i in range(3):
        data = _with_raw(data, 0x00281101 + i, _raw_element(
            0x00281101 + i, b"US", struct.pack("<3H", 4096, 65535, 16)))
        data = _with_raw(data, 0x00281201 + i, _raw_element(
            0x00281201 + i, b"OW", bytes(range(256)) * 32))
    path = tmp_path / "palette.dcm"
    path.write_bytes(data + _pixel_element(32, bytes(range(32))))
    expected = dicomml.read_pixels(path)
    volume = dicomml.load_series(path)
    assert np.array_equal(np.asarray(volume.array).reshape(expected.shape), expected)
    result = _run(path)
    assert all(outcome[0] == "ok" for name, outcome in result.items() if name != "scan"), \
        result


def test_frame_count_lie_is_refused_before_a_plane_per_frame(tmp_path):
    """NumberOfFrames 65535 over 32 bytes of native pixels: load_series built 65535 planes
    (~140 MB, seconds) before the pixel check refused the file; now the catalog row's sizes
    refuse it first, naming NumberOfFrames and both sizes, with a small peak memory."""
    path = tmp_path / "frames.dcm"
    path.write_bytes(_header_bytes(NumberOfFrames=65535) + _pixel_element(32, bytes(32)))
    code = ("import sys, dicomml\n"
            "def rss(f):\n"
            "    return int(next(l for l in open('/proc/self/status') if l.startswith(f))"
            ".split()[1])\n"
            "for _ in range(2):  # the first call's lazy imports are not the file's cost\n"
            "    open('/proc/self/clear_refs', 'w').write('5'); base = rss('VmRSS')\n"
            "    try:\n        dicomml.load_series(sys.argv[1])\n"
            "    except dicomml.errors.DicommlError as exc:\n"
            "        print(type(exc).__name__, exc)\n"
            "    print(rss('VmHWM') - base)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path), ""], capture_output=True,
                          text=True, timeout=300, cwd=REPO,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("TruncatedFileError"), done.stdout + done.stderr[-2000:]
    assert "NumberOfFrames 65535" in lines[0]
    assert "2097120" in lines[0] and "holds 32" in lines[0]
    assert int(lines[-1]) < 32 * 1024, f"peak {lines[-1]} KiB"


@pytest.mark.parametrize("cut", ["no_preamble", "meta_first", "bare_data_set"])
def test_files_without_preamble_read_alike_everywhere(tmp_path, cut):
    """A file with its meta group but no preamble (DICM first, or the meta group first) or a
    bare data set: read_pixels and read_many raised NotDicomError (pydicom's strict reading)
    while scan and load_series read it (the catalog parser, pydicom's force=True reading);
    now every entry point reads it, with the Part 10 file's pixels."""
    import dicomml

    full = _header_bytes() + _pixel_element(32, bytes(range(32)))
    if cut == "no_preamble":
        data = full[128:]
    elif cut == "meta_first":
        data = full[132:]
    else:  # the data set alone: skip the meta group (explicit VR little endian)
        meta_end = 132 + 12 + struct.unpack_from("<I", full, 140)[0]
        data = full[meta_end:]
    (tmp_path / "part10").mkdir()
    (tmp_path / "part10" / "full.dcm").write_bytes(full)
    (tmp_path / "case").mkdir()
    path = tmp_path / "case" / f"{cut}.dcm"
    path.write_bytes(data)
    result = _run(path)
    for name, outcome in result.items():
        if name != "scan":
            assert outcome[0] == "ok", (name, outcome)
    assert result["scan"] == "ok"
    expected = dicomml.read_pixels(tmp_path / "part10" / "full.dcm")
    assert np.array_equal(dicomml.read_pixels(path), expected)
    assert np.array_equal(dicomml.read_many([path]), expected)


def test_functional_group_item_past_the_end_is_the_same_error_everywhere(tmp_path):
    """A Per-frame Functional Groups item whose length runs past the end of the file: scan and
    load_series said TruncatedFileError, read_pixels / read_many InvalidDicomError (pydicom's
    failure); now all say TruncatedFileError."""
    group = struct.pack("<HH", 0x5200, 0x9230) + b"SQ\0\0\xff\xff\xff\xff" + \
        b"\xfe\xff\x00\xe0" + struct.pack("<I", 4096)
    path = tmp_path / "group.dcm"
    path.write_bytes(_header_bytes(SOPClassUID="1.2.840.10008.5.1.4.1.1.2.1",
                                   NumberOfFrames=2) + group + _pixel_element(64, bytes(64)))
    result = _run(path)
    assert result["scan"] == ["TruncatedFileError"]
    for name in ("read_pixels", "read_many", "load_series"):
        assert result[name][:2] == ["typed", "TruncatedFileError"], (name, result[name])


def test_ybr_jpeg_under_a_16_bit_header_is_a_decode_error(tmp_path):
    """An 8-bit YBR JPEG baseline stream under BitsAllocated 16: pydicom's colour conversion
    raised ValueError (untyped) in every entry point; now DecodeError naming BitsAllocated."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.encaps import encapsulate, generate_frames

    source = pydicom.dcmread(get_testdata_file("SC_rgb_small_odd_jpeg.dcm"))
    frame = next(generate_frames(source.PixelData, number_of_frames=1))
    ds = pydicom.dcmread(io.BytesIO(_header_bytes(
        Rows=source.Rows, Columns=source.Columns, SamplesPerPixel=3, PlanarConfiguration=0,
        PhotometricInterpretation="YBR_FULL_422")), force=True)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.50"
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    path = tmp_path / "ybr16.dcm"
    ds.save_as(path, enforce_file_format=True)
    result = _run(path)
    for name in ("read_pixels", "read_many", "read_many_rows", "load_series", "dataset"):
        assert result[name][:2] == ["typed", "DecodeError"], (name, result[name])
        assert result[name][2].endswith("[tag BitsAllocated]"), result[name]


def test_geometry_tag_with_a_wrong_vr_is_named(tmp_path):
    """ImagePositionPatient written as FL with a 1-byte value in a multi-frame file:
    pydicom's BytesLengthException (untyped) escaped from the geometry readers when
    load_series read the header; now InvalidTagError names ImagePositionPatient."""
    data = _header_bytes(NumberOfFrames=2)
    at = data.index(struct.pack("<HH", 0x0020, 0x0032))
    length = struct.unpack_from("<H", data, at + 6)[0]
    data = data[:at] + _raw_element(0x00200032, b"FL", b"\x04") + data[at + 8 + length:]
    path = tmp_path / "vr.dcm"
    path.write_bytes(data + _pixel_element(64, bytes(64)))
    result = _run(path)
    for name in ("load_series", "dataset"):
        if name in result:
            assert result[name][:2] == ["typed", "InvalidTagError"], (name, result[name])
            assert result[name][2].endswith("[tag ImagePositionPatient]"), result[name]
    assert "load_series" in result



@pytest.mark.parametrize("value", [b"\x01\x00", bytes(32)])
def test_pixel_data_with_a_numeric_vr_is_named(tmp_path, value):
    """Pixel Data written with VR US after sequences nested 65 deep (so the pixels are read
    through pydicom's data set, not the bounded header parser): pydicom reads an int (or a list of them), and the
    native frame split raised TypeError (untyped); now InvalidTagError names PixelData."""
    rows = 1 if len(value) == 2 else 4
    def sq(group, element):
        return struct.pack("<HH", group, element) + b"SQ\0\0\xff\xff\xff\xff"

    item, end = b"\xfe\xff\x00\xe0\xff\xff\xff\xff", b"\xfe\xff\x0d\xe0\0\0\0\0"
    group = sq(0x5200, 0x9230) + item + (sq(0x0020, 0x9116) + item) * 64 + \
        (end + b"\xfe\xff\xdd\xe0\0\0\0\0") * 65  # deeper than the fast parser goes
    path = tmp_path / "us.dcm"
    path.write_bytes(_header_bytes(Rows=rows, Columns=rows) + group
                     + _raw_element(0x7FE00010, b"US", value))
    result = _run(path)
    for name, outcome in result.items():
        if name != "scan":
            assert outcome[0] == "typed", (name, outcome)
    for name in ("read_pixels", "read_many"):
        assert result[name][:2] == ["typed", "InvalidTagError"], (name, result[name])
        assert result[name][2].endswith("[tag PixelData]"), result[name]


@pytest.mark.parametrize("text, frames", [(b"2.0 ", 2), (b"0 ", 1), (b"1e1 ", None),
                                          (b"1.5 ", None), (b"-3", None)])
def test_number_of_frames_text_is_read_alike_everywhere(tmp_path, text, frames):
    """NumberOfFrames "1.5" over 3 frames: the catalog truncated it to 1 frame (so a read of
    its rows gave 1 frame) while read_pixels refused it, and "2.0" loaded in load_series but
    was refused by read_pixels. Now one Integer String rule (dicomml._numbers, pydicom's IS
    leniency, dicomml._numbers.declared_frames) decides: a whole number in any form is the
    frame count everywhere, 0 reads as 1 (as pydicom reads it; load_series refused it, the
    catalog split it as 1); a fraction or a negative count is an InvalidTagError naming
    NumberOfFrames at every entry point, the scan's error record included."""
    data = _with_raw(_header_bytes(), 0x00280008, _raw_element(0x00280008, b"IS", text))
    path = tmp_path / "frames.dcm"
    path.write_bytes(data + _pixel_element(96, bytes(range(96))))
    result = _run(path)
    if frames is None and text != b"1e1 ":
        assert result["scan"] == ["InvalidTagError"]
        _check_typed(result, "NumberOfFrames", ())
        return
    if frames is None:  # 10 frames over 3 frames' bytes: the size check, not the text
        assert result["scan"] == "ok"
        _check_typed(result, "PixelData", ("96",), entry_points=("read_pixels", "read_many"))
        return
    assert result["scan"] == "ok"
    assert result["read_many"] == ["ok", [2 * frames, 4, 4]]  # the file twice
    for name in ("read_pixels", "read_many_rows", "load_series"):
        assert result[name] == ["ok", [frames, 4, 4]], (name, result[name])
