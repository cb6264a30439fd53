"""The Siemens CSA header / ASCCONV protocol reader (dicomml.geometry.csa).

Checked against values the scanner wrote independently of the CSA header (the private
(0019,xx0A) slice count, Spacing Between Slices) in ``../shared/data/dcm_qa_ts/In/1.dcm``, and
against hand-built CSA1 / CSA2 byte strings for the layout and the bounds checks. Tests that go
through the mosaic code (truncated headers in a mosaic, fallbacks) stay in tests/test_mosaic.py.
"""

from __future__ import annotations

import struct

import numpy as np
import pydicom
import pytest

from dicomml.errors import InvalidTagError
from dicomml.geometry import csa


@pytest.fixture(scope="module")
def mosaic_file(shared_data):
    return shared_data / "dcm_qa_ts" / "In" / "1.dcm"


def test_csa_agrees_with_private_and_standard_tags(mosaic_file):
    """Two independent encodings written by the scanner must agree with what we parse."""
    ds = pydicom.dcmread(mosaic_file, stop_before_pixels=True)
    image = csa.csa_header(ds, "image", path=mosaic_file)
    assert int(float(image["NumberOfImagesInMosaic"][0])) == ds[0x0019, 0x100A].value == 35
    np.testing.assert_allclose(csa.csa_floats(image, "SliceNormalVector"),
                               [0.0, 0.10799944, 0.99415095])
    protocol = csa.ascconv(csa.csa_header(ds, "series", path=mosaic_file))
    assert int(protocol["sSliceArray.lSize"]) == 35
    step = (csa.protocol_vector(protocol, "sSliceArray.asSlice[1].sPosition")
            - csa.protocol_vector(protocol, "sSliceArray.asSlice[0].sPosition"))
    assert np.linalg.norm(step) == pytest.approx(float(ds.SpacingBetweenSlices), abs=1e-6)


def test_csa1_layout_is_read():
    """CSA1 (no "SV10" signature, tags start at byte 8) with a VM-limited item list."""
    name = b"NumberOfImagesInMosaic".ljust(64, b"\0")
    item = b"12\0\0"
    raw = struct.pack("<2I", 1, 77) + name + struct.pack("<i4siii", 1, b"IS\0\0", 6, 2, 77)
    raw += struct.pack("<4i", 3, 3, 77, 3) + item + struct.pack("<4i", 0, 0, 77, 0)
    assert csa.parse_csa(raw) == {"NumberOfImagesInMosaic": ["12"]}


@pytest.mark.parametrize("raw", [b"", b"SV10", b"SV10\4\3\2\1" + struct.pack("<2I", 10**6, 77),
                                 struct.pack("<2I", 0, 77), b"\xff" * 300])
def test_garbage_csa_raises_invalid_tag(raw):
    with pytest.raises(InvalidTagError):
        csa.parse_csa(raw, path="x.dcm")


def test_csa_item_length_beyond_end_is_rejected():
    name = b"B_value".ljust(64, b"\0")
    raw = b"SV10\4\3\2\1" + struct.pack("<2I", 1, 77) + name
    raw += struct.pack("<i4siii", 1, b"IS\0\0", 6, 1, 77) + struct.pack("<4i", 9999, 9999, 77, 9999)
    with pytest.raises(InvalidTagError, match="runs past the end"):
        csa.parse_csa(raw + b"1000", path="x.dcm", tag="(0029,1010)")
