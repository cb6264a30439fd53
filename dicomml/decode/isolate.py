"""Decode in a child process, for untrusted data: a decoder that aborts, segfaults or spins
cannot take the caller down. Used by ``read_pixels(path, isolate=True, timeout=...)``.

The child is ``python -m dicomml.decode.isolate`` reading a JSON request on stdin and writing
an ``.npy`` array (or a pickled DicommlError) to stdout; nothing is written to disk. A child
that outlives ``timeout`` seconds is killed; a signal exit (abort, segfault) becomes a
:class:`~dicomml.errors.DecodeError` naming the file.

Example
-------
>>> from pydicom.data import get_testdata_file
>>> read_pixels_isolated(get_testdata_file("MR_small_RLE.dcm"), None).shape
(1, 64, 64)
"""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys

import numpy as np

from dicomml.errors import DecodeError, DicommlError

_OK, _ERROR = b"A", b"E"


def read_pixels_isolated(path, frames=None, *, rescale: bool = False,
                         decoder: str | None = None, timeout: float = 60.0,
                         strict: bool = True) -> np.ndarray:
    """:func:`~dicomml.decode.read_pixels` run in a killable child process."""
    path = os.fspath(path)
    if frames is not None and not isinstance(frames, int):
        frames = [int(f) for f in frames]
    request = json.dumps({"path": path, "frames": frames, "rescale": rescale,
                          "decoder": decoder, "strict": strict}).encode()
    try:
        proc = subprocess.run([sys.executable, "-m", "dicomml.decode.isolate"], input=request,
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise DecodeError(f"decoding did not finish within {timeout:g} s (child killed)",
                          path=path) from exc
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        raise DecodeError(f"decoder crashed the isolated process ({name})", path=path)
    if proc.returncode != 0 or not proc.stdout:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise DecodeError(f"isolated decode failed (exit {proc.returncode}): {tail[0]}",
                          path=path)
    kind, payload = proc.stdout[:1], proc.stdout[1:]
    if kind == _ERROR:
        raise pickle.loads(payload)
    return np.load(io.BytesIO(payload), allow_pickle=False)


def _child() -> int:
    from dicomml.decode.reader import read_pixels

    request = json.loads(sys.stdin.buffer.read())
    try:
        arr = read_pixels(request["path"], request["frames"], rescale=request["rescale"],
                          decoder=request["decoder"], threads=1,
                          strict=request["strict"])
    except DicommlError as exc:
        sys.stdout.buffer.write(_ERROR + pickle.dumps(exc))
        return 0
    buffer = io.BytesIO()
    np.save(buffer, arr, allow_pickle=False)
    sys.stdout.buffer.write(_OK + buffer.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(_child())
