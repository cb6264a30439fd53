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

import pandas as pd

#: UID column -> the columns its placeholder is derived from
SOURCES = {"StudyInstanceUID": ("PatientID", "StudyDate", "AccessionNumber", "StudyDescription"),
           "SOPInstanceUID": ("path",)}


def placeholder_uid(kind: str, values) -> str:
    """A deterministic ``2.25.`` UID (at most 64 characters) for ``kind`` and ``values``."""
    text = "\x1f".join([kind] + ["" if v is None else str(v) for v in values])
    return "2.25." + str(int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big"))


def fill_placeholders(instances: pd.DataFrame) -> pd.DataFrame:
    """``instances`` with missing Study / SOP Instance UIDs replaced (see the module
    docstring) and a ``warnings`` column (text or None) saying which; unchanged rows and
    tables without missing UIDs cost one ``isna`` per UID column."""
    notes = pd.Series([None] * len(instances), index=instances.index, dtype=object)
    for uid, sources in SOURCES.items():
        if uid not in instances.columns:
            continue
        missing = instances[uid].isna() | (instances[uid] == "")
        if not missing.any():
            continue
        instances = instances.copy() if notes.isna().all() else instances
        for index in instances.index[missing.to_numpy()]:
            values = [instances.at[index, s] if s in instances.columns else None
                      for s in sources]
            instances.at[index, uid] = placeholder_uid(uid, values)
            note = f"{uid} missing: placeholder {instances.at[index, uid]}"
            notes[index] = note if notes[index] is None else f"{notes[index]}; {note}"
    instances["warnings"] = notes
    return instances
