"""Split a transform chain into the cached deterministic prefix and the per-call rest.

A transform is *cacheable* when it says it is deterministic and can name its parameters:

* ``t.deterministic is True`` (every ``dicomml.transforms`` transform states it; any other
  callable, a lambda or a user function, counts as random and is never cached);
* ``t.cache_key()``: a stable string of the class and every parameter.

Containers exposing ``.transforms`` (``Compose``) are flattened. The prefix ends at the first
transform that is not cacheable: everything after it runs on every access, with a
``torch.Generator`` for transforms that take one (``t(sample, generator)``). A transform takes
and returns a sample dict (see :mod:`dicomml.transforms`).

Example
-------
>>> prefix, rest = split_transforms([lambda s: s])
>>> len(prefix), len(rest)
(0, 1)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping

import torch


def flatten(transform) -> list[Callable]:
    """``transform`` (None, a callable, a list, or a Compose-like object) as a flat list."""
    if transform is None:
        return []
    if isinstance(transform, (list, tuple)):
        return [t for item in transform for t in flatten(item)]
    children = getattr(transform, "transforms", None)
    if isinstance(children, (list, tuple)):
        return flatten(list(children))
    if not callable(transform):
        raise TypeError(f"transform must be callable, got {type(transform).__name__}")
    return [transform]


def is_deterministic(t) -> bool:
    """Whether ``t`` says it gives the same output for the same input."""
    return getattr(t, "deterministic", None) is True


def cache_key_of(t) -> str | None:
    """The stable parameter string of ``t``, or None when it has none."""
    method = getattr(t, "cache_key", None)
    if callable(method):
        return f"{type(t).__module__}.{type(t).__qualname__}:{method()}"
    return None


def split_transforms(transform) -> tuple[list[Callable], list[Callable]]:
    """``(cached_prefix, rest)`` of the flattened chain."""
    chain = flatten(transform)
    n = 0
    while n < len(chain) and is_deterministic(chain[n]) and cache_key_of(chain[n]) is not None:
        n += 1
    return chain[:n], chain[n:]


def _takes_generator(t) -> bool:
    try:
        params = inspect.signature(t).parameters
    except (TypeError, ValueError):
        return False
    return "generator" in params or len(params) >= 2


def apply_chain(chain: list[Callable], sample: Mapping,
                generator: torch.Generator | None = None) -> dict:
    """Apply ``chain`` in order; ``generator`` goes to transforms that accept one."""
    out = dict(sample)
    for t in chain:
        out = t(out, generator) if _takes_generator(t) else t(out)
        if not isinstance(out, Mapping):
            raise TypeError(f"transform {t!r} returned {type(out).__name__}, not a dict")
        out = dict(out)
    return out
