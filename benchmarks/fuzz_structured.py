"""Structure-aware fuzzing (issue 25): well-formed Part 10 files whose attributes lie about
their pixels, run through the child-process harness of :mod:`fuzz_scan_load` (scan,
read_pixels, load_series, read_many of paths and of the catalog row, under an address-space
limit; crashes and hangs pinned on one input).

Each input is a small explicit VR little endian CT file written with pydicom, whose header
then lies in one or two ways: Rows / Columns / NumberOfFrames / SamplesPerPixel /
BitsAllocated that disagree with the data (up to 2**32 - 1), a Pixel Data length field
beyond the file, a second Pixel Data element, pixel or geometry tags with a wrong VR, and
functional-group sequences nested deep or cut short.

Usage::

    python benchmarks/fuzz_structured.py --inputs 300 --seed 1 --out /tmp/structured

prints the same JSON summary as ``fuzz_scan_load.py``. Not covered yet (issue 25's list):
encapsulated syntaxes paired with garbage or another codec's stream, offset tables,
non-finite geometry, CSA / palette LUTs, float pixel data, shape checks of ``ok`` results.
"""

from __future__ import annotations

import io
import random
import shutil
import struct
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz_scan_load as harness  # noqa: E402 - the shared child-process harness

BIG = [0, 1, 2, 3, 4, 255, 256, 65535, 1_000_001, 2**31 - 1, 2**32 - 1]
LIES = ["Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "BitsAllocated", "length",
        "second_pixel", "vr", "nested", "cut_group"]


def _element(group: int, elem: int, vr: bytes, value: bytes, length: int | None = None) -> bytes:
    """One explicit VR little endian element (``length``: the length field, default the
    value's)."""
    n = len(value) if length is None else length
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH", group, elem) + vr + b"\0\0" + struct.pack("<I", n) + value
    return struct.pack("<HH", group, elem) + vr + struct.pack("<H", n & 0xFFFF) + value


def _header(attrs: dict) -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = attrs.pop("SOPClassUID")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality, ds.PatientID = \
        "1.2.3", "1.2.3.4", "CT", "p"
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1, 1]
    ds.PhotometricInterpretation = "MONOCHROME2"
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = ds.BitsAllocated, ds.BitsAllocated - 1, 0
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def hostile(rng: random.Random) -> tuple[bytes, list[str]]:
    """One hostile file's bytes and the lies it tells."""
    rows, cols, frames, spp = rng.choice([1, 4, 8]), rng.choice([1, 4, 8]), rng.choice([1, 3]), 1
    attrs = {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "Rows": rows, "Columns": cols,
             "NumberOfFrames": frames, "SamplesPerPixel": 1, "BitsAllocated": 16}
    data = bytes(rng.randrange(256) for _ in range(rows * cols * frames * spp * 2))
    lies = rng.sample(LIES, rng.choice([1, 1, 2]))
    groups, length, tail = b"", None, b""
    for lie in lies:
        if lie in ("Rows", "Columns", "NumberOfFrames"):
            attrs[lie] = max(1, rng.choice(BIG)) if lie == "NumberOfFrames" else \
                rng.choice(BIG) & 0xFFFF
        elif lie == "SamplesPerPixel":
            attrs.update(SamplesPerPixel=rng.choice([2, 3, 4]), PlanarConfiguration=0,
                         PhotometricInterpretation="RGB")
        elif lie == "BitsAllocated":
            attrs["BitsAllocated"] = rng.choice([1, 8, 12, 32, 64])
        elif lie == "length":
            length = rng.choice([len(data) + 1, len(data) * 2, 0xFFFFFFF0, 0xFFFFFFFE])
        elif lie == "second_pixel":
            data, tail = data[:len(data) // 2], _element(0x7FE0, 0x0010, b"OW",
                                                        data[len(data) // 2:])
        elif lie == "vr":
            attrs["SOPClassUID"] = attrs["SOPClassUID"]  # the Pixel Data VR lies below
        elif lie in ("nested", "cut_group"):
            attrs["SOPClassUID"] = "1.2.840.10008.5.1.4.1.1.2.1"  # enhanced CT
            groups = _groups(rng, cut=lie == "cut_group")
    vr = rng.choice([b"LO", b"UT", b"SQ", b"US", b"OB"]) if "vr" in lies else b"OW"
    pixel = _element(0x7FE0, 0x0010, vr, data, length)
    return _header(attrs) + groups + pixel + tail, lies


def _groups(rng: random.Random, cut: bool) -> bytes:
    """A Per-frame Functional Groups Sequence nested ``depth`` deep (undefined lengths), or
    cut inside an item."""
    depth = rng.choice([2, 64, 200, 2000])
    sq = lambda g, e: struct.pack("<HH", g, e) + b"SQ\0\0\xff\xff\xff\xff"  # noqa: E731
    item, end = b"\xfe\xff\x00\xe0\xff\xff\xff\xff", b"\xfe\xff\x0d\xe0\0\0\0\0"
    seq_end = b"\xfe\xff\xdd\xe0\0\0\0\0"
    opened = sq(0x5200, 0x9230) + item + (sq(0x0020, 0x9116) + item) * depth
    if cut:
        return opened[:len(opened) - rng.randrange(1, 8)]
    return opened + (end + seq_end) * (depth + 1)


def fuzz(n_inputs: int, *, seed: int = 0, batch_size: int = 50, timeout: float = 30.0,
         memory_mb: int = 4096, out: Path | None = None) -> dict:
    """Run ``n_inputs`` hostile files; the summary of :func:`fuzz_scan_load.fuzz`."""
    work = Path(tempfile.mkdtemp(prefix="dicomml_structured_"))
    try:
        return harness.run_inputs(_generate, n_inputs, work, seed=seed, batch_size=batch_size,
                                  timeout=timeout, memory_mb=memory_mb, out=out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _generate(rng: random.Random) -> tuple[bytes, str]:
    data, lies = hostile(rng)
    return data, ", ".join(lies)


def main(argv=None) -> int:
    return harness.cli(fuzz, argv, description=__doc__.split("\n\n")[0], inputs=300,
                       batch_size=50, memory_mb=4096)


if __name__ == "__main__":
    sys.exit(main())
