"""Tensors allocated in shared memory inside DataLoader workers.

A DataLoader worker hands each tensor to the main process through shared memory; a tensor
that does not live there yet is copied into it first. Allocating the cache reads and the
collated batches in shared memory from the start saves that copy (one volume of memory and one
memcpy per sample). Outside a worker these are ordinary tensors.

Example
-------
>>> empty((2, 3), torch.float32).shape
torch.Size([2, 3])
"""

from __future__ import annotations

import math

import torch


def in_worker() -> bool:
    """True inside a DataLoader worker process."""
    return torch.utils.data.get_worker_info() is not None


def empty(shape, dtype: torch.dtype, *, shared: bool | None = None) -> torch.Tensor:
    """An uninitialised C-contiguous tensor; in shared memory when ``shared`` (default:
    inside a DataLoader worker)."""
    shape = tuple(int(n) for n in shape)
    if shared is None:
        shared = in_worker()
    if shared:
        nbytes = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()
        try:
            storage = torch.UntypedStorage._new_shared(max(nbytes, 1))
            return torch.empty(0, dtype=dtype).set_(storage, 0, shape)
        except (AttributeError, RuntimeError):  # private API gone: plain memory still works
            pass
    return torch.empty(shape, dtype=dtype)


#: tensors at least this large are moved to shared memory by :func:`share_large`
LARGE_BYTES = 1 << 20


def share_large(sample: dict) -> dict:
    """Inside a DataLoader worker, move the sample's large tensors into shared memory now.

    DataLoader would do it anyway, but later, in its queue's feeder thread, while this worker
    already decodes the next sample: then the old buffer, its shared copy and the next decode
    are alive together (3 volumes). Copying here lets the old buffer go first (2 at most).
    """
    if not in_worker():
        return sample
    out = dict(sample)
    for key, value in sample.items():
        if (isinstance(value, torch.Tensor) and not value.is_shared()
                and value.device.type == "cpu"
                and value.numel() * value.element_size() >= LARGE_BYTES):
            shared = empty(value.shape, value.dtype, shared=True)
            shared.copy_(value)
            out[key] = shared
    return out
