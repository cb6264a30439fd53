"""Re-export of :mod:`dicomml.syntaxes`, the one transfer syntax table (kept importable here:
the decoders and existing code say ``from dicomml.decode import syntaxes as ts``).

Example
-------
>>> from dicomml.decode.syntaxes import describe, JPEG_LS_LOSSLESS
>>> describe(JPEG_LS_LOSSLESS)
'JPEG-LS Lossless (1.2.840.10008.1.2.4.80)'
"""

from dicomml.syntaxes import *  # noqa: F401,F403 - the public names, see dicomml.syntaxes
from dicomml.syntaxes import __all__  # noqa: F401
