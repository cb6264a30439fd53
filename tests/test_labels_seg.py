"""DICOM SEG -> labels on the image grid, checked against highdicom (writer and reader).

highdicom writes every SEG here from a dicomml.synth series (the reference), and highdicom's
``get_pixels_by_source_instance`` / ``get_pixels_by_source_frame`` give the expected arrays,
put in slice order by the synthetic ground truth (``meta["index_of_path"]``), never by our code.
"""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest

import dicomml
from dicomml.errors import LabelGeometryError, LabelWarning

hd = pytest.importorskip("highdicom")
from pydicom.sr.codedict import codes  # noqa: E402


def _series(tmp_path, **kwargs):
    folder = tmp_path / "image"
    kwargs.setdefault("shape", (8, 12, 10))
    truth = dicomml.synth.write_series(folder, **kwargs)
    datasets = [pydicom.dcmread(p) for p in truth.paths]  # shuffled file order
    return truth, datasets, dicomml.load_series(folder, policy="ignore")


def _uids_in_slice_order(truth):
    """SOP Instance UIDs sorted by the ground-truth slice index of each file."""
    index = truth.meta["index_of_path"]
    order = sorted(range(len(truth.paths)), key=lambda i: index[i][1])
    return [str(pydicom.dcmread(truth.paths[i], stop_before_pixels=True).SOPInstanceUID)
            for i in order]


def _descriptions(n, names=("liver", "tumour", "vessel")):
    return [hd.seg.SegmentDescription(
        segment_number=i + 1, segment_label=names[i],
        segmented_property_category=codes.SCT.Tissue, segmented_property_type=codes.SCT.Liver,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL) for i in range(n)]


def _write_seg(tmp_path, datasets, pixels, seg_type="BINARY", n_segments=None, name="seg.dcm",
               **kwargs):
    n = n_segments or (pixels.shape[-1] if pixels.ndim == 4 else int(pixels.max()))
    seg = hd.seg.Segmentation(
        source_images=datasets, pixel_array=pixels, segmentation_type=seg_type,
        segment_descriptions=_descriptions(n), series_instance_uid=hd.UID(), series_number=99,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="test",
        manufacturer_model_name="test", software_versions="1", device_serial_number="1",
        **kwargs)
    path = tmp_path / name
    seg.save_as(path)
    return path


def _masks_in_file_order(truth, masks_in_slice_order):
    """The per-file arrays highdicom expects (source_images order = truth.paths order)."""
    index = truth.meta["index_of_path"]
    return np.stack([masks_in_slice_order[index[i][1]] for i in range(len(truth.paths))])


def _sparse_masks(shape):
    """Two segments with different frame counts (seg 1: slices 1-3, seg 2: slices 2-6)."""
    masks = np.zeros((*shape, 2), dtype=bool)
    masks[1:4, 2:7, 3:6, 0] = True
    masks[2:7, 5:10, 1:4, 1] = True
    return masks


def test_binary_seg_equals_highdicom_placed_by_position(tmp_path):
    truth, datasets, image = _series(tmp_path)
    masks = _sparse_masks(image.spatial_shape)
    path = _write_seg(tmp_path, datasets, _masks_in_file_order(truth, masks))
    ref = hd.seg.segread(path).get_pixels_by_source_instance(_uids_in_slice_order(truth))
    channels = dicomml.load_labels(path, image, mode="channels")
    assert channels.shape == (2, *image.spatial_shape)
    np.testing.assert_array_equal(channels.affine, image.affine)
    np.testing.assert_array_equal(channels.array, np.moveaxis(ref, -1, 0))
    np.testing.assert_array_equal(channels.array, np.moveaxis(masks, -1, 0))
    # per-segment frame counts differ, and empty frames were omitted: no equal-count stacking
    frames = pydicom.dcmread(path).NumberOfFrames
    assert frames == 3 + 5
    with pytest.warns(LabelWarning, match="highest segment number wins"):
        labelmap = dicomml.load_labels(path, image)
    expected = np.where(masks[..., 1], 2, np.where(masks[..., 0], 1, 0))
    np.testing.assert_array_equal(labelmap.array, expected)
    assert labelmap.metadata["overlap_voxels"] == int((masks[..., 0] & masks[..., 1]).sum())
    assert labelmap.metadata["labels"][1]["name"] == "liver"
    assert labelmap.metadata["labels"][2]["type"]["meaning"] == "Liver"
    assert labelmap.metadata["labels"][1]["algorithm_type"] == "MANUAL"


def test_frame_order_trap_stacking_in_file_order_would_be_wrong(tmp_path):
    """Frames stacked in file order (MONAI's reader) misplace them: our placement must not."""
    truth, datasets, image = _series(tmp_path, shape=(6, 10, 10), seed=3)
    masks = np.zeros((*image.spatial_shape, 1), dtype=bool)
    masks[4, 1:3, 1:3, 0] = True       # one frame only, on slice 4
    masks[1, 6:9, 6:9, 0] = True       # and slice 1
    path = _write_seg(tmp_path, datasets, _masks_in_file_order(truth, masks))
    out = dicomml.load_labels(path, image, mode="channels").array[0]
    np.testing.assert_array_equal(out, masks[..., 0])
    stacked = pydicom.dcmread(path).pixel_array  # what file-order stacking gives: (2, R, C)
    assert stacked.shape[0] == 2 and not np.array_equal(out[:2], stacked)


def test_segments_selected_by_name_and_number(tmp_path):
    truth, datasets, image = _series(tmp_path)
    masks = _sparse_masks(image.spatial_shape)
    path = _write_seg(tmp_path, datasets, _masks_in_file_order(truth, masks))
    out = dicomml.load_labels(path, image, mode="channels", segments=["tumour", 1])
    assert out.metadata["channels"] == [2, 1]
    np.testing.assert_array_equal(out.array[0], masks[..., 1])
    with pytest.raises(LabelGeometryError, match="no segment or ROI 'spleen'"):
        dicomml.load_labels(path, image, segments=["spleen"])


def test_labelmap_seg_equals_highdicom(tmp_path):
    truth, datasets, image = _series(tmp_path, shape=(6, 12, 12))
    label = np.zeros(image.spatial_shape, dtype=np.uint8)
    label[1:4, 2:6, 2:6] = 1
    label[2:5, 6:10, 5:9] = 2
    label[3, 0:2, 0:12] = 3
    path = _write_seg(tmp_path, datasets, _masks_in_file_order(truth, label), "LABELMAP",
                      n_segments=3)
    assert pydicom.dcmread(path).SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.7"
    ref = hd.seg.segread(path).get_pixels_by_source_instance(
        _uids_in_slice_order(truth), combine_segments=True)
    out = dicomml.load_labels(path, image)
    np.testing.assert_array_equal(out.array, ref)
    np.testing.assert_array_equal(out.array, label)


def test_fractional_seg_threshold_and_probabilities(tmp_path):
    truth, datasets, image = _series(tmp_path, shape=(5, 10, 10))
    rng = np.random.default_rng(0)
    prob = np.zeros((*image.spatial_shape, 1), dtype=np.float32)
    prob[1:4, 2:8, 2:8, 0] = rng.uniform(0, 1, (3, 6, 6)).astype(np.float32)
    path = _write_seg(tmp_path, datasets, _masks_in_file_order(truth, prob), "FRACTIONAL")
    ref = hd.seg.segread(path).get_pixels_by_source_instance(
        _uids_in_slice_order(truth), dtype=np.float32)[..., 0]
    fractions = dicomml.load_labels(path, image, mode="channels", threshold=None).array[0]
    np.testing.assert_allclose(fractions, ref, atol=1e-6)
    np.testing.assert_allclose(fractions, prob[..., 0], atol=0.5 / 255 + 1e-6)
    binary = dicomml.load_labels(path, image).array
    np.testing.assert_array_equal(binary, (ref >= 0.5).astype(np.uint8))


@pytest.mark.parametrize("orientation", ["oblique", "sagittal", "coronal"])
def test_oblique_seg_equals_highdicom(tmp_path, orientation):
    truth, datasets, image = _series(tmp_path, orientation=orientation, shape=(7, 9, 11),
                                     spacing=(3.0, 0.7, 0.9), seed=5)
    masks = _sparse_masks(image.spatial_shape)[..., :1]
    path = _write_seg(tmp_path, datasets, _masks_in_file_order(truth, masks))
    ref = hd.seg.segread(path).get_pixels_by_source_instance(_uids_in_slice_order(truth))
    out = dicomml.load_labels(path, image, mode="channels")
    np.testing.assert_array_equal(out.array[0], ref[..., 0])


@pytest.mark.filterwarnings("ignore::dicomml.errors.GeometryWarning")
def test_uneven_spacing_reference_from_catalog(tmp_path):
    """Slices at uneven offsets: frames go to the plane at their true position, not to the
    mean-step affine's."""
    truth, datasets, _ = _series(tmp_path, shape=(5, 8, 8), slice_offsets=[0, 2.5, 5, 10, 12.5])
    cat = dicomml.scan(tmp_path / "image", progress=False)
    key = cat.series.series_key[0]
    masks = np.zeros((5, 8, 8, 1), dtype=bool)
    masks[3, 2:5, 2:5, 0] = True   # the slice at 10 mm; the mean-step affine puts 3 at 9.375
    masks[4, 1:3, 1:3, 0] = True
    path = _write_seg(tmp_path, datasets, _masks_in_file_order(truth, masks))
    out = dicomml.load_labels(path, (cat, key), mode="channels")
    np.testing.assert_array_equal(out.array[0], masks[..., 0])


def test_enhanced_multiframe_reference(tmp_path):
    folder = tmp_path / "image"
    truth = dicomml.synth.write_series(folder, shape=(6, 10, 10), multiframe=True, seed=2)
    source = pydicom.dcmread(truth.paths[0])
    image = dicomml.load_series(folder)
    masks = np.zeros((6, 10, 10, 1), dtype=bool)
    masks[2:5, 3:7, 4:8, 0] = True
    frame_index = truth.meta["frame_index"]  # (volume, slice) of each stored frame
    in_frame_order = np.stack([masks[s] for _, s in frame_index])
    path = _write_seg(tmp_path, [source], in_frame_order)
    ref = hd.seg.segread(path).get_pixels_by_source_frame(
        str(source.SOPInstanceUID), source_frame_numbers=list(range(1, 7)),
        assert_missing_frames_are_empty=True)
    out = dicomml.load_labels(path, image, mode="channels").array[0]
    expected = np.stack([ref[[i for i, (_, s) in enumerate(frame_index) if s == k][0], ..., 0]
                         for k in range(6)])
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out, masks[..., 0])


def test_reference_found_in_the_folder(tmp_path):
    truth, datasets, image = _series(tmp_path)
    masks = _sparse_masks(image.spatial_shape)
    seg_path = _write_seg(tmp_path / "image", datasets, _masks_in_file_order(truth, masks))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabelWarning)
        out = dicomml.load_labels(seg_path)
    np.testing.assert_array_equal(out.affine, image.affine)
    assert out.array.max() == 2
    cat = dicomml.scan(tmp_path / "image", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabelWarning)
        again = dicomml.load_labels(seg_path, catalog=cat)
    np.testing.assert_array_equal(again.array, out.array)


def _edit_frame_position(path, frame, delta, out):
    ds = pydicom.dcmread(path)
    item = ds.PerFrameFunctionalGroupsSequence[frame].PlanePositionSequence[0]
    item.ImagePositionPatient = [float(v) + d for v, d in zip(item.ImagePositionPatient, delta)]
    ds.save_as(out)
    return out


def test_in_plane_shift_by_whole_pixels_is_placed(tmp_path):
    truth, datasets, image = _series(tmp_path, shape=(4, 10, 10))
    masks = np.zeros((4, 10, 10, 1), dtype=bool)
    masks[:, 3:5, 3:5, 0] = True
    path = _write_seg(tmp_path, datasets, _masks_in_file_order(truth, masks))
    step = image.affine[:3, 1] * 2  # two rows down
    moved = _edit_frame_position(path, 0, step, tmp_path / "moved.dcm")
    first = pydicom.dcmread(moved).PerFrameFunctionalGroupsSequence[0]
    k = int(np.rint(
        (np.array(first.PlanePositionSequence[0].ImagePositionPatient) - image.affine[:3, 3])
        @ image.affine[:3, 0] / np.linalg.norm(image.affine[:3, 0]) ** 2))
    out = dicomml.load_labels(moved, image, mode="channels").array[0]
    expected = masks[..., 0].copy()
    expected[k] = np.roll(masks[k, ..., 0], 2, axis=0)
    np.testing.assert_array_equal(out, expected)


def test_bad_seg_frames_raise_naming_frame_and_segment(tmp_path):
    truth, datasets, image = _series(tmp_path, shape=(4, 10, 10))
    masks = np.zeros((4, 10, 10, 1), dtype=bool)
    masks[:, 3:5, 3:5, 0] = True
    path = _write_seg(tmp_path, datasets, _masks_in_file_order(truth, masks))
    half_pixel = image.affine[:3, 2] * 0.5
    off_grid = _edit_frame_position(path, 1, half_pixel, tmp_path / "offgrid.dcm")
    with pytest.raises(LabelGeometryError, match=r"frame 2: is off the pixel grid.*'liver'"):
        dicomml.load_labels(off_grid, image)
    assert dicomml.load_labels(off_grid, image, resample=True).array.sum() == masks.sum()
    off_plane = _edit_frame_position(path, 0, image.affine[:3, 0] * 0.4,
                                     tmp_path / "offplane.dcm")
    with pytest.raises(LabelGeometryError, match="frame 1: lies .* mm off") as err:
        dicomml.load_labels(off_plane, image)
    assert err.value.path == str(off_plane)
    far = _edit_frame_position(path, 0, image.affine[:3, 2] * 8, tmp_path / "far.dcm")
    with pytest.raises(LabelGeometryError, match="beyond the reference grid"):
        dicomml.load_labels(far, image)
    ds = pydicom.dcmread(path)
    ds.FrameOfReferenceUID = "1.2.3.4"
    ds.save_as(tmp_path / "for.dcm")
    with pytest.raises(LabelGeometryError, match="frame of reference 1.2.3.4"):
        dicomml.load_labels(tmp_path / "for.dcm", image)


def test_seg_referring_to_a_series_not_in_the_catalog(tmp_path):
    truth, datasets, image = _series(tmp_path, shape=(3, 8, 8))
    masks = np.ones((3, 8, 8, 1), dtype=bool)
    path = _write_seg(tmp_path, datasets, _masks_in_file_order(truth, masks))
    other = tmp_path / "other"
    dicomml.synth.write_series(other, shape=(3, 8, 8), seed=9)
    cat = dicomml.scan(other, progress=False)
    with pytest.raises(LabelGeometryError, match=truth.series_uid):
        dicomml.load_labels(path, catalog=cat)


def test_write_seg_round_trip_through_highdicom_and_load_labels(tmp_path):
    truth, datasets, image = _series(tmp_path, shape=(6, 12, 10), orientation="oblique", seed=2)
    label = np.zeros(image.spatial_shape, np.uint8)
    label[1:4, 2:8, 3:7] = 1
    label[3:5, 8:11, 1:4] = 2
    pred = dicomml.Volume(label, image.affine)
    (tmp_path / "out").mkdir()
    path = dicomml.write_seg(pred, tmp_path / "image", tmp_path / "out" / "pred.dcm",
                             names={1: "liver", 2: "lesion"})
    ref = hd.seg.segread(path).get_pixels_by_source_instance(
        _uids_in_slice_order(truth), combine_segments=True)
    np.testing.assert_array_equal(ref, label)
    back = dicomml.load_labels(path, image)
    np.testing.assert_array_equal(back.array, label)
    assert back.metadata["labels"][2]["name"] == "lesion"
    assert back.metadata["labels"][1]["algorithm_type"] == "AUTOMATIC"
    channels = dicomml.Volume(np.stack([label == 1, label == 2]).astype(np.uint8), image.affine)
    again = dicomml.write_seg(channels, tmp_path / "image", tmp_path / "out" / "ch.dcm")
    np.testing.assert_array_equal(dicomml.load_labels(again, image).array, label)
    wrong = dicomml.Volume(label, image.affine @ np.diag([1, 1, 1.5, 1]))
    with pytest.raises(LabelGeometryError, match="not the reference images'"):
        dicomml.write_seg(wrong, tmp_path / "image", tmp_path / "out" / "bad.dcm")
