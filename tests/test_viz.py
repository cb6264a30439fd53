"""dicomml.viz: reorientation against nibabel and the synthetic ground truth, edge labels,
aspect ratios and the figures themselves (Agg, no display)."""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from dicomml import synth, viz  # noqa: E402
from dicomml.volume import Volume  # noqa: E402

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
ORIENTATIONS = ("axial", "coronal", "sagittal", "oblique")
MARKER_HU = 1800.0  # the phantom's marker cube is 1900 HU, nothing else exceeds 700 HU


@pytest.fixture(scope="module")
def series_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("viz_series")


@pytest.fixture(scope="module")
def acquisition(series_dir):
    """Write (once per module) the series of one orientation and patient position."""
    written = {}

    def get(orientation, position):
        key = (orientation, position)
        if key not in written:
            written[key] = _write(series_dir, f"{orientation}_{position}",
                                  orientation=orientation, patient_position=position, seed=3)
        return written[key]

    return get


def _write(folder, name, **options):
    options.setdefault("shape", (8, 16, 20))
    options.setdefault("spacing", (2.5, 0.75, 0.9))
    return synth.write_series(folder / name, **options)


def _marker_centre(array) -> np.ndarray:
    """Mean index of the marker cube's voxels in a 3D array."""
    return np.argwhere(array > MARKER_HU).mean(axis=0)


def test_doctests_pass():
    modules = [viz] + [importlib.import_module(f"{viz.__name__}.{info.name}")
                       for info in pkgutil.iter_modules(viz.__path__)]
    results = [doctest.testmod(module, verbose=False) for module in modules]
    assert sum(r.attempted for r in results) > 10 and sum(r.failed for r in results) == 0


@pytest.mark.parametrize("position", synth.PATIENT_POSITIONS)
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_reorient_matches_nibabel_closest_canonical(acquisition, orientation, position):
    nib = pytest.importorskip("nibabel")
    truth = acquisition(orientation, position)
    image = nib.Nifti1Image(truth.array.astype(np.float32), LPS_TO_RAS @ truth.affine)
    reference = nib.as_closest_canonical(image)
    ours, ours_affine = viz.reorient(truth.array, truth.affine, "RAS")
    assert ours.shape == reference.shape
    np.testing.assert_array_equal(ours, np.asarray(reference.dataobj))
    np.testing.assert_allclose(LPS_TO_RAS @ ours_affine, reference.affine, atol=1e-6)


@pytest.mark.parametrize("position", synth.PATIENT_POSITIONS)
@pytest.mark.parametrize("orientation", ("axial", "coronal", "sagittal"))
def test_marker_lands_on_its_anatomical_side(acquisition, orientation, position):
    """Where the marker is in the patient (from the writer's affine) decides where it must be
    drawn: patient's left -> viewer's right in axial/coronal, posterior -> bottom of the axial
    view and right of the sagittal view, superior -> top of coronal/sagittal."""
    truth = acquisition(orientation, position)
    centre_index = (np.array(truth.array.shape) - 1) / 2
    marker_mm = truth.affine[:3, :3] @ _marker_centre(truth.array)
    offset = marker_mm - truth.affine[:3, :3] @ centre_index  # LPS mm from the volume centre
    left, posterior, superior = np.sign(offset)
    assert np.all(np.abs(offset) > 1.0), "the phantom's marker must sit off-centre"

    vol = Volume(truth.array, truth.affine)
    fig = viz.show_volume(vol, center=None)
    display, _ = viz.reorient(truth.array, truth.affine)
    marker = _marker_centre(display)
    expected = {  # plane -> (sign of row offset (down), sign of column offset (right))
        "axial": (posterior, left),
        "coronal": (-superior, left),
        "sagittal": (-superior, posterior),
    }
    for ax in fig.axes:
        plane = ax.get_title()
        fixed = viz._PLANES[plane]
        drawn = viz.view_slice(display, plane, int(round(marker[fixed])))
        rows, cols = np.argwhere(drawn > MARKER_HU).mean(axis=0)
        down = np.sign(rows - (drawn.shape[0] - 1) / 2)
        right = np.sign(cols - (drawn.shape[1] - 1) / 2)
        assert (down, right) == expected[plane], (plane, orientation, position)


@pytest.mark.parametrize("position", synth.PATIENT_POSITIONS)
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_display_views_always_carry_radiological_labels(acquisition, orientation, position):
    truth = acquisition(orientation, position)
    fig = viz.show_volume(Volume(truth.array, truth.affine))
    got = {ax.get_title(): ax.edge_labels for ax in fig.axes}
    primary = {plane: {edge: text[0] for edge, text in labels.items()}
               for plane, labels in got.items()}
    assert primary == {
        "axial": {"top": "A", "bottom": "P", "left": "R", "right": "L"},
        "coronal": {"top": "S", "bottom": "I", "left": "R", "right": "L"},
        "sagittal": {"top": "S", "bottom": "I", "left": "A", "right": "P"},
    }
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert {"A", "P", "R", "L", "S", "I"} <= {t[0] for t in texts}
    # oblique volumes are sampled on the true planes: the labels are exact too
    assert all(len(t) == 1 for labels in got.values() for t in labels.values())
    assert all(ax.resampled == (orientation == "oblique") for ax in fig.axes)
    if orientation == "oblique":  # 30-60 degree rotations
        assert "oblique" in fig._suptitle.get_text()
        nearest = viz.show_volume(Volume(truth.array, truth.affine), resample_oblique=False)
        compound = [t for ax in nearest.axes for t in ax.edge_labels.values()]
        assert any(len(t) > 1 for t in compound)  # secondary directions shown
        assert not any(ax.resampled for ax in nearest.axes)


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
@pytest.mark.parametrize("position", ["HFS", "FFP", "HFDL"])
def test_world_plane_matches_nibabel_resampling(acquisition, plane, position):
    """The true-plane sampling of an oblique volume equals nibabel's nearest-neighbour
    resampling (scipy) onto the same axis-aligned grid."""
    nib = pytest.importorskip("nibabel")
    processing = pytest.importorskip("nibabel.processing")
    truth = acquisition("oblique", position)
    image, origin, step = viz.world_plane(truth.array, truth.affine, plane, fill=-5000.0)
    down, right = (np.asarray(v) for v in viz._VIEW_DIRECTIONS[plane])
    target = np.eye(4)  # index (column i, row j, 0) of the view -> LPS mm
    target[:3, 0], target[:3, 1] = right * step, down * step
    target[:3, 2] = np.cross(right, down) * step
    target[:3, 3] = origin
    source = nib.Nifti1Image(truth.array.astype(np.float32), LPS_TO_RAS @ truth.affine)
    reference = processing.resample_from_to(
        source, ((image.shape[1], image.shape[0], 1), LPS_TO_RAS @ target), order=0,
        cval=-5000.0)
    expected = np.asarray(reference.dataobj)[:, :, 0].T
    inside = (image > -5000) & (expected > -5000)
    assert inside.mean() > 0.2
    assert np.mean(image[inside] == expected[inside]) > 0.99  # ties at exact .5 may differ


# Native (not reoriented) slice labels for known acquisitions: what a DICOM viewer shows.
NATIVE_LABELS = {
    ("axial", "HFS"): ("A", "P", "R", "L"),
    ("axial", "FFS"): ("A", "P", "L", "R"),
    ("axial", "HFP"): ("P", "A", "L", "R"),
    ("axial", "FFP"): ("P", "A", "R", "L"),
    ("coronal", "HFS"): ("S", "I", "R", "L"),
    ("sagittal", "HFS"): ("S", "I", "A", "P"),
}


@pytest.mark.parametrize(("orientation", "position"), sorted(NATIVE_LABELS))
def test_native_slice_labels_for_known_acquisitions(acquisition, orientation, position):
    truth = acquisition(orientation, position)
    labels = viz.edge_labels(truth.affine)
    assert tuple(labels[e] for e in ("top", "bottom", "left", "right")) == \
        NATIVE_LABELS[(orientation, position)]
    fig = viz.show_montage(Volume(truth.array, truth.affine), n=3)
    assert fig.axes[0].edge_labels == labels


def test_aspect_ratios_follow_the_spacing(series_dir):
    spacing = (5.0, 0.6, 0.8)  # slice, row, column mm
    truth = _write(series_dir, "aspect_axial", spacing=spacing, shape=(6, 16, 12))
    fig = viz.show_volume(Volume(truth.array, truth.affine))
    aspects = {ax.get_title(): ax.get_aspect() for ax in fig.axes}
    assert aspects == pytest.approx({"axial": 0.6 / 0.8, "coronal": 5.0 / 0.8,
                                     "sagittal": 5.0 / 0.6})
    shapes = {ax.get_title(): ax.images[0].get_array().shape for ax in fig.axes}
    assert shapes == {"axial": (16, 12), "coronal": (6, 12), "sagittal": (6, 16)}


def test_sagittal_acquisition_aspect(series_dir):
    """Sagittal slices run R-L: the axial view's columns are slices, rows the image columns."""
    truth = _write(series_dir, "aspect_sag", orientation="sagittal", spacing=(4.0, 0.5, 1.0),
                   shape=(5, 12, 10))
    fig = viz.show_volume(Volume(truth.array, truth.affine))
    aspects = {ax.get_title(): ax.get_aspect() for ax in fig.axes}
    # sagittal: columns run A->P (1.0 mm), rows S->I (0.5 mm), slices R-L (4.0 mm)
    assert aspects == pytest.approx({"axial": 1.0 / 4.0, "coronal": 0.5 / 4.0,
                                     "sagittal": 0.5 / 1.0})


def test_drawn_images_are_the_centre_slices(series_dir):
    truth = _write(series_dir, "centre", orientation="coronal", patient_position="HFP")
    fig = viz.show_volume((truth.array, truth.affine), window=(-200, 400))
    display, _ = viz.reorient(truth.array, truth.affine)
    for ax in fig.axes:
        expected = viz.view_slice(display, ax.get_title())
        np.testing.assert_array_equal(ax.images[0].get_array(), expected)
        assert ax.images[0].get_clim() == (-200, 400)


def test_figures_render_to_png(series_dir):
    truth = _write(series_dir, "render", shape=(4, 8, 8))
    vol = Volume(truth.array, truth.affine, {"Modality": "CT"})
    for fig in (viz.show_volume(vol), viz.show_montage(vol, n=4, ncols=2),
                viz.show_montage(vol, n=4, plane="coronal"), viz.show_histogram(vol)):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_montage_picks_evenly_spaced_slices(series_dir):
    truth = _write(series_dir, "montage", shape=(10, 8, 8), spacing=(3.0, 1.0, 1.0))
    fig = viz.show_montage(Volume(truth.array, truth.affine), n=4, ncols=3)
    assert len(fig.axes) == 4
    assert [ax.get_title().split()[0] for ax in fig.axes] == ["#0", "#3", "#6", "#9"]
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), truth.array[3])


def test_histogram_counts_every_voxel_in_hu(series_dir):
    truth = _write(series_dir, "hist", shape=(4, 8, 8))
    fig = viz.show_histogram(Volume(truth.array, truth.affine, {"Modality": "CT"}), bins=50,
                             log=False)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "HU"
    assert sum(p.get_height() for p in ax.patches) == truth.array.size


def test_slice_positions_reveal_a_gap(series_dir):
    offsets = [0.0, 2.0, 4.0, 6.0, 10.0, 12.0]  # slice at 8 mm missing
    truth = _write(series_dir, "gap", shape=(6, 8, 8), slice_offsets=offsets,
                   orientation="oblique", seed=11)
    table = viz.slice_position_table(truth.positions, truth.orientation)
    np.testing.assert_allclose(np.diff(table["distance"]), [2, 2, 2, 4, 2], atol=1e-3)
    assert table["irregular"].tolist() == [False, False, False, True, False]
    fig = viz.show_slice_positions((truth.positions, truth.orientation))
    assert "1 irregular" in fig.axes[0].get_title()
    even = viz.show_slice_positions(Volume(truth.array, truth.affine))
    assert "0 irregular" in even.axes[0].get_title()  # the loaded grid is regular


def test_show_batch_side_by_side(series_dir):
    torch = pytest.importorskip("torch")
    first = _write(series_dir, "batch_a", shape=(4, 8, 8), orientation="sagittal")
    second = _write(series_dir, "batch_b", shape=(4, 8, 8))
    images = torch.from_numpy(np.stack([first.array, second.array])[:, None].astype(np.float32))
    affines = torch.from_numpy(np.stack([first.affine, second.affine]))
    batch = {"image": images, "affine": affines, "series_key": ["a", "b"]}
    flipped = {**batch, "image": torch.flip(images, dims=[-1])}
    fig = viz.show_batch(batch, compare=flipped)
    assert len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes] == ["before: a", "before: b", "after: a",
                                                  "after: b"]
    # default: what the model sees, the middle slice of the tensor, labelled from the affine
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), first.array[2])
    np.testing.assert_array_equal(fig.axes[2].images[0].get_array(), first.array[2, :, ::-1])
    assert fig.axes[0].edge_labels == viz.edge_labels(first.affine)
    assert fig.axes[0].edge_labels["left"] == "A"  # sagittal: anterior on the left

    views = viz.show_batch(batch, reorient_views=True)
    display, _ = viz.reorient(first.array, first.affine)
    np.testing.assert_array_equal(views.axes[0].images[0].get_array(),
                                  viz.view_slice(display, "axial"))
    assert views.axes[0].edge_labels["left"] == "R"


def test_missing_matplotlib_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"dicomml\[viz\]"):
        viz.show_volume((np.zeros((2, 2, 2)), np.eye(4)))


def test_reorient_rejects_bad_targets_and_affines():
    with pytest.raises(ValueError):
        viz.reorient(np.zeros((2, 2, 2)), np.eye(4), "LLS")
    with pytest.raises(ValueError):
        viz.reorient(np.zeros((2, 2, 2)), np.diag([0.0, 1.0, 1.0, 1.0]), "LPS")


def test_reorient_keeps_leading_axes_and_world_positions():
    rng = np.random.default_rng(0)
    array = rng.normal(size=(2, 3, 4, 5))
    iop = synth.orientation_cosines("oblique", seed=2)
    affine = np.eye(4)
    affine[:3, 0] = np.cross(iop[:3], iop[3:]) * 2.0
    affine[:3, 1] = iop[3:] * 0.7
    affine[:3, 2] = iop[:3] * 1.1
    affine[:3, 3] = (10.0, -20.0, 30.0)
    out, out_affine = viz.reorient(array, affine, "IPL")
    assert out.shape[0] == 2
    # every voxel keeps its world position: compare positions of equal values
    for index in [(0, 0, 0), (2, 3, 4), (1, 0, 3)]:
        value = array[1][index]
        new_index = np.argwhere(out[1] == value)[0]
        np.testing.assert_allclose(affine @ [*index, 1], out_affine @ [*new_index, 1])


def test_show_series_from_catalog(series_dir):
    catalog_module = pytest.importorskip("dicomml.catalog")
    pytest.importorskip("dicomml.loader")
    if not hasattr(catalog_module, "scan"):
        pytest.skip("dicomml.catalog.scan not available yet")
    truth = _write(series_dir, "catalog_series", shape=(6, 16, 16),
                   slice_offsets=[0, 2.5, 5, 7.5, 10, 12.5], orientation="coronal")
    cat = catalog_module.scan(series_dir / "catalog_series")
    key = cat.series["series_key"].iloc[0]
    fig = viz.show_series(cat, key)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["axial", "coronal", "sagittal"]
    assert "6 slices" in titles[-1] and "0 irregular" in titles[-1]
    display, _ = viz.reorient(truth.array, truth.affine)
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(),
                               viz.view_slice(display, "axial"), atol=1e-3)


# rows / columns of each radiological view run toward these LPS directions (the convention,
# written here independently of dicomml.viz)
RADIOLOGICAL = {"axial": ((0, 1, 0), (1, 0, 0)), "coronal": ((0, 0, -1), (1, 0, 0)),
                "sagittal": ((0, 0, -1), (0, 1, 0))}


@pytest.mark.parametrize("position", synth.PATIENT_POSITIONS)
def test_oblique_marker_lands_on_its_anatomical_side(acquisition, position):
    truth = acquisition("oblique", position)
    marker_mm = truth.affine[:3, :3] @ _marker_centre(truth.array) + truth.affine[:3, 3]
    centre_mm = truth.affine[:3, :3] @ ((np.array(truth.array.shape) - 1) / 2) + \
        truth.affine[:3, 3]
    for plane, (down, right) in RADIOLOGICAL.items():
        image, origin, step = viz.world_plane(truth.array, truth.affine, plane,
                                              through=marker_mm)
        drawn = np.argwhere(image > MARKER_HU)
        assert len(drawn), plane
        marker_px = drawn.mean(axis=0)
        centre_px = np.array([(centre_mm - origin) @ down, (centre_mm - origin) @ right]) / step
        offset = marker_mm - centre_mm
        expected = np.sign([offset @ down, offset @ right])
        big = np.abs([offset @ down, offset @ right]) > 2 * step
        assert np.all(np.sign(marker_px - centre_px)[big] == expected[big]), (plane, position)
