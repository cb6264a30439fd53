"""The catalog's display-values block (dicomml.catalog.tags): VOI LUT Function, Window Center &
Width Explanation, Presentation LUT Shape, Pixel Padding Value / Range Limit (signed by Pixel
Representation, explicit and implicit VR), and the Modality / VOI LUT Sequence flags, against
pydicom's reading of the same files."""

from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian
from values_files import lut_item, stored_image, write

import dicomml
from dicomml.catalog.header import parse_file, row_as_dict


def _files(folder):
    folder.mkdir()
    table = np.arange(4096, dtype=np.uint16)
    return [
        write(folder / "a.dcm", stored_image(seed=1), photometric="MONOCHROME1",
              PresentationLUTShape="INVERSE", WindowCenter=[100.0, 200.0],
              WindowWidth=[50.0, 60.0], WindowCenterWidthExplanation=["SOFT", "HARD"],
              VOILUTFunction="SIGMOID", PixelPaddingValue=0, PixelPaddingRangeLimit=10),
        write(folder / "b.dcm", stored_image(signed=True, seed=2), signed=True,
              PixelPaddingValue=-2000, ModalityLUTSequence=lut_item(-2048, table)),
        write(folder / "c.dcm", stored_image(seed=3), VOILUTSequence=lut_item(0, table)),
    ]


def test_display_columns_match_pydicom(tmp_path):
    paths = _files(tmp_path / "data")
    cat = dicomml.scan(tmp_path / "data")
    rows = cat.instances.set_index("path")
    for path in paths:
        ds = pydicom.dcmread(path)
        row = rows.loc[path]
        for keyword in ("VOILUTFunction", "PresentationLUTShape"):
            assert row[keyword] == ds.get(keyword)
        explanation = ds.get("WindowCenterWidthExplanation")
        assert row["WindowCenterWidthExplanation"] == (
            None if explanation is None else "\\".join(explanation))
        for keyword in ("PixelPaddingValue", "PixelPaddingRangeLimit"):
            value = ds.get(keyword)
            assert (math.isnan(row[keyword]) if value is None else row[keyword] == value)
        for keyword in ("ModalityLUTSequence", "VOILUTSequence"):
            assert (row[keyword] == 1) == (keyword in ds)
            assert (keyword in ds) or math.isnan(row[keyword])


@pytest.mark.parametrize("signed,value", [(True, -2000), (False, 40000)])
def test_padding_value_in_implicit_vr(tmp_path, signed, value):
    path = write(tmp_path / "i.dcm", stored_image(signed=signed), signed=signed,
                 PixelPaddingValue=value)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    assert row_as_dict(parse_file(path))["PixelPaddingValue"] == value
    assert int(pydicom.dcmread(path).PixelPaddingValue) == value
