"""dicomml.geometry against independent references (nibabel, scipy, closed-form truths)."""

from __future__ import annotations

import numpy as np
import pytest

from dicomml.geometry import (
    Tolerances,
    axis_codes,
    check_consistency,
    check_duplicates,
    check_spacing,
    check_stack,
    check_tilt,
    deshear,
    lps_to_ras,
    orientation_code,
    plane_table,
    regular_affine,
    regularise_spacing,
    series_affine,
    slice_normal,
    slice_spacing,
    sort_order,
    spacing_from_affine,
    tilt_angle_deg,
)
from dicomml.geometry.stack import arrange

nib = pytest.importorskip("nibabel")

AXIAL = (1, 0, 0, 0, 1, 0)


def _rotation(seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def _random_iop(seed):
    rot = _rotation(seed)
    return tuple(rot[:, 0]) + tuple(rot[:, 1])


@pytest.mark.parametrize("seed", range(20))
def test_orientation_code_matches_nibabel_aff2axcodes(seed):
    rng = np.random.default_rng(seed)
    affine = np.eye(4)
    affine[:3, :3] = _rotation(seed) * rng.uniform(0.3, 3, size=3) * rng.choice([-1, 1], 3)
    # nibabel labels RAS outputs; our default labels LPS outputs of the same affine
    assert axis_codes(affine, "RAS") == nib.aff2axcodes(affine)
    assert orientation_code(lps_to_ras(affine), "RAS") == orientation_code(affine, "LPS")


def test_slice_normal_is_right_handed_cross_product():
    assert slice_normal(AXIAL).tolist() == [0, 0, 1]        # axial: towards Superior
    assert slice_normal((0, 1, 0, 0, 0, -1)).tolist() == [-1, 0, 0]  # sagittal
    iop = _random_iop(3)
    normal = slice_normal(iop)
    assert np.isclose(np.linalg.det(np.column_stack([iop[:3], iop[3:], normal])), 1)


def test_sort_uses_projection_on_the_normal_not_z():
    iop = _random_iop(7)
    normal = slice_normal(iop)
    depth = np.array([4.0, -2.0, 0.0, 8.0, 2.0])
    in_plane = np.random.default_rng(0).normal(size=(5, 1)) * np.array(iop[:3])
    positions = depth[:, None] * normal + in_plane * 0  # exactly along the normal
    assert sort_order(positions, iop).tolist() == [1, 2, 4, 0, 3]
    assert np.isclose(slice_spacing(positions[sort_order(positions, iop)], iop), 2.5)


def test_regular_affine_places_every_slice_at_its_position():
    iop, spacing = _random_iop(11), (0.7, 0.9)
    normal = slice_normal(iop)
    origin = np.array([10.0, -20.0, 30.0])
    positions = origin + np.arange(6)[:, None] * 1.25 * normal
    affine = series_affine(positions, iop, spacing, sheared=False)
    for k, pos in enumerate(positions):
        np.testing.assert_allclose((affine @ [k, 0, 0, 1])[:3], pos, atol=1e-9)
    # a row step moves along the column cosines by the row spacing (DICOM PS3.3 C.7.6.2.1.1)
    np.testing.assert_allclose((affine @ [0, 1, 0, 1])[:3] - origin, np.array(iop[3:]) * 0.7)
    np.testing.assert_allclose((affine @ [0, 0, 1, 1])[:3] - origin, np.array(iop[:3]) * 0.9)
    np.testing.assert_allclose(spacing_from_affine(affine), [1.25, 0.7, 0.9])


def test_sheared_affine_is_exact_for_gantry_tilt():
    tilt = np.radians(15)
    # axial CT tilted about x: positions drift along y (the column direction) per slice
    positions = np.array([[0, k * 2.5 * np.tan(tilt), k * 2.5] for k in range(8)])
    assert np.isclose(tilt_angle_deg(positions, AXIAL), 15)
    findings = check_tilt(positions, AXIAL)
    assert [f.kind for f in findings] == ["tilt"]
    affine = series_affine(positions, AXIAL, (0.5, 0.5), sheared=True)
    for k, pos in enumerate(positions):
        np.testing.assert_allclose((affine @ [k, 0, 0, 1])[:3], pos, atol=1e-9)
    unsheared = series_affine(positions, AXIAL, (0.5, 0.5), sheared=False)
    assert not np.allclose(unsheared @ [7, 0, 0, 1], affine @ [7, 0, 0, 1], atol=1)


def test_findings_duplicates_gaps_uneven():
    z = lambda *values: np.array([[0, 0, v] for v in values], dtype=float)  # noqa: E731
    assert [f.kind for f in check_duplicates(z(0, 1, 1, 2))] == ["duplicate"]
    gap = check_spacing(z(0, 2, 4, 8, 10), AXIAL)
    assert [f.kind for f in gap] == ["missing"] and gap[0].details["missing"] == 1
    uneven = check_spacing(z(0, 2, 4, 5, 7), AXIAL)
    assert [f.kind for f in uneven] == ["uneven"]
    assert check_spacing(z(0, 2, 4.01, 6), AXIAL) == []  # within the named tolerance
    assert check_spacing(z(0, 2.0, 4.1, 6.1, 8.2), AXIAL) == []  # 2.04 mm steps, rounded
    strict = Tolerances(spacing_atol_mm=1e-3, spacing_rtol=0)
    assert [f.kind for f in check_spacing(z(0, 2, 4.01, 6), AXIAL, strict)] == ["uneven"]
    assert check_stack(z(0, 2, 4, 6), AXIAL) == []


def test_rounded_positions_of_an_oblique_series_raise_no_finding():
    iop = _random_iop(5)
    normal = slice_normal(iop)
    positions = np.round(np.array([10, -40, 25]) + np.arange(20)[:, None] * 1.0 * normal, 1)
    assert check_stack(positions, iop) == []


def test_consistency_findings():
    iops = np.array([AXIAL, AXIAL, (1, 0, 0, 0, 0.99, 0.141)])
    findings = check_consistency(iops, [(1, 1)] * 3, [(4, 4), (4, 4), (4, 5)])
    assert [f.kind for f in findings] == ["inconsistent", "inconsistent"]
    assert "matrix size" in findings[1].message


def test_regularise_spacing_is_exact_for_a_linear_ramp():
    depth = np.array([0.0, 1.0, 2.0, 4.0, 5.0])  # one slice missing at 3
    array = np.broadcast_to((10 * depth)[:, None, None], (5, 3, 3)).astype(np.float32)
    positions = depth[:, None] * np.array([0, 0, 1.0])
    out, new_positions = regularise_spacing(array, positions, AXIAL)
    np.testing.assert_allclose(new_positions[:, 2], [0, 1, 2, 3, 4, 5])
    np.testing.assert_allclose(out[:, 1, 1], [0, 10, 20, 30, 40, 50])


def test_deshear_matches_a_linear_field_sampled_in_world_space():
    """Values that are a linear function of world position stay that function after deshear."""
    tilt = np.radians(20)
    shape = (6, 24, 24)
    positions = np.array([[0, k * 2 * np.tan(tilt), k * 2.0] for k in range(shape[0])])
    sheared = series_affine(positions, AXIAL, (1.0, 1.0), sheared=True)
    field = lambda xyz: 3 * xyz[..., 0] - 2 * xyz[..., 1] + 0.5 * xyz[..., 2]  # noqa: E731
    index = np.stack(np.meshgrid(*map(np.arange, shape), indexing="ij"), -1)
    world = index @ sheared[:3, :3].T + sheared[:3, 3]
    out, affine = deshear(field(world).astype(np.float32), sheared, fill=-999)
    np.testing.assert_allclose(affine[:3, 0], [0, 0, 2.0], atol=1e-9)
    world_out = index @ affine[:3, :3].T + affine[:3, 3]
    inside = out != -999
    # the source slice k covers world y in [k * 2 tan(tilt), + 23]: outside it gets the fill
    lo = np.arange(shape[0])[:, None, None] * 2 * np.tan(tilt)
    covered = (world_out[..., 1] >= lo - 1e-6) & (world_out[..., 1] <= lo + 23 + 1e-6)
    np.testing.assert_array_equal(inside, covered)
    np.testing.assert_allclose(out[inside], field(world_out)[inside], atol=1e-3)


def test_deshear_agrees_with_scipy_map_coordinates():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    array = rng.normal(size=(5, 16, 16)).astype(np.float32)
    positions = np.array([[0.6 * k, 1.3 * k, 3.0 * k] for k in range(5)])
    sheared = series_affine(positions, AXIAL, (1.0, 1.0), sheared=True)
    out, affine = deshear(array, sheared, fill=0)
    index = np.stack(np.meshgrid(*map(np.arange, array.shape), indexing="ij"), -1).reshape(-1, 3)
    source = np.linalg.inv(sheared) @ affine @ np.c_[index, np.ones(len(index))].T
    expected = ndimage.map_coordinates(array, source[:3], order=1, mode="constant", cval=0)
    inside = out.reshape(-1) != 0
    assert inside.mean() > 0.5
    np.testing.assert_allclose(out.reshape(-1)[inside], expected[inside], atol=1e-4)


def test_arrange_builds_4d_from_dimension_columns_and_flags_true_duplicates():
    rows = []
    for t in (2, 1):
        for z in (5.0, 0.0, 2.5):
            rows.append(dict(path=f"t{t}z{z}.dcm", position=(0, 0, z), orientation=AXIAL,
                             pixel_spacing=(1, 1), rows=2, columns=2, temporal=t))
    stack = arrange(plane_table(rows))
    assert stack.order.shape == (2, 3) and stack.is_4d
    assert [v["temporal"] for v in stack.volume_values] == [1, 2]
    assert np.isclose(stack.affine[2, 0], 2.5)
    for row in rows:
        row["temporal"] = 1
    stack = arrange(plane_table(rows))
    assert [f.kind for f in stack.findings] == ["duplicate"] and stack.order.shape == (1, 3)


def test_regular_affine_example():
    affine = regular_affine(AXIAL, (0.5, 0.8), -2.0, (1, 2, 3))
    assert affine[2, 0] == -2.0 and affine[0, 2] == 0.8 and affine[1, 1] == 0.5
