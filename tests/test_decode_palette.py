"""PALETTE COLOR has one owner (``dicomml.decode.palette``): ``read_pixels`` and
``load_series`` give the same RGB, equal to pydicom's ``apply_color_lut``, and both name the
missing or broken lookup table the same way."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels.processing import apply_color_lut

import dicomml
from dicomml.errors import InvalidTagError, MissingTagError


def _copy(tmp_path, edit=None):
    ds = pydicom.dcmread(get_testdata_file("examples_palette.dcm"))
    if edit is not None:
        edit(ds)
    path = tmp_path / "palette" / "p.dcm"
    path.parent.mkdir()
    ds.save_as(path)
    return path


def test_read_pixels_and_load_series_agree_with_pydicom(tmp_path):
    path = _copy(tmp_path)
    ds = pydicom.dcmread(path)
    expected = apply_color_lut(ds.pixel_array, ds)
    np.testing.assert_array_equal(dicomml.read_pixels(path)[0], expected)
    volume = dicomml.load_series(path.parent, dtype=None)
    np.testing.assert_array_equal(volume.array.reshape(expected.shape), expected)


@pytest.mark.parametrize("edit, error, tag", [
    (lambda ds: delattr(ds, "GreenPaletteColorLookupTableDescriptor"), MissingTagError,
     "GreenPaletteColorLookupTableDescriptor"),
    (lambda ds: setattr(ds, "RedPaletteColorLookupTableDescriptor", [256, 0]),
     InvalidTagError, "RedPaletteColorLookupTableDescriptor"),
])
def test_broken_tables_are_named_by_every_entry_point(tmp_path, edit, error, tag):
    path = _copy(tmp_path, edit)
    for call in (lambda: dicomml.read_pixels(path),
                 lambda: dicomml.load_series(path.parent, dtype=None)):
        with pytest.raises(error) as info:
            call()
        assert info.value.tag == tag and str(path) in str(info.value)
