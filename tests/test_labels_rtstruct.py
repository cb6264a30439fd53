"""RTSTRUCT -> masks on the image grid, checked against rt-utils (writer), hand-made contours
from the synthetic ground truth, and matplotlib.path point-in-polygon on voxel centres.

Note: rt-utils maps a mask's column index with PixelSpacing[0] (the row spacing), so its
contours are only right for square pixels; the rt-utils tests use square pixels, and
non-square pixels are tested with hand-made contours.
"""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import dicomml
from dicomml.errors import LabelGeometryError, LabelWarning

RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"


# --- writers --------------------------------------------------------------------------------
def _rt_utils_struct(folder, masks: dict, out):
    """rt-utils writes an RTSTRUCT for {name: mask (slices, rows, columns)}."""
    rt_utils = pytest.importorskip("rt_utils")
    rt = rt_utils.RTStructBuilder.create_new(dicom_series_path=str(folder))
    for name, mask in masks.items():
        rt.add_roi(mask=np.moveaxis(mask, 0, -1).astype(bool), name=name)
    rt.save(str(out))
    return out


def _hand_struct(truth, rois: dict, out, *, kinds=None, frame_of_reference=None,
                 name_series=True):
    """A minimal RTSTRUCT written with pydicom: ``rois`` = {name: [(n, 3) LPS points...]}."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = RTSTRUCT, generate_uid()
    ds.Modality, ds.PatientID = "RTSTRUCT", truth.patient_id
    ds.StudyInstanceUID, ds.SeriesInstanceUID = truth.study_uid, generate_uid()
    frame = frame_of_reference or truth.meta["frame_of_reference_uid"]
    ref_series = Dataset()
    ref_series.SeriesInstanceUID = truth.series_uid
    ref_study = Dataset()
    ref_study.RTReferencedSeriesSequence = Sequence([ref_series])
    ref_frame = Dataset()
    ref_frame.FrameOfReferenceUID = frame
    if name_series:
        ref_frame.RTReferencedStudySequence = Sequence([ref_study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([ref_frame])
    rois_seq, contours_seq, obs_seq = [], [], []
    for number, (name, contours) in enumerate(rois.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = number, name, frame
        rois_seq.append(roi)
        items = []
        for j, points in enumerate(contours):
            item = Dataset()
            item.ContourGeometricType = (kinds or {}).get((name, j), "CLOSED_PLANAR")
            item.NumberOfContourPoints = len(points)
            item.ContourData = [float(v) for v in np.asarray(points).ravel()]
            items.append(item)
        rc = Dataset()
        rc.ReferencedROINumber, rc.ROIDisplayColor = number, [255, 0, number]
        rc.ContourSequence = Sequence(items)
        contours_seq.append(rc)
        obs = Dataset()
        obs.ObservationNumber, obs.ReferencedROINumber = number, number
        obs.RTROIInterpretedType = "ORGAN"
        obs_seq.append(obs)
    ds.StructureSetROISequence = Sequence(rois_seq)
    ds.ROIContourSequence = Sequence(contours_seq)
    ds.RTROIObservationsSequence = Sequence(obs_seq)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = RTSTRUCT
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(out, enforce_file_format=True)
    return out


def _world(truth, k, rows, cols):
    """LPS points of (row, column) pixel indices on sorted slice k, from the ground truth
    (per-slice ImagePositionPatient, orientation cosines, nominal pixel spacing)."""
    f_r, f_c = np.asarray(truth.orientation[:3]), np.asarray(truth.orientation[3:])
    drow, dcol = truth.spacing[1], truth.spacing[2]
    rows, cols = np.asarray(rows, float), np.asarray(cols, float)
    return truth.positions[k] + rows[:, None] * drow * f_c + cols[:, None] * dcol * f_r


def _rectangle(truth, k, r0, r1, c0, c1):
    return _world(truth, k, [r0, r0, r1, r1], [c0, c1, c1, c0])


def _disc(shape, centre, radius):
    rr, cc = np.mgrid[:shape[0], :shape[1]]
    return (rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius ** 2


def _dice(a, b):
    a, b = a.astype(bool), b.astype(bool)
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def _image(tmp_path, **kwargs):
    folder = tmp_path / "image"
    truth = dicomml.synth.write_series(folder, **kwargs)
    return folder, truth, dicomml.load_series(folder, policy="ignore")


# --- rt-utils references ----------------------------------------------------------------------
def test_rectangles_through_pixel_centres_exact(tmp_path):
    folder, truth, image = _image(tmp_path, shape=(8, 24, 24))
    a = np.zeros(image.spatial_shape, bool)
    a[2:5, 3:9, 4:15] = True
    b = np.zeros(image.spatial_shape, bool)
    b[4:7, 12:20, 2:6] = True
    path = _rt_utils_struct(folder, {"GTV": a, "Lung": b}, tmp_path / "rs.dcm")
    out = dicomml.load_labels(path, image, mode="channels")
    assert out.metadata["channels"] == [1, 2]
    np.testing.assert_array_equal(out.array[0], a)
    np.testing.assert_array_equal(out.array[1], b)
    np.testing.assert_array_equal(out.affine, image.affine)
    named = dicomml.load_labels(path, image, segments=["Lung"])
    np.testing.assert_array_equal(named.array, 2 * b.astype(np.uint8))  # the ROI number
    assert named.metadata["labels"][2]["name"] == "Lung"


@pytest.mark.parametrize("orientation", ["axial", "sagittal", "oblique"])
def test_discs_with_hole_match_rt_utils_masks(tmp_path, orientation):
    """A ring (disc with a hole) and a disc: even-odd fill keeps the hole; sagittal planes
    are not told apart by z (the nearest-z trap), oblique ones by nothing axis-aligned."""
    folder, truth, image = _image(tmp_path, shape=(6, 40, 40), orientation=orientation,
                                  spacing=(2.0, 0.8, 0.8), seed=4)
    ring = np.zeros(image.spatial_shape, bool)
    disc = np.zeros(image.spatial_shape, bool)
    for k in range(1, 5):
        ring[k] = _disc((40, 40), (18, 20), 12 - k) & ~_disc((40, 40), (18, 20), 5)
        disc[k] = _disc((40, 40), (30, 8), 4 + k)
    path = _rt_utils_struct(folder, {"ring": ring, "disc": disc}, tmp_path / "rs.dcm")
    out = dicomml.load_labels(path, image, mode="channels").array.astype(bool)
    assert _dice(out[0], ring) >= 0.98 and _dice(out[1], disc) >= 0.98
    assert not out[0][2, 18, 20]  # the hole stays empty
    np.testing.assert_array_equal(out[0], ring)  # contours through border centres: exact


def test_matplotlib_point_in_polygon_on_voxel_centres(tmp_path):
    """Second reference: matplotlib.path even-odd on every voxel centre, non-square pixels,
    oblique planes, contour vertices at arbitrary (not pixel-centre) positions."""
    mpath = pytest.importorskip("matplotlib.path")
    folder, truth, image = _image(tmp_path, shape=(5, 30, 26), orientation="oblique",
                                  spacing=(3.0, 0.6, 0.9), seed=8)
    rng = np.random.default_rng(1)
    contours, polys = [], {}
    for k in range(1, 4):
        t = np.linspace(0, 2 * np.pi, 37)[:-1]
        radius = 8 + rng.uniform(-2, 2, t.size)
        rows, cols = 14.3 + radius * np.sin(t), 12.7 + 0.8 * radius * np.cos(t)
        hole_r, hole_c = 14.1 + 2.5 * np.sin(t), 12.2 + 2.5 * np.cos(t)
        contours += [_world(truth, k, rows, cols), _world(truth, k, hole_r, hole_c)]
        polys[k] = [np.c_[rows, cols], np.c_[hole_r, hole_c]]
    path = _hand_struct(truth, {"blob": contours}, tmp_path / "rs.dcm")
    out = dicomml.load_labels(path, image).array
    rr, cc = np.mgrid[:30, :26]
    centres = np.c_[rr.ravel(), cc.ravel()]
    for k in range(5):
        expected = np.zeros(30 * 26, bool)
        for poly in polys.get(k, []):
            expected ^= mpath.Path(poly).contains_points(centres)
        np.testing.assert_array_equal(out[k].ravel().astype(bool), expected)


# --- peer traps -------------------------------------------------------------------------------
def test_rounding_not_truncation(tmp_path):
    """Vertices at x.6 / x.4 pixel: truncating them to integers shifts the mask."""
    folder, truth, image = _image(tmp_path, shape=(3, 12, 12))
    points = _world(truth, 1, [2.6, 2.6, 6.4, 6.4], [3.6, 7.4, 7.4, 3.6])
    path = _hand_struct(truth, {"box": [points]}, tmp_path / "rs.dcm")
    out = dicomml.load_labels(path, image).array
    expected = np.zeros((3, 12, 12), np.uint8)
    expected[1, 3:7, 4:8] = 1  # centres 3..6 x 4..7 lie inside [2.6, 6.4] x [3.6, 7.4]
    np.testing.assert_array_equal(out, expected)


@pytest.mark.filterwarnings("ignore::dicomml.errors.GeometryWarning")
def test_uneven_spacing_contours_go_to_their_own_planes(tmp_path):
    offsets = [0.0, 1.0, 2.0, 5.0, 6.0, 10.0]
    folder, truth, _ = _image(tmp_path, shape=(6, 10, 10), slice_offsets=offsets)
    cat = dicomml.scan(folder, progress=False)
    contours = [_rectangle(truth, k, 2, 5, 2 + k % 3, 6) for k in range(6)]
    path = _hand_struct(truth, {"box": contours}, tmp_path / "rs.dcm")
    out = dicomml.load_labels(path, (cat, cat.series.series_key[0])).array
    for k in range(6):
        expected = np.zeros((10, 10), np.uint8)
        expected[2:6, 2 + k % 3:7] = 1
        np.testing.assert_array_equal(out[k], expected, err_msg=f"slice {k}")


def test_gantry_tilt_contours_follow_the_sheared_planes(tmp_path):
    folder, truth, image = _image(tmp_path, shape=(6, 16, 16), gantry_tilt=20.0)
    assert image.is_sheared
    contours = [_rectangle(truth, k, 3, 8, 4, 10) for k in range(6)]
    path = _hand_struct(truth, {"box": contours}, tmp_path / "rs.dcm")
    out = dicomml.load_labels(path, image).array
    expected = np.zeros((6, 16, 16), np.uint8)
    expected[:, 3:9, 4:11] = 1
    np.testing.assert_array_equal(out, expected)


def test_supersample_gives_partial_volume_fractions(tmp_path):
    folder, truth, image = _image(tmp_path, shape=(2, 10, 10))
    points = _world(truth, 0, [1.5, 1.5, 4.5, 4.5], [2.0, 6.0, 6.0, 2.0])
    path = _hand_struct(truth, {"box": [points]}, tmp_path / "rs.dcm")
    frac = dicomml.load_labels(path, image, mode="channels", supersample=4).array[0, 0]
    assert frac.dtype == np.float32
    # rows 2..4 fully inside [1.5, 4.5]; columns 3..5 fully inside, 2 and 6 half covered
    np.testing.assert_allclose(frac[3, 3:6], 1.0)
    np.testing.assert_allclose(frac[3, 2], 0.5)
    np.testing.assert_allclose(frac[1, 3], 0.0)
    np.testing.assert_allclose(frac.sum(), 3 * 4, atol=1e-5)


# --- bad input --------------------------------------------------------------------------------
def test_bad_contours_raise_naming_file_and_roi(tmp_path):
    folder, truth, image = _image(tmp_path, shape=(3, 10, 10))
    good = _rectangle(truth, 1, 2, 5, 2, 5)
    nan = good.copy()
    nan[1, 0] = np.nan
    path = _hand_struct(truth, {"ok": [good], "broken": [good, nan]}, tmp_path / "nan.dcm")
    with pytest.raises(LabelGeometryError, match=r"contour 2 has NaN.*ROI 2 'broken'") as err:
        dicomml.load_labels(path, image)
    assert err.value.path == str(path)
    short = _hand_struct(truth, {"two": [good[:2]]}, tmp_path / "short.dcm")
    with pytest.raises(LabelGeometryError, match="fewer than 3 points"):
        dicomml.load_labels(short, image)
    other = _hand_struct(truth, {"ok": [good]}, tmp_path / "for.dcm", frame_of_reference="1.2.3")
    with pytest.raises(LabelGeometryError, match="frame of reference 1.2.3"):
        dicomml.load_labels(other, image)


def test_point_open_and_empty_rois_warn(tmp_path):
    folder, truth, image = _image(tmp_path, shape=(3, 10, 10))
    good = _rectangle(truth, 1, 2, 5, 2, 5)
    off = good + 100 * np.asarray(image.direction[:, 0])  # far off every plane
    rois = {"box": [good, good[:1], good], "empty": [], "away": [off]}
    kinds = {("box", 1): "POINT", ("box", 2): "OPEN_PLANAR"}
    path = _hand_struct(truth, rois, tmp_path / "rs.dcm", kinds=kinds)
    with pytest.warns(LabelWarning) as record:
        out = dicomml.load_labels(path, image, mode="channels")
    text = " ".join(str(w.message) for w in record)
    assert "POINT skipped" in text and "OPEN_PLANAR skipped" in text
    assert "ROI 2 'empty': empty" in text and "off every plane" in text
    expected = np.zeros((3, 10, 10), np.uint8)
    expected[1, 2:6, 2:6] = 1
    np.testing.assert_array_equal(out.array[0], expected)
    assert not out.array[1].any() and not out.array[2].any()


def test_reference_found_through_the_catalog(tmp_path):
    folder, truth, image = _image(tmp_path, shape=(3, 10, 10))
    path = _hand_struct(truth, {"box": [_rectangle(truth, 1, 2, 5, 2, 5)]}, folder / "rs.dcm")
    out = dicomml.load_labels(path)
    np.testing.assert_array_equal(out.affine, image.affine)
    assert out.array.sum() == 16
    other = tmp_path / "other"
    dicomml.synth.write_series(other, shape=(3, 8, 8), seed=9)
    with pytest.raises(LabelGeometryError, match=f"not in the catalog: {truth.series_uid}"):
        dicomml.load_labels(path, catalog=dicomml.scan(other, progress=False))


def test_reference_by_frame_of_reference_when_no_series_is_named(tmp_path):
    folder, truth, image = _image(tmp_path, shape=(3, 10, 10))
    path = _hand_struct(truth, {"box": [_rectangle(truth, 1, 2, 5, 2, 5)]}, folder / "rs.dcm",
                        name_series=False)
    out = dicomml.load_labels(path)
    np.testing.assert_array_equal(out.affine, image.affine)
    assert out.array.sum() == 16


def test_pydicom_rtstruct_rasterises_on_a_matching_grid():
    """pydicom's shipped rtstruct.dcm on a synthetic grid in its frame of reference."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file("rtstruct.dcm")
    ds = pydicom.dcmread(path, force=True)  # a bare data set: no preamble
    points = np.concatenate([np.reshape(np.asarray(c.ContourData, float), (-1, 3))
                             for rc in ds.ROIContourSequence for c in rc.ContourSequence])
    zs = np.unique(np.round(points[:, 2], 3))
    lo = points.min(axis=0) - 5
    step = np.diff(zs).min() if len(zs) > 1 else 1.0
    n = int(round((zs.max() - zs.min()) / step)) + 1
    affine = np.array([[0, 0, 1.0, lo[0]], [0, 1.0, 0, lo[1]], [step, 0, 0, zs.min()],
                       [0, 0, 0, 1]])
    shape = (n, int(np.ptp(points[:, 1]) + 12), int(np.ptp(points[:, 0]) + 12))
    reference = dicomml.Volume(np.zeros(shape, np.float32), affine,
                               {"FrameOfReferenceUID": ds.StructureSetROISequence[0]
                                .ReferencedFrameOfReferenceUID})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabelWarning)
        out = dicomml.load_labels(path, reference, mode="channels")
    names = [out.metadata["labels"][n]["name"] for n in out.metadata["channels"]]
    assert names == [str(r.ROIName) for r in sorted(ds.StructureSetROISequence,
                                                     key=lambda r: int(r.ROINumber))]
    # 'patient' has 3 closed contours; the isocentres are POINT contours (skipped, empty)
    assert out.array.any(axis=(1, 2, 3)).tolist() == [True, False, False]
