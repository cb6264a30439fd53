"""Lazy public names for a package: import the defining module only on first access.

Example (in a package's ``__init__.py``)::

    from dicomml._lazy import lazy_exports
    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"scan": "dicomml.catalog.scanner"})
"""

from __future__ import annotations

import importlib
import sys


def lazy_exports(package: str, exports: dict[str, str], extra: tuple[str, ...] = ()):
    """``(__getattr__, __dir__, __all__)`` for ``package`` exporting ``exports``
    (public name -> module defining it). A name equal to its module's last part (e.g.
    ``"synth": "dicomml.synth"``) exports the module itself. ``extra`` names are listed in
    ``__all__`` but defined eagerly by the package."""
    names = sorted(exports) + list(extra)

    def __getattr__(name: str):
        module_name = exports.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(module_name)
        value = module if module_name == f"{package}.{name}" else getattr(module, name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__():
        return names

    return __getattr__, __dir__, names
