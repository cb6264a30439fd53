"""Structure-aware fuzzing (issue 25): well-formed Part 10 files whose attributes lie about
their pixels, run through the child-process harness of :mod:`fuzz_scan_load` (scan,
read_pixels, load_series, read_many of paths and of the catalog row, under an address-space
limit; crashes and hangs pinned on one input).

Each input is a small explicit VR little endian CT file written with pydicom, whose header
then lies in one or two ways: Rows / Columns / NumberOfFrames / SamplesPerPixel /
BitsAllocated that disagree with the data (up to 2**32 - 1), a Pixel Data length field
beyond the file, a second Pixel Data element, pixel or geometry tags with a wrong VR, and
functional-group sequences nested deep or cut short.

Further families (one per input, drawn at random; ``FAMILIES``):

- ``codec``: every encapsulated transfer syntax of :mod:`dicomml.syntaxes` paired with random
  bytes, another codec's codestream (from pydicom's test files), a cut-short stream of its own
  codec, or its own stream under Rows / Columns / BitsAllocated / SamplesPerPixel that lie;
- ``encaps``: broken encapsulation: Basic Offset Table count, offsets and item length; item
  lengths beyond the file, short, odd or undefined; a wrong item tag; no sequence delimiter;
  frames and fragments that disagree; Extended Offset Table (and lengths) that lie;
- ``geometry``: non-finite, degenerate or ill-counted ImagePositionPatient,
  ImageOrientationPatient, PixelSpacing, SliceThickness (DS text written raw);
- ``palette``: PALETTE COLOR with LUT descriptors and data that disagree;
- ``csa``: a Siemens mosaic whose CSA image header and NumberOfImagesInMosaic lie;
- ``float``: Float / Double Float Pixel Data of the wrong length, beside or instead of Pixel
  Data;
- ``wrong_vr``: Rows, Columns, BitsAllocated, NumberOfFrames, SamplesPerPixel and the
  geometry tags written with another VR or a value of the wrong size;
- ``file``: file meta without the 128-byte preamble, a functional-group item longer than
  the file;
- ``enhanced``: an enhanced CT whose functional groups are missing, short, long, empty, or
  hold missing, non-finite or degenerate positions, orientations and spacings.

Usage::

    python benchmarks/fuzz_structured.py --inputs 300 --seed 1 --out /tmp/structured

prints the same JSON summary as ``fuzz_scan_load.py``.
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

LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
            b"UV"}
BIG = [0, 1, 2, 3, 4, 255, 256, 65535, 1_000_001, 2**31 - 1, 2**32 - 1]
LIES = ["Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "BitsAllocated", "length",
        "second_pixel", "vr", "nested", "cut_group", "BitsStored", "PlanarConfiguration",
        "PixelRepresentation", "frames_text"]


def _element(group: int, elem: int, vr: bytes, value: bytes, length: int | None = None) -> bytes:
    """One explicit VR little endian element (``length``: the length field, default the
    value's)."""
    n = len(value) if length is None else length
    if vr in LONG_VRS:
        return struct.pack("<HH", group, elem) + vr + b"\0\0" + struct.pack("<I", n) + value
    return struct.pack("<HH", group, elem) + vr + struct.pack("<H", n & 0xFFFF) + value


def _header(attrs: dict, raw: dict | None = None, syntax: str | None = None,
            sequences: bool = False) -> bytes:
    """A Part 10 file's bytes up to Pixel Data: ``attrs`` set through pydicom, ``raw``
    {tag: (VR, value bytes)} written as they are (no validation), ``syntax`` the Transfer
    Syntax UID of the meta header (the data set is always explicit VR little endian)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = attrs.pop("SOPClassUID")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    written = syntax or ExplicitVRLittleEndian
    if not UID(written).is_transfer_syntax:  # unknown to pydicom (e.g. 1.2.840.10008.1.2.8.1)
        written = _STAND_IN[(len(written) + 1) // 2 * 2]
    ds.file_meta.TransferSyntaxUID = written
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality, ds.PatientID = \
        "1.2.3", "1.2.3.4", "CT", "p"
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1, 1]
    ds.PhotometricInterpretation = "MONOCHROME2"
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    if "BitsStored" not in attrs:
        ds.BitsStored, ds.HighBit = ds.BitsAllocated, ds.BitsAllocated - 1
    if "PixelRepresentation" not in attrs:
        ds.PixelRepresentation = 0
    for tag in raw or {}:
        if tag in ds:
            del ds[tag]
    buf = io.BytesIO()
    ds.save_as(buf, implicit_vr=False, little_endian=True, enforce_file_format=True)
    data = buf.getvalue()
    if syntax and written != syntax:  # the stand-in's value swapped for the real UID
        pad = lambda uid: uid.encode() + b"\0" * (len(uid) % 2)  # noqa: E731
        data = data.replace(pad(written), pad(syntax), 1)
    if sequences:  # pydicom wrote the sequences; raw elements are not spliced in then
        return data
    return _insert_raw(data, raw or {})


#: known transfer syntaxes written in place of one pydicom does not know, by padded length
_STAND_IN = {20: "1.2.840.10008.1.2.1", 22: "1.2.840.10008.1.2.4.50",
             24: "1.2.840.10008.1.2.4.201"}


def _insert_raw(data: bytes, raw: dict) -> bytes:
    """``data`` (a Part 10 file of explicit VR little endian elements without sequences) with
    the ``raw`` elements inserted in tag order."""
    pending = sorted(raw.items())
    out, pos = bytearray(data[:132]), 132
    while pos + 8 <= len(data):
        group, elem = struct.unpack_from("<HH", data, pos)
        vr = data[pos + 4:pos + 6]
        if vr in LONG_VRS:
            end = pos + 12 + struct.unpack_from("<I", data, pos + 8)[0]
        else:
            end = pos + 8 + struct.unpack_from("<H", data, pos + 6)[0]
        while pending and group > 2 and pending[0][0] < (group << 16 | elem):
            tag, (vr_text, value) = pending.pop(0)
            out += _element(tag >> 16, tag & 0xFFFF, vr_text.encode(), value)
        out += data[pos:end]
        pos = end
    for tag, (vr_text, value) in pending:
        out += _element(tag >> 16, tag & 0xFFFF, vr_text.encode(), value)
    return bytes(out)


def hostile(rng: random.Random) -> tuple[bytes, list[str]]:
    """One hostile file's bytes and the lies it tells."""
    rows, cols, frames, spp = rng.choice([1, 4, 8]), rng.choice([1, 4, 8]), rng.choice([1, 3]), 1
    attrs = {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "Rows": rows, "Columns": cols,
             "NumberOfFrames": frames, "SamplesPerPixel": 1, "BitsAllocated": 16}
    data = bytes(rng.randrange(256) for _ in range(rows * cols * frames * spp * 2))
    lies = rng.sample(LIES, rng.choice([1, 1, 2]))
    groups, length, tail, raw_frames = b"", None, b"", None
    for lie in lies:
        if lie in ("Rows", "Columns", "NumberOfFrames"):
            attrs[lie] = max(1, rng.choice(BIG)) if lie == "NumberOfFrames" else \
                rng.choice(BIG) & 0xFFFF
        elif lie == "SamplesPerPixel":
            attrs.update(SamplesPerPixel=rng.choice([2, 3, 4]), PlanarConfiguration=0,
                         PhotometricInterpretation="RGB")
        elif lie == "BitsAllocated":
            attrs["BitsAllocated"] = rng.choice([1, 8, 12, 32, 64])
        elif lie == "BitsStored":  # beyond Bits Allocated, zero, or a High Bit that lies
            attrs["BitsStored"] = rng.choice([0, 17, 64, 255])
            attrs["HighBit"] = rng.choice([attrs["BitsStored"] - 1, 15, 0, 40]) % 65536
        elif lie == "PlanarConfiguration":
            attrs.update(PlanarConfiguration=rng.choice([1, 2, 255]),
                         SamplesPerPixel=rng.choice([1, 3]))
            if attrs["SamplesPerPixel"] == 3:
                attrs["PhotometricInterpretation"] = "RGB"
        elif lie == "frames_text":  # NumberOfFrames (IS) text that is not a count
            raw_frames = rng.choice([b"0 ", b"-1", b"1.5 ", b"1e3 ", b"+2", b"", b"2\\3 ",
                                     b" 2", b"0x2 ", b"99999999999 "])
        elif lie == "PixelRepresentation":
            attrs["PixelRepresentation"] = rng.choice([2, 255, 65535])
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
    if raw_frames is not None:
        attrs.pop("NumberOfFrames", None)
        raw = {0x00280008: ("IS", raw_frames + b" " * (len(raw_frames) % 2))}
        return _header(attrs, raw) + groups + pixel + tail, lies + [f"{raw_frames!r}"]
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


# --- the families beyond the header lies -------------------------------------------------------
CT, ENHANCED_CT, MR = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1", \
    "1.2.840.10008.5.1.4.1.1.4"
#: one pydicom test file per codec family: its first frame is that codec's codestream
STREAM_FILES = {"jpeg": "SC_rgb_small_odd_jpeg.dcm", "jpeg12": "JPEG-lossy.dcm",
                "jpeg_lossless": "SC_rgb_jpeg_gdcm.dcm", "jpegls": "JPEGLSNearLossless_08.dcm",
                "jpegls16": "MR_small_jpeg_ls_lossless.dcm", "j2k": "JPEG2000.dcm",
                "j2k_lossless": "MR_small_jp2klossless.dcm", "rle": "rtdose_rle_1frame.dcm",
                "rle_rgb": "SC_rgb_rle.dcm"}
_STREAMS: dict = {}
FAMILIES = ["header", "codec", "codec", "encaps", "encaps", "geometry", "palette", "csa",
            "float", "wrong_vr", "file", "enhanced"]
NASTY_DS = [b"nan", b"NaN", b"inf", b"-inf", b"1e400", b"-1e400", b"0", b"", b"abc", b"1e-400",
            b"1" * 16, b"+-1", b"0x10"]


def streams() -> dict:
    """{codec: (first frame's bytes, Rows, Columns, SamplesPerPixel, BitsAllocated, syntax)}
    read once from pydicom's test files."""
    if not _STREAMS:
        import pydicom
        from pydicom.encaps import generate_frames

        folder = Path(pydicom.data.__file__).parent / "test_files"
        for codec, name in STREAM_FILES.items():
            ds = pydicom.dcmread(folder / name)
            frame = next(generate_frames(ds.PixelData, number_of_frames=1))
            _STREAMS[codec] = (bytes(frame), int(ds.Rows), int(ds.Columns),
                               int(ds.SamplesPerPixel), int(ds.BitsAllocated),
                               str(ds.file_meta.TransferSyntaxUID))
    return _STREAMS


def _syntaxes() -> list[str]:
    from dicomml import syntaxes

    return sorted(syntaxes.ENCAPSULATED)


def _item(value: bytes, length: int | None = None, tag: bytes = b"\xfe\xff\x00\xe0") -> bytes:
    return tag + struct.pack("<I", len(value) if length is None else length) + value


def encapsulated(fragments: list[bytes], *, bot: bytes = b"", delimiter: bool = True) -> bytes:
    """The encapsulated Pixel Data element (undefined length): offset table item, one item per
    fragment (even length), sequence delimiter."""
    body = _item(bot) + b"".join(_item(f + b"\0" * (len(f) % 2)) for f in fragments)
    end = b"\xfe\xff\xdd\xe0\0\0\0\0" if delimiter else b""
    return struct.pack("<HH", 0x7FE0, 0x0010) + b"OB\0\0\xff\xff\xff\xff" + body + end


def _stream_attrs(stream, rows=None, columns=None) -> dict:
    _, r, c, spp, bits, _ = stream
    attrs = {"SOPClassUID": CT, "Rows": rows or r, "Columns": columns or c,
             "SamplesPerPixel": spp, "BitsAllocated": bits,
             "PhotometricInterpretation": "RGB" if spp == 3 else "MONOCHROME2"}
    if spp == 3:
        attrs["PlanarConfiguration"] = 0
    return attrs


def codec_case(rng: random.Random) -> tuple[bytes, list[str]]:
    """An encapsulated syntax paired with garbage, another codec's stream, its own stream cut
    short, or its own stream under lying Rows / Columns / bits / samples."""
    all_streams = streams()
    syntax = rng.choice(_syntaxes())
    own = [c for c, s in all_streams.items() if s[5] == syntax]
    pick = rng.choice(["garbage", "other", "cut", "lie"] if own else ["garbage", "other"])
    codec = rng.choice(own) if pick in ("cut", "lie") else rng.choice(sorted(all_streams))
    stream = all_streams[codec]
    attrs = _stream_attrs(stream)
    frame = stream[0]
    if pick == "garbage":
        frame = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2, 7, 64, 600])))
        frame = rng.choice([b"", b"\xff\xd8", b"\xff\x4f\xff\x51", b"\x01\0\0\0"]) + frame
    elif pick == "cut":
        frame = frame[:rng.randrange(len(frame))]
    elif pick == "lie":
        key = rng.choice(["Rows", "Columns", "BitsAllocated", "SamplesPerPixel",
                          "NumberOfFrames"])
        size = attrs.get(key, 1)
        attrs[key] = {"BitsAllocated": rng.choice([1, 8, 16, 32, 64]),
                      "SamplesPerPixel": rng.choice([1, 3]),
                      "NumberOfFrames": rng.choice([2, 3, 255])}.get(
            key, rng.choice([1, 2, size + 1, size * 2, 4096, 65535]))
        if key == "SamplesPerPixel":
            attrs["PhotometricInterpretation"] = "RGB" if attrs[key] == 3 else "MONOCHROME2"
        if key == "BitsAllocated":
            attrs.pop("PlanarConfiguration", None) if attrs["SamplesPerPixel"] == 1 else None
        pick = f"lie {key}={attrs[key]}"
    fragments = [frame] * rng.choice([1, 1, 2])
    if len(fragments) > 1:
        attrs["NumberOfFrames"] = attrs.get("NumberOfFrames", len(fragments))
    return _header(attrs, syntax=syntax) + encapsulated(fragments), \
        [f"{syntax} with {pick} ({codec})"]


ENCAPS_LIES = ["bot_count", "bot_offsets", "bot_odd", "item_long", "item_short",
               "item_undefined", "no_delimiter", "bad_item_tag", "frames_more", "frames_fewer",
               "eot", "odd_fragment", "split"]


def encaps_case(rng: random.Random) -> tuple[bytes, list[str]]:
    """A valid codestream (2 frames) whose encapsulation lies."""
    codec = rng.choice(sorted(streams()))
    stream = streams()[codec]
    attrs = _stream_attrs(stream)
    frames = [stream[0], stream[0]]
    attrs["NumberOfFrames"] = 2
    lie = rng.choice(ENCAPS_LIES)
    sizes = [len(f) + 8 + len(f) % 2 for f in frames]
    offsets = [0, sizes[0]]
    bot = struct.pack("<2I", *offsets) if rng.random() < 0.5 else b""
    raw = {}
    delimiter, item_tag = True, b"\xfe\xff\x00\xe0"
    if lie == "bot_count":
        count = rng.choice([1, 3, 9])
        bot = struct.pack(f"<{count}I", *[min(i * sizes[0], 2**32 - 1) for i in range(count)])
    elif lie == "bot_offsets":
        bot = struct.pack("<2I", *rng.choice([(0, 2**32 - 1), (sizes[0], 0), (7, 3),
                                             (0, sizes[0] + 1), (2**31, 2**31)]))
    elif lie == "bot_odd":
        bot = struct.pack("<2I", *offsets) + b"\x01\x02\x03"
    elif lie == "frames_more":
        attrs["NumberOfFrames"] = rng.choice([3, 17, 65535, 2**31 - 1])
    elif lie == "frames_fewer":
        attrs["NumberOfFrames"] = 1
    elif lie == "split":  # three fragments for two frames, no offset table
        half = max(1, len(frames[0]) // 2)
        frames = [frames[0][:half], frames[0][half:], frames[1]]
        bot = b""
    elif lie == "odd_fragment":
        frames = [frames[0] + b"\x00\x01\x02", frames[1]]
    elif lie == "no_delimiter":
        delimiter = False
    elif lie == "eot":
        count = rng.choice([1, 2, 3])
        eot = [rng.choice([0, sizes[0], 2**40, 2**64 - 1, 7]) for _ in range(count)]
        lengths = [rng.choice([len(frames[0]), 0, 2**33, 1]) for _ in range(
            rng.choice([count, count + 1]))]
        raw = {0x7FE00001: ("OV", struct.pack(f"<{len(eot)}Q", *eot)),
               0x7FE00002: ("OV", struct.pack(f"<{len(lengths)}Q", *lengths))}
        bot = b""
    element = _encaps_element(frames, bot, delimiter, item_tag)
    if lie in ("item_long", "item_short", "item_undefined", "bad_item_tag"):
        element = _break_item(element, lie, rng)
    return _header(attrs, raw, syntax=stream[5]) + element, [f"{lie} ({codec})"]


def _encaps_element(frames, bot, delimiter, item_tag) -> bytes:
    body = _item(bot) + b"".join(_item(f + b"\0" * (len(f) % 2), tag=item_tag) for f in frames)
    end = b"\xfe\xff\xdd\xe0\0\0\0\0" if delimiter else b""
    return struct.pack("<HH", 0x7FE0, 0x0010) + b"OB\0\0\xff\xff\xff\xff" + body + end


def _break_item(element: bytes, lie: str, rng: random.Random) -> bytes:
    """The second or third item of ``element`` (the offset table is the first) broken."""
    items, pos = [], 12
    while pos + 8 <= len(element) and element[pos:pos + 4] == b"\xfe\xff\x00\xe0":
        items.append(pos)
        pos += 8 + struct.unpack_from("<I", element, pos + 4)[0]
    at = rng.choice(items[1:] or items)
    out = bytearray(element)
    length = struct.unpack_from("<I", element, at + 4)[0]
    if lie == "item_long":
        out[at + 4:at + 8] = struct.pack("<I", rng.choice([length + 2, 0xFFFFFFF0,
                                                           len(element) * 3]))
    elif lie == "item_short":
        out[at + 4:at + 8] = struct.pack("<I", rng.choice([0, 2, max(0, length - 2)]))
    elif lie == "item_undefined":
        out[at + 4:at + 8] = b"\xff\xff\xff\xff"
    else:
        out[at:at + 4] = rng.choice([b"\xfe\xff\x0d\xe0", b"\xe0\x7f\x10\x00", b"\0\0\0\0"])
    return bytes(out)


GEOMETRY_TAGS = {"ImagePositionPatient": (0x00200032, 3), "ImageOrientationPatient":
                 (0x00200037, 6), "PixelSpacing": (0x00280030, 2),
                 "SliceThickness": (0x00180050, 1), "SpacingBetweenSlices": (0x00180088, 1)}


def geometry_case(rng: random.Random) -> tuple[bytes, list[str]]:
    """Geometry tags that are non-finite, degenerate, of the wrong count, or not numbers."""
    raw, lies = {}, []
    for name in rng.sample(sorted(GEOMETRY_TAGS), rng.choice([1, 1, 2])):
        tag, count = GEOMETRY_TAGS[name]
        kind = rng.choice(["nasty", "count", "degenerate", "huge"])
        if kind == "nasty":
            values = [b"1"] * count
            values[rng.randrange(count)] = rng.choice(NASTY_DS)
        elif kind == "count":
            values = [b"1"] * rng.choice([0, 1, count - 1, count + 1, 12])
        elif kind == "degenerate":
            values = {6: [rng.choice([b"0", b"1"])] * 6, 3: [b"0"] * 3, 2: [b"0", b"-1"],
                      1: [b"-1"]}[count]
        else:
            values = [b"1e300", b"-1e300", b"1e-300"][:count] + [b"1"] * max(0, count - 3)
        text = b"\\".join(values)
        raw[tag] = ("DS", text + b" " * (len(text) % 2))
        lies.append(f"{name} {kind}: {text[:40]!r}")
    frames = rng.choice([1, 1, 3])
    attrs = {"SOPClassUID": CT, "Rows": 4, "Columns": 4, "NumberOfFrames": frames,
             "SamplesPerPixel": 1, "BitsAllocated": 16}
    data = bytes(32 * frames)
    return _header(attrs, raw) + _element(0x7FE0, 0x0010, b"OW", data), lies


def palette_case(rng: random.Random) -> tuple[bytes, list[str]]:
    """PALETTE COLOR whose LUT descriptors and data disagree."""
    entries = rng.choice([0, 1, 4, 256, 4096, 65535])
    first = rng.choice([0, 0, 5, 65535])
    bits = rng.choice([8, 16, 16, 0, 3, 32])
    raw, lies = {}, [f"descriptor ({entries}, {first}, {bits})"]
    data_len = rng.choice([entries * 2, entries, 2, 0, 1, entries * 2 + 2, 3])
    for i, colour in enumerate(["Red", "Green", "Blue"]):
        if rng.random() < 0.1:
            lies.append(f"no {colour}")
            continue
        raw[0x00281101 + i] = ("US", struct.pack("<3H", entries & 0xFFFF, first, bits & 0xFFFF))
        raw[0x00281201 + i] = ("OW", bytes(rng.randrange(256) for _ in range(data_len)))
    if rng.random() < 0.2:
        raw[0x00281221] = ("OW", bytes(rng.randrange(256) for _ in range(rng.choice([2, 6, 9]))))
        lies.append("segmented red")
    lies.append(f"data {data_len} bytes")
    stored = rng.choice([8, 16])
    attrs = {"SOPClassUID": CT, "Rows": 4, "Columns": 4, "SamplesPerPixel": 1,
             "BitsAllocated": stored, "PhotometricInterpretation": "PALETTE COLOR"}
    pixels = bytes(rng.randrange(256) for _ in range(16 * stored // 8))
    return _header(attrs, raw) + _element(0x7FE0, 0x0010, b"OW", pixels), lies


def csa_case(rng: random.Random) -> tuple[bytes, list[str]]:
    """A Siemens mosaic whose CSA image header and NumberOfImagesInMosaic lie."""
    tiles = rng.choice([0, 1, 4, 5, 9, 10_000, 2**31 - 1])
    csa = _csa(rng)
    raw = {0x00290010: ("LO", b"SIEMENS CSA HEADER"), 0x00291010: ("OB", csa),
           0x00191008: ("CS", b"IMAGE NUM 4 "), 0x0019100A: ("US", struct.pack("<H", tiles
                                                                              & 0xFFFF)),
           0x00190010: ("LO", b"SIEMENS MR HEADER ")}
    attrs = {"SOPClassUID": MR, "Rows": 8, "Columns": 8, "SamplesPerPixel": 1,
             "BitsAllocated": 16, "Manufacturer": "SIEMENS",
             "ImageType": ["ORIGINAL", "PRIMARY", "M", "MOSAIC"],
             "AcquisitionMatrix": [rng.choice([0, 4, 8, 65535]), 0, 0,
                                   rng.choice([0, 4, 8, 65535])]}
    attrs["Modality"] = "MR"
    pixels = bytes(128)
    return _header(attrs, raw) + _element(0x7FE0, 0x0010, b"OW", pixels), \
        [f"tiles {tiles}", f"csa {len(csa)} bytes"]


def _csa(rng: random.Random) -> bytes:
    """A CSA2 header (SV10) with one element whose counts and item lengths may lie."""
    def element(name: bytes, values: list[bytes], vm: int, items: int, item_len=None) -> bytes:
        head = name.ljust(64, b"\0") + struct.pack("<i4sii", vm, b"DS\0\0", 0, items) + \
            struct.pack("<i", 77)
        body = b""
        for v in values:
            n = len(v) if item_len is None else item_len
            body += struct.pack("<4i", n, n, 77, n) + v + b"\0" * (-len(v) % 4)
        return head + body

    names = [b"NumberOfImagesInMosaic", b"SliceNormalVector", b"MosaicRefAcqTimes"]
    values = [rng.choice([b"4", b"nan", b"1e400", b"-3", b"x", b"99999999999"])
              for _ in range(rng.choice([1, 3]))]
    n_items = rng.choice([len(values), 0, 6, 2**31 - 1, -1])
    body = element(rng.choice(names), values, len(values), n_items,
                   rng.choice([None, None, 2**31 - 1, -5, 1000]))
    n_elements = rng.choice([1, 0, 2, 2**31 - 1])
    head = b"SV10\x04\x03\x02\x01" + struct.pack("<ii", n_elements, 77)
    data = head + body
    if rng.random() < 0.3:
        data = data[:rng.randrange(len(data))]
    return data


def float_case(rng: random.Random) -> tuple[bytes, list[str]]:
    """Float (7FE0,0008) / Double Float (7FE0,0009) Pixel Data of the wrong length."""
    double = rng.random() < 0.5
    bits = 64 if double else 32
    frames = rng.choice([1, 2])
    declared = 16 * frames * bits // 8
    length = rng.choice([declared - bits // 8, declared // 2, declared + 8, 0, 3, declared])
    lies = [f"{'double' if double else 'float'} {length} of {declared} bytes"]
    attrs = {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.30", "Rows": 4, "Columns": 4,
             "NumberOfFrames": frames, "SamplesPerPixel": 1, "BitsAllocated": bits}
    value = bytes(max(length, 0))
    element = struct.pack("<HH", 0x7FE0, 0x0009 if double else 0x0008) + \
        (b"OD" if double else b"OF") + b"\0\0" + struct.pack("<I", length) + value
    if rng.random() < 0.2:
        element += _element(0x7FE0, 0x0010, b"OW", bytes(32 * frames))
        lies.append("and Pixel Data")
    if rng.random() < 0.2:
        attrs["BitsAllocated"] = 16
        lies.append("BitsAllocated 16")
    return _header(attrs) + element, lies


WRONG_VR_TAGS = {"Rows": 0x00280010, "Columns": 0x00280011, "BitsAllocated": 0x00280100,
                 "BitsStored": 0x00280101, "SamplesPerPixel": 0x00280002,
                 "NumberOfFrames": 0x00280008, "PixelRepresentation": 0x00280103,
                 "ImagePositionPatient": 0x00200032, "ImageOrientationPatient": 0x00200037,
                 "PixelSpacing": 0x00280030, "PlanarConfiguration": 0x00280006}


def wrong_vr_case(rng: random.Random) -> tuple[bytes, list[str]]:
    """Pixel and geometry tags written with another VR, or a value of the wrong size."""
    raw, lies = {}, []
    for name in rng.sample(sorted(WRONG_VR_TAGS), rng.choice([1, 2])):
        vr = rng.choice(["OB", "UN", "SQ", "FD", "FL", "US", "SS", "UL", "LO", "UT", "AT", "DS",
                         "IS"])
        value = rng.choice([b"", b"\x04", b"\x04\x00\x00", b"\x04\x00" * 3, b"4 ",
                            b"abcd", bytes(8), b"\xff" * 8, b"1\\2\\3\\4\\5\\6\\7"])
        raw[WRONG_VR_TAGS[name]] = (vr, value)
        lies.append(f"{name} as {vr} {value[:12]!r}")
    attrs = {"SOPClassUID": CT, "Rows": 4, "Columns": 4, "SamplesPerPixel": 1,
             "BitsAllocated": 16}
    return _header(attrs, raw) + _element(0x7FE0, 0x0010, b"OW", bytes(32)), lies


def file_case(rng: random.Random) -> tuple[bytes, list[str]]:
    """File-level lies: the meta header without the preamble, a functional-group item longer
    than the file."""
    if rng.random() < 0.5:
        attrs = {"SOPClassUID": CT, "Rows": 4, "Columns": 4, "SamplesPerPixel": 1,
                 "BitsAllocated": 16}
        data = _header(attrs) + _element(0x7FE0, 0x0010, b"OW", bytes(32))
        cut = rng.choice([128, 132])
        return data[cut:], [f"no preamble (first {cut} bytes cut)"]
    attrs = {"SOPClassUID": ENHANCED_CT, "Rows": 4, "Columns": 4, "SamplesPerPixel": 1,
             "BitsAllocated": 16, "NumberOfFrames": 2}
    length = rng.choice([0xFFFFFFF0, 4096, 100])
    group = struct.pack("<HH", 0x5200, 0x9230) + b"SQ\0\0\xff\xff\xff\xff" + \
        b"\xfe\xff\x00\xe0" + struct.pack("<I", length)
    return _header(attrs) + group + _element(0x7FE0, 0x0010, b"OW", bytes(64)), \
        [f"functional group item length {length}"]


def enhanced_case(rng: random.Random) -> tuple[bytes, list[str]]:
    """An enhanced CT of ``frames`` frames whose functional groups are missing, short, long,
    or hold missing / non-finite / degenerate plane position, orientation and spacing."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    frames = rng.choice([2, 3])
    lie = rng.choice(["no_per_frame", "short", "long", "no_shared", "no_position",
                      "nan_position", "degenerate_orientation", "zero_spacing",
                      "empty_items", "orientation_per_frame_only", "mixed_orientation"])

    def item(position=(0, 0, 0), orientation=(1, 0, 0, 0, 1, 0), spacing=(1, 1)):
        group = Dataset()
        if position is not None:
            plane = Dataset()
            plane.ImagePositionPatient = list(position)
            group.PlanePositionSequence = Sequence([plane])
        if orientation is not None:
            orient = Dataset()
            orient.ImageOrientationPatient = list(orientation)
            group.PlaneOrientationSequence = Sequence([orient])
        if spacing is not None:
            measures = Dataset()
            measures.PixelSpacing, measures.SliceThickness = list(spacing), 1
            group.PixelMeasuresSequence = Sequence([measures])
        return group

    per_frame = [item((0, 0, i), None, None) for i in range(frames)]
    shared = item(None)
    count = {"short": frames - 1, "long": frames + 2}.get(lie, frames)
    per_frame = (per_frame * 3)[:count]
    if lie == "no_position":
        per_frame[rng.randrange(len(per_frame))] = item(None, None, None)
    elif lie == "nan_position":
        per_frame[0] = item((float("nan"), 0, float("inf")), None, None)
    elif lie == "degenerate_orientation":
        shared = item(None, rng.choice([(1, 0, 0, 1, 0, 0), (0,) * 6, (1,) * 6]))
    elif lie == "zero_spacing":
        shared = item(None, spacing=rng.choice([(0, 0), (-1, 1), (float("nan"), 1)]))
    elif lie == "empty_items":
        per_frame = [Dataset() for _ in range(frames)]
    elif lie == "orientation_per_frame_only":
        shared = item(None, None)
        per_frame = [item((0, 0, i)) for i in range(frames)]
    elif lie == "mixed_orientation":
        per_frame = [item((0, 0, i), (1, 0, 0, 0, 1, 0) if i % 2 else (0, 1, 0, 0, 0, 1))
                     for i in range(frames)]
        shared = item(None, None)
    attrs = {"SOPClassUID": ENHANCED_CT, "Rows": 4, "Columns": 4, "SamplesPerPixel": 1,
             "BitsAllocated": 16, "NumberOfFrames": frames}
    if lie != "no_per_frame":
        attrs["PerFrameFunctionalGroupsSequence"] = Sequence(per_frame)
    if lie != "no_shared":
        attrs["SharedFunctionalGroupsSequence"] = Sequence([shared])
    header = _header(attrs, sequences=True)
    return header + _element(0x7FE0, 0x0010, b"OW", bytes(32 * frames)), \
        [f"{lie}, {frames} frames, {count} per-frame items"]


FAMILY_MAKERS = {"enhanced": enhanced_case, "codec": codec_case, "encaps": encaps_case, "geometry": geometry_case,
                 "palette": palette_case, "csa": csa_case, "float": float_case,
                 "wrong_vr": wrong_vr_case, "file": file_case}


def fuzz(n_inputs: int, *, seed: int = 0, batch_size: int = 50, timeout: float = 30.0,
         memory_mb: int = 4096, out: Path | None = None, stop_at: float | None = None) -> dict:
    """Run ``n_inputs`` hostile files; the summary of :func:`fuzz_scan_load.fuzz`."""
    work = Path(tempfile.mkdtemp(prefix="dicomml_structured_"))
    try:
        return harness.run_inputs(_generate, n_inputs, work, seed=seed, batch_size=batch_size,
                                  timeout=timeout, memory_mb=memory_mb, out=out,
                                  stop_at=stop_at)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _generate(rng: random.Random) -> tuple[bytes, str]:
    family = rng.choice(FAMILIES)
    data, lies = (hostile if family == "header" else FAMILY_MAKERS[family])(rng)
    return data, family + ": " + ", ".join(lies)


def main(argv=None) -> int:
    return harness.cli(fuzz, argv, description=__doc__.split("\n\n")[0], inputs=300,
                       batch_size=500, memory_mb=4096)


if __name__ == "__main__":
    sys.exit(main())
