"""pyjpegls (CharLS, extra ``fast``). Known to spin for many seconds on some truncated
frames, so it is ranked after imagecodecs' CharLS build.

Example
-------
>>> PyJpegLs().module
'jpeg_ls'
"""

from __future__ import annotations

import numpy as np

from dicomml.decode import syntaxes as ts
from dicomml.decode.base import Decoder
from dicomml.decode.info import FrameInfo


class PyJpegLs(Decoder):
    """CharLS through pyjpegls."""

    name = "pyjpegls"
    package = "pyjpegls"
    module = "jpeg_ls"
    extra = "fast"
    transfer_syntaxes = ts.JPEG_LS_FAMILY
    releases_gil = False
    fallback_on_error = False  # may spin for seconds on corrupt data: first choice only

    def decode(self, src: bytes, info: FrameInfo) -> np.ndarray:
        return self.lib.jlsread(bytes(src))
