"""The header tags the catalog collects, and the column each one fills.

Each wanted tag maps to ``(column index, value kind)``. Kinds decide how the raw value bytes
become a Python value, whatever VR the file declares (so a tag stored as ``UN`` still decodes):

- ``TEXT``: ``str`` (leading/trailing spaces and NULs stripped; multi-valued text such as
  ``ImageType`` keeps DICOM's ``\\`` separator, e.g. ``"ORIGINAL\\PRIMARY\\AXIAL"``);
- ``INT``: first value of an ``IS`` string, as ``int``;
- ``FLOAT``: first value of a ``DS`` string, as ``float``;
- ``FLOATS``: every value of a ``DS`` string, as ``list[float]`` (IPP, IOP, PixelSpacing);
- ``USHORT``: binary unsigned 16-bit (``US``), as ``int``;
- ``DOUBLE``: binary 64-bit float (``FD``), as ``float``;
- ``PRESENT``: 1 when the element (a sequence) is in the file, else absent (NaN).

Example
-------
>>> COLUMNS[WANTED[0x00200032][0]]
'ImagePositionPatient'
"""

from __future__ import annotations

TEXT, INT, FLOAT, FLOATS, USHORT, DOUBLE, PRESENT = range(7)

# (group, element), keyword, kind. Order = column order in Catalog.instances.
_BASE_TAGS = (
    (0x00020002, "MediaStorageSOPClassUID", TEXT),
    (0x00020010, "TransferSyntaxUID", TEXT),
    (0x00100020, "PatientID", TEXT),
    (0x00100010, "PatientName", TEXT),
    (0x0020000D, "StudyInstanceUID", TEXT),
    (0x00080020, "StudyDate", TEXT),
    (0x00081030, "StudyDescription", TEXT),
    (0x00080050, "AccessionNumber", TEXT),
    (0x0020000E, "SeriesInstanceUID", TEXT),
    (0x00200011, "SeriesNumber", INT),
    (0x0008103E, "SeriesDescription", TEXT),
    (0x00181030, "ProtocolName", TEXT),
    (0x00080021, "SeriesDate", TEXT),
    (0x00080060, "Modality", TEXT),
    (0x00180015, "BodyPartExamined", TEXT),
    (0x00080070, "Manufacturer", TEXT),
    (0x00080016, "SOPClassUID", TEXT),
    (0x00080018, "SOPInstanceUID", TEXT),
    (0x00080008, "ImageType", TEXT),
    (0x00200052, "FrameOfReferenceUID", TEXT),
    (0x00200013, "InstanceNumber", INT),
    (0x00200012, "AcquisitionNumber", INT),
    (0x00180086, "EchoNumbers", INT),
    (0x00180081, "EchoTime", FLOAT),
    (0x00200100, "TemporalPositionIdentifier", INT),
    (0x00189087, "DiffusionBValue", DOUBLE),
    (0x00200032, "ImagePositionPatient", FLOATS),
    (0x00200037, "ImageOrientationPatient", FLOATS),
    (0x00280030, "PixelSpacing", FLOATS),
    (0x00180050, "SliceThickness", FLOAT),
    (0x00180088, "SpacingBetweenSlices", FLOAT),
    (0x00181120, "GantryDetectorTilt", FLOAT),
    (0x00280010, "Rows", USHORT),
    (0x00280011, "Columns", USHORT),
    (0x00280008, "NumberOfFrames", INT),
    (0x00280002, "SamplesPerPixel", USHORT),
    (0x00280004, "PhotometricInterpretation", TEXT),
    (0x00280006, "PlanarConfiguration", USHORT),
    (0x00280100, "BitsAllocated", USHORT),
    (0x00280101, "BitsStored", USHORT),
    (0x00280102, "HighBit", USHORT),
    (0x00280103, "PixelRepresentation", USHORT),
    (0x00281052, "RescaleIntercept", FLOAT),
    (0x00281053, "RescaleSlope", FLOAT),
    (0x00281050, "WindowCenter", FLOAT),
    (0x00281051, "WindowWidth", FLOAT),
    (0x00080005, "SpecificCharacterSet", TEXT),
    # --- display values (dicomml.decode.stages): VOI, Presentation LUT, padding, LUT flags.
    # WindowCenter / WindowWidth above hold the first window; the LUT sequences are only
    # flagged (1 = present): their tables are read from the header when used. Pixel Padding
    # Value / Range Limit are US or SS: the raw 16 bits, signed by PixelRepresentation.
    (0x00281055, "WindowCenterWidthExplanation", TEXT),
    (0x00281056, "VOILUTFunction", TEXT),
    (0x20500020, "PresentationLUTShape", TEXT),
    (0x00280120, "PixelPaddingValue", USHORT),
    (0x00280121, "PixelPaddingRangeLimit", USHORT),
    (0x00283000, "ModalityLUTSequence", PRESENT),
    (0x00283010, "VOILUTSequence", PRESENT),
    # --- end of display values
)

# 2D work (projection radiography, mammography, secondary capture; issue 22 item 2): which
# side and view an image shows, what it is for, how it is oriented on screen and what its
# pixel spacing means (PS3.3 10.7.1.1; BodyPartExamined is in the block above).
# ``ViewCodeMeaning`` is the Code Meaning (0008,0104) of the first item of View Code Sequence
# (0054,0220), e.g. "cranio-caudal" (see ``NESTED_ONLY``).
_IMAGE_2D_TAGS = (
    (0x00200062, "ImageLaterality", TEXT),
    (0x00200060, "Laterality", TEXT),
    (0x00185101, "ViewPosition", TEXT),
    (0x00080104, "ViewCodeMeaning", TEXT),
    (0x00080068, "PresentationIntentType", TEXT),
    (0x00200020, "PatientOrientation", TEXT),
    (0x00181164, "ImagerPixelSpacing", FLOATS),
    (0x00182010, "NominalScannedPixelSpacing", FLOATS),
    (0x00280A02, "PixelSpacingCalibrationType", TEXT),
    (0x00181114, "EstimatedRadiographicMagnificationFactor", FLOAT),
    (0x00280301, "BurnedInAnnotation", TEXT),
)

_TAG_TABLE = _BASE_TAGS + _IMAGE_2D_TAGS

#: Columns filled by the parser besides the tags (see ``header.parse_file``).
EXTRA_COLUMNS = (
    "NumberOfImagesInMosaic",   # Siemens private (0019,xx0A), when the creator is Siemens MR
    "pixel_data_offset",        # byte offset of the Pixel Data *value* in the file, -1: none
    "pixel_data_length",        # its length in bytes, -1: undefined (encapsulated)
    "header_source",            # "top" or "functional_groups" (where IPP/IOP/spacing came from)
    "float_pixel_data",         # 1: the pixels are Float / Double Float Pixel Data (7FE0,0008/9)
)

COLUMNS = tuple(keyword for _, keyword, _ in _TAG_TABLE) + EXTRA_COLUMNS
WANTED = {tag: (index, kind) for index, (tag, _, kind) in enumerate(_TAG_TABLE)}
KIND_OF = {keyword: kind for _, keyword, kind in _TAG_TABLE}
INDEX = {name: i for i, name in enumerate(COLUMNS)}

#: Sequences the parser descends into (enhanced multi-frame functional groups): only the
#: first item of each, so that a 2,000-frame file costs no more than a 1-frame file.
SHARED_GROUPS = 0x52009229
PER_FRAME_GROUPS = 0x52009230
DESCEND = frozenset({
    SHARED_GROUPS, PER_FRAME_GROUPS,
    0x00289110,  # PixelMeasuresSequence: PixelSpacing, SliceThickness, SpacingBetweenSlices
    0x00209116,  # PlaneOrientationSequence: ImageOrientationPatient
    0x00209113,  # PlanePositionSequence: ImagePositionPatient (first frame)
    0x00289145,  # PixelValueTransformationSequence: RescaleSlope/Intercept
    0x00289132,  # FrameVOILUTSequence: WindowCenter/Width
    0x00189117,  # MRDiffusionSequence: DiffusionBValue
    0x00209111,  # FrameContentSequence: (TemporalPositionIndex is not collected)
    0x00189114,  # MREchoSequence: EffectiveEchoTime is not collected; kept for completeness
    0x00540220,  # ViewCodeSequence: its Code Meaning (ViewCodeMeaning)
})

#: Tags taken only from inside a sequence of ``DESCEND`` (a top-level Code Meaning is no
#: view): Code Meaning, wanted from View Code Sequence.
NESTED_ONLY = frozenset({0x00080104})

#: Tags whose value is also accepted from inside the functional groups above.
#: EchoNumbers, EchoTime and TemporalPositionIdentifier are classic attributes that the
#: Enhanced MR IOD replaced (MR Echo and Frame Content macros); Philips keeps them per frame in
#: its private per-frame sequence (see ``PHILIPS_PER_FRAME``), where they are the only per-frame
#: echo number an enhanced multi-echo file carries.
FROM_GROUPS = frozenset({
    0x00280030, 0x00180050, 0x00180088, 0x00200037, 0x00200032,
    0x00281052, 0x00281053, 0x00281050, 0x00281051, 0x00189087,
    0x00180086, 0x00180081, 0x00200100, 0x00080104,
    0x00281055, 0x00281056,  # display values: Frame VOI LUT (first frame)
})

#: Private sequences the parser descends into, by (group, creator) -> element byte: the
#: sequence is (group, block << 8 | element) where (group, 00block) holds the creator.
#: Philips' per-frame private group (2005,xx0F) of "Philips MR Imaging DD 005" sits in each
#: per-frame functional group item of enhanced MR (Philips MR DICOM conformance statements).
PHILIPS_CREATOR = "Philips MR Imaging DD 005"
PRIVATE_SEQUENCES = {(0x2005, PHILIPS_CREATOR): 0x0F}

SIEMENS_CREATOR = "SIEMENS MR HEADER"

#: The decode profile of the parser (``header.read_pixel_header``): the group 0028 values a
#: decoder needs, at the top level only. Binary ``US`` values (exactly 2 bytes, else the file
#: goes to pydicom) ...
PIXEL_MODULE_US = {0x00280002: "SamplesPerPixel", 0x00280006: "PlanarConfiguration",
                   0x00280010: "Rows", 0x00280011: "Columns", 0x00280100: "BitsAllocated",
                   0x00280101: "BitsStored", 0x00280103: "PixelRepresentation"}
#: ... and text values, kept as the first value's text ("" when empty).
PIXEL_MODULE_TEXT = {0x00280004: "PhotometricInterpretation", 0x00280008: "NumberOfFrames",
                     0x00281052: "RescaleIntercept", 0x00281053: "RescaleSlope"}
#: Top-level elements whose presence means the decoder needs pydicom's full data set:
#: extended offset table (and lengths), float / double float pixel data, palette color LUTs.
NEEDS_DATASET = frozenset({0x7FE00001, 0x7FE00002, 0x7FE00008, 0x7FE00009, 0x00281201,
                           0x00281101})
