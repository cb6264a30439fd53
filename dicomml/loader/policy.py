"""What each geometry finding does: raise a typed error, warn, or pass (``policy``).

Finding kinds (from :mod:`dicomml.geometry.checks`): ``duplicate``, ``missing``, ``uneven``,
``inconsistent``, ``tilt``. Planes of different matrix sizes always raise (they cannot be
stacked). With ``resample=True`` the kinds it repairs (missing, uneven, tilt) never raise.

Example
-------
>>> actions("warn")["duplicate"], actions({"tilt": "raise"})["tilt"]
('warn', 'raise')
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from dicomml.errors import (
    DuplicateSliceError,
    GantryTiltError,
    GeometryWarning,
    InconsistentSeriesError,
    MissingSliceError,
    UnevenSpacingError,
)
from dicomml.geometry.checks import Finding

#: what each finding kind does by default: raise where the volume would be wrong, warn for
#: gantry tilt (the sheared affine is exact)
DEFAULT_POLICY: dict[str, str] = {
    "duplicate": "raise", "missing": "raise", "uneven": "raise", "inconsistent": "raise",
    "tilt": "warn",
}
_ERRORS = {
    "duplicate": DuplicateSliceError, "missing": MissingSliceError,
    "uneven": UnevenSpacingError, "inconsistent": InconsistentSeriesError,
    "tilt": GantryTiltError,
}
#: finding kinds that ``resample=True`` repairs
RESAMPLED = ("missing", "uneven", "tilt")
_HINTS = {
    "duplicate": "; policy={'duplicate': 'warn'} keeps the first plane at each position",
    "missing": "; resample=True interpolates the gap, policy={'missing': 'warn'} loads as is",
    "uneven": "; resample=True interpolates onto a regular grid, policy={'uneven': 'warn'} "
              "uses the mean spacing",
    "tilt": "; resample=True removes the shear, policy={'tilt': 'warn'} keeps it exact",
}


def actions(policy: str | Mapping[str, str]) -> dict[str, str]:
    """``{finding kind: "raise" | "warn" | "ignore"}`` from a policy name or override dict."""
    if isinstance(policy, str):
        if policy == "default":
            return dict(DEFAULT_POLICY)
        if policy not in ("raise", "warn", "ignore"):
            raise ValueError(f"policy must be 'default', 'raise', 'warn' or 'ignore', got {policy!r}")
        return dict.fromkeys(DEFAULT_POLICY, policy)
    chosen = dict(DEFAULT_POLICY)
    unknown = set(policy) - set(DEFAULT_POLICY)
    if unknown:
        raise ValueError(f"unknown finding kind(s) in policy: {sorted(unknown)}")
    chosen.update(policy)
    return chosen


def apply_policy(findings: list[Finding], chosen: dict, key: str, resample: bool) -> None:
    """Raise the typed error of the first finding whose action is "raise" (naming the series
    ``key``), warn a :class:`~dicomml.errors.GeometryWarning` for those set to "warn"."""
    for finding in findings:
        action = chosen[finding.kind]
        if resample and finding.kind in RESAMPLED:
            action = "warn" if action == "warn" else "ignore"
        if finding.kind == "inconsistent" and "matrix size" in finding.message:
            action = "raise"  # planes of different sizes cannot be stacked
        if action == "raise":
            hint = _HINTS.get(finding.kind, "")
            raise _ERRORS[finding.kind](f"{finding.message}{hint}", path=key)
        if action == "warn":
            warnings.warn(f"{key}: {finding.message}", GeometryWarning, stacklevel=3)
