"""Placeholder UIDs for files that lack a UID the volume does not need.

A file without Study Instance UID (0020,000D) or SOP Instance UID (0008,0018) is indexed, as
established readers (pydicom, dcm2niix) read it, instead of being skipped: the missing UID is
replaced by a deterministic placeholder and the ``warnings`` column of the catalog row says
so. Series Instance UID stays required (the parser refuses a file without it): it is what puts
the file in a series.

Placeholders are ``2.25.<decimal>`` UIDs (PS3.5 B.2: a UUID-derived root), derived from:

- Study: ``PatientID``, ``StudyDate``, ``AccessionNumber``, ``StudyDescription`` (so the files
  of one study that all lack the UID share one placeholder);
- SOP Instance: the file path.

Example
-------
>>> import pandas as pd
>>> rows = pd.DataFrame({"path": ["/a.dcm"], "StudyInstanceUID": [None],
...                      "SOPInstanceUID": ["1.2.3"], "PatientID": ["P1"]})
>>> out = fill_placeholders(rows)
>>> out.StudyInstanceUID[0].startswith("2.25."), out.warnings[0].split(":")[0]
(True, 'StudyInstanceUID missing')
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

#: UID column -> the columns its placeholder is derived from
SOURCES = {"StudyInstanceUID": ("PatientID", "StudyDate", "AccessionNumber", "StudyDescription"),
           "SOPInstanceUID": ("path",)}


def placeholder_uid(kind: str, values) -> str:
    """A deterministic ``2.25.`` UID (at most 64 characters) for ``kind`` and ``values``."""
    text = "\x1f".join([kind] + ["" if v is None else str(v) for v in values])
    return "2.25." + str(int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big"))


def fill_placeholders(instances: pd.DataFrame) -> pd.DataFrame:
    """Replace missing Study / SOP Instance UIDs (see the module docstring) and add a
    ``warnings`` column (text or None) saying which, in place; returns ``instances``. Text
    cells hold ``str`` or None (:mod:`dicomml.catalog.table`), so one vectorised ``isna`` per
    UID column is all a complete table costs."""
    notes = np.full(len(instances), None, dtype=object)
    for uid, sources in SOURCES.items():
        if uid not in instances.columns:
            continue
        missing = np.flatnonzero(instances[uid].isna().to_numpy())
        if not len(missing):
            continue
        values = instances[uid].to_numpy(dtype=object, copy=True)
        for i in missing.tolist():
            row = instances.iloc[i]
            values[i] = placeholder_uid(uid, [row.get(s) for s in sources])
            note = f"{uid} missing: placeholder {values[i]}"
            notes[i] = note if notes[i] is None else f"{notes[i]}; {note}"
        instances[uid] = values
    instances["warnings"] = notes
    return instances
