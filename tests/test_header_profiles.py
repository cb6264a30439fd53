"""One header parser for scan and decode: the decoders' view (``decode.fastheader``) and the
catalog's row (``catalog.header.parse_file``) come from the same walk, so they agree on where
Pixel Data lies and on whether a file is cut short - for pydicom's test files, every file of
../shared/data, and each of them cut at several points. The transfer syntax table has one
home, re-exported where the decoders always found it."""

from __future__ import annotations

import os

import pydicom
import pytest
from pydicom.data import get_testdata_files

from dicomml import syntaxes
from dicomml.catalog.header import DicomdirSkipped, parse_file, row_as_dict
from dicomml.decode import syntaxes as decode_syntaxes
from dicomml.decode.fastheader import deflated_start, parse_header
from dicomml.errors import DicommlError, TruncatedFileError


def _catalog(path):
    """("cut", None) / ("row", (pixel offset, pixel length)) / ("other", None)."""
    try:
        row = row_as_dict(parse_file(str(path)))
    except TruncatedFileError:
        return "cut", None
    except DicomdirSkipped:  # skipped before its data set is walked
        return "dicomdir", None
    except DicommlError:
        return "other", None
    return "row", (row["pixel_data_offset"], row["pixel_data_length"])


def _decoder(data):
    try:
        header = parse_header(data)
    except TruncatedFileError as exc:
        assert isinstance(exc.element, (int, type(None))) and exc.offset >= 0
        return "cut", None
    if header is None:
        return None, None
    return "header", (header.pixel_offset, -1 if header.pixel_length is None
                      else header.pixel_length)


def _part10(data: bytes) -> bool:
    return len(data) > 132 and data[128:132] == b"DICM" and deflated_start(data) is None


def _assert_agree(path, data, tmp_path=None):
    decoded = _decoder(data)
    if tmp_path is not None:
        path = tmp_path / "cut.dcm"
        path.write_bytes(data)
    listed = _catalog(path)
    if listed[0] == "dicomdir":
        return
    assert (decoded[0] == "cut") == (listed[0] == "cut"), (str(path), decoded, listed)
    if decoded[0] == "header" and listed[0] == "row":
        assert decoded[1] == listed[1], (str(path), decoded, listed)


def _files(shared_data=None):
    files = [f for f in get_testdata_files() if os.path.isfile(f)]
    if shared_data is not None:
        files += [str(p) for p in sorted(shared_data.rglob("*")) if p.is_file()]
    return [f for f in files if _part10(open(f, "rb").read(1 << 16))]


def test_decoder_and_catalog_agree_on_whole_files(shared_data):
    files = _files(shared_data)
    assert len(files) > 100
    for path in files:
        with open(path, "rb") as fp:
            _assert_agree(path, fp.read())


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.45, 0.7, 0.97])
def test_decoder_and_catalog_agree_on_files_cut_short(tmp_path, fraction):
    """Cut inside the header (the first fractions) and inside Pixel Data (the last)."""
    for path in _files():
        with open(path, "rb") as fp:
            data = fp.read()
        _assert_agree(path, data[:max(140, int(len(data) * fraction))], tmp_path)


def test_one_transfer_syntax_table():
    assert decode_syntaxes.NAMES is syntaxes.NAMES
    assert decode_syntaxes.describe is syntaxes.describe
    assert set(decode_syntaxes.__all__) == set(syntaxes.__all__)
    assert syntaxes.NATIVE | syntaxes.ENCAPSULATED == set(syntaxes.NAMES)


def test_unknown_vr_without_pixel_data_is_a_typed_error(tmp_path):
    """The parser refuses an unknown VR, so the decoder reads such a file with pydicom, which
    raises NotImplementedError when it converts that element: still a dicomml error (found by
    fuzz_scan_load: the SOP Class UID of a file without Pixel Data)."""
    from dicomml import read_pixels, synth

    truth = synth.write_series(tmp_path / "s", shape=(1, 8, 8), seed=9)
    ds = pydicom.dcmread(truth.paths[0])
    del ds.PixelData
    ds.save_as(tmp_path / "plain.dcm")
    raw = (tmp_path / "plain.dcm").read_bytes()
    at = raw.index(b"\x08\x00\x16\x00UI")
    (tmp_path / "bad_vr.dcm").write_bytes(raw[:at + 4] + b"U\x7f" + raw[at + 6:])
    with pytest.raises(DicommlError) as err:
        read_pixels(tmp_path / "bad_vr.dcm")
    assert err.value.path == str(tmp_path / "bad_vr.dcm")
