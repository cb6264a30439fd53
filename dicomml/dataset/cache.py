"""A persistent, process-safe cache of decoded (and deterministically transformed) samples.

Each entry is one sample dict stored without pickle: every tensor as a ``.npy`` file and every
other value (identifiers, metadata, shapes) in a JSON sidecar that is written last and so marks
the entry complete. Entries are keyed by :func:`entry_key`: a SHA-256 over the series' file list
with each file's size and modification time, the deterministic transforms' ``cache_key()``
strings and the dicomml version, so a touched or modified file, a changed transform or a new
dicomml release selects a new entry (the stale one is simply no longer read; ``prune`` removes it).

Writers never corrupt an entry: each file is written under a unique temporary name in the same
folder and moved into place with ``os.replace`` (atomic on POSIX), so concurrent DataLoader
workers writing the same entry produce identical files and a reader sees either nothing or a whole
entry. Arrays are read back with memory mapping (``mmap=True``) or with one ``readinto`` per
array straight into the returned tensor (allocated in shared memory inside a DataLoader worker,
so nothing is copied on the way to the main process).

Layout::

    cache_dir/
      ab/abcdef....json          # sidecar: format, arrays (file, dtype, shape), values
      ab/abcdef....image.npy     # float32 (C, slices, rows, columns)
      ab/abcdef....affine.npy    # float64 4x4 LPS
      ...

A *temporary* cache (:meth:`VolumeCache.temporary`) lives in a new ``dicomml_cache_*`` folder
under the system temp folder and is removed with everything in it when the cache object is
closed or garbage-collected (with the Dataset that holds it) or the process exits — only ever by
the process that created it, never by a copy in a DataLoader worker.

Example
-------
>>> import torch
>>> cache = VolumeCache.temporary()
>>> sample = {"image": torch.zeros(1, 2, 3, 4), "series_key": "s1", "metadata": {"Modality": "CT"}}
>>> cache.store("0123abcd", sample)
>>> cache.load("0123abcd")["image"].shape
torch.Size([1, 2, 3, 4])
>>> cache.close()
>>> cache.root.exists()
False
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch

from dicomml._columns import is_url
from dicomml.errors import CacheError, CatalogError

from . import _shm

FORMAT_VERSION = 1
_SIDECAR = ".json"
_log = logging.getLogger("dicomml.dataset")


def file_fingerprint(paths: Iterable[str | os.PathLike]) -> list[list]:
    """``[[path, size_bytes, mtime_ns], ...]`` for ``paths``, sorted by path.

    Raises :class:`~dicomml.errors.CatalogError` naming a listed file that no longer exists
    (the catalog is stale: rescan).
    """
    rows = []
    for path in sorted(os.fspath(p) for p in paths):
        if is_url(path):  # a DICOMweb instance: immutable by UID
            rows.append([path, 0, 0])
            continue
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise CatalogError("file listed in the catalog is missing; rescan the folder",
                               path=path) from None
        rows.append([path, st.st_size, st.st_mtime_ns])
    return rows


def entry_key(paths: Iterable[str | os.PathLike], transform_keys: Iterable[str] = (),
              extra: Mapping | None = None) -> str:
    """The cache key (64 hex characters) for a series and the deterministic transforms.

    ``paths``: the series' files; their sizes and mtimes are read now (``os.stat``), so a
    modified or touched file changes the key. ``transform_keys``: ``cache_key()`` of each cached
    transform, in order. ``extra``: other JSON-safe options that change the decoded output.
    """
    from dicomml import __version__

    payload = {
        "format": FORMAT_VERSION,
        "dicomml": __version__,
        "files": file_fingerprint(paths),
        "transforms": list(transform_keys),
        "extra": dict(extra or {}),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _json_safe(value, name: str):
    """``value`` as plain JSON types; raises CacheError for what JSON cannot hold."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else repr(value)
    if isinstance(value, np.generic):
        return _json_safe(value.item(), name)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v, f"{name}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, name) for v in value]
    raise CacheError(f"sample value {name!r} of type {type(value).__name__} cannot be cached "
                     "(use tensors, numbers, strings, lists or dicts)")


class VolumeCache:
    """Sample dicts on disk under ``root`` (created on first write; see the module docstring).

    ``mmap``: read arrays with ``np.load(mmap_mode="c")`` (pages load on first touch; good for
    patches and slices) instead of one read into memory.
    """

    def __init__(self, root: str | os.PathLike, *, mmap: bool = False):
        self.root = Path(root)
        self.mmap = bool(mmap)
        self._finalizer: weakref.finalize | None = None

    @classmethod
    def temporary(cls, *, mmap: bool = False, prefix: str = "dicomml_cache_") -> VolumeCache:
        """A cache in a new folder ``<system temp>/<prefix>XXXXXXXX``, removed (with its
        entries) by :meth:`close`, when this object is garbage-collected, or at exit.

        Pass it as ``cache_dir`` and the folder lives exactly as long as the dataset::

            ds = dicomml.DicomSeriesDataset(folder, cache_dir=VolumeCache.temporary())
            del ds  # the folder is gone

        Only the creating process removes it: copies of the object in DataLoader workers
        (forked or unpickled) never do.
        """
        root = tempfile.mkdtemp(prefix=prefix)
        cache = cls(root, mmap=mmap)
        cache._finalizer = weakref.finalize(cache, _remove_tree, root, os.getpid())
        return cache

    @property
    def is_temporary(self) -> bool:
        """True while this object owns a temporary folder that it will remove."""
        return self._finalizer is not None and self._finalizer.alive

    def close(self) -> None:
        """Remove a temporary cache's folder now (nothing for a cache given a folder)."""
        if self._finalizer is not None:
            self._finalizer()

    def __getstate__(self) -> dict:
        # a pickled copy (a DataLoader worker under spawn) reads and writes the same folder
        # but does not own it: only the creating process removes it
        return {**self.__dict__, "_finalizer": None}

    def __fspath__(self) -> str:
        return os.fspath(self.root)

    def __repr__(self) -> str:
        kind = ", temporary" if self.is_temporary else ""
        return f"VolumeCache({os.fspath(self.root)!r}, mmap={self.mmap}{kind})"

    def _base(self, key: str) -> Path:
        return self.root / key[:2] / key

    def sidecar(self, key: str) -> Path:
        """Path of the JSON sidecar of entry ``key`` (exists once the entry is complete)."""
        return self._base(key).with_suffix(_SIDECAR)

    def __contains__(self, key: str) -> bool:
        return self.sidecar(key).is_file()

    def load(self, key: str) -> dict | None:
        """The stored sample dict, or None when absent. Raises CacheError when corrupt."""
        side = self.sidecar(key)
        try:
            text = side.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise CacheError(f"unreadable cache entry: {exc}", path=side) from exc
        try:
            info = json.loads(text)
            if info.get("format") != FORMAT_VERSION:
                raise ValueError(f"format {info.get('format')!r} != {FORMAT_VERSION}")
            sample = dict(info["values"])
            for name, spec in info["arrays"].items():
                sample[name] = self._read_array(side.parent / spec["file"], spec)
        except CacheError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CacheError(f"corrupt cache entry: {exc}", path=side) from exc
        return sample

    def _read_array(self, path: Path, spec: Mapping) -> torch.Tensor:
        if not self.mmap:
            return read_npy(path, spec)
        array = np.load(path, mmap_mode="c", allow_pickle=False)
        _check_spec(path, array.shape, array.dtype, spec)
        return torch.from_numpy(array)

    def store(self, key: str, sample: Mapping) -> None:
        """Write ``sample`` as entry ``key`` (tensors and arrays as .npy, the rest as JSON)."""
        if self._finalizer is not None and not self._finalizer.alive:
            raise CacheError("the temporary cache was closed; its folder is gone",
                             path=self.root)
        base = self._base(key)
        base.parent.mkdir(parents=True, exist_ok=True)
        arrays, values = {}, {}
        for name, value in sample.items():
            if isinstance(value, (torch.Tensor, np.ndarray)):
                arrays[name] = self._write_array(base, str(name), value)
            else:
                values[str(name)] = _json_safe(value, str(name))
        info = {"format": FORMAT_VERSION, "arrays": arrays, "values": values}
        _atomic_write(base.with_suffix(_SIDECAR),
                      lambda f: f.write(json.dumps(info, indent=1).encode("utf-8")))

    @staticmethod
    def _write_array(base: Path, name: str, value) -> dict:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        array = np.ascontiguousarray(value)
        if array.dtype == object:
            raise CacheError(f"sample value {name!r} is an object array and cannot be cached")
        filename = f"{base.name}.{name}.npy"
        _atomic_write(base.parent / filename, lambda f: np.save(f, array, allow_pickle=False))
        return {"file": filename, "dtype": array.dtype.str, "shape": list(array.shape)}

    def keys(self) -> list[str]:
        """Keys of the complete entries."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob(f"??/*{_SIDECAR}"))

    def remove(self, key: str) -> None:
        """Delete entry ``key`` (sidecar first, so readers never see half an entry)."""
        base = self._base(key)
        base.with_suffix(_SIDECAR).unlink(missing_ok=True)
        for path in base.parent.glob(f"{base.name}.*"):
            path.unlink(missing_ok=True)

    def prune(self, keep: Iterable[str], *, leftovers_after: float = 3600.0) -> int:
        """Delete every entry whose key is not in ``keep``, and the leftovers of writers that
        were killed mid-write (hidden ``.tmp`` files, array files without a sidecar) not
        modified for ``leftovers_after`` seconds (younger ones may belong to a writer still
        at work, in this or another process); returns how many entries were removed.

        >>> cache = VolumeCache(tempfile.mkdtemp())
        >>> cache.prune([])
        0
        """
        keep = set(keep)
        stale = [k for k in self.keys() if k not in keep]
        for key in stale:
            self.remove(key)
        self._remove_leftovers(time.time() - leftovers_after)
        return len(stale)

    def _remove_leftovers(self, before: float) -> None:
        if not self.root.is_dir():
            return
        complete = set(self.keys())
        for path in self.root.glob("??/*"):
            hidden_tmp = path.name.startswith(".") and path.name.endswith(".tmp")
            orphan = not hidden_tmp and path.suffix != _SIDECAR and \
                path.name.split(".", 1)[0] not in complete
            try:
                if (hidden_tmp or orphan) and path.is_file() and path.stat().st_mtime < before:
                    path.unlink()
            except FileNotFoundError:  # another process removed it first
                continue

    def nbytes(self) -> int:
        """Bytes stored under the cache root."""
        if not self.root.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.root.glob("??/*") if p.is_file())


def load_or_build(cache: VolumeCache, key: str, build, name: str) -> dict:
    """The sample of cache entry ``key``, else ``build()`` (then stored under ``key``). A
    corrupt entry is rebuilt and a failed write is logged (naming ``name``, e.g. the series
    key): a full or read-only cache never stops training.

    >>> cache = VolumeCache(tempfile.mkdtemp())
    >>> load_or_build(cache, "k1", lambda: {"n": 1}, "demo"), "k1" in cache
    ({'n': 1}, True)
    """
    try:
        sample = cache.load(key)
    except CacheError as exc:
        _log.warning("rebuilding corrupt cache entry of %s: %s", name, exc)
        sample = None
    if sample is None:
        sample = build()
        try:
            cache.store(key, sample)
        except OSError as exc:
            _log.warning("could not write the cache entry of %s: %s", name, exc)
    return sample


def _remove_tree(root: str, owner_pid: int) -> None:
    """Delete a temporary cache folder, in its creating process only (a forked DataLoader
    worker inherits the finalizer but must leave the folder to the main process)."""
    if os.getpid() == owner_pid:
        shutil.rmtree(root, ignore_errors=True)


def _check_spec(path, shape, dtype: np.dtype, spec: Mapping) -> None:
    if list(shape) != list(spec["shape"]) or dtype.str != spec["dtype"]:
        raise CacheError(f"array {dtype.str}{list(shape)} does not match sidecar "
                         f"{spec['dtype']}{spec['shape']}", path=path)


def read_npy(path: Path, spec: Mapping) -> torch.Tensor:
    """A ``.npy`` file read with one ``readinto`` straight into a tensor (in shared memory
    inside a DataLoader worker, so handing it to the main process copies nothing)."""
    with open(path, "rb", buffering=0) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        _check_spec(path, shape, dtype, spec)
        if fortran or dtype.hasobject or not dtype.isnative:
            raise CacheError("cache arrays are native-endian C-order numbers", path=path)
        tensor = _shm.empty(shape, torch.from_numpy(np.empty(0, dtype)).dtype)
        view = memoryview(tensor.numpy()).cast("B")
        done = 0
        while done < len(view):
            n = f.readinto(view[done:])
            if not n:
                raise CacheError(f"array file ends after {done} of {len(view)} data bytes",
                                 path=path)
            done += n
    return tensor


def _atomic_write(path: Path, write) -> None:
    """Call ``write(binary_file)`` on a unique temporary file, then move it onto ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
