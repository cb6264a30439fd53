"""Property-based tests (hypothesis): the catalog's header parser on random element streams
and mutated real files, and the geometry code on random orientations, spacings and orders
(checked against nibabel and direct construction, not against itself)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dicomml import errors as E  # noqa: E402
from dicomml import geometry, viz  # noqa: E402
from dicomml.catalog import header  # noqa: E402

# hypothesis' home folder (examples, constants, charmap caches) is a session temp folder that
# tests/conftest.py sets and removes: tests write nothing into the repository or leave in /tmp
SETTINGS = settings(max_examples=120, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
TESTDATA = Path(__import__("pydicom").data.__file__).parent / "test_files"
READ_LIMIT = header.MAX_HEADER_BYTES + header.FIRST_READ


# --- the header parser --------------------------------------------------------------------------------
class _CountingFile(io.FileIO):
    """A file that records every read request, to prove no read is sized by a length field."""

    requests: list[int] = []

    def read(self, size=-1):
        _CountingFile.requests.append(size)
        return super().read(size)

    def readinto(self, buffer):
        _CountingFile.requests.append(len(buffer))
        return super().readinto(buffer)


def _counting_open(path, mode="rb", *args, **kwargs):
    assert mode == "rb", f"the header parser must only read, opened with {mode!r}"
    return io.BufferedReader(_CountingFile(path, "rb"))


@pytest.fixture
def parse(monkeypatch):
    """``parse(bytes)``: parse_file on a temp file with ``open`` instrumented; returns
    ("row" | error type name, largest read request)."""
    monkeypatch.setattr(header, "open", _counting_open, raising=False)

    def run(tmp_path, data: bytes):
        path = tmp_path / "case.dcm"
        path.write_bytes(data)
        _CountingFile.requests = []
        try:
            header.parse_file(str(path))
            outcome = "row"
        except (E.InvalidDicomError, E.MissingTagError) as exc:
            assert exc.path == str(path)
            outcome = type(exc).__name__
        largest = max([r for r in _CountingFile.requests if r is not None] or [0])
        assert largest <= READ_LIMIT, f"read request of {largest} bytes"
        return outcome

    return run


VRS = [b"OB", b"OW", b"SQ", b"UN", b"UT", b"CS", b"DS", b"IS", b"LO", b"UI", b"US", b"UL",
       b"PN", b"ZZ", b"\x00\x00"]
UIDS = [(0x0020, 0x000D), (0x0020, 0x000E), (0x0008, 0x0018)]


@st.composite
def element(draw, explicit: bool):
    group = draw(st.sampled_from([0x0008, 0x0009, 0x0010, 0x0018, 0x0020, 0x0028, 0x7FE0,
                                  0xFFFE, draw(st.integers(0, 0xFFFF))]))
    elem = draw(st.integers(0, 0xFFFF))
    value = draw(st.binary(max_size=40))
    lie = draw(st.sampled_from([None, None, None, 0xFFFFFFFF, 0xFFFFFFF0, 0x7FFFFFFF,
                                draw(st.integers(0, 5000))]))
    if explicit:
        vr = draw(st.sampled_from(VRS))
        if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
            length = len(value) if lie is None else lie
            return struct.pack("<HH2sHI", group, elem, vr, 0, length) + value
        length = len(value) if lie is None else lie & 0xFFFF
        return struct.pack("<HH2sH", group, elem, vr, length) + value
    length = len(value) if lie is None else lie
    return struct.pack("<HHI", group, elem, length) + value


@st.composite
def element_stream(draw):
    explicit = draw(st.booleans())
    body = b"".join(draw(st.lists(element(explicit), max_size=12)))
    uids = b"".join(struct.pack("<HH2sH", g, e, b"UI", 4) + b"1.2\x00" if explicit else
                    struct.pack("<HHI", g, e, 4) + b"1.2\x00" for g, e in UIDS)
    if draw(st.booleans()):  # sometimes a well-formed start, so parsing goes deep
        body = uids + body
    prefix = draw(st.sampled_from([b"", b"\x00" * 128 + b"DICM", b"DICM"]))
    if prefix and draw(st.booleans()):
        ts = b"1.2.840.10008.1.2.1\x00" if explicit else b"1.2.840.10008.1.2\x00"
        prefix += struct.pack("<HH2sH", 0x0002, 0x0010, b"UI", len(ts)) + ts
    return prefix + body + draw(st.binary(max_size=16))


@SETTINGS
@given(data=element_stream())
def test_random_element_streams_raise_only_dicomml_errors(parse, tmp_path, data):
    outcome = parse(tmp_path, data)
    hypothesis.event(outcome)
    assert outcome in ("row", "InvalidDicomError", "NotDicomError",
                                     "TruncatedFileError", "MissingTagError")


@pytest.fixture(scope="module")
def real_files():
    names = ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "image_dfl.dcm",
             "ExplVR_BigEnd.dcm", "no_meta.dcm", "UN_sequence.dcm", "nested_priv_SQ.dcm"]
    return [(TESTDATA / n).read_bytes() for n in names if (TESTDATA / n).is_file()]


@SETTINGS
@given(which=st.integers(0, 7), where=st.floats(0, 1), how=st.sampled_from(
    ["truncate", "flip", "length", "zero_run"]), value=st.integers(0, 0xFFFFFFFF))
def test_mutated_real_headers_raise_only_dicomml_errors(parse, tmp_path, real_files, which,
                                                        where, how, value):
    data = bytearray(real_files[which % len(real_files)])
    limit = min(len(data), 4096)  # mutate the header region
    at = int(where * (limit - 5))
    if how == "truncate":
        data = data[:at]
    elif how == "flip":
        data[at] ^= 1 << (value % 8)
    elif how == "length":
        data[at:at + 4] = struct.pack("<I", value)
    else:
        data[at:at + 64] = bytes(len(data[at:at + 64]))
    hypothesis.event(parse(tmp_path, bytes(data)))


def test_counting_open_sees_the_parser_reads(parse, tmp_path):
    """The instrumentation is live: a real file parses and its reads are recorded."""
    assert parse(tmp_path, (TESTDATA / "CT_small.dcm").read_bytes()) == "row"
    assert _CountingFile.requests


# --- geometry --------------------------------------------------------------------------------------
@st.composite
def rotation(draw):
    """A uniformly spread random rotation matrix (from a normalised quaternion)."""
    q = np.array(draw(st.lists(st.floats(-1, 1), min_size=4, max_size=4)))
    if np.linalg.norm(q) < 0.1:
        q = np.array([1.0, 0, 0, 0])
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


spacing_mm = st.floats(0.2, 8.0)


@settings(max_examples=150, deadline=None, database=None)
@given(rot=rotation(), step=spacing_mm, row=spacing_mm, col=spacing_mm,
       origin=st.lists(st.floats(-500, 500), min_size=3, max_size=3),
       n=st.integers(2, 12), data=st.data())
def test_sorting_and_affine_round_trip(rot, step, row, col, origin, n, data):
    f_r, f_c = rot[:, 0], rot[:, 1]
    iop = np.concatenate([f_r, f_c])
    normal = np.cross(f_r, f_c)
    truth = np.asarray(origin) + np.outer(np.arange(n) * step, normal)
    order = data.draw(st.permutations(range(n)))
    shuffled = truth[list(order)]

    sorted_positions = shuffled[geometry.sort_order(shuffled, iop)]
    np.testing.assert_allclose(sorted_positions, truth, atol=1e-9)  # any input order
    np.testing.assert_allclose(geometry.slice_spacing(sorted_positions, iop), step, rtol=1e-9)
    assert geometry.check_stack(sorted_positions, iop) == []

    affine = geometry.series_affine(sorted_positions, iop, (row, col), sheared=False)
    expected = np.eye(4)  # docs/conventions.md, built directly
    expected[:3, 0], expected[:3, 1], expected[:3, 2] = normal * step, f_c * row, f_r * col
    expected[:3, 3] = truth[0]
    np.testing.assert_allclose(affine, expected, atol=1e-9)
    k = np.arange(n)
    mapped = (affine @ np.stack([k, 0 * k, 0 * k, 1 + 0 * k]))[:3].T
    np.testing.assert_allclose(mapped, truth, atol=1e-6)
    np.testing.assert_allclose(geometry.spacing_from_affine(affine), (step, row, col), rtol=1e-9)
    direction = geometry.direction_from_affine(affine)
    np.testing.assert_allclose(direction.T @ direction, np.eye(3), atol=1e-9)


@settings(max_examples=150, deadline=None, database=None)
@given(rot=rotation(), flips=st.lists(st.sampled_from([-1.0, 1.0]), min_size=3, max_size=3),
       scale=st.lists(spacing_mm, min_size=3, max_size=3))
def test_orientation_codes_match_nibabel(rot, flips, scale):
    nib = pytest.importorskip("nibabel")
    affine = np.eye(4)
    affine[:3, :3] = rot * np.asarray(flips) * np.asarray(scale)
    direction = np.abs(rot)
    ranked = np.sort(direction, axis=0)
    if np.any(ranked[-1] - ranked[-2] < 1e-3):
        return  # two world axes tie for an array axis: either answer is right
    ours = geometry.axis_codes(affine)  # LPS letters
    theirs = nib.aff2axcodes(geometry.lps_to_ras(affine))  # RAS letters, same directions
    assert "".join(ours) == "".join(theirs)
    assert viz.orientation_letters(affine) == "".join(theirs)


@settings(max_examples=60, deadline=None, database=None)
@given(rot=rotation(), shape=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5)),
       target=st.sampled_from(["RAS", "LPS", "IPL", "SAR", "PIL"]))
def test_reorient_keeps_every_voxel_at_its_world_position(rot, shape, target):
    ranked = np.sort(np.abs(rot), axis=0)
    hypothesis.assume(np.all(ranked[-1] - ranked[-2] > 1e-3))  # no tie for the nearest axis
    affine = np.eye(4)
    affine[:3, :3] = rot * [2.0, 0.7, 1.3]
    affine[:3, 3] = (5.0, -3.0, 8.0)
    array = np.arange(np.prod(shape)).reshape(shape)
    out, out_affine = viz.reorient(array, affine, target)
    assert viz.orientation_letters(out_affine) == target
    for index in np.ndindex(*out.shape):
        original = np.unravel_index(out[index], shape)
        np.testing.assert_allclose(out_affine @ [*index, 1], affine @ [*original, 1],
                                   atol=1e-9)


@settings(max_examples=100, deadline=None, database=None)
@given(steps=st.lists(st.floats(0.5, 5.0), min_size=3, max_size=10), data=st.data())
def test_uneven_spacing_is_reported_whatever_the_order(steps, data):
    iop = np.array([1.0, 0, 0, 0, 1, 0])
    distances = np.concatenate([[0.0], np.cumsum(steps)])
    positions = np.outer(distances, [0, 0, 1.0])
    order = data.draw(st.permutations(range(len(positions))))
    shuffled = positions[list(order)]
    sorted_positions = shuffled[geometry.sort_order(shuffled, iop)]
    findings = geometry.check_stack(sorted_positions, iop)
    median = np.median(steps)
    tol = geometry.DEFAULT_TOLERANCES  # documented: uneven beyond max(atol, rtol * median)
    limit = max(tol.spacing_atol_mm, tol.spacing_rtol * median)
    deviation = np.abs(np.asarray(steps) - median)
    hypothesis.assume(np.all(np.abs(deviation - limit) > 1e-6))  # not on the boundary
    assert bool(findings) == bool((deviation > limit).any())
    if findings:
        assert findings[0].kind in ("missing", "uneven")
