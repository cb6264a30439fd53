"""Import a package that only an optional extra installs, naming the extra when it is missing.

Example
-------
>>> require("numpy", extra="core", needed_by="this example").__name__
'numpy'
>>> require("no_such_module_here", extra="viz", needed_by="dicomml.viz")
Traceback (most recent call last):
...
ImportError: dicomml.viz needs no_such_module_here: pip install 'dicomml[viz]'
"""

from __future__ import annotations

import importlib


def require(module: str, *, extra: str, needed_by: str):
    """``module`` imported, or ImportError "``needed_by`` needs <package>: pip install
    'dicomml[extra]'" (the package is the module's top-level name)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise ImportError(f"{needed_by} needs {package}: pip install 'dicomml[{extra}]'") \
            from exc
