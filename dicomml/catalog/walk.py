"""Find candidate files under a folder: every regular file, whatever its name or extension.

Directory symlinks are not followed (no loops, no escaping the root); file symlinks are.
``DICOMDIR`` index files are not honoured: the walk already finds every file a DICOMDIR could
reference under the root, and never opens anything outside it (the header parser records a
DICOMDIR in ``errors`` as ``error_type="DICOMDIR"``, skipped). Hidden files and folders
(names starting with ``.``: ``.DS_Store``, ``.git``...) are skipped. Nothing is written.

Example
-------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "a").mkdir(); _ = (root / "a" / "IM0001").write_bytes(b"x")
>>> [(p.endswith("IM0001"), size) for p, size, _ in walk_files(root)]
[(True, 1)]
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from dicomml.errors import DicommlError


def walk_files(root, skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, int, int]]:
    """Yield ``(path, size in bytes, mtime in ns)`` for each file under ``root``, recursively.

    ``root`` may also be a single file. ``skip`` holds absolute paths of files or folders to
    leave out (e.g. the catalog file or partitioned catalog folder itself when the user stores
    it inside the scanned folder). Paths are absolute,
    in directory order (sort them when order matters; ``scan`` sorts by path).
    """
    root = os.path.abspath(os.fspath(root))
    if os.path.isfile(root):
        st = os.stat(root)
        yield root, st.st_size, st.st_mtime_ns
        return
    if not os.path.isdir(root):
        raise DicommlError("no such folder", path=root)
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = [e for e in listing if not e.name.startswith(".")]
        except OSError:
            continue  # unreadable folder: nothing to index there
        subfolders = sorted((e.path for e in entries if _is_dir(e) and e.path not in skip),
                            reverse=True)
        yield from _stat_files([e for e in entries if _is_file(e) and e.path not in skip])
        stack.extend(subfolders)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file() and not entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _stat_files(entries: list) -> list[tuple[str, int, int]]:
    out = []
    for entry in entries:
        try:
            st = entry.stat()
        except OSError:
            continue  # dangling symlink or vanished file
        out.append((entry.path, st.st_size, st.st_mtime_ns))
    return out
