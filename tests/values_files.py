"""Small DICOM files written with pydicom for the value-stage tests (tests/test_values*.py):
one image (or a few frames) per file, every value-transform attribute settable."""

from __future__ import annotations

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CR = "1.2.840.10008.5.1.4.1.1.1"


def stored_image(rows: int = 32, columns: int = 40, bits: int = 12, signed: bool = False,
                 seed: int = 0) -> np.ndarray:
    """Random stored values covering the whole range of ``bits`` (both ends present)."""
    rng = np.random.default_rng(seed)
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    image = rng.integers(low, high + 1, size=(rows, columns))
    image[0, 0], image[0, 1] = low, high
    return image.astype(np.int16 if signed else np.uint16)


def lut_item(first: int, table, bits: int = 16, ow: bool = False, entries: int | None = None,
             explanation: str | None = None) -> Dataset:
    """One LUT Sequence item: descriptor (entries, first, bits) and LUT Data (US, or OW)."""
    item = Dataset()
    table = np.asarray(table)
    count = len(table) if entries is None else entries
    item.LUTDescriptor = [count % 65536, first, bits]
    if ow:
        item.add_new("LUTData", "OW", table.astype("<u2").tobytes())
    else:
        item.add_new("LUTData", "US", [int(v) for v in table])
    if explanation:
        item.LUTExplanation = explanation
    return item


def write(path, image: np.ndarray, *, photometric: str = "MONOCHROME2", bits: int = 12,
          signed: bool = False, **attributes) -> str:
    """A CR-like file holding ``image`` (rows, columns) or (frames, rows, columns) as
    stored values, plus ``attributes`` (keyword -> value; Datasets / lists of Datasets for
    sequences)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CR
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = CR, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "CR", "values"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.InstanceNumber = 1
    frames = image[None] if image.ndim == 2 else image
    ds.Rows, ds.Columns = frames.shape[1:]
    if len(frames) > 1:
        ds.NumberOfFrames = len(frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits, bits - 1
    ds.PixelRepresentation = int(signed)
    for keyword, value in attributes.items():
        if isinstance(value, Dataset):
            value = [value]
        setattr(ds, keyword, value)
    ds.PixelData = frames.astype("<i2" if signed else "<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def reference(path):
    """pydicom's data set and stored pixel array of ``path``."""
    ds = pydicom.dcmread(path)
    return ds, ds.pixel_array
