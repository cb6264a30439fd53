"""A small mixed corpus of synthetic series: the demo's default data.

Layout under ``folder``: the first patient's series in nested folders
(``<PatientID>/<modality>/``), every other patient's files together in one flat ``mixed/``
folder — the common case of many patients, studies and series in one directory. File names
never follow slice order; one series has no file extension.

Example
-------
>>> import tempfile
>>> corpus = write_corpus(tempfile.mkdtemp(), n_patients=1)
>>> [s.modality for s in corpus]
['CT', 'CT', 'MR', 'MR']
"""

from __future__ import annotations

import pathlib

from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from ._encode import supported_transfer_syntaxes
from ._series import SynthSeries, write_series

# one patient's series: (study, write_series options); sizes keep the demo well under a minute
_PATIENT_SERIES = (
    ("CT", dict(modality="CT", shape=(24, 64, 64), spacing=(2.5, 0.7, 0.7),
                series_description="CT chest axial", transfer_syntax=ExplicitVRLittleEndian)),
    ("CT", dict(modality="CT", shape=(24, 64, 64), spacing=(2.5, 0.7, 0.7),
                series_description="CT chest axial, JPEG-LS", instance_numbers="reversed",
                transfer_syntax=JPEGLSLossless, fallback=RLELossless)),
    ("MR", dict(modality="MR", shape=(16, 64, 64), spacing=(4.0, 0.9, 0.9),
                orientation="sagittal", series_description="MR head sagittal, JPEG 2000",
                transfer_syntax=JPEG2000Lossless, fallback=ImplicitVRLittleEndian,
                extension="")),
    ("MR", dict(modality="MR", shape=(12, 64, 64), spacing=(5.0, 0.9, 0.9),
                multiframe=True, series_description="MR head axial, enhanced multi-frame",
                transfer_syntax=ExplicitVRLittleEndian)),
)


def _describe(description: str, transfer_syntax) -> str:
    """The description with its codec part replaced by the syntax actually written."""
    base = description.split(", ")[0]
    return base if transfer_syntax.is_little_endian and not transfer_syntax.is_compressed \
        else f"{base}, {transfer_syntax.name}"


def write_corpus(folder, *, n_patients: int = 3, seed: int = 0) -> list[SynthSeries]:
    """Write ``n_patients`` patients, each with a CT and an MR study of two series each.

    Returns the ground truth of every series, patients in order, as :class:`SynthSeries`.
    Compressed series fall back to an uncompressed or RLE syntax when their encoder is not
    installed (``truth.transfer_syntax`` says what was written).
    """
    folder = pathlib.Path(folder)
    writable = set(supported_transfer_syntaxes())
    corpus = []
    for patient in range(n_patients):
        patient_id = f"DEMO{seed:02d}{patient + 1:03d}"
        studies = {name: generate_uid(entropy_srcs=["corpus", patient_id, name, str(seed)])
                   for name in ("CT", "MR")}
        for number, (study, options) in enumerate(_PATIENT_SERIES, start=1):
            options = dict(options)
            fallback = options.pop("fallback", ExplicitVRLittleEndian)
            if options["transfer_syntax"] not in writable:
                options["transfer_syntax"] = fallback
                options["series_description"] = _describe(options["series_description"],
                                                          fallback)
            target = folder / (f"{patient_id}/{study}" if patient == 0 else "mixed")
            corpus.append(write_series(
                target, patient_id=patient_id, patient_name=f"Demo^Patient{patient + 1}",
                study_uid=studies[study], series_number=number, seed=seed * 1000 + patient,
                StudyDescription=f"Synthetic {study} study", **options))
    return corpus
