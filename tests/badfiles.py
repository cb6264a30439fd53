"""Builder of a bad-input corpus: every malformed file or series the library must survive.

Nothing here is checked in as binary data: each ``make_*`` function writes one case into a
folder of its own (under a test's ``tmp_path``) from real files — series written by
:mod:`dicomml.synth`, or compressed files from pydicom's test data, then damaged — and returns
a :class:`BadCase` saying what a correct library does with it. :func:`build_corpus` writes all.

Importable by any test (``tests/`` is not a package: put it on ``sys.path`` first, as
tests/test_hardening.py does, then ``from badfiles import build_corpus``)::

    corpus = build_corpus(tmp_path)           # {name: BadCase}
    case = corpus["truncated_pixels"]
    cat = dicomml.scan(case.folder)           # case.culprits must be in cat.errors

Expectations per case
---------------------
``scan``: ``"error"`` — every culprit file is listed in ``Catalog.errors``; ``"ok"`` — the
files are valid at header level (the damage is in the pixels or in the series) and are
catalogued; ``"either"`` — each culprit is in exactly one of ``instances`` / ``errors``;
``"skipped"`` — in neither (an index file the walk ignores by design).
``load``: the :mod:`dicomml.errors` types one of which ``load_series(culprits)`` must raise,
naming a culprit file (``path``) and, where one tag is to blame, ``tag``; ``()`` when the
case must load (a tolerated oddity). ``pixels``: the types ``read_pixels(culprit)`` must raise,
or ``()`` when not applicable.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.encaps import encapsulate, generate_frames
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian

from dicomml import errors as E
from dicomml import synth

GIB = 1 << 30
#: the deflate bomb's element inflates to this many bytes of zeros
BOMB_BYTES = GIB + (64 << 20)
SMALL = (4, 16, 16)  # (slices, rows, columns) of the synthetic base series


@dataclass
class BadCase:
    """One bad input: where it is and what a correct library does with it."""

    name: str
    folder: Path                      # holds this case's files only
    culprits: list[Path]              # the files to blame
    scan: str                         # "error" | "ok" | "either"
    load: tuple[type, ...]            # load_series(culprits) raises one of these; () = loads
    tag: str | None = None            # the tag the error must name, where one is to blame
    pixels: tuple[type, ...] = ()     # read_pixels(culprit) raises one of these
    note: str = ""
    extra: dict = field(default_factory=dict)


# --- helpers -------------------------------------------------------------------------------
def _testdata(name: str) -> Path:
    """A file from pydicom's bundled test data (never downloaded)."""
    path = Path(pydicom.data.__file__).parent / "test_files" / name
    if not path.is_file():
        raise FileNotFoundError(f"pydicom test file {name} is not installed")
    return path


def _base_series(folder: Path, **options) -> synth.SynthSeries:
    options.setdefault("shape", SMALL)
    options.setdefault("shuffle", False)
    return synth.write_series(folder, **options)


def _one_good_file(folder: Path, **options) -> Path:
    """Write a one-slice synthetic CT file into ``folder``; return its path."""
    return _base_series(folder, shape=(1, 16, 16), **options).paths[0]


def _good_file_bytes(folder: Path) -> bytes:
    """The bytes of a one-slice synthetic CT file, written in ``folder / "_src"`` and removed
    again (a case folder holds only its bad files)."""
    data = _one_good_file(folder / "_src").read_bytes()
    shutil.rmtree(folder / "_src")
    return data


def _good_dataset(folder: Path):
    """:func:`_good_file_bytes` as a pydicom data set."""
    return pydicom.dcmread(io.BytesIO(_good_file_bytes(folder)))


def _element_offset(data: bytes, tag: int, vr: bytes) -> int:
    """Byte offset of an explicit VR little endian element header (tag, vr) in ``data``."""
    needle = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr
    at = data.find(needle, 132)
    if at < 0:
        raise ValueError(f"element {tag:08X} {vr!r} not found")
    return at


def _dataset_bytes(ds, *, implicit: bool) -> bytes:
    """The data set alone (no preamble, no meta header), little endian."""
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, implicit
    write_dataset(fp, ds)
    return fp.getvalue()


def _pixel_data_offset(data: bytes) -> int:
    return _element_offset(data, 0x7FE00010, b"OW")


def _replace_value(data: bytes, tag: int, vr: bytes, text: bytes) -> bytes:
    """Replace a short-VR element's value by ``text`` padded to the same even length."""
    at = _element_offset(data, tag, vr)
    length = struct.unpack_from("<H", data, at + 6)[0]
    if len(text) > length:
        raise ValueError(f"{text!r} does not fit the {length} bytes of {tag:08X}")
    return data[:at + 8] + text.ljust(length, b" ") + data[at + 8 + length:]


def _new_case_folder(root: Path, name: str) -> Path:
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=False)
    return folder


# --- not DICOM at all --------------------------------------------------------------------------
def make_zero_bytes(root) -> BadCase:
    folder = _new_case_folder(root, "zero_bytes")
    path = folder / "empty.dcm"
    path.write_bytes(b"")
    return BadCase("zero_bytes", folder, [path], "error", (E.InvalidDicomError,),
                   pixels=(E.InvalidDicomError, E.DecodeError))


def make_random_bytes(root) -> BadCase:
    folder = _new_case_folder(root, "random_bytes")
    path = folder / "noise.dcm"
    data = bytearray(np.random.default_rng(20240607).bytes(4096))
    data[0:2] = b"\xff\xff"  # never a plausible first group by chance
    path.write_bytes(bytes(data))
    return BadCase("random_bytes", folder, [path], "error", (E.InvalidDicomError,),
                   pixels=(E.InvalidDicomError, E.DecodeError))


def make_text_named_dcm(root) -> BadCase:
    """No preamble and no DICM prefix: a CSV file with a .dcm name."""
    folder = _new_case_folder(root, "text_named_dcm")
    path = folder / "export.dcm"
    path.write_text("PatientID,Modality\nP001,CT\n" * 20)
    return BadCase("text_named_dcm", folder, [path], "error", (E.InvalidDicomError,),
                   pixels=(E.InvalidDicomError, E.DecodeError))


def make_no_dicm_with_preamble(root) -> BadCase:
    """A 128-byte preamble, then the meta header without the DICM prefix."""
    folder = _new_case_folder(root, "no_dicm_with_preamble")
    data = _good_file_bytes(folder)
    path = folder / "nodicm.dcm"
    preamble = np.random.default_rng(5).bytes(128)
    path.write_bytes(preamble + data[132:])
    return BadCase("no_dicm_with_preamble", folder, [path], "error", (E.InvalidDicomError,),
                   pixels=(E.InvalidDicomError, E.DecodeError))


def make_bare_dataset_no_preamble(root) -> BadCase:
    """No preamble, no DICM, no meta header: a bare implicit VR data set (old ACR-NEMA style).

    Tolerated: errors.NotDicomError is only for files that do not parse as a bare data set.
    """
    folder = _new_case_folder(root, "bare_dataset_no_preamble")
    ds = _good_dataset(folder)
    path = folder / "bare.dcm"
    path.write_bytes(_dataset_bytes(ds, implicit=True))
    assert path.read_bytes()[:2] == b"\x08\x00"
    return BadCase("bare_dataset_no_preamble", folder, [path], "ok", (),
                   note="tolerated: a bare data set is readable DICOM")


# --- truncation and lengths ----------------------------------------------------------------------
def make_truncated_header(root) -> BadCase:
    folder = _new_case_folder(root, "truncated_header")
    data = _good_file_bytes(folder)
    cut = _element_offset(data, 0x00280030, b"DS") + 10  # inside Pixel Spacing's value
    path = folder / "cut_header.dcm"
    path.write_bytes(data[:cut])
    return BadCase("truncated_header", folder, [path], "error", (E.InvalidDicomError,),
                   pixels=(E.InvalidDicomError, E.DecodeError))


def make_truncated_pixels(root) -> BadCase:
    folder = _new_case_folder(root, "truncated_pixels")
    truth = _base_series(folder / "_src")
    data = truth.paths[1].read_bytes()
    start = _pixel_data_offset(data) + 12
    path = folder / "cut_pixels.dcm"
    path.write_bytes(data[:start + (len(data) - start) // 2])
    for other in truth.paths[:1] + truth.paths[2:]:  # the rest of the series stays valid
        shutil.copy2(other, folder / other.name)
    shutil.rmtree(folder / "_src")
    return BadCase("truncated_pixels", folder, [path], "error",
                   (E.TruncatedFileError, E.InvalidDicomError, E.DecodeError), tag="PixelData",
                   pixels=(E.InvalidDicomError, E.DecodeError))


def make_length_beyond_file(root) -> BadCase:
    """A private OB element whose 32-bit length says ~4 GiB in a file of a few KiB."""
    folder = _new_case_folder(root, "length_beyond_file")
    ds = _good_dataset(folder)
    block = ds.private_block(0x0009, "DICOMML BADFILES", create=True)
    block.add_new(0x01, "OB", b"\x00" * 8)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = bytearray(buffer.getvalue())
    at = _element_offset(bytes(data), 0x00091001, b"OB")
    struct.pack_into("<I", data, at + 8, 0xFFFFFFF0)
    path = folder / "huge_length.dcm"
    path.write_bytes(bytes(data))
    return BadCase("length_beyond_file", folder, [path], "error", (E.InvalidDicomError,),
                   pixels=(E.InvalidDicomError, E.DecodeError))


def make_pixel_length_beyond_file(root) -> BadCase:
    """Pixel Data declares 2 GiB; the file holds 512 bytes of it."""
    folder = _new_case_folder(root, "pixel_length_beyond_file")
    data = bytearray(_good_file_bytes(folder))
    at = _pixel_data_offset(bytes(data))
    struct.pack_into("<I", data, at + 8, 0x7FFFFFFE)
    path = folder / "huge_pixels.dcm"
    path.write_bytes(bytes(data))
    return BadCase("pixel_length_beyond_file", folder, [path], "error",
                   (E.TruncatedFileError, E.InvalidDicomError, E.DecodeError), tag="PixelData",
                   pixels=(E.InvalidDicomError, E.DecodeError))


# --- VRs -------------------------------------------------------------------------------------------
def make_invalid_vr(root) -> BadCase:
    """An explicit VR element whose VR bytes are not a VR at all ("ZZ")."""
    folder = _new_case_folder(root, "invalid_vr")
    data = bytearray(_good_file_bytes(folder))
    at = _element_offset(bytes(data), 0x00080060, b"CS")  # Modality
    data[at + 4:at + 6] = b"ZZ"
    path = folder / "bad_vr.dcm"
    path.write_bytes(bytes(data))
    return BadCase("invalid_vr", folder, [path], "error", (E.InvalidDicomError,),
                   pixels=(E.InvalidDicomError, E.DecodeError))


def make_invalid_vr_pixel_tag(root) -> BadCase:
    """pydicom's ExplVR_BigEnd.dcm with Samples per Pixel's VR bytes made "UW" and 41 bytes cut
    from the pixel data (found by the fuzzer): the fast path fails, the fallback meets the
    unknown VR."""
    folder = _new_case_folder(root, "invalid_vr_pixel_tag")
    data = bytearray(_testdata("ExplVR_BigEnd.dcm").read_bytes())
    at = data.find(struct.pack(">HH", 0x0028, 0x0002) + b"US", 132)
    assert at > 0
    data[at + 4:at + 6] = b"UW"
    cut = int(len(data) * 0.58)
    del data[cut:cut + 41]
    path = folder / "bad_vr_samples.dcm"
    path.write_bytes(bytes(data))
    return BadCase("invalid_vr_pixel_tag", folder, [path], "error", (E.InvalidDicomError,),
                   pixels=(E.InvalidDicomError, E.DecodeError))


def make_wrong_vr(root) -> BadCase:
    """Image Position (Patient) written as binary FD instead of decimal strings (DS)."""
    folder = _new_case_folder(root, "wrong_vr")
    truth = _base_series(folder / "_src")
    data = truth.paths[2].read_bytes()
    at = _element_offset(data, 0x00200032, b"DS")
    length = struct.unpack_from("<H", data, at + 6)[0]
    value = struct.pack("<3d", *truth.positions[2])
    patched = (data[:at + 4] + b"FD" + struct.pack("<H", len(value)) + value
               + data[at + 8 + length:])
    path = folder / "ipp_as_fd.dcm"
    path.write_bytes(patched)
    for other in truth.paths[:2] + truth.paths[3:]:
        shutil.copy2(other, folder / other.name)
    shutil.rmtree(folder / "_src")
    return BadCase("wrong_vr", folder, [path], "either",
                   (E.InvalidTagError, E.MissingTagError, E.InvalidDicomError),
                   tag="ImagePositionPatient")


# --- deflate bomb ----------------------------------------------------------------------------------
def _deflate_blocks(chunks) -> bytes:
    """Raw deflate stream (no zlib header) of ``chunks``; a full flush after each lets the
    same compressed block be repeated (no back-references cross a flush)."""
    out = []
    for chunk in chunks:
        comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        out.append(comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH))
    return b"".join(out)


def make_deflate_bomb(root) -> BadCase:
    """A deflated-syntax file of ~1 MiB whose data set inflates to more than 1 GiB.

    The data set holds the UIDs, then a private OB element of :data:`BOMB_BYTES` zeros, then
    the rest of the header and the pixels: a reader that inflates the whole data set before
    parsing allocates over 1 GiB.
    """
    folder = _new_case_folder(root, "deflate_bomb")
    ds = _good_dataset(folder)
    block = ds.private_block(0x0009, "DICOMML BADFILES", create=True)
    block.add_new(0x01, "OB", b"\x00" * 8)
    plain = _dataset_bytes(ds, implicit=False)
    at = plain.find(struct.pack("<HH", 0x0009, 0x1001) + b"OB")
    head, tail = plain[:at], plain[at + 12 + 8:]
    element = struct.pack("<HH2sHI", 0x0009, 0x1001, b"OB", 0, BOMB_BYTES)
    zeros = _deflate_blocks([bytes(16 << 20)])
    repeats, rest = divmod(BOMB_BYTES, 16 << 20)
    stream = (_deflate_blocks([head + element]) + zeros * repeats
              + _deflate_blocks([bytes(rest), tail]) + zlib.compressobj(
                  9, zlib.DEFLATED, -zlib.MAX_WBITS).flush())
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    header = io.BytesIO()
    header.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(header, meta, enforce_standard=True)
    path = folder / "bomb.dcm"
    path.write_bytes(header.getvalue() + stream)
    return BadCase("deflate_bomb", folder, [path], "error", (E.InvalidDicomError,),
                   pixels=(E.InvalidDicomError, E.DecodeError),
                   extra={"inflated_bytes": len(head) + 12 + BOMB_BYTES + len(tail)})


# --- corrupt compressed pixel data -----------------------------------------------------------------
def _reencapsulate(source: Path, path: Path, mutate: Callable[[bytes], bytes]) -> None:
    """Copy a compressed pydicom test file with each frame's codestream mutated."""
    ds = pydicom.dcmread(source)
    frames = list(generate_frames(ds.PixelData, number_of_frames=ds.get("NumberOfFrames", 1)))
    ds.PixelData = encapsulate([mutate(frame) for frame in frames])
    for keyword, value in _GEOMETRY.items():  # so that only the pixels can be blamed
        if keyword not in ds:
            setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=False)


_GEOMETRY = {"ImagePositionPatient": [0.0, 0.0, 0.0],
             "ImageOrientationPatient": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
             "PixelSpacing": [0.5, 0.5]}


def _break_jpeg(frame: bytes) -> bytes:
    """Keep SOI and the tables; cut the entropy-coded data after 64 bytes (no EOI)."""
    sos = frame.find(b"\xff\xda")
    cut = frame[:sos + 64]
    return cut + b"\x00" * (len(cut) % 2)


def _break_j2k(frame: bytes) -> bytes:
    """Zero the image size in the SIZ marker segment of the J2K codestream."""
    data = bytearray(frame)
    siz = data.find(b"\xff\x51")
    data[siz + 6:siz + 14] = b"\x00" * 8  # Xsiz, Ysiz
    return bytes(data)


def _break_rle(frame: bytes) -> bytes:
    """An RLE header claiming 15 segments whose offsets run past the frame."""
    data = bytearray(frame)
    struct.pack_into("<I", data, 0, 15)
    for i in range(15):
        struct.pack_into("<I", data, 4 + 4 * i, len(frame) + 1000 * (i + 1))
    return bytes(data)


def _break_rle_offset(frame: bytes) -> bytes:
    """Keep the segment count; make the second segment's offset ~4 GiB (found by the fuzzer:
    a native RLE decoder that trusts it reads far out of bounds)."""
    data = bytearray(frame)
    struct.pack_into("<I", data, 8, 0xFFFFFF08)
    return bytes(data)


_CODEC_CASES = {
    "corrupt_jpeg": ("JPEG-lossy.dcm", _break_jpeg),
    "corrupt_j2k": ("MR_small_jp2klossless.dcm", _break_j2k),
    "corrupt_rle": ("MR_small_RLE.dcm", _break_rle),
    "rle_offset_overflow": ("SC_rgb_rle_2frame.dcm", _break_rle_offset),
}


def _make_codec_case(root, name: str) -> BadCase:
    source, mutate = _CODEC_CASES[name]
    folder = _new_case_folder(root, name)
    path = folder / f"{name}.dcm"
    _reencapsulate(_testdata(source), path, mutate)
    return BadCase(name, folder, [path], "either", (E.DecodeError, E.InvalidDicomError),
                   tag="PixelData", pixels=(E.DecodeError, E.InvalidDicomError),
                   extra={"source": source})


def make_corrupt_jpeg(root) -> BadCase:
    return _make_codec_case(root, "corrupt_jpeg")


def make_corrupt_j2k(root) -> BadCase:
    return _make_codec_case(root, "corrupt_j2k")


def make_corrupt_rle(root) -> BadCase:
    return _make_codec_case(root, "corrupt_rle")


def make_rle_offset_overflow(root) -> BadCase:
    """RLE segment offset beyond the frame. Decode it only in a child process: a decoder that
    trusts the offset may crash the interpreter (see tests/test_hardening.py)."""
    case = _make_codec_case(root, "rle_offset_overflow")
    case.extra["crash_risk"] = True
    return case


# --- series-level problems ---------------------------------------------------------------------------
def make_mixed_matrix(root) -> BadCase:
    """One series UID, one orientation: 4 slices of 16x16 then 2 slices of 20x20."""
    folder = _new_case_folder(root, "mixed_matrix")
    first = _base_series(folder, shape=(4, 16, 16), seed=1)
    second = _base_series(folder / "_more", shape=(2, 20, 20), seed=1,
                          series_uid=first.series_uid, study_uid=first.study_uid,
                          patient_id=first.patient_id,
                          FrameOfReferenceUID=first.meta["frame_of_reference_uid"],
                          origin=tuple(first.positions[-1] + [0, 0, 2.5]))
    moved = []
    for path in second.paths:
        target = folder / f"big_{path.name}"
        shutil.move(path, target)
        moved.append(target)
    shutil.rmtree(folder / "_more")
    return BadCase("mixed_matrix", folder, first.paths + moved, "either",
                   (E.InconsistentSeriesError, E.MultipleSeriesError, E.GeometryError))


def make_missing_ipp(root) -> BadCase:
    """A 4-slice series where one file lacks Image Position (Patient)."""
    folder = _new_case_folder(root, "missing_ipp")
    truth = _base_series(folder)
    path = truth.paths[1]
    ds = pydicom.dcmread(path)
    del ds.ImagePositionPatient
    ds.save_as(path, enforce_file_format=True)
    return BadCase("missing_ipp", folder, [path], "either",
                   (E.MissingTagError, E.GeometryError), tag="ImagePositionPatient",
                   extra={"series": truth.paths})


def make_missing_rows(root) -> BadCase:
    """One slice of a series lost its Rows tag (found by the fuzzer as a bit flip in the tag)."""
    folder = _new_case_folder(root, "missing_rows")
    truth = _base_series(folder)
    path = truth.paths[2]
    ds = pydicom.dcmread(path)
    del ds.Rows
    ds.save_as(path, enforce_file_format=False)
    return BadCase("missing_rows", folder, [path], "either",
                   (E.MissingTagError, E.InvalidDicomError), tag="Rows")


def make_nan_spacing(root) -> BadCase:
    """Pixel Spacing holds the strings "nan\\nan" in every file of a series."""
    folder = _new_case_folder(root, "nan_spacing")
    truth = _base_series(folder / "_src")
    culprits = []
    for src in truth.paths:
        target = folder / src.name
        target.write_bytes(_replace_value(src.read_bytes(), 0x00280030, b"DS", b"nan\\nan"))
        culprits.append(target)
    shutil.rmtree(folder / "_src")
    return BadCase("nan_spacing", folder, culprits, "either", (E.InvalidTagError,),
                   tag="PixelSpacing")


def make_dicomdir_outside(root) -> BadCase:
    """A DICOMDIR whose records point outside its folder (``../outside/...`` and an absolute
    path), next to a valid series; the outside files exist and must never be opened."""
    folder = _new_case_folder(root, "dicomdir_outside")
    outside = Path(root) / "dicomdir_outside__outside"
    outside_truth = _base_series(outside, shape=(2, 8, 8), seed=9)
    inside = _base_series(folder / "series", shape=(3, 8, 8), seed=8)
    ds = pydicom.dcmread(_testdata("dicomdirtests/DICOMDIR"))
    images = [r for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r]
    escape = ["..", outside.name, outside_truth.paths[0].name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, record in enumerate(images):
            record.ReferencedFileID = escape if i % 2 == 0 else str(outside_truth.paths[1])
    path = folder / "DICOMDIR"
    with warnings.catch_warnings():  # the escaping IDs are invalid CS values, on purpose
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=False)
    return BadCase("dicomdir_outside", folder, [path], "either", (),
                   extra={"outside": outside, "outside_paths": outside_truth.paths,
                          "inside_paths": inside.paths})


def make_deep_sequence(root) -> BadCase:
    """Sequences nested 5000 deep (undefined lengths) before the pixel data."""
    folder = _new_case_folder(root, "deep_sequence")
    data = _good_file_bytes(folder)
    depth = 5000
    opening = struct.pack("<HH2sHI", 0x0009, 0x1010, b"SQ", 0, 0xFFFFFFFF) + \
        struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    at = _element_offset(data, 0x00100010, b"PN")  # before Patient's Name (group 0010)
    path = folder / "deep.dcm"
    path.write_bytes(data[:at] + opening * depth + closing * depth + data[at:])
    return BadCase("deep_sequence", folder, [path], "error", (E.InvalidDicomError,),
                   pixels=(E.InvalidDicomError, E.DecodeError))


#: every case builder, by name (file-level cases first)
BUILDERS: dict[str, Callable[[Path], BadCase]] = {
    "zero_bytes": make_zero_bytes,
    "random_bytes": make_random_bytes,
    "text_named_dcm": make_text_named_dcm,
    "no_dicm_with_preamble": make_no_dicm_with_preamble,
    "bare_dataset_no_preamble": make_bare_dataset_no_preamble,
    "truncated_header": make_truncated_header,
    "truncated_pixels": make_truncated_pixels,
    "length_beyond_file": make_length_beyond_file,
    "pixel_length_beyond_file": make_pixel_length_beyond_file,
    "invalid_vr": make_invalid_vr,
    "invalid_vr_pixel_tag": make_invalid_vr_pixel_tag,
    "wrong_vr": make_wrong_vr,
    "deflate_bomb": make_deflate_bomb,
    "deep_sequence": make_deep_sequence,
    "corrupt_jpeg": make_corrupt_jpeg,
    "corrupt_j2k": make_corrupt_j2k,
    "corrupt_rle": make_corrupt_rle,
    "rle_offset_overflow": make_rle_offset_overflow,
    "mixed_matrix": make_mixed_matrix,
    "missing_ipp": make_missing_ipp,
    "missing_rows": make_missing_rows,
    "nan_spacing": make_nan_spacing,
    "dicomdir_outside": make_dicomdir_outside,
}


def build_corpus(root, names=None) -> dict[str, BadCase]:
    """Write the cases ``names`` (default: all) under ``root``; return {name: BadCase}."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return {name: BUILDERS[name](root) for name in (names or BUILDERS)}


def tree_snapshot(root) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of every file and folder under ``root``: compare two
    snapshots to prove nothing was written, renamed or touched."""
    root = Path(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            st = full.lstat()
            out[str(full.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out
