"""Frame-range reads (issue 22 item 2): ``read_pixels(path, frames=...)`` and the catalog's
located reads decode only the requested frames of a multi-frame object, reading only their
bytes (measured with /proc/self/io ``rchar``), and equal pydicom's frames."""

from __future__ import annotations

import os

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

import dicomml
from dicomml.decode.located import load_frames, locate_file, locations_from_frame
from dicomml.decode.reader import read_pixels
from dicomml.synth import projection_dataset
from dicomml.synth._encode import encode_pixel_data, supported_transfer_syntaxes

FRAMES, ROWS, COLUMNS = 24, 96, 80


def _stored(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 4096, (FRAMES, ROWS, COLUMNS)).astype(np.uint16)
    base[:, :4] = np.arange(FRAMES, dtype=np.uint16)[:, None, None]  # each frame distinct
    return base


def _codestreams(frames: np.ndarray, syntax: str) -> list[bytes]:
    """One codestream per frame (encoded by the synthetic writer, independent of decode/)."""
    out = []
    for frame in frames:
        value = encode_pixel_data(frame[None], syntax, bits_stored=12).value
        out.append(next(generate_frames(value, number_of_frames=1)))
    return out


def _write(path, frames: np.ndarray, syntax: str, layout: str = "bot") -> str:
    """A DX-like multi-frame object; ``layout``: how encapsulated frames are stored:
    "bot" (offset table), "nobot" (empty table, one fragment per frame), "split" (offset
    table, each frame in two fragments), "extended" (extended offset table)."""
    ds = projection_dataset(ROWS, COLUMNS, transfer_syntax=syntax, patient_id="frames",
                            sop_class="1.2.840.10008.5.1.4.1.1.13.1.3",  # tomosynthesis
                            NumberOfFrames=len(frames))
    if syntax in (ExplicitVRLittleEndian, ExplicitVRBigEndian):
        ds.PixelData = encode_pixel_data(frames, syntax, bits_stored=12).value
    else:
        streams = _codestreams(frames, syntax)
        if layout == "extended":
            value, offsets, lengths = encapsulate_extended(streams)
            ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = offsets, lengths
        elif layout == "split":
            value = _split_fragments(streams)
        else:
            value = encapsulate(streams, has_bot=layout == "bot")
        ds.PixelData = value
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def _split_fragments(streams: list[bytes]) -> bytes:
    """Encapsulated data with an offset table and each frame in two fragments."""
    items, starts, position = [], [], 0
    for stream in streams:
        starts.append(position)
        half = (len(stream) // 2) & ~1
        for part in (stream[:half], stream[half:] + b"\0" * (len(stream[half:]) % 2)):
            items.append(b"\xfe\xff\x00\xe0" + len(part).to_bytes(4, "little") + part)
            position += 8 + len(part)
    table = np.asarray(starts, "<u4").tobytes()
    return b"\xfe\xff\x00\xe0" + len(table).to_bytes(4, "little") + table + b"".join(items)


def _rchar() -> int:
    with open("/proc/self/io") as handle:
        return int(next(line for line in handle if line.startswith("rchar")).split()[1])


CASES = [(ExplicitVRLittleEndian, "native"), (ExplicitVRBigEndian, "native"),
         (RLELossless, "bot"), (RLELossless, "nobot"), (RLELossless, "extended"),
         (JPEG2000Lossless, "bot"), (JPEG2000Lossless, "split")]


@pytest.mark.parametrize(("syntax", "layout"), CASES, ids=lambda v: getattr(v, "name", v))
def test_frames_equal_pydicom_and_read_only_their_bytes(tmp_path, syntax, layout):
    if syntax not in supported_transfer_syntaxes():
        pytest.skip(f"no encoder for {syntax.name} here")
    truth = _stored()
    path = _write(tmp_path / "multi.dcm", truth, syntax, layout)
    wanted = [17, 3, 4, 5]
    reference = pydicom.dcmread(path).pixel_array[wanted]
    np.testing.assert_array_equal(truth[wanted], reference)  # the file holds the truth
    read_pixels(path, frames=[0])  # warm up imports and the fragment index
    before = _rchar()
    got = read_pixels(path, frames=wanted)
    used = _rchar() - before
    np.testing.assert_array_equal(got, reference)
    size = os.path.getsize(path)
    # the header prefix (32 KiB) plus the frames' bytes: far from the whole file
    frame_bytes = size * len(wanted) / FRAMES
    assert used < 32 * 1024 + 2 * frame_bytes + 64 * FRAMES, (used, size)


def test_empty_table_with_more_fragments_than_frames_reads_the_whole_file(tmp_path):
    """Frame boundaries then lie in the codestreams: the full path decides (still equal)."""
    if JPEG2000Lossless not in supported_transfer_syntaxes():
        pytest.skip("no JPEG 2000 encoder here")
    truth = _stored(1)[:3]
    streams = _codestreams(truth, JPEG2000Lossless)  # ends with EOI: pydicom can split them
    ds_path = tmp_path / "frag.dcm"
    _write(ds_path, truth, JPEG2000Lossless, "nobot")
    ds = pydicom.dcmread(ds_path)
    fragments = [part for s in streams for part in (s[:64], s[64:])]
    ds.PixelData = encapsulate(fragments, has_bot=False)
    ds["PixelData"].is_undefined_length = True
    ds.save_as(ds_path)
    assert load_frames(locate_file(str(ds_path)), [1]) is None
    np.testing.assert_array_equal(read_pixels(ds_path, frames=[1]), truth[[1]])


def test_catalog_rows_read_only_the_frames(tmp_path):
    """The catalog's located rows give the same subset read as a path (no header walk)."""
    truth = _stored(2)
    folder = tmp_path / "data"
    folder.mkdir()
    _write(folder / "a.dcm", truth, RLELossless, "nobot")
    cat = dicomml.scan(folder, progress=False)
    location = locations_from_frame(cat.instances)[0]
    encoded = load_frames(location, [9, 20])
    assert encoded is not None
    assert [i for i, f in enumerate(encoded.frames) if f is not None] == [9, 20]
    np.testing.assert_array_equal(read_pixels(folder / "a.dcm", frames=[9, 20]), truth[[9, 20]])


def test_negative_and_repeated_frames(tmp_path):
    truth = _stored(3)
    path = _write(tmp_path / "n.dcm", truth, ExplicitVRLittleEndian)
    np.testing.assert_array_equal(read_pixels(path, frames=[-1, 2, 2]), truth[[-1, 2, 2]])
    with pytest.raises(dicomml.errors.InvalidTagError, match="out of range"):
        read_pixels(path, frames=[FRAMES])


def test_changed_file_is_read_the_full_way(tmp_path):
    """A located row of a file rewritten since the scan is not trusted."""
    folder = tmp_path / "data"
    folder.mkdir()
    _write(folder / "a.dcm", _stored(4), RLELossless, "bot")
    location = locations_from_frame(dicomml.scan(folder, progress=False).instances)[0]
    truth = _stored(5)[:10]
    _write(folder / "a.dcm", truth, RLELossless, "bot")
    assert load_frames(location, [1]) is None
    np.testing.assert_array_equal(read_pixels(folder / "a.dcm", frames=[1]), truth[[1]])


def test_many_tiny_fragments_stop_the_index_and_fail_typed(tmp_path):
    """A hostile object of 3 declared frames in 2,000 tiny fragments: the fragment index gives
    up after its bound and the full path raises a typed error naming the file."""
    path = _write(tmp_path / "tiny.dcm", _stored(6)[:3], RLELossless, "nobot")
    ds = pydicom.dcmread(path)
    ds.PixelData = encapsulate([b"\0\0"] * 2000, has_bot=False)
    ds["PixelData"].is_undefined_length = True
    ds.save_as(path)
    location = locate_file(path)
    assert location is not None and load_frames(location, [0]) is None
    with pytest.raises(dicomml.errors.DicommlError) as caught:
        read_pixels(path, frames=[0])
    assert "tiny.dcm" in str(caught.value)


def test_dataset_frame_range_reads_only_its_frames(tmp_path):
    """DicomImageDataset(frames=...) on catalog rows: the frames equal pydicom's and the bytes
    read are those frames' (not the object's)."""
    truth = _stored(7)
    folder = tmp_path / "data"
    folder.mkdir()
    path = _write(folder / "dbt.dcm", truth, RLELossless, "bot")
    ds = dicomml.DicomImageDataset(folder, frames=(10, 13), multiframe="channels",
                                   values="stored")
    ds[0]  # warm up imports and the fragment index
    before = _rchar()
    sample = ds[0]
    used = _rchar() - before
    np.testing.assert_array_equal(sample["image"].numpy(), pydicom.dcmread(path).pixel_array[10:13])
    assert sample["frame"] == [10, 11, 12]
    assert used < 3 * os.path.getsize(path) / FRAMES * 2, (used, os.path.getsize(path))
