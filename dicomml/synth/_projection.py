"""Projection images: mammograms, radiographs, tomosynthesis objects.

One file of one or more greyscale frames (16 bits allocated, ``bits_stored`` stored, unsigned),
with whatever attributes a test or a benchmark needs; the frames are the stored values, so
they are the ground truth of a reader's ``values="stored"``.

Example
-------
>>> import os, tempfile, numpy as np
>>> path = os.path.join(tempfile.mkdtemp(), "mg.dcm")
>>> ds = write_projection(path, np.zeros((1, 8, 6), np.uint16), ImageLaterality="L")
>>> ds.Modality, ds.Rows, ds.Columns, "NumberOfFrames" in ds
('MG', 8, 6, False)
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ._encode import encode_pixel_data

#: Digital Mammography X-Ray Image Storage - For Presentation (PS3.4 B.5)
DIGITAL_MAMMOGRAPHY = "1.2.840.10008.5.1.4.1.1.1.2"


def projection_dataset(rows: int, columns: int, frames: int = 1, *,
                       transfer_syntax: str = ExplicitVRLittleEndian, modality: str = "MG",
                       sop_class: str = DIGITAL_MAMMOGRAPHY, bits_stored: int = 12,
                       patient_id: str = "synth", **attributes) -> Dataset:
    """The header of a projection image without its Pixel Data: new UIDs, ``frames``
    frames of ``rows`` x ``columns`` (Number of Frames written when above 1), MONOCHROME2,
    16 bits allocated; then ``attributes`` (keyword=value) set as given."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.Modality = patient_id, modality
    ds.Rows, ds.Columns = rows, columns
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = \
        16, bits_stored, bits_stored - 1, 0
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def write_projection(path, frames: np.ndarray, transfer_syntax: str = ExplicitVRLittleEndian,
                     **options) -> Dataset:
    """Write ``frames`` (frames, rows, columns) of stored values as one projection image in
    ``transfer_syntax`` (any syntax :func:`dicomml.synth.supported_transfer_syntaxes` lists);
    ``options`` as :func:`projection_dataset`. Returns the data set written."""
    ds = projection_dataset(*frames.shape[1:], len(frames), transfer_syntax=transfer_syntax,
                            **options)
    encoded = encode_pixel_data(frames, transfer_syntax, bits_stored=int(ds.BitsStored))
    ds.PixelData = encoded.value
    ds["PixelData"].VR = encoded.vr
    if encoded.encapsulated:
        ds["PixelData"].is_undefined_length = True
    ds.save_as(path, enforce_file_format=True)
    return ds
